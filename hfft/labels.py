"""Label mapping: string or integer labels, `ClassLabel` or not, to contiguous class ids (single-label) or
multi-hot rows (multi-label: lists of names or ids, or delimited strings)."""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from hfft.errors import DataError


@dataclass
class LabelSpace:
    """The class names of a task; ids are positions in ``names``."""

    names: list[str]
    raw_values: list[Any]  # raw label value for each id (str, int or ClassLabel index)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_dataset(cls, dataset: Any, column: str, where: str) -> LabelSpace:
        """Infer the classes from the training split's label column."""
        import datasets

        feature = dataset.features[column]
        if isinstance(feature, datasets.ClassLabel):
            present = set(dataset[column])
            names = list(feature.names)
            space = cls(names=names, raw_values=list(range(len(names))))
            if len(present) < 2:
                raise DataError(
                    f"{where}: label column '{column}' holds a single class "
                    f"({names[next(iter(present))] if present else 'none'}); need at least 2."
                )
            return space
        values = [v for v in dataset[column] if v is not None]
        kinds = Counter(_kind(v) for v in values)
        if len(kinds) > 1:
            examples = {k: next(v for v in values if _kind(v) == k) for k in kinds}
            raise DataError(
                f"{where}: label column '{column}' mixes label types "
                f"({', '.join(f'{k}: e.g. {examples[k]!r}' for k in kinds)}); use one type."
            )
        kind = next(iter(kinds), None)
        if kind == "float":
            raise DataError(
                f"{where}: label column '{column}' holds non-integer numbers "
                f"(e.g. {next(v for v in values)!r}); classification needs class names or integer ids."
            )
        if kind not in ("str", "int"):
            raise DataError(f"{where}: label column '{column}' holds {kind} values; expected strings or integers.")
        distinct = sorted({_normalise(v) for v in values})
        if len(distinct) < 2:
            raise DataError(
                f"{where}: label column '{column}' holds a single class "
                f"({distinct[0] if distinct else 'none'}); need at least 2."
            )
        return cls(names=[str(v) for v in distinct], raw_values=distinct)

    def encode_column(self, dataset: Any, column: str, where: str) -> Any:
        """Replace raw labels with ids (as a `ClassLabel` column named ``labels``)."""
        import datasets

        feature = dataset.features[column]
        if isinstance(feature, datasets.ClassLabel):
            if list(feature.names) != self.names:
                lookup = {name: i for i, name in enumerate(self.names)}
                unseen = sorted(set(feature.names) - set(lookup))
                self._check_unseen(dataset, column, [feature.names.index(u) for u in unseen], unseen, where)
                mapping = {i: lookup[n] for i, n in enumerate(feature.names) if n in lookup}
                dataset = dataset.cast_column(column, datasets.Value("int64"))
                dataset = dataset.map(
                    lambda b: {column: [mapping[v] for v in b[column]]}, batched=True, desc="mapping labels"
                )
        else:
            lookup = {raw: i for i, raw in enumerate(self.raw_values)}
            raw_present = {_normalise(v) for v in dataset[column] if v is not None}
            unseen = sorted((v for v in raw_present if v not in lookup), key=str)
            if unseen:
                self._check_unseen(dataset, column, unseen, [str(u) for u in unseen], where)
            dataset = dataset.map(
                lambda b: {column: [lookup[_normalise(v)] for v in b[column]]}, batched=True, desc="mapping labels"
            )
        dataset = dataset.cast_column(column, datasets.ClassLabel(names=self.names))
        if column != "labels":
            if "labels" in dataset.column_names:
                dataset = dataset.remove_columns("labels")
            dataset = dataset.rename_column(column, "labels")
        return dataset

    def _check_unseen(self, dataset: Any, column: str, raw: list[Any], shown: list[str], where: str) -> None:
        if not shown:
            return
        counts = Counter(v for v in dataset[column] if v in set(raw))
        detail = ", ".join(f"{s!r} ({counts.get(r, 0)} rows)" for r, s in zip(raw, shown))
        raise DataError(
            f"{where}: label column '{column}' has labels never seen in training: {detail}. "
            f"Training labels: {', '.join(self.names)}."
        )


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "int" if value.is_integer() else "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def _normalise(value: Any) -> Any:
    """1.0 (ints read as floats because of missing values) -> 1."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# ----------------------------------------------------------------------------- multi-label

OTHER_DELIMITERS = (";", ",", "|")


def label_list(value: Any, delimiter: str | None) -> list[Any] | None:
    """One row's label set as a list of raw labels (None: missing). Strings are split on ``delimiter``."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = value.split(delimiter) if delimiter else [value]
        return list(dict.fromkeys(p.strip() for p in parts if p.strip()))
    if isinstance(value, (list, tuple)):
        return list(dict.fromkeys(v.strip() if isinstance(v, str) else _normalise(v) for v in value))
    return [value]


