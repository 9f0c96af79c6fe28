"""Split leakage: rows of an evaluation split whose input is also in train (or, for test, in validation).

Each split's inputs are fingerprinted by the modality (`ModalityHooks.fingerprints`): an exact fingerprint that
is equal for two rows when the model would read the same input after the modality's normalisation (text:
whitespace collapsed, lower-cased for uncased tokenizers; images: the decoded RGB pixels, so the same picture in
two files or formats matches; audio: the decoded samples and their rate), a short preview (text or file name)
and, optionally, what near-duplicates are found by (text: the normalised text; images: a 64-bit difference
hash). Audio has no near-duplicate check.

Pairs compared: train-validation, train-test and validation-test; a row of the second split of a pair is
*leaked* when its exact fingerprint is in the first. Cost: exact duplicates take one pass over every split (one
decode per image or audio file) and a hash-set lookup per row. Near-duplicates (`data.near_duplicate_threshold`)
compare at most `NEAR_QUERY_ROWS` rows of the second split (a seeded sample; the report says so) against at most
`NEAR_REFERENCE_ROWS` rows of the first: text by the Jaccard similarity of word 3-gram sets, found exactly with a
prefix-filtered inverted index (about linear in the number of words compared, plus the verification of candidate
pairs that share a rare 3-gram); images by the fraction of agreeing bits of their difference hashes
(`NEAR_QUERY_ROWS` x `NEAR_REFERENCE_ROWS` vectorised XOR/popcounts).
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger("hfft")

PAIRS = (("train", "validation"), ("train", "test"), ("validation", "test"))
NEAR_QUERY_ROWS = 2000  # rows of the evaluation split compared for near-duplicates (seeded sample above this)
NEAR_REFERENCE_ROWS = 100_000  # rows of the other split they are compared against (seeded sample above this)
EXAMPLES = 5  # examples kept per pair in data_report.json (the console shows 3)
SHINGLE = 3  # words per shingle of the text near-duplicate check
HASH_BITS = 64
BATCH = 256

# The keys of a modality's `fingerprints` output (see ModalityHooks.fingerprints).
EXACT, PREVIEW, NEAR_TEXT, NEAR_HASH = "exact", "preview", "near_text", "near_hash"
NEAR_METHODS = {
    NEAR_TEXT: "Jaccard similarity of word 3-gram sets",
    NEAR_HASH: "fraction of agreeing bits of 64-bit difference hashes",
}


@dataclass
class SplitPrints:
    """One split's fingerprints, row by row."""

    exact: list[str | None]
    previews: list[str]
    near: list[Any] | None = None  # normalised texts or hex hashes; None: no near-duplicate check
    near_kind: str | None = None  # NEAR_TEXT | NEAR_HASH


@dataclass
class PairLeakage:
    """What one pair of splits shares: ``leaked`` maps rows of the second split to a row of the first with the
    same exact fingerprint; ``near`` lists (row, other row, similarity) of rows that are near but not exact."""

    first: str
    second: str
    rows: int  # rows of the second split
    leaked: dict[int, int] = field(default_factory=dict)
    near: list[tuple[int, int, float]] | None = None  # None: not checked
    near_compared: str = ""
    near_sampled: bool = False

    @property
    def name(self) -> str:
        return f"{self.first}-{self.second}"

    def to_dict(self, first: SplitPrints, second: SplitPrints, removed: bool) -> dict[str, Any]:
        """The pair's entry in data_report.json: counts and the first EXAMPLES rows (indices into the splits as
        used, after cleaning and subsampling, with their previews)."""

        def example(row: int, other: int) -> dict[str, Any]:
            return {
                f"{self.second}_row": row,
                f"{self.first}_row": other,
                "input": second.previews[row],
                f"{self.first}_input": first.previews[other],
            }

        out: dict[str, Any] = {
            "rows": self.rows,
            "leaked": len(self.leaked),
            "removed": removed and bool(self.leaked),
            "examples": [example(row, other) for row, other in list(self.leaked.items())[:EXAMPLES]],
        }
        if self.near is not None:
            out["near_duplicates"] = len(self.near)
            out["near_compared"] = self.near_compared
            out["near_sampled"] = self.near_sampled
            out["near_examples"] = [
                {**example(row, other), "similarity": round(sim, 3)} for row, other, sim in self.near[:EXAMPLES]
            ]
        return out


def preview(text: str, length: int = 60) -> str:
    """A one-line excerpt of a text for reports."""
    text = " ".join(str(text).split())
    return text if len(text) <= length else text[: length - 3] + "..."


