"""Row cleaning with an account of every dropped row (nothing is dropped silently)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hfft.errors import DataError
from hfft.leakage import summary_lines

logger = logging.getLogger("hfft")
PROBLEM = "__hfft_problem"
MAX_LISTED = 50
# Train rows carry their *source row* through cleaning: the 0-based position of the row among the rows of
# data.train as loaded (a CSV's header is not a row: source row r is line r + 2), before any row is dropped.
# `hfft audit` names rows by it and data.exclude takes it.
SOURCE_ROW = "__hfft_source_row"


@dataclass
class SplitReport:
    """What happened to one split: rows in/out, drops by reason, named bad files."""

    rows_in: int = 0
    rows_out: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)  # e.g. names of corrupt files (first MAX_LISTED)
    notes: dict[str, Any] = field(default_factory=dict)  # e.g. {"truncated": 12}


@dataclass
class DataReport:
    """Per-split cleaning report, saved as `data_report.json` and printed; ``leakage``: rows shared between the
    splits (hfft/leakage.py), saved under the ``leakage`` key."""

    splits: dict[str, SplitReport] = field(default_factory=dict)
    leakage: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: vars(report) for name, report in self.splits.items()}
        if self.leakage:
            out["leakage"] = self.leakage
        return out

    def summary(self) -> str:
        lines = []
        for name, r in self.splits.items():
            drops = ", ".join(f"{k}: {v}" for k, v in sorted(r.dropped.items())) or "none"
            line = f"  {name}: {r.rows_in} rows in, {r.rows_out} kept; dropped: {drops}"
            if r.notes:
                line += "; " + ", ".join(f"{k}: {v}" for k, v in r.notes.items())
            lines.append(line)
            lines.extend(f"    - {e}" for e in r.examples[:10])
            if len(r.examples) > 10:
                lines.append(f"    ... and {len(r.examples) - 10} more (see data_report.json)")
        lines.extend(summary_lines(self.leakage))
        return "\n".join(lines)


def source_name(data_config: Any, split: str) -> str:
    """How messages name a split: its config key and source, e.g. "data.train ('train.csv')"."""
    spec = getattr(data_config, split, None) if split in ("train", "validation", "test") else None
    if spec is not None:
        return f"data.{split} ('{spec}')"
    if split in ("validation", "test"):
        return f"the {split} split of data.train ('{data_config.train}')"
    return split


BatchCheck = Callable[[dict[str, list]], list[str | None]]


def clean_split(
    dataset: Any,
    split: str,
    report: DataReport,
    check_batch: BatchCheck,
    dedup_columns: list[str] | None,
    max_bad_fraction: float,
    where: str | None = None,
) -> Any:
    """Drop rows ``check_batch`` flags (``"reason"`` or ``"reason: detail"``) and duplicates; count all.

    ``check_batch`` may also rewrite the batch in place (e.g. strip whitespace).
    Reasons starting with ``corrupt`` count towards ``max_bad_fraction``. ``where`` names the split
    in error messages (default: ``split``).
    """
    where = where or split
    entry = report.splits.setdefault(split, SplitReport())
    entry.rows_in = len(dataset)

    def mark(batch: dict[str, list]) -> dict[str, list]:
        batch[PROBLEM] = [p or "" for p in check_batch(batch)]
        return batch

    marked = dataset.map(mark, batched=True, desc=f"checking {split} rows")
    problems = marked[PROBLEM]
    if dedup_columns:
        problems = _mark_duplicates(marked, problems, dedup_columns)
    reasons = Counter(p.split(":", 1)[0] for p in problems if p)
    corrupt = sum(n for reason, n in reasons.items() if reason.startswith("corrupt"))
    if entry.rows_in and corrupt / entry.rows_in > max_bad_fraction:
        examples = [p.split(":", 1)[1].strip() for p in problems if ":" in p]
        raise DataError(
            f"{where}: {corrupt} of {entry.rows_in} rows are corrupt or unreadable "
            f"({corrupt / entry.rows_in:.1%} > data.max_bad_fraction={max_bad_fraction}); first: "
            f"{', '.join(examples[:5])}."
        )
    if not entry.rows_in:
        raise DataError(f"{where}: no rows left after cleaning (0 in; dropped ).")
    entry.rows_out, entry.dropped, entry.examples = entry.rows_in, {}, []
    return drop_rows(marked, problems, split, report, where).remove_columns(PROBLEM)


def drop_rows(
    dataset: Any, problems: list[str | None], split: str, report: DataReport, where: str | None = None
) -> Any:
    """Drop the rows with a problem (``"reason"`` or ``"reason: detail"``), counting each reason and naming the
    details in the split's report; used by cleaning and for rows found unusable later (e.g. a transcript too
    long for the decoder)."""
    if not any(problems):
        return dataset
    entry = report.splits.setdefault(split, SplitReport())
    reasons = Counter(p.split(":", 1)[0] for p in problems if p)
    for reason, n in reasons.items():
        entry.dropped[reason] = entry.dropped.get(reason, 0) + n
    room = max(MAX_LISTED - len(entry.examples), 0)
    entry.examples.extend([p.split(":", 1)[1].strip() for p in problems if p and ":" in p][:room])
    keep = [i for i, p in enumerate(problems) if not p]
    dropped = ", ".join(f"{k}: {v}" for k, v in reasons.items())
    logger.warning("%s: dropped %d of %d rows (%s)", split, len(problems) - len(keep), len(problems), dropped)
    entry.rows_out = len(keep)
    if not keep:
        raise DataError(f"{where or split}: no rows left after cleaning ({len(problems)} in; dropped {dropped}).")
    return dataset.select(keep)


def subsample(dataset: Any, limit: int | None, seed: int, entry: SplitReport) -> Any:
    """A seeded random ``limit`` rows (data.max_*_samples); the others are counted as dropped: subsampled."""
    if limit is None or len(dataset) <= limit:
        return dataset
    entry.dropped["subsampled"] = entry.dropped.get("subsampled", 0) + len(dataset) - limit
    entry.notes["subsampled_to"] = limit
    entry.rows_out = limit
    return dataset.shuffle(seed=seed).select(range(limit))


def _mark_duplicates(dataset: Any, problems: list[str], columns: list[str]) -> list[str]:
    seen: set = set()
    values = list(zip(*(dataset[c] for c in columns)))
    out = list(problems)
    for i, key in enumerate(values):
        if out[i]:
            continue
        key = tuple(repr(v) for v in key)
        if key in seen:
            out[i] = "duplicate"
        seen.add(key)
    return out
