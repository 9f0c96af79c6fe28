"""Multi-label metrics, per-class decision thresholds and the best constant baseline (numpy + lazy scikit-learn).

Conventions: ``scores`` are ``[N, K]`` probabilities (sigmoid outputs), ``targets`` are ``[N, K]`` 0/1 (floats allowed,
values >= 0.5 are positives), a label is predicted when ``score >= threshold``. Every ratio whose denominator is 0
is 0 (scikit-learn's ``zero_division=0``), so no function ever returns NaN.
"""

from __future__ import annotations

import numpy as np

DEFAULT_GRID = np.round(np.arange(1, 20) * 0.05, 2)  # 0.05, 0.10, ..., 0.95


def _as_2d(name: str, array: np.ndarray) -> np.ndarray:
    array = np.asarray(array, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D [N, K], got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _check(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return (float scores [N, K], bool targets [N, K])."""
    scores, targets = _as_2d("scores", scores), _as_2d("targets", targets)
    if scores.shape != targets.shape:
        raise ValueError(f"scores shape {scores.shape} does not match targets shape {targets.shape}")
    return scores, targets >= 0.5


def _thresholds(thresholds: float | np.ndarray, num_classes: int) -> np.ndarray:
    """A scalar or a [K] array of thresholds -> [K] float array."""
    values = np.asarray(thresholds, dtype=float)
    values = np.full(num_classes, float(values)) if values.ndim == 0 else values
    if values.shape != (num_classes,) or not np.isfinite(values).all():
        raise ValueError(f"thresholds must be finite, a scalar or shape ({num_classes},), got shape {values.shape}")
    return values


def _ratio(numerator: np.ndarray | float, denominator: np.ndarray | float) -> np.ndarray:
    """numerator / denominator with 0 where the denominator is 0."""
    num, den = np.broadcast_arrays(np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float))
    return np.divide(num, den, out=np.zeros(num.shape), where=den != 0)


def _counts(pred: np.ndarray, true: np.ndarray, axis: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, false positives, false negatives summed over `axis`."""
    return (pred & true).sum(axis=axis), (pred & ~true).sum(axis=axis), (~pred & true).sum(axis=axis)


def _set_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """f1_micro, f1_macro (over all K classes), precision/recall_micro, subset_accuracy, hamming_loss."""
    tp, fp, fn = _counts(pred, true, axis=None)
    ctp, cfp, cfn = _counts(pred, true, axis=0)
    return {
        "f1_micro": float(_ratio(2 * tp, 2 * tp + fp + fn)),
        "f1_macro": float(_ratio(2 * ctp, 2 * ctp + cfp + cfn).mean()) if pred.shape[1] else 0.0,
        "precision_micro": float(_ratio(tp, tp + fp)),
        "recall_micro": float(_ratio(tp, tp + fn)),
        "subset_accuracy": float((pred == true).all(axis=1).mean()) if pred.shape[0] else 0.0,
        "hamming_loss": float((pred != true).mean()) if pred.size else 0.0,
    }


def _average_precisions(scores: np.ndarray, true: np.ndarray) -> list[float | None]:
    """sklearn's average_precision_score per class; None for a class without positives."""
    from sklearn.metrics import average_precision_score

    return [
        float(average_precision_score(true[:, k], scores[:, k])) if true[:, k].any() else None
        for k in range(true.shape[1])
    ]


def multilabel_metrics(
    scores: np.ndarray, targets: np.ndarray, thresholds: float | np.ndarray = 0.5
) -> dict[str, float]:
    """Scalar metrics for multi-label predictions at the given threshold(s).

    Keys: f1_micro, f1_macro (mean over all K classes, a class with no positives and no predictions counts 0, as in
    sklearn with zero_division=0), precision_micro, recall_micro, map (mean AP over classes with at least one
    positive; 0.0 if none has), subset_accuracy (exact match), hamming_loss, classes_without_positives (int),
    samples (int N).
    """
    scores, true = _check(scores, targets)
    pred = scores >= _thresholds(thresholds, scores.shape[1])
    aps = [ap for ap in _average_precisions(scores, true) if ap is not None]
    return {
        **_set_metrics(pred, true),
        "map": float(np.mean(aps)) if aps else 0.0,
        "classes_without_positives": int((~true.any(axis=0)).sum()),
        "samples": int(scores.shape[0]),
    }


def per_class_report(
    scores: np.ndarray, targets: np.ndarray, names: list[str], thresholds: float | np.ndarray = 0.5
) -> dict[str, dict[str, float | int | None]]:
    """name -> {precision, recall, f1, ap, support, predicted, threshold} (JSON-safe: ap is None without positives).

    support counts the class's positives, predicted the positives predicted; ratios use zero_division=0.
    """
    scores, true = _check(scores, targets)
    _check_names(names, scores.shape[1])
    cut = _thresholds(thresholds, scores.shape[1])
    pred = scores >= cut
    tp, fp, fn = _counts(pred, true, axis=0)
    precision, recall, f1 = _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)
    aps = _average_precisions(scores, true)
    return {
        name: {
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "ap": aps[k],
            "support": int(true[:, k].sum()),
            "predicted": int(pred[:, k].sum()),
            "threshold": float(cut[k]),
        }
        for k, name in enumerate(names)
    }


def tune_thresholds(
    scores: np.ndarray, targets: np.ndarray, grid: np.ndarray | None = None, default: float = 0.5
) -> np.ndarray:
    """Per-class thresholds [K] maximising each class's F1 on (validation) scores, searched over `grid`.

    The grid (default 0.05..0.95 step 0.05) is deliberately coarse: trying every unique score would fit the exact
    gaps of a small validation split and overfit it. Ties (within 1e-12) go to the threshold closest to `default`,
    then to the lower one; a class without positives, or whose best F1 is 0, keeps `default`.
    """
    scores, true = _check(scores, targets)
    grid = DEFAULT_GRID if grid is None else np.asarray(grid, dtype=float)
    if grid.ndim != 1 or grid.size == 0 or not np.isfinite(grid).all():
        raise ValueError(f"grid must be a non-empty 1-D array of finite values, got shape {grid.shape}")
    grid = np.sort(grid)
    result = np.full(scores.shape[1], float(default))
    for k in range(scores.shape[1]):
        if not true[:, k].any():
            continue
        pred = scores[:, k, None] >= grid[None, :]  # [N, G]
        tp, fp, fn = _counts(pred, true[:, k, None], axis=0)
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
        if f1.max() <= 0:
            continue
        best = np.flatnonzero(f1 >= f1.max() - 1e-12)
        result[k] = grid[best[np.argmin(np.abs(grid[best] - default))]]  # argmin: the lowest on equal distance
    return result


def constant_label_set(train_targets: np.ndarray) -> np.ndarray:
    """Boolean [K] mask of the best constant label set on train (greedy by frequency while micro-F1 improves)."""
    true = _as_2d("train_targets", train_targets) >= 0.5
    n, num_classes = true.shape
    freq = true.sum(axis=0)
    chosen = np.zeros(num_classes, dtype=bool)
    tp, fp, fn, best = 0, 0, int(freq.sum()), 0.0  # start from the empty set: micro-F1 0
    for k in np.argsort(-freq, kind="stable"):
        new_tp, new_fp, new_fn = tp + int(freq[k]), fp + n - int(freq[k]), fn - int(freq[k])
        f1 = float(_ratio(2 * new_tp, 2 * new_tp + new_fp + new_fn))
        if f1 <= best:
            break
        chosen[k], best, tp, fp, fn = True, f1, new_tp, new_fp, new_fn
    return chosen


def constant_baseline(train_targets: np.ndarray, eval_targets: np.ndarray) -> dict[str, float]:
    """The best constant predictor (see `constant_label_set`, chosen on train) evaluated on eval_targets.

    Keys: f1_micro, f1_macro, subset_accuracy, hamming_loss, map. With constant scores (each class scored by its train
    frequency) every sample ties, so a class's AP equals its eval prevalence; map averages it over classes with
    eval positives (0.0 if none has).
    """
    train = _as_2d("train_targets", train_targets)
    true = _as_2d("eval_targets", eval_targets) >= 0.5
    if train.shape[1] != true.shape[1]:
        raise ValueError(f"train_targets shape {train.shape} and eval_targets shape {true.shape} differ in classes")
    pred = np.broadcast_to(constant_label_set(train), true.shape)
    metrics = _set_metrics(pred, true)
    prevalence = true.mean(axis=0) if true.shape[0] else np.zeros(true.shape[1])
    keys = ("f1_micro", "f1_macro", "subset_accuracy", "hamming_loss")
    mean_ap = float(prevalence[prevalence > 0].mean()) if (prevalence > 0).any() else 0.0
    return {**{key: metrics[key] for key in keys}, "map": mean_ap}


def _check_names(names: list[str], num_classes: int) -> None:
    if len(names) != num_classes:
        raise ValueError(f"got {len(names)} names for {num_classes} classes")
    if len(set(names)) != len(names):
        raise ValueError("class names must be unique")


def classes_without_positives(targets: np.ndarray, names: list[str]) -> list[str]:
    """Names of the classes with no positive in targets [N, K], in class order."""
    true = _as_2d("targets", targets) >= 0.5
    _check_names(names, true.shape[1])
    return [name for name, has in zip(names, true.any(axis=0)) if not has]