def fingerprint_split(dataset: Any, hook: Callable[[dict[str, list]], dict[str, list]]) -> SplitPrints:
    """Run the modality's ``hook`` over ``dataset`` in batches (each input read or decoded once)."""
    exact: list[str | None] = []
    previews: list[str] = []
    near: list[Any] = []
    kind = None
    for batch in dataset.iter(batch_size=BATCH):
        out = hook(batch)
        exact.extend(out[EXACT])
        previews.extend(out[PREVIEW])
        for key in (NEAR_TEXT, NEAR_HASH):
            if key in out:
                kind = key
                near.extend(out[key])
    return SplitPrints(exact, previews, near if kind else None, kind)


def compare_splits(prints: dict[str, SplitPrints], threshold: float | None, seed: int) -> dict[str, PairLeakage]:
    """Every pair of `PAIRS` present in ``prints``: exact leaks, and near-duplicates at ``threshold`` (None: off)."""
    results = {}
    for first, second in PAIRS:
        if first not in prints or second not in prints:
            continue
        a, b = prints[first], prints[second]
        index: dict[str, int] = {}
        for row, value in enumerate(a.exact):
            if value is not None:
                index.setdefault(value, row)
        pair = PairLeakage(first, second, rows=len(b.exact))
        pair.leaked = {row: index[v] for row, v in enumerate(b.exact) if v is not None and v in index}
        if threshold is not None and a.near_kind is not None and a.near_kind == b.near_kind:
            near_duplicates(pair, a, b, threshold, seed)
        results[pair.name] = pair
    return results


def near_duplicates(pair: PairLeakage, a: SplitPrints, b: SplitPrints, threshold: float, seed: int) -> None:
    """Fill ``pair.near``: rows of ``b`` (not exact leaks; at most NEAR_QUERY_ROWS) whose most similar row of ``a``
    (at most NEAR_REFERENCE_ROWS) is at least ``threshold`` similar."""
    rng = np.random.default_rng(seed)
    queries = [i for i in range(len(b.near)) if i not in pair.leaked and b.near[i] is not None]
    references = [i for i in range(len(a.near)) if a.near[i] is not None]
    described = []
    for rows, limit, split in ((queries, NEAR_QUERY_ROWS, pair.second), (references, NEAR_REFERENCE_ROWS, pair.first)):
        if len(rows) > limit:
            pair.near_sampled = True
            described.append(f"a seeded sample of {limit} of {len(rows)} {split} rows")
            rows[:] = sorted(rng.choice(rows, limit, replace=False).tolist())
        else:
            described.append(f"{len(rows)} {split} rows")
    pair.near_compared = " against ".join(described)
    find = text_near_pairs if a.near_kind == NEAR_TEXT else hash_near_pairs
    found = find([b.near[i] for i in queries], [a.near[i] for i in references], threshold)
    pair.near = [(queries[q], references[r], sim) for q, r, sim in found]


# ----------------------------------------------------------------------------- text: Jaccard of word 3-grams


def shingles(text: str) -> frozenset[str]:
    """Word 3-grams of a text (case-folded, punctuation ignored); a shorter text is one shingle of all its words."""
    words = re.findall(r"\w+", text.casefold())
    if len(words) < SHINGLE:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + SHINGLE]) for i in range(len(words) - SHINGLE + 1))


def _prefix_length(size: int, threshold: float) -> int:
    """Tokens of a set (in the global order) that any set at least ``threshold`` Jaccard-similar must share one of."""
    return size - math.ceil(threshold * size - 1e-9) + 1


def text_near_pairs(queries: list[str], references: list[str], threshold: float) -> list[tuple[int, int, float]]:
    """(query, best reference, Jaccard) for each query text whose most similar reference text has a Jaccard
    similarity of word 3-gram sets of at least ``threshold``. Exact (no hashing approximation): prefix filtering
    over 3-grams ordered rarest first, then a length filter and the exact Jaccard of the candidates."""
    sets = [shingles(t) for t in queries]
    frequency = Counter(s for q in sets for s in q)

    def order(tokens: frozenset[str]) -> list[str]:
        return sorted(tokens, key=lambda s: (frequency.get(s, 0), s))

    index: dict[str, list[int]] = defaultdict(list)
    for q, tokens in enumerate(sets):
        for token in order(tokens)[: _prefix_length(len(tokens), threshold)] if tokens else []:
            index[token].append(q)
    best: dict[int, tuple[float, int]] = {}
    for r, text in enumerate(references):
        tokens = shingles(text)
        if not tokens:
            continue
        candidates = {q for t in order(tokens)[: _prefix_length(len(tokens), threshold)] for q in index.get(t, ())}
        for q in candidates:
            size = len(sets[q])
            if not threshold * size <= len(tokens) <= size / threshold:
                continue
            shared = len(sets[q] & tokens)
            similarity = shared / (size + len(tokens) - shared)
            if similarity >= threshold and similarity > best.get(q, (-1.0, 0))[0]:
                best[q] = (similarity, r)
    return [(q, r, sim) for q, (sim, r) in sorted(best.items())]


