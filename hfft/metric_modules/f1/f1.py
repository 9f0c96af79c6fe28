"""Macro/micro/weighted F1 as an `evaluate` module, bundled with hfft for offline use."""

import datasets
import evaluate
import numpy as np


class F1(evaluate.Metric):
    """F1 score over integer class ids; ``average`` is macro (default), micro or weighted."""

    def _info(self):
        return evaluate.MetricInfo(
            description="F1 = 2 * precision * recall / (precision + recall), averaged over classes.",
            citation="",
            inputs_description="predictions and references: integer class ids; average: macro|micro|weighted.",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, average="macro", num_classes=None):
        predictions, references = np.asarray(predictions), np.asarray(references)
        if average == "micro":
            return {"f1": float((predictions == references).mean()) if len(references) else 0.0}
        classes = np.arange(num_classes) if num_classes else np.union1d(predictions, references)
        scores, support = [], []
        for cls in classes:
            tp = np.sum((predictions == cls) & (references == cls))
            fp = np.sum((predictions == cls) & (references != cls))
            fn = np.sum((predictions != cls) & (references == cls))
            denom = 2 * tp + fp + fn
            scores.append(2 * tp / denom if denom else 0.0)
            support.append(np.sum(references == cls))
        scores, support = np.asarray(scores, dtype=float), np.asarray(support, dtype=float)
        if average == "weighted":
            return {"f1": float((scores * support).sum() / max(support.sum(), 1.0))}
        return {"f1": float(scores.mean()) if len(scores) else 0.0}
