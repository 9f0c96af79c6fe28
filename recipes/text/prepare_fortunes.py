"""Turn Debian's `fortunes` package into a labelled text-classification dataset (CSV).

Each category file under /usr/share/games/fortunes holds quotes separated by a line
`%`; the category is the label. Writes OUT/train.csv and OUT/test.csv (text,label),
split per class with a fixed seed.

    apt-get install fortunes
    python recipes/text/prepare_fortunes.py --out data/fortunes
"""

from __future__ import annotations

import argparse
import csv
import random
import re
from pathlib import Path

CATEGORIES = ["computers", "food", "love", "politics", "science", "sports"]


def read_fortunes(path: Path) -> list[str]:
    """Quotes of one fortune file, whitespace collapsed, backspace overstrikes removed."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    text = re.sub(r".\x08", "", text)
    quotes = [" ".join(chunk.split()) for chunk in re.split(r"^%$", text, flags=re.M)]
    return [q for q in quotes if q]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="/usr/share/games/fortunes", help="fortunes directory")
    parser.add_argument("--out", default="data/fortunes", help="output directory for train.csv/test.csv")
    parser.add_argument("--categories", nargs="+", default=CATEGORIES)
    parser.add_argument("--max-per-class", type=int, default=250, help="cap per category (keeps classes balanced)")
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    source = Path(args.source)
    if not source.is_dir():
        raise SystemExit(f"{source} not found: install Debian's `fortunes` package (apt-get install fortunes).")
    rng = random.Random(args.seed)
    train, test = [], []
    for category in args.categories:
        quotes = read_fortunes(source / category)
        rng.shuffle(quotes)
        quotes = quotes[: args.max_per_class]
        n_test = max(1, int(len(quotes) * args.test_fraction))
        test += [(q, category) for q in quotes[:n_test]]
        train += [(q, category) for q in quotes[n_test:]]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        rng.shuffle(rows)
        with open(out / f"{name}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
    print(f"wrote {len(train)} train and {len(test)} test rows ({len(args.categories)} classes) to {out}")


if __name__ == "__main__":
    main()