def list_feature_inner(feature: Any) -> Any:
    """The element feature of a list-typed `datasets` feature, else None."""
    import datasets

    kinds = tuple(getattr(datasets, n) for n in ("Sequence", "List", "LargeList") if hasattr(datasets, n))
    return feature.feature if isinstance(feature, kinds) else None


def multilabel_space(dataset: Any, column: str, where: str, delimiter: str | None) -> LabelSpace:
    """The classes of a multi-label column (lists of names or ids, or delimited strings), from train."""
    import datasets

    feature = dataset.features[column]
    inner = list_feature_inner(feature)
    if isinstance(inner, datasets.ClassLabel):
        return LabelSpace(names=list(inner.names), raw_values=list(range(len(inner.names))))
    if inner is None and getattr(feature, "dtype", None) in ("string", "large_string") and delimiter is None:
        example = next((v for v in dataset[column] if v is not None), "")
        raise DataError(
            f"{where}: label column '{column}' holds strings (e.g. {example!r}) but labels.problem is multi_label "
            "and labels.delimiter is not set; set it to the character between labels (e.g. ';'), or give lists."
        )
    rows = [label_list(v, delimiter) for v in dataset[column]]
    values = [v for row in rows if row for v in row]
    kinds = Counter(_kind(v) for v in values)
    if len(kinds) > 1 or (kinds and next(iter(kinds)) not in ("str", "int")):
        raise DataError(
            f"{where}: label column '{column}' must hold label names or integer ids in every list; found "
            f"{', '.join(f'{k} (e.g. {next(v for v in values if _kind(v) == k)!r})' for k in kinds)}."
        )
    distinct = sorted(set(values), key=lambda v: (isinstance(v, str), v))
    if len(distinct) < 2:
        raise DataError(
            f"{where}: label column '{column}' holds {len(distinct)} distinct label(s) "
            f"({', '.join(map(str, distinct)) or 'none'}); need at least 2."
        )
    if delimiter is not None:
        check_delimiters(dataset[column], set(map(str, distinct)), delimiter, column, where)
    return LabelSpace(names=[str(v) for v in distinct], raw_values=distinct)


def check_delimiters(values: list[Any], known: set[str], delimiter: str, column: str, where: str) -> None:
    """Refuse labels that are other known labels joined by another delimiter ('news,sport' with ';')."""
    for row, value in enumerate(values):
        for label in label_list(value, delimiter) or []:
            for other in OTHER_DELIMITERS:
                parts = [p.strip() for p in str(label).split(other)]
                if other != delimiter and len(parts) > 1 and all(p in known for p in parts):
                    raise DataError(
                        f"{where}: label column '{column}', row {row} (counting from 0 after cleaning): "
                        f"{value!r} contains {other!r}, but labels.delimiter is {delimiter!r}; use one delimiter "
                        "throughout (or set labels.delimiter to the one the file uses)."
                    )


