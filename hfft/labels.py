"""Label mapping: string or integer labels, `ClassLabel` or not, to contiguous class ids."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

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
