"""Classification of a whole input: one class (softmax, `labels.problem: single_label`) or any set of
classes (sigmoid, `multi_label`), for every modality. Owns the label column, the head, the loss (label
smoothing, class weights), metrics, the trivial baseline, thresholds and what `predict` returns."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hfft.config import RecipeConfig, option
from hfft.errors import ConfigError, DataError
from hfft.hooks import find_column
from hfft.labels import (
    LabelSpace,
    canonical_spellings,
    encode_multilabel,
    label_key,
    list_feature_inner,
    multilabel_space,
    rename_labels,
    spelling_mapping,
    string_label_counts,
)
from hfft.recipe import Recipe

logger = logging.getLogger("hfft")
LABEL_CANDIDATES = ("label", "labels", "fine_label", "category", "class", "target", "intent", "sentiment")


@dataclass
class ClassificationLabels:
    """What the labels are and how predictions become labels."""

    problem: Literal["single_label", "multi_label"] = option(
        "single_label",
        "`single_label`: one class per row (softmax, cross-entropy). `multi_label`: a set of classes per row "
        "(a list of names or ids, or a delimited string; sigmoid, binary cross-entropy, F1/mAP metrics).",
    )
    delimiter: str | None = option(
        None, "multi_label: the character between labels in string label columns, e.g. ';' for 'news;sport'."
    )
    allow_empty: bool = option(
        True, "multi_label: keep rows with an empty label set as all-negative examples (counted); false: an error."
    )
    threshold: float = option(0.5, "multi_label: a label is predicted when its sigmoid score is at least this.")
    tune_thresholds: bool = option(
        False,
        "multi_label: after training, choose each class's threshold to maximise its F1 on the validation split; "
        "saved with the model and used by predict, evaluate and the test metrics.",
    )


class Classification(Recipe):
    """Classification (single- or multi-label)."""

    Labels = ClassificationLabels
    normalizes_labels = True
    default_models = {
        "text": "distilbert/distilbert-base-uncased",
        "image": "google/vit-base-patch16-224-in21k",
        "audio": "facebook/wav2vec2-base",
    }
    model_classes = {
        "text": "AutoModelForSequenceClassification",
        "image": "AutoModelForImageClassification",
        "audio": "AutoModelForAudioClassification",
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.labels: LabelSpace | None = None
        self.thresholds: np.ndarray | None = None  # per class (multi-label, tuned on validation)
        self.prevalence: np.ndarray | None = None  # per class in train (multi-label): the head's initial biases
        self._single_label_metrics: Any = None

    @classmethod
    def check_config(cls, config: RecipeConfig) -> None:
        super().check_config(config)
        labels, weights = config.labels, config.regularization.class_weights
        if not 0.0 < labels.threshold < 1.0:
            raise ConfigError(f"'labels.threshold' must be in (0, 1), got {labels.threshold}.")
        if labels.problem == "single_label":
            for key, value in (("delimiter", labels.delimiter), ("tune_thresholds", labels.tune_thresholds or None)):
                if value is not None:
                    raise ConfigError(f"'labels.{key}' applies to labels.problem: multi_label only.")
        if isinstance(weights, str) and weights not in ("none", "balanced"):
            raise ConfigError(
                f"'regularization.class_weights' must be none, balanced or {{name: weight}}, got {weights!r}."
            )
        if isinstance(weights, dict) and any(not isinstance(w, (int, float)) or w <= 0 for w in weights.values()):
            raise ConfigError(f"'regularization.class_weights' values must be positive numbers, got {weights}.")

    @property
    def multi_label(self) -> bool:
        return self.config.labels.problem == "multi_label"

    @property
    def primary_metric(self) -> str:
        return "map" if self.multi_label else "accuracy"

    @property
    def greater_is_better(self) -> bool:
        return True

    @property
    def robustness_metrics(self) -> tuple[str, ...]:
        return ("map", "f1_micro") if self.multi_label else ("accuracy",)

    @property
    def stratify_column(self) -> str | None:
        return None if self.multi_label else "labels"

    # ------------------------------------------------------------------ targets

    def target_columns(self, dataset: Any, where: str) -> dict[str, str]:
        return {
            "label": find_column(dataset, self.config.data.label_column, LABEL_CANDIDATES, "data.label_column", where)
        }

    def check_targets(self, batch: dict[str, list]) -> list[str | None]:
        return ["missing_label" if value is None else None for value in batch[self.columns["label"]]]

    def encode_targets(self, splits: dict[str, Any], where: dict[str, str]) -> dict[str, Any]:
        """The label space is learned from train (a reloaded run keeps its own); every split is encoded on it."""
        column, labels = self.columns["label"], self.config.labels
        splits = self.check_label_spellings(splits, where)
        learn = self.labels is None
        if learn:
            self.labels = self.label_space(splits["train"], column, where["train"])
            self.check_class_weight_names()
        if self.multi_label:
            encode = lambda ds, role: encode_multilabel(  # noqa: E731
                ds, self.labels, column, where[role], labels.delimiter, labels.allow_empty
            )
        else:
            encode = lambda ds, role: self.labels.encode_column(ds, column, where[role])  # noqa: E731
        encoded = {role: encode(ds, role) for role, ds in splits.items()}
        if learn and "train" in encoded and self.multi_label:
            self.prevalence = self.class_counts(encoded["train"]) / max(len(encoded["train"]), 1)
        return encoded

    def check_label_spellings(self, splits: dict[str, Any], where: dict[str, str]) -> dict[str, Any]:
        """String labels that differ only by case, surrounding whitespace or Unicode form (NFKC) from a more
        frequent training spelling (a reloaded run: from its own label names): one warning with the mapping, and
        ``label_variants`` in each split's report; with data.normalize_labels they are merged (``labels_merged``).
        ClassLabel and integer labels are left as they are; multi-label lists and delimited strings are treated
        label by label."""
        column, delimiter = self.columns["label"], self.config.labels.delimiter
        counts = {role: string_label_counts(ds, column, self.multi_label, delimiter) for role, ds in splits.items()}
        if self.labels is not None:
            names = [v for v in self.labels.raw_values if isinstance(v, str)]
            keys = Counter(label_key(v) for v in names)
            canonical = {label_key(v): v for v in names if keys[label_key(v)] == 1}
        elif counts.get("train") is not None:
            canonical = canonical_spellings(counts["train"])
        else:
            return splits
        mappings = {role: spelling_mapping(c, canonical) for role, c in counts.items() if c is not None}
        if not any(mappings.values()):
            return splits
        merge, train = self.config.data.normalize_labels, counts.get("train")
        found = []
        for role, mapping in mappings.items():
            if not mapping:
                continue
            targets: dict[str, list[str]] = {}
            for spelling, target in mapping.items():
                targets.setdefault(target, []).append(spelling)
            found.append(
                f"{where[role]}: "
                + "; ".join(
                    ", ".join(f"{s!r} ({counts[role][s]} rows)" for s in spellings)
                    + f" -> {target!r}"
                    + (f" ({train[target]} training rows)" if train is not None else "")
                    for target, spellings in targets.items()
                )
            )
            note = {f"{s!r} -> {t!r}": counts[role][s] for s, t in mapping.items()}
            self.report.splits[role].notes["labels_merged" if merge else "label_variants"] = note
        logger.warning(
            "labels that differ only by case, surrounding whitespace or Unicode form (NFKC): %s. %s",
            "; ".join(found),
            "Merged (data.normalize_labels)." if merge else "Set data.normalize_labels: true to merge them.",
        )
        if not merge:
            return splits
        return {
            role: rename_labels(ds, column, mappings[role], self.multi_label, delimiter) if mappings.get(role) else ds
            for role, ds in splits.items()
        }

    def load_splits(self) -> dict[str, Any]:
        """The splits, then a warning about classes with fewer than data.min_class_rows rows in the training split
        as used (after the validation split and subsampling): ``rare_classes`` in its report."""
        splits = super().load_splits()
        limit = self.config.data.min_class_rows
        counts = dict(zip(self.labels.names, self.class_counts(splits["train"]).tolist()))
        rare = {name: n for name, n in counts.items() if n < limit}
        if rare:
            self.report.splits["train"].notes["rare_classes"] = rare
            logger.warning(
                "train: %d class(es) have fewer than data.min_class_rows=%d training rows: %s; their metrics are "
                "unreliable and the model may rarely predict them (more data, or merge or drop those classes)",
                len(rare),
                limit,
                ", ".join(f"{name!r} ({n})" for name, n in sorted(rare.items(), key=lambda item: item[1])),
            )
        return splits

    def label_space(self, train: Any, column: str, where: str) -> LabelSpace:
        if self.multi_label:
            return multilabel_space(train, column, where, self.config.labels.delimiter)
        if list_feature_inner(train.features[column]) is not None:
            raise DataError(
                f"{where}: label column '{column}' holds lists of labels; set labels.problem: multi_label to "
                "train one yes/no output per class."
            )
        return LabelSpace.from_dataset(train, column, where)

    def check_class_weight_names(self) -> None:
        weights = self.config.regularization.class_weights
        unknown = sorted(set(weights) - set(self.labels.names)) if isinstance(weights, dict) else []
        if unknown:
            raise ConfigError(
                f"'regularization.class_weights': {unknown} are not labels of this data; labels: "
                f"{', '.join(self.labels.names)}."
            )

    def label_sets(self, dataset: Any) -> np.ndarray:
        """Multi-label: the encoded `labels` column as an [rows, classes] 0/1 array."""
        return np.asarray(dataset["labels"], dtype=np.float32).reshape(-1, len(self.labels))

    def class_counts(self, dataset: Any) -> np.ndarray:
        """Rows per class (multi-label: rows where the class is present)."""
        if self.multi_label:
            return self.label_sets(dataset).sum(0).astype(int)
        return np.bincount(np.asarray(dataset["labels"], dtype=int), minlength=len(self.labels))

    def target_notes(self, dataset: Any) -> dict[str, Any]:
        notes: dict[str, Any] = {"class_counts": dict(zip(self.labels.names, self.class_counts(dataset).tolist()))}
        if self.multi_label:
            per_row = self.label_sets(dataset).sum(1)
            notes["labels_per_row"] = round(float(per_row.mean()), 3) if len(per_row) else 0.0
            notes["rows_without_labels"] = int((per_row == 0).sum())
        return notes

    # ------------------------------------------------------------------ head and loss

    def configure_head(self, model_config: Any) -> Any:
        model_config.num_labels = len(self.labels)
        model_config.id2label = self.labels.id2label
        model_config.label2id = self.labels.label2id
        model_config.problem_type = "multi_label_classification" if self.multi_label else "single_label_classification"
        return model_config

    def init_head(self, model: Any) -> None:
        """Multi-label: the output biases start at each class's log-odds in train, so training starts from
        the prior instead of spending its first steps learning it (as in RetinaNet's focal-loss init)."""
        import torch

        from hfft.modeling import head_modules

        prevalence = self.prevalence
        if not self.multi_label or prevalence is None:
            return
        heads = [getattr(model, name) for name in head_modules(model)]
        outputs = [m for h in heads for m in h.modules() if isinstance(m, torch.nn.Linear)]
        outputs = [m for m in outputs if m.out_features == len(self.labels) and m.bias is not None]
        if outputs:
            p = np.clip(prevalence, 1e-3, 1 - 1e-3)
            with torch.no_grad():
                outputs[-1].bias.copy_(torch.as_tensor(np.log(p / (1 - p)), dtype=outputs[-1].bias.dtype))

    def collate_targets(self, rows: list[dict[str, Any]]) -> Any:
        import torch

        if self.multi_label:
            return torch.tensor([r["labels"] for r in rows], dtype=torch.float32)
        return torch.tensor([int(r["labels"]) for r in rows], dtype=torch.long)

    def soft_targets(self, labels: Any) -> Any:
        """Float target rows for mixing (one-hot class ids, multi-hot sets unchanged)."""
        import torch

        return labels.float() if self.multi_label else torch.nn.functional.one_hot(labels, len(self.labels)).float()

    def class_weights(self, train: Any) -> np.ndarray | None:
        """Per-class loss weights (single-label) or positive weights (multi-label), from train counts."""
        setting = self.config.regularization.class_weights
        if setting == "none":
            return None
        if isinstance(setting, dict):
            return np.asarray([float(setting.get(name, 1.0)) for name in self.labels.names], dtype=np.float32)
        counts, rows = self.class_counts(train), len(train)
        if self.multi_label:  # negatives / positives per class: as many positive as negative loss mass
            return np.where(counts > 0, (rows - counts) / np.maximum(counts, 1), 1.0).astype(np.float32)
        return (rows / (len(counts) * np.maximum(counts, 1))).astype(np.float32)  # sklearn's "balanced"

    def loss_function(self, train: Any) -> Any:
        from hfft.losses import MultiLabelLoss, SoftTargetLoss

        smoothing, weights = self.config.regularization.label_smoothing, self.class_weights(train)
        if weights is not None:
            logger.info("class weights%s: %s", " (pos_weight)" if self.multi_label else "",
                        dict(zip(self.labels.names, np.round(weights, 3).tolist())))  # fmt: skip
        if self.multi_label:
            return MultiLabelLoss(smoothing, pos_weight=weights)
        if weights is None and not self.mixes_targets:
            return None  # the model's cross-entropy, with Trainer's label smoothing
        return SoftTargetLoss(len(self.labels), smoothing, class_weights=weights)

    def sample_weights(self, train: Any) -> list[float] | None:
        """Balanced sampling: each row drawn with weight 1 / (rows of its class); multi-label: the mean over
        its classes (rows without labels: 1 / their count)."""
        if not self.config.regularization.balanced_sampler:
            return None
        inverse = 1.0 / np.maximum(self.class_counts(train), 1)
        if not self.multi_label:
            return inverse[np.asarray(train["labels"], dtype=int)].tolist()
        sets = self.label_sets(train)
        per_row = sets.sum(1)
        empty = max(int((per_row == 0).sum()), 1)
        return np.where(per_row > 0, (sets @ inverse) / np.maximum(per_row, 1), 1.0 / empty).tolist()

    # ------------------------------------------------------------------ metrics

    def preprocess_logits(self, logits: Any, labels: Any) -> Any:
        """Keep class ids (single-label) or sigmoid scores (multi-label): evaluation memory stays small."""
        from hfft.metrics import argmax_logits

        if not self.multi_label:
            return argmax_logits(logits, labels)
        return (logits[0] if isinstance(logits, tuple) else logits).float().sigmoid()

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        from hfft.metrics_multilabel import multilabel_metrics

        predictions = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        if self.multi_label:
            return multilabel_metrics(
                np.asarray(predictions), np.asarray(eval_pred.label_ids), self.decision_thresholds
            )
        if self._single_label_metrics is None:
            from hfft.metrics import classification_metrics

            self._single_label_metrics = classification_metrics(len(self.labels))
        return self._single_label_metrics(eval_pred)

    @property
    def decision_thresholds(self) -> float | np.ndarray:
        return self.thresholds if self.thresholds is not None else self.config.labels.threshold

    def after_validation(self, trainer: Any) -> dict[str, float]:
        """Multi-label with `tune_thresholds`: per-class thresholds from the validation scores; the tuned
        validation metrics (optimistic: chosen on that split) are reported as `eval_tuned_*`."""
        from hfft.metrics_multilabel import multilabel_metrics, tune_thresholds

        if not (self.multi_label and self.config.labels.tune_thresholds):
            return {}
        output = self.predictions["eval"]
        scores, targets = np.asarray(output.predictions), np.asarray(output.label_ids)
        self.thresholds = tune_thresholds(scores, targets, default=self.config.labels.threshold)
        tuned = multilabel_metrics(scores, targets, self.thresholds)
        return {f"eval_tuned_{k}": v for k, v in tuned.items() if k != "samples"}

    def baseline_metrics(self, train: Any, split: Any) -> dict[str, float]:
        """Single-label: the majority class's accuracy. Multi-label: the best constant label set (chosen on
        train) and constant scores (mAP = mean class prevalence)."""
        from hfft.metrics_multilabel import constant_baseline

        if not self.multi_label:
            counts = Counter(split["labels"])
            return {"majority_baseline": max(counts.values()) / len(split) if len(split) else 0.0}
        baseline = constant_baseline(self.label_sets(train), self.label_sets(split))
        return {f"constant_baseline_{k}": v for k, v in baseline.items()}

    # ------------------------------------------------------------------ predictions and outputs

    def format_predictions(self, logits: Any) -> list[dict[str, Any]]:
        """Single-label: {label, score, scores}. Multi-label: {labels (every class at or above its threshold),
        scores} with independent sigmoid scores."""
        import torch

        names = self.labels.names
        if not self.multi_label:
            results = []
            for row in torch.softmax(logits.float(), dim=-1).tolist():
                best = max(range(len(row)), key=row.__getitem__)
                results.append({"label": names[best], "score": row[best], "scores": dict(zip(names, row))})
            return results
        scores = torch.sigmoid(logits.float()).numpy()
        chosen = scores >= np.broadcast_to(self.decision_thresholds, scores.shape[1:])
        return [
            {"labels": [n for n, c in zip(names, picks) if c], "scores": dict(zip(names, row.tolist()))}
            for row, picks in zip(scores, chosen)
        ]

    def class_probabilities(self, dataset: Any) -> np.ndarray:
        """[rows, classes] scores of a cleaned, label-encoded raw dataset: softmax (single-label) or independent
        sigmoids (multi-label), rows in the dataset's order (`hfft audit`)."""
        logits = np.asarray(self.predict_outputs(dataset), dtype=np.float64)
        if self.multi_label:
            return 1.0 / (1.0 + np.exp(-logits))
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def task_info(self) -> dict[str, Any]:
        return {
            "problem": self.config.labels.problem,
            "labels": self.labels.names,
            "label_values": self.labels.raw_values,
            "thresholds": None if self.thresholds is None else [round(float(t), 4) for t in self.thresholds],
        }

    def restore_task(self, info: dict[str, Any]) -> None:
        self.labels = LabelSpace(names=info["labels"], raw_values=info["label_values"])
        if info.get("thresholds") is not None:
            self.thresholds = np.asarray(info["thresholds"], dtype=np.float32)

    def write_task_outputs(self, out: Path) -> list[str]:
        """Single-label: confusion_matrix.png. Multi-label: per_class_metrics.json and per_class.png."""
        from hfft import plots

        lines = [f"- labels ({len(self.labels)}, {self.config.labels.problem}): {', '.join(self.labels.names)}"]
        if not self.multi_label:
            if "eval" in self.predictions:
                output = self.predictions["eval"]
                plots.confusion_matrix(
                    output.predictions, output.label_ids, self.labels.names, out / "confusion_matrix.png",
                    title="Validation confusion matrix",
                )  # fmt: skip
            return lines
        import json

        from hfft.metrics_multilabel import classes_without_positives, per_class_report

        reports = {}
        for split, output in self.predictions.items():
            scores, targets = np.asarray(output.predictions), np.asarray(output.label_ids)
            reports[split] = {
                "per_class": per_class_report(scores, targets, self.labels.names, self.decision_thresholds),
                "classes_without_positives": classes_without_positives(targets, self.labels.names),
            }
            if reports[split]["classes_without_positives"]:
                logger.warning(
                    "%s: no positives for %s (their AP is undefined and left out of mAP)",
                    split,
                    ", ".join(reports[split]["classes_without_positives"]),
                )
        (out / "per_class_metrics.json").write_text(json.dumps(reports, indent=2, allow_nan=False))
        split = "test" if "test" in reports else "eval"
        plots.per_class(reports[split]["per_class"], out / "per_class.png", title=f"Per-class metrics ({split})")
        thresholds = "tuned per class on validation" if self.thresholds is not None else "0.5 for every class"
        lines.append(
            f"- decision thresholds: {thresholds}; per-class precision/recall/F1/AP in `per_class_metrics.json`"
        )
        return lines
