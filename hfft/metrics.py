"""Classification metrics through `evaluate`, from modules bundled with hfft (work offline)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

MODULE_DIR = Path(__file__).parent / "metric_modules"


def load_metric(name: str) -> Any:
    """Load a bundled `evaluate` metric module (accuracy, f1) without touching the Hub."""
    import evaluate

    path = MODULE_DIR / name / f"{name}.py"
    if not path.is_file():
        raise ValueError(f"No bundled metric '{name}'; available: {sorted(p.name for p in MODULE_DIR.iterdir())}")
    return evaluate.load(str(path))


def argmax_logits(logits: Any, labels: Any) -> Any:
    """`preprocess_logits_for_metrics`: keep class ids only, so evaluation memory stays flat."""
    if isinstance(logits, tuple):
        logits = logits[0]
    return logits.argmax(dim=-1)


def classification_metrics(num_labels: int) -> Callable[[Any], dict[str, float]]:
    """A Trainer `compute_metrics` giving accuracy and macro-F1 over predicted class ids."""
    accuracy, f1 = load_metric("accuracy"), load_metric("f1")

    def compute(eval_pred: Any) -> dict[str, float]:
        predictions, references = eval_pred.predictions, eval_pred.label_ids
        if isinstance(predictions, tuple):
            predictions = predictions[0]
        predictions = np.asarray(predictions)
        if predictions.ndim > 1:
            predictions = predictions.argmax(-1)
        result = accuracy.compute(predictions=predictions, references=references)
        result.update(f1.compute(predictions=predictions, references=references, num_classes=num_labels))
        result["samples"] = int(len(references))  # after gathering: the whole split, no padding duplicates
        return result

    return compute