# ----------------------------------------------------------------------------- images: difference hashes


def difference_hash(gray: Any) -> str:
    """The 64-bit difference hash (dHash) of a grayscale PIL image, as 16 hex digits: 9x8 pixels, one bit per
    pair of horizontal neighbours (is the left one brighter?). Robust to resizing, re-encoding and small edits."""
    from PIL import Image

    pixels = np.asarray(gray.resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    bits = (pixels[:, :-1] > pixels[:, 1:]).ravel()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def _popcount(values: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(values)
    return np.unpackbits(values.view(np.uint8).reshape(*values.shape, 8), axis=-1).sum(-1)


def hash_near_pairs(queries: list[str], references: list[str], threshold: float) -> list[tuple[int, int, float]]:
    """(query, best reference, agreeing-bit fraction) for each query hash within ``(1 - threshold) * 64`` differing
    bits of its nearest reference hash."""
    if not queries or not references:
        return []
    refs = np.asarray([int(h, 16) for h in references], dtype=np.uint64)
    limit = math.floor((1.0 - threshold) * HASH_BITS + 1e-9)
    found = []
    chunk = max(1, 4_000_000 // len(refs))  # queries per block: about 32 MB of XORs
    qs = np.asarray([int(h, 16) for h in queries], dtype=np.uint64)
    for start in range(0, len(qs), chunk):
        distances = _popcount(qs[start : start + chunk, None] ^ refs[None, :])
        nearest = distances.argmin(1)
        for offset, (r, d) in enumerate(zip(nearest, distances[np.arange(len(nearest)), nearest])):
            if d <= limit:
                found.append((start + offset, int(r), 1.0 - int(d) / HASH_BITS))
    return found


# ----------------------------------------------------------------------------- reporting


def split_notes(pairs: dict[str, PairLeakage]) -> dict[str, dict[str, int]]:
    """Per evaluation split, the counts for its SplitReport notes (only those above zero)."""
    notes: dict[str, dict[str, int]] = defaultdict(dict)
    for pair in pairs.values():
        if pair.leaked:
            notes[pair.second][f"leaked_from_{pair.first}"] = len(pair.leaked)
        if pair.near:
            notes[pair.second][f"near_duplicates_of_{pair.first}"] = len(pair.near)
    return dict(notes)


def summary_lines(leakage: dict[str, Any]) -> list[str]:
    """The console / model card lines of the data report's ``leakage`` section."""
    if not leakage:
        return []
    if "skipped" in leakage:
        return [f"  leakage: not checked ({leakage['skipped']})"]
    pairs = leakage["pairs"]
    near_on = leakage.get("near_duplicate_threshold") is not None and leakage.get("near_duplicate_method")
    sampled = [f"{name}: {p['near_compared']}" for name, p in pairs.items() if p.get("near_sampled")]
    if not any(p["leaked"] or p.get("near_duplicates") for p in pairs.values()):
        near = f"; no near-duplicates at similarity >= {leakage['near_duplicate_threshold']}" if near_on else ""
        near += f" (sampled: {'; '.join(sampled)})" if sampled else ""
        return [f"  leakage: none between {', '.join(pairs)} (compared: {leakage['method']}){near}"]
    lines = [f"  leakage (compared: {leakage['method']}):"]
    for name, p in pairs.items():
        first, second = name.split("-")
        if p["leaked"]:
            action = "removed: data.drop_leaked" if p["removed"] else "kept; data.drop_leaked: true removes them"
            text = f"{p['leaked']} of {p['rows']} {second} rows are also in {first} ({action})"
        else:
            text = f"no {second} row is also in {first}"
        if p.get("near_duplicates"):
            text += (
                f"; {p['near_duplicates']} more nearly duplicate a {first} row ({leakage['near_duplicate_method']} "
                f">= {leakage['near_duplicate_threshold']}; kept)"
            )
        if p.get("near_sampled"):
            text += f"; near-duplicates sampled: {p['near_compared']}"
        lines.append(f"    {name}: {text}")
        for e in [] if p["removed"] else p["examples"][:3]:  # removed rows are listed under their split
            lines.append(
                f"      - {second} row {e[f'{second}_row']} = {first} row {e[f'{first}_row']}: {e['input']}"
                + (f" = {e[f'{first}_input']}" if e[f"{first}_input"] != e["input"] else "")
            )
        for e in p.get("near_examples", [])[:3]:
            lines.append(
                f"      ~ {second} row {e[f'{second}_row']} ~ {first} row {e[f'{first}_row']} "
                f"({e['similarity']}): {e['input']} ~ {e[f'{first}_input']}"
            )
    return lines


def _rows(n: int, split: str) -> str:
    return f"{n} {split} row{'' if n == 1 else 's'}"


def card_lines(leakage: dict[str, Any]) -> list[str]:
    """Model card lines (Data section) about leakage between the splits."""
    if not leakage or "skipped" in leakage:
        return []
    pairs = {tuple(name.split("-")): p for name, p in leakage["pairs"].items()}  # (first, second) -> entry
    kept = [(a, b, p) for (a, b), p in pairs.items() if p["leaked"] and not p["removed"]]
    removed = [(a, b, p) for (a, b), p in pairs.items() if p["leaked"] and p["removed"]]
    near = [(a, b, p) for (a, b), p in pairs.items() if p.get("near_duplicates")]
    lines = []
    if kept:
        found = "; ".join(f"{p['leaked']} of {_rows(p['rows'], b)} also in {a}" for a, b, p in kept)
        lines.append(
            f"- **split leakage**: {found} (exact duplicates after normalisation: {leakage['method']}). Metrics on "
            "those splits overstate performance on new data; `data.drop_leaked: true` removes these rows "
            "(details in `data_report.json`)."
        )
    if removed:
        gone = "; ".join(f"{_rows(p['leaked'], b)} also in {a}" for a, b, p in removed)
        lines.append(f"- split leakage removed before evaluation (`data.drop_leaked`): {gone}.")
    if near:
        found = "; ".join(f"{_rows(p['near_duplicates'], b)} nearly duplicate {a} rows" for a, b, p in near)
        lines.append(
            f"- near-duplicates across splits (kept): {found} ({leakage['near_duplicate_method']} >= "
            f"{leakage['near_duplicate_threshold']})."
        )
    if not lines:
        lines.append(f"- split leakage: none found between {', '.join(leakage['pairs'])} ({leakage['method']}).")
    return lines


def check_splits(recipe: Any, splits: dict[str, Any]) -> dict[str, Any]:
    """Rows of validation/test whose input is also in train (test: or in validation), by the modality's
    fingerprints: counted per pair of splits with examples in the data report, noted in each
    split's report (``leaked_from_train``), warned about; removed from the later split of the pair (counted as
    `leaked` drops) with data.drop_leaked. Near-duplicates (data.near_duplicate_threshold) are only reported."""
    from hfft import cleaning  # cleaning imports this module (its summary prints the leakage lines)

    if len(splits) < 2:
        return splits
    method = recipe.fingerprint_method()
    if method is None:
        recipe.report.leakage = {"skipped": f"no input fingerprints for the {recipe.modality} modality"}
        return splits
    dc = recipe.config.data
    prints = {role: fingerprint_split(ds, recipe.fingerprints) for role, ds in splits.items()}
    pairs = compare_splits(prints, dc.near_duplicate_threshold, recipe.config.seed)
    kind = next((p.near_kind for p in prints.values() if p.near_kind), None)
    recipe.report.leakage = {
        "method": method,
        "near_duplicate_threshold": dc.near_duplicate_threshold if kind else None,
        "near_duplicate_method": NEAR_METHODS.get(kind, f"not checked for {recipe.modality} inputs"),
        "pairs": {
            name: pair.to_dict(prints[pair.first], prints[pair.second], dc.drop_leaked) for name, pair in pairs.items()
        },
    }
    for role, notes in split_notes(pairs).items():
        recipe.report.splits[role].notes.update(notes)
    for pair in pairs.values():
        if pair.leaked:
            logger.warning(
                "%s: %d of %d rows are also in %s (exact duplicates after normalisation: %s)%s",
                pair.second, len(pair.leaked), pair.rows, pair.first, method,
                "; removed (data.drop_leaked)" if dc.drop_leaked else "; data.drop_leaked: true removes them",
            )  # fmt: skip
    if not dc.drop_leaked:
        return splits
    for role in [r for r in ("validation", "test") if any(p.second == r and p.leaked for p in pairs.values())]:
        problems: list[str | None] = [None] * len(splits[role])
        for pair in (p for p in pairs.values() if p.second == role):
            for row, other in pair.leaked.items():
                problems[row] = problems[row] or (f"leaked: {prints[role].previews[row]} (= {pair.first} row {other})")
        where = cleaning.source_name(dc, role)
        splits[role] = cleaning.drop_rows(splits[role], problems, role, recipe.report, where)
    return splits