def encode_multilabel(
    dataset: Any, space: LabelSpace, column: str, where: str, delimiter: str | None, allow_empty: bool
) -> Any:
    """Replace label sets with multi-hot float32 rows (column ``labels``); unseen or (if not allowed) empty
    label sets are errors naming the rows."""
    import datasets

    inner = list_feature_inner(dataset.features[column])
    by_id = isinstance(inner, datasets.ClassLabel)
    lookup = {raw: i for i, raw in enumerate(space.raw_values)}
    if by_id and list(inner.names) != space.names:  # another split's ClassLabel order: map through names
        positions = {name: i for i, name in enumerate(space.names)}
        lookup = {i: positions.get(name, -1) for i, name in enumerate(inner.names)}
    rows = [label_list(v, delimiter) for v in dataset[column]]
    unseen = Counter(str(v) for row in rows for v in (row or []) if lookup.get(v, -1) < 0)
    if unseen:
        raise DataError(
            f"{where}: label column '{column}' has labels never seen in training: "
            f"{', '.join(f'{name!r} ({n} rows)' for name, n in unseen.most_common(10))}. "
            f"Training labels: {', '.join(space.names)}."
        )
    empty = [i for i, row in enumerate(rows) if not row]
    if empty and not allow_empty:
        raise DataError(
            f"{where}: label column '{column}' has {len(empty)} rows with no label (first rows, counting from 0 "
            f"after cleaning: {', '.join(map(str, empty[:5]))}), and labels.allow_empty is false. Give every row "
            "at least one label, or set labels.allow_empty: true to train on them as all-negative examples."
        )
    hot = np.zeros((len(rows), len(space)), dtype=np.float32)  # the label sets parsed above, multi-hot
    for i, row in enumerate(rows):
        hot[i, [lookup[v] for v in row or []]] = 1.0
    drop = [c for c in dict.fromkeys((column, "labels")) if c in dataset.column_names]
    feature = datasets.List(datasets.Value("float32"), length=len(space))
    return dataset.remove_columns(drop).add_column("labels", hot.tolist(), feature=feature)


# ----------------------------------------------------------------------------- spelling variants


def label_key(value: str) -> str:
    """What label spellings are compared by: Unicode NFKC form, surrounding whitespace stripped, case-folded."""
    return unicodedata.normalize("NFKC", value).strip().casefold()


def string_label_counts(dataset: Any, column: str, multi_label: bool, delimiter: str | None) -> Counter | None:
    """Rows per string label of a split (multi-label: rows holding each label); None when the column does not hold
    string labels (ClassLabel ids, integers: left as they are)."""
    import datasets

    feature = dataset.features[column]
    inner = list_feature_inner(feature)
    if isinstance(feature, datasets.ClassLabel) or isinstance(inner, datasets.ClassLabel):
        return None
    dtype = getattr(inner if inner is not None else feature, "dtype", None)
    if dtype not in ("string", "large_string"):
        return None
    if not multi_label:
        return Counter(v for v in dataset[column] if isinstance(v, str))
    rows = [label_list(v, delimiter) or [] for v in dataset[column]]
    return Counter(label for row in rows for label in row if isinstance(label, str))


def canonical_spellings(counts: Counter) -> dict[str, str]:
    """For each `label_key`, its most frequent spelling; ties go to a spelling that is already in NFKC form
    without surrounding whitespace, then to the first in sorted order."""
    groups: dict[str, list[str]] = {}
    for spelling in counts:
        groups.setdefault(label_key(spelling), []).append(spelling)

    def rank(spelling: str) -> tuple:
        return -counts[spelling], unicodedata.normalize("NFKC", spelling).strip() != spelling, spelling

    return {key: min(spellings, key=rank) for key, spellings in groups.items()}


def spelling_mapping(counts: Counter, canonical: dict[str, str]) -> dict[str, str]:
    """The spellings of ``counts`` that differ from their canonical spelling -> that spelling."""
    mapping = {}
    for spelling in sorted(counts, key=str):
        target = canonical.get(label_key(spelling))
        if target is not None and target != spelling:
            mapping[spelling] = target
    return mapping


def rename_labels(dataset: Any, column: str, mapping: dict[str, str], multi_label: bool, delimiter: str | None) -> Any:
    """``dataset`` with the labels of ``column`` renamed by ``mapping`` (multi-label: in every list or delimited
    string; a label that appears twice after renaming is kept once when the row is parsed)."""

    def rename(value: Any) -> Any:
        if isinstance(value, str) and not multi_label:
            return mapping.get(value, value)
        if isinstance(value, str):
            parts = value.split(delimiter) if delimiter else [value]
            return (delimiter or "").join(mapping.get(p.strip(), p) for p in parts)
        if isinstance(value, (list, tuple)):
            return [mapping.get(v.strip(), v) if isinstance(v, str) else v for v in value]
        return value

    return dataset.map(
        lambda batch: {column: [rename(v) for v in batch[column]]}, batched=True, desc="merging label spellings"
    )
