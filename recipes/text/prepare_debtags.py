"""Turn Debian's package index into a multi-label text dataset: descriptions labelled with debtags.

Each Debian binary package has a short description, a long description and `Tag:`
debtags (e.g. `game::strategy, interface::x11, use::gameplaying`). This script reads
the index apt keeps under /var/lib/apt/lists (the `*_Packages*` files for Package,
Source, Description-md5 and Tag; the `*_i18n_Translation-en*` files for the long
descriptions, joined on Description-md5), keeps 16 tags that a reader can infer from
the text, and writes OUT/{train,validation,test}.jsonl with fields
`text`, `tags` (a list of tag strings) and `package`, plus OUT/README.txt.

One row per source package: binary packages built from one source (libfoo1,
libfoo-dev, libfoo-doc, ...) and packages of different sources that share one long
description opening are grouped, and one member of each group, drawn with the seed, becomes
the row, so no source sits in two splits. The split (about 70/10/20) is by these
groups, stratified by each row's rarest tag.

apt downloads Translation-en only when its languages allow it (Docker images set
Acquire::Languages "none"), so fetch it explicitly once:

    apt-get update -o Acquire::Languages=en
    python recipes/text/prepare_debtags.py --out data/debtags
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import lzma
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

# 16 tags a reader can infer from a description: what the package is (library, shared
# library, documentation, font, game), its programming language, how it is used
# (command line, X11 GUI, daemon, network server) and what it works with.
TAGS = [
    "devel::lang:haskell",
    "devel::lang:java",
    "devel::lang:perl",
    "devel::library",
    "implemented-in::python",
    "interface::commandline",
    "interface::daemon",
    "interface::x11",
    "made-of::font",
    "network::server",
    "role::documentation",
    "role::shared-lib",
    "use::gameplaying",
    "works-with::audio",
    "works-with::image",
    "works-with::mail",
]
COMPRESSED = {".gz": gzip.open, ".xz": lzma.open, ".bz2": bz2.open}
TRANSITIONAL = re.compile(r"\b(transitional|dummy) package\b", re.I)


def compression(path: Path) -> str:
    """`.lz4`, `.gz`, `.xz`, `.bz2`, or "" for a plain file."""
    return next((ext for ext in (".lz4", *COMPRESSED) if path.name.endswith(ext)), "")


def read_index(path: Path) -> str:
    """The text of one apt list file: .lz4 through `lz4cat`, .gz/.xz/.bz2 through Python, or plain."""
    ext = compression(path)
    if ext == ".lz4":
        if shutil.which("lz4cat") is None:
            raise SystemExit(f"{path}: lz4-compressed, but `lz4cat` is missing (apt-get install lz4)")
        data = subprocess.run(["lz4cat", str(path)], capture_output=True, check=True).stdout
    elif ext:
        with COMPRESSED[ext](path, "rb") as f:
            data = f.read()
    else:
        data = path.read_bytes()
    return data.decode("utf-8", errors="replace")


def stanzas(text: str):
    """deb822 paragraphs as dicts; continuation lines are kept, joined with newlines."""
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.split("\n"):
            if not line:
                continue
            if line[0] in " \t" and key is not None:
                fields[key] += "\n" + line
            else:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def list_files(lists: Path, kind: str) -> list[Path]:
    """apt list files of one kind (`Packages` or `Translation-en`), one per index (.lz4/plain/.gz/.xz/.bz2)."""
    preference = ["", ".lz4", ".gz", ".xz", ".bz2"]
    found: dict[str, Path] = {}
    for path in sorted(lists.glob(f"*_{kind}*")):
        ext = compression(path)
        stem = path.name[: len(path.name) - len(ext)]
        if not stem.endswith(f"_{kind}"):
            continue  # e.g. Packages.diff_Index, Translation-en_GB
        if stem not in found or preference.index(ext) < preference.index(compression(found[stem])):
            found[stem] = path
    return sorted(found.values())


def clean(description: str, max_chars: int) -> str:
    """`short. long`, Debian's leading-space continuation and ` .` paragraph lines removed, whitespace collapsed."""
    short, _, long = description.partition("\n")
    lines = [line[1:] if line.startswith(" ") else line for line in long.split("\n")]
    body = " ".join(" ".join(line for line in lines if line.strip() != ".").split())
    text = " ".join(short.split()).rstrip(".")
    if body:
        text += ". " + body
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0]
    return text


