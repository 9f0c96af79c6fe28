"""Classification losses as Trainer `compute_loss_func`s: softmax cross-entropy over class ids or soft rows,
and sigmoid binary cross-entropy over multi-hot rows, each with label smoothing and class weights.

Trainer passes ``num_items_in_batch``: the count of label *elements* over the accumulated batch (rows for
class ids, rows x classes for multi-hot rows). Dividing summed losses by it keeps gradient accumulation exact.
"""

from __future__ import annotations

from typing import Any


class SoftTargetLoss:
    """Cross-entropy for class ids or soft (mixed) label rows, with label smoothing and per-class weights.

    With ``class_weights`` each row's loss is scaled by its class's weight (a soft row: by the weights under
    its target distribution), then averaged over rows, so balanced weights keep the loss scale.
    """

    def __init__(self, num_labels: int, label_smoothing: float = 0.0, class_weights: Any = None) -> None:
        self.num_labels, self.label_smoothing, self.class_weights = num_labels, label_smoothing, class_weights

    def __call__(self, outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        import torch

        log_probs = torch.log_softmax(outputs["logits"].float(), dim=-1)
        soft = labels.ndim == 2
        targets = labels.float() if soft else torch.nn.functional.one_hot(labels, self.num_labels).float()
        row_weights = None
        if self.class_weights is not None:
            row_weights = targets @ torch.as_tensor(self.class_weights, dtype=targets.dtype, device=targets.device)
        if self.label_smoothing:
            targets = targets * (1 - self.label_smoothing) + self.label_smoothing / self.num_labels
        per_row = -(targets * log_probs).sum(dim=-1)
        if row_weights is not None:
            per_row = per_row * row_weights
        if num_items_in_batch is None:  # Trainer counts label *elements* over the accumulated batch
            return per_row.mean()
        rows = num_items_in_batch / self.num_labels if soft else num_items_in_batch
        return per_row.sum() / rows


class MultiLabelLoss:
    """Binary cross-entropy with logits over multi-hot (or mixed, soft) rows: one independent yes/no per class.

    Label smoothing is binary: targets become ``y * (1 - s) + s / 2`` (each class is a two-way problem).
    ``pos_weight`` (one per class) scales the loss of positives, as in `torch.nn.BCEWithLogitsLoss`.
    """

    def __init__(self, label_smoothing: float = 0.0, pos_weight: Any = None) -> None:
        self.label_smoothing, self.pos_weight = label_smoothing, pos_weight

    def __call__(self, outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        import torch

        logits = outputs["logits"].float()
        targets = labels.float()
        if self.label_smoothing:
            targets = targets * (1 - self.label_smoothing) + self.label_smoothing / 2
        pos_weight = None
        if self.pos_weight is not None:
            pos_weight = torch.as_tensor(self.pos_weight, dtype=logits.dtype, device=logits.device)
        losses = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, targets, pos_weight=pos_weight, reduction="none"
        )
        if num_items_in_batch is None:
            return losses.mean()
        return losses.sum() / num_items_in_batch
