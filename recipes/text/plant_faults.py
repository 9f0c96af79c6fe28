"""Plant known faults in the fortunes CSVs, so that the data-quality checks have something to find.

Reads SOURCE/train.csv and SOURCE/test.csv (columns text,label; made by prepare_fortunes.py) and writes OUT/:

- train.csv: the same rows in the same order, but a seeded --flip fraction (5%) of them relabelled to another
  class, and --variants other rows whose label is spelled differently (upper-cased, or with a trailing space);
- test.csv: the test rows plus --leak training rows copied in (split leakage), shuffled;
- flipped.json: what was planted. Its "rows" are the flipped rows as `hfft audit` names them (source rows:
  0-based data rows of train.csv, the header not counted), so `data.exclude=OUT/flipped.json` trains without
  exactly the flipped rows (the oracle to compare an audit with).

``--score AUDIT_JSON`` instead compares an `hfft audit` audit.json with OUT/flipped.json (precision and recall of
the flagged rows, and of its top-k where k is the number flipped).

    python recipes/text/plant_faults.py --source data/fortunes --out data/fortunes-faulty
    python recipes/text/plant_faults.py --out data/fortunes-faulty --score runs/fortunes-faulty/audit/audit.json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path


def read_rows(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [(row["text"], row["label"]) for row in csv.DictReader(f)]


def write_rows(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def plant(args: argparse.Namespace) -> None:
    source, out = Path(args.source), Path(args.out)
    if not (source / "train.csv").is_file() or not (source / "test.csv").is_file():
        raise SystemExit(f"{source}/train.csv and test.csv not found: run recipes/text/prepare_fortunes.py first.")
    train, test = read_rows(source / "train.csv"), read_rows(source / "test.csv")
    classes = sorted({label for _, label in train})
    rng = random.Random(args.seed)
    order = list(range(len(train)))
    rng.shuffle(order)
    n_flip = round(args.flip * len(train))
    flipped = sorted(order[:n_flip])
    variants = sorted(order[n_flip : n_flip + args.variants])
    leaked = sorted(order[n_flip + args.variants : n_flip + args.variants + args.leak])
    faulty = list(train)
    flips = []
    for row in flipped:
        text, label = train[row]
        new = rng.choice([c for c in classes if c != label])
        faulty[row] = (text, new)
        flips.append({"row": row, "label": label, "planted": new})
    spellings = []
    for i, row in enumerate(variants):
        text, label = train[row]
        spelled = label.upper() if i % 2 == 0 else label + " "
        faulty[row] = (text, spelled)
        spellings.append({"row": row, "label": label, "planted": spelled})
    test_rows = test + [train[row] for row in leaked]
    rng.shuffle(test_rows)
    out.mkdir(parents=True, exist_ok=True)
    write_rows(out / "train.csv", faulty)
    write_rows(out / "test.csv", test_rows)
    faults = {
        "train": str(out / "train.csv"),
        "original": str(source / "train.csv"),
        "row": "0-based data row of train.csv (the header not counted), as hfft audit names rows",
        "rows": flipped,
        "flipped": flips,
        "label_variants": spellings,
        "leaked_into_test": leaked,
    }
    (out / "flipped.json").write_text(json.dumps(faults, indent=2), encoding="utf-8")
    print(
        f"wrote {out}/train.csv ({len(faulty)} rows: {len(flipped)} labels flipped, {len(variants)} label "
        f"spellings changed), {out}/test.csv ({len(test_rows)} rows: {len(leaked)} copied from train) and "
        f"{out}/flipped.json"
    )


def score(args: argparse.Namespace) -> None:
    faults = json.loads((Path(args.out) / "flipped.json").read_text(encoding="utf-8"))
    audit = json.loads(Path(args.score).read_text(encoding="utf-8"))
    truth, ranked = set(faults["rows"]), [f["row"] for f in audit["flagged"]]
    found = truth & set(ranked)
    top = set(ranked[: len(truth)]) & truth
    print(
        f"{len(ranked)} rows flagged of {audit['audited_rows']} audited; {len(truth)} labels were flipped.\n"
        f"flagged: precision {len(found) / max(len(ranked), 1):.1%}, recall {len(found) / max(len(truth), 1):.1%}\n"
        f"top {len(truth)}: precision {len(top) / max(len(truth), 1):.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="data/fortunes", help="folder with train.csv and test.csv")
    parser.add_argument("--out", default="data/fortunes-faulty", help="output folder")
    parser.add_argument("--flip", type=float, default=0.05, help="fraction of train labels flipped to another class")
    parser.add_argument("--leak", type=int, default=20, help="train rows copied into test")
    parser.add_argument("--variants", type=int, default=6, help="train labels re-spelled (upper case, trailing space)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--score", default=None, metavar="AUDIT_JSON", help="score an audit.json against OUT's faults")
    args = parser.parse_args()
    score(args) if args.score else plant(args)


if __name__ == "__main__":
    main()