def load_packages(lists: Path, max_chars: int) -> tuple[list[dict], dict[str, int]]:
    """Tagged binary packages with their cleaned text, tags and source; counters of what was dropped."""
    long_by_md5: dict[str, str] = {}
    long_by_name: dict[str, str] = {}
    for path in list_files(lists, "Translation-en"):
        for s in stanzas(read_index(path)):
            if "Description-en" in s:
                long_by_md5.setdefault(s.get("Description-md5", ""), s["Description-en"])
                long_by_name.setdefault(s.get("Package", ""), s["Description-en"])
    seen: set[str] = set()
    packages, stats = [], Counter()
    for path in list_files(lists, "Packages"):
        for s in stanzas(read_index(path)):
            name = s.get("Package")
            if not name or name in seen:
                continue  # same package in another suite (e.g. -security) or architecture
            seen.add(name)
            stats["packages"] += 1
            if "Tag" not in s:
                continue
            stats["tagged"] += 1
            description = s.get("Description", "")
            if "\n" not in description:  # the index only holds the short one
                description = long_by_md5.get(s.get("Description-md5", "")) or long_by_name.get(name) or description
            if "\n" not in description:
                stats["no long description"] += 1
            text = clean(description, max_chars)
            if TRANSITIONAL.search(text):
                stats["transitional/dummy"] += 1
                continue
            tags = {t.strip() for t in s["Tag"].replace("\n", " ").split(",") if t.strip()}
            source = s.get("Source", name).split()[0]
            packages.append({"package": name, "source": source, "text": text, "tags": tags})
    return packages, stats


