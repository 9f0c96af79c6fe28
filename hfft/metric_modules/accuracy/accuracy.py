"""Accuracy as an `evaluate` module, bundled with hfft so it loads with HF_HUB_OFFLINE=1."""

import datasets
import evaluate
import numpy as np


class Accuracy(evaluate.Metric):
    """Fraction of predictions equal to the references."""

    def _info(self):
        return evaluate.MetricInfo(
            description="Accuracy: the fraction of correct predictions.",
            citation="",
            inputs_description="predictions and references: integer class ids of equal length.",
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references):
        predictions, references = np.asarray(predictions), np.asarray(references)
        return {"accuracy": float((predictions == references).mean()) if len(references) else 0.0}