def group_packages(packages: list[dict]) -> list[list[dict]]:
    """Connected components over `same source` and `same opening of the long description` (union-find)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in packages:
        body = p["text"].partition(". ")[2][:80]  # shared opening: the same software, another package
        find("src:" + p["source"])
        if len(body) >= 40:  # not a one-liner
            parent[find("src:" + p["source"])] = find("body:" + body)
    groups: dict[str, list[dict]] = defaultdict(list)
    for p in packages:
        groups[find("src:" + p["source"])].append(p)
    return sorted(groups.values(), key=lambda g: min(p["package"] for p in g))


def pick_rows(groups: list[list[dict]], tags: list[str], rows: int, rng: random.Random) -> list[dict]:
    """One package per group (seeded, among members with a distinct text and one of `tags`), then about
    `rows` of them: rarest tags first, a row is kept while one of its tags is under a common cap."""
    wanted = set(tags)
    candidates = []
    for group in groups:
        by_text = {p["text"]: p for p in sorted(group, key=lambda p: p["package"]) if p["tags"] & wanted}
        if by_text:
            p = rng.choice(sorted(by_text.values(), key=lambda p: p["package"]))
            candidates.append({**p, "tags": sorted(p["tags"] & wanted)})
    total = Counter(t for c in candidates for t in c["tags"])
    rng.shuffle(candidates)
    candidates.sort(key=lambda c: min(total[t] for t in c["tags"]))  # stable: ties stay shuffled

    def capped(cap: int) -> list[dict]:
        counts: Counter = Counter()
        kept = []
        for c in candidates:
            if any(counts[t] < cap for t in c["tags"]):
                kept.append(c)
                counts.update(c["tags"])
        return kept

    low, high = 1, len(candidates)  # the smallest cap that keeps at least `rows` rows
    while low < high:
        mid = (low + high) // 2
        low, high = (mid + 1, high) if len(capped(mid)) < rows else (low, mid)
    return capped(low)


def split_rows(rows: list[dict], fractions: dict[str, float], rng: random.Random) -> dict[str, list[dict]]:
    """Each row (one source group) goes to one split, stratified on its rarest tag."""
    total = Counter(t for r in rows for t in r["tags"])
    order = rows[:]
    rng.shuffle(order)
    order.sort(key=lambda r: min(total[t] for t in r["tags"]))
    splits: dict[str, list[dict]] = {name: [] for name in fractions}
    counts = {name: Counter() for name in fractions}
    for r in order:
        rarest = min(r["tags"], key=lambda t: total[t])
        # the split that most lacks this row's rarest tag, then the one that most lacks rows
        demand = {
            name: (share * total[rarest] - counts[name][rarest], share * len(rows) - len(splits[name]))
            for name, share in fractions.items()
        }
        name = max(fractions, key=demand.__getitem__)
        splits[name].append(r)
        counts[name].update(r["tags"])
    for name in splits:
        rng.shuffle(splits[name])
    return splits


def micro_f1(rows: list[dict], predicted: set[str]) -> float:
    tp = sum(len(predicted & set(r["tags"])) for r in rows)
    n_pred = len(predicted) * len(rows)
    n_true = sum(len(r["tags"]) for r in rows)
    return 2 * tp / (n_pred + n_true) if n_pred + n_true else 0.0


def constant_baseline(train: list[dict], tags: list[str]) -> set[str]:
    """The fixed tag set: tags added in train-frequency order while train micro-F1 improves."""
    freq = Counter(t for r in train for t in r["tags"])
    chosen: set[str] = set()
    for tag in sorted(tags, key=lambda t: (-freq[t], t)):
        if micro_f1(train, chosen | {tag}) <= micro_f1(train, chosen):
            break
        chosen.add(tag)
    return chosen


def release_dates(lists: Path) -> list[str]:
    dates = []
    for path in sorted(lists.glob("*_InRelease")) + sorted(lists.glob("*_Release")):
        head = path.read_text(encoding="utf-8", errors="replace")[:4000]  # after any PGP armour header
        suite = re.search(r"^Suite: (.+)$", head, re.M)
        date = re.search(r"^Date: (.+)$", head, re.M)
        if suite and date:
            dates.append(f"{suite.group(1)} ({date.group(1)})")
    return dates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lists", default="/var/lib/apt/lists", help="apt's lists directory")
    parser.add_argument("--out", default="data/debtags", help="output directory for the jsonl files")
    parser.add_argument("--rows", type=int, default=7000, help="about this many rows in all")
    parser.add_argument("--max-chars", type=int, default=1000, help="texts are cut to this length at a word boundary")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    started = time.time()
    lists = Path(args.lists)
    package_files = list_files(lists, "Packages")
    translation_files = list_files(lists, "Translation-en")
    if not package_files:
        sys.exit(f"{lists}: no *_Packages index; run `apt-get update -o Acquire::Languages=en` first.")
    if not translation_files:
        sys.exit(
            f"{lists}: no *_i18n_Translation-en index (long descriptions); apt skips it when "
            'Acquire::Languages is "none". Run `apt-get update -o Acquire::Languages=en` first.'
        )
    packages, stats = load_packages(lists, args.max_chars)
    rng = random.Random(args.seed)
    groups = group_packages(packages)
    rows = pick_rows(groups, TAGS, args.rows, rng)
    if not rows:
        sys.exit(f"{lists}: no package carries one of the {len(TAGS)} tags; is this a Debian index with debtags?")
    fractions = {"train": 0.7, "validation": 0.1, "test": 0.2}
    splits = split_rows(rows, fractions, rng)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, split in splits.items():
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for r in split:
                f.write(json.dumps({"text": r["text"], "tags": r["tags"], "package": r["package"]}, ensure_ascii=False))
                f.write("\n")

    constant = constant_baseline(splits["train"], TAGS)
    baseline = micro_f1(splits["test"], constant)
    freq = {name: Counter(t for r in split for t in r["tags"]) for name, split in splits.items()}
    mean_tags = sum(len(r["tags"]) for r in rows) / len(rows)
    table = [f"  {'tag':26s} {'all':>5s} " + " ".join(f"{name:>10s}" for name in splits)]
    for tag in sorted(TAGS, key=lambda t: -sum(freq[n][t] for n in splits)):
        counts = " ".join(f"{freq[n][tag]:10d}" for n in splits)
        table.append(f"  {tag:26s} {sum(freq[n][tag] for n in splits):5d} {counts}")
    summary = [
        f"{len(rows)} rows: " + ", ".join(f"{len(s)} {n}" for n, s in splits.items()),
        f"{len(TAGS)} tags, {mean_tags:.2f} tags per row on average (every row has at least one)",
        "tag frequencies (rows):",
        *table,
        f"constant predictor (tag set chosen on train): {sorted(constant)}",
        f"  micro-F1 on test: {baseline:.4f}",
    ]
    source_lines = [
        f"{stats['packages']} binary packages, {stats['tagged']} with debtags, "
        f"{stats['transitional/dummy']} transitional/dummy dropped, {stats['no long description']} without a long description; "
        f"{len(groups)} source groups, {len(rows)} kept",
    ]
    readme = [
        "Debian package descriptions labelled with debtags (multi-label text classification)",
        "",
        "Made by recipes/text/prepare_debtags.py from apt's package index on this machine:",
        *(f"  {p}" for p in package_files + translation_files),
        "Releases: " + "; ".join(release_dates(lists)),
        "",
        "Fields: text (short description + '. ' + long description, whitespace collapsed,",
        f"cut to {args.max_chars} characters), tags (the package's debtags among the 16 below),",
        "package (the Debian binary package). One package per source package (sources whose long",
        "descriptions open with the same 80 characters are grouped too: qt6-*, tryton-modules-*, ...),",
        "drawn with the seed; the split is by these groups, stratified on each row's rarest tag.",
        "Rows were sampled rarest-tag first under a common per-tag cap, so frequent tags",
        "(devel::library, devel::lang:perl, ...) are under-represented relative to Debian.",
        "Every row has at least one of the 16 tags; debtags are curated by hand and incomplete, so",
        "some true tags are missing (label noise).",
        "",
        *source_lines,
        *summary,
        "",
        f"seed {args.seed}. Texts are Debian package descriptions, written by the packages' maintainers and",
        "distributed with the Debian archive; debtags from the Debian archive's Tag field.",
    ]
    (out / "README.txt").write_text("\n".join(readme) + "\n", encoding="utf-8")
    print(*source_lines, sep="\n")
    print(*summary, sep="\n")
    print(f"wrote {', '.join(f'{n}.jsonl' for n in splits)} and README.txt to {out} in {time.time() - started:.1f}s")


if __name__ == "__main__":
    main()
