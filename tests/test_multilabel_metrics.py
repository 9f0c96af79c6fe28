"""Multi-label metrics, per-class thresholds and the constant baseline, checked against scikit-learn and by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, hamming_loss

from hfft.metrics_multilabel import (
    classes_without_positives,
    constant_baseline,
    constant_label_set,
    multilabel_metrics,
    per_class_report,
    tune_thresholds,
)

NAMES = ["cat", "dog", "bird", "fish"]  # fish (class 3) has no positives
TARGETS = np.array(
    [
        [1, 0, 1, 0],
        [1, 1, 0, 0],
        [0, 1, 0, 0],
        [1, 0, 0, 0],
        [0, 0, 1, 0],
        [0, 1, 1, 0],
        [1, 0, 0, 0],
        [0, 0, 0, 0],
    ],
    dtype=float,
)
SCORES = np.array(
    [
        [0.9, 0.2, 0.6, 0.1],
        [0.8, 0.7, 0.4, 0.3],
        [0.4, 0.6, 0.2, 0.6],
        [0.3, 0.1, 0.7, 0.2],
        [0.6, 0.3, 0.9, 0.1],
        [0.2, 0.4, 0.8, 0.2],
        [0.7, 0.5, 0.1, 0.4],  # dog at exactly 0.5: predicted (score >= threshold)
        [0.1, 0.2, 0.3, 0.5],
    ]
)


def test_metrics_agree_with_sklearn_and_hand_counts() -> None:
    m = multilabel_metrics(SCORES, TARGETS)
    true, pred = TARGETS.astype(int), (SCORES >= 0.5).astype(int)
    assert m["f1_micro"] == pytest.approx(f1_score(true, pred, average="micro", zero_division=0))
    assert m["f1_macro"] == pytest.approx(f1_score(true, pred, average="macro", zero_division=0))
    aps = [average_precision_score(true[:, k], SCORES[:, k]) for k in range(3)]  # fish has no positives
    assert m["map"] == pytest.approx(np.mean(aps))
    assert m["hamming_loss"] == pytest.approx(hamming_loss(true, pred))
    assert m["subset_accuracy"] == pytest.approx(np.mean([(p == t).all() for p, t in zip(pred, true)]))
    # By hand: cat TP3 FP1 FN1, dog TP2 FP1 FN1, bird TP3 FP1 FN0, fish TP0 FP2 FN0 -> TP8 FP5 FN2.
    assert m["f1_micro"] == pytest.approx(16 / 23)  # 2*8 / (2*8 + 5 + 2)
    assert m["precision_micro"] == pytest.approx(8 / 13)
    assert m["recall_micro"] == pytest.approx(8 / 10)
    assert m["f1_macro"] == pytest.approx((6 / 8 + 4 / 6 + 6 / 7 + 0) / 4)
    assert m["hamming_loss"] == pytest.approx(7 / 32)  # 5 FP + 2 FN over 8 x 4 cells
    assert m["subset_accuracy"] == pytest.approx(2 / 8)  # rows 0 and 1 only
    assert m["classes_without_positives"] == 1 and m["samples"] == 8


def test_per_class_thresholds_and_empty_class_are_json_safe() -> None:
    thresholds = np.array([0.65, 0.5, 0.5, 0.9])  # cat drops row 4 (0.6); fish predicts nothing
    m = multilabel_metrics(SCORES, TARGETS, thresholds)
    # TP8 FP5 FN2 -> cat loses 1 FP and fish its 2 FP: TP8 FP2 FN2.
    assert m["f1_micro"] == pytest.approx(16 / 20)
    assert m["subset_accuracy"] == pytest.approx(5 / 8)  # rows 0, 1, 2, 4, 7
    report = per_class_report(SCORES, TARGETS, NAMES, thresholds)
    assert report["cat"] == pytest.approx(
        {
            "precision": 1.0,
            "recall": 0.75,
            "f1": 6 / 7,
            "ap": report["cat"]["ap"],
            "support": 4,
            "predicted": 3,
            "threshold": 0.65,
        }
    )
    assert report["cat"]["ap"] == pytest.approx(average_precision_score(TARGETS[:, 0], SCORES[:, 0]))
    assert report["fish"] == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "ap": None,
        "support": 0,
        "predicted": 0,
        "threshold": 0.9,
    }
    assert classes_without_positives(TARGETS, NAMES) == ["fish"]
    baseline = constant_baseline(TARGETS, TARGETS)
    json.dumps({"metrics": m, "report": report, "baseline": baseline}, allow_nan=False)  # raises on NaN


def test_degenerate_inputs_never_give_nan() -> None:
    one = multilabel_metrics(np.array([[0.2], [0.7]]), np.zeros((2, 1)))  # K=1, no positives at all
    assert one["map"] == 0.0 and one["f1_micro"] == 0.0 and one["hamming_loss"] == 0.5
    empty = multilabel_metrics(np.zeros((0, 2)), np.zeros((0, 2)))
    json.dumps([one, empty, constant_baseline(np.zeros((0, 2)), np.zeros((0, 2)))], allow_nan=False)
    assert per_class_report(np.array([[0.9]]), np.array([[1.0]]), ["only"])["only"]["f1"] == 1.0


def test_shape_errors_name_the_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(8, 4\).*\(8, 3\)"):
        multilabel_metrics(SCORES, TARGETS[:, :3])
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        multilabel_metrics(SCORES, TARGETS, np.array([0.5, 0.5, 0.5]))
    with pytest.raises(ValueError, match="2-D"):
        multilabel_metrics(SCORES[:, 0], TARGETS[:, 0])
    with pytest.raises(ValueError, match="names"):
        per_class_report(SCORES, TARGETS, NAMES[:3])
    with pytest.raises(ValueError, match="NaN"):
        multilabel_metrics(np.full((2, 1), np.nan), np.zeros((2, 1)))


def test_tune_thresholds_finds_separating_cuts() -> None:
    # cat: positives >= 0.35, negatives <= 0.25 ; dog: positives >= 0.75, negatives <= 0.65 ; bird: no positives.
    cat = [(0.1, 0), (0.2, 0), (0.25, 0), (0.35, 1), (0.5, 1), (0.9, 1)]
    dog = [(0.2, 0), (0.5, 0), (0.65, 0), (0.75, 1), (0.8, 1), (0.95, 1)]
    scores = np.array([[c[0], d[0], 0.6] for c, d in zip(cat, dog)])
    targets = np.array([[c[1], d[1], 0] for c, d in zip(cat, dog)], dtype=float)
    assert multilabel_metrics(scores, targets)["f1_macro"] < 2 / 3  # 0.5 is wrong for dog (and bird's FPs)
    tuned = tune_thresholds(scores, targets)
    # cat: 0.30 and 0.35 both separate -> the one closer to 0.5; dog: 0.70 and 0.75 -> 0.70.
    assert tuned == pytest.approx([0.35, 0.7, 0.5])
    report = per_class_report(scores, targets, ["cat", "dog", "bird"], tuned)
    assert report["cat"]["f1"] == 1.0 and report["dog"]["f1"] == 1.0
    assert tune_thresholds(scores, targets, default=0.4)[2] == 0.4  # no positives keeps the default
    assert tune_thresholds(scores, targets, grid=np.array([0.3, 0.9]))[1] == pytest.approx(0.3)  # F1 6/7 beats 0
    with pytest.raises(ValueError, match="grid"):
        tune_thresholds(scores, targets, grid=np.array([]))


def test_constant_baseline_frequent_class() -> None:
    train = np.zeros((10, 3))
    train[:9, 0] = 1  # cat in 90% of rows
    train[:2, 1] = 1
    train[9, 2] = 1
    # {cat}: TP9 FP1 FN3 -> 18/22 ; adding dog: TP11 FP9 FN1 -> 22/32, worse -> stop at {cat}.
    assert constant_label_set(train).tolist() == [True, False, False]
    eval_targets = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 1]], dtype=float)
    b = constant_baseline(train, eval_targets)
    # Predict [1, 0, 0] everywhere: TP3 FP1 (row 2) FN2 (row 1 dog, row 3 bird).
    assert b["f1_micro"] == pytest.approx(6 / 9)
    assert b["f1_macro"] == pytest.approx((6 / 7 + 0 + 0) / 3)
    assert b["subset_accuracy"] == pytest.approx(1 / 4)
    assert b["hamming_loss"] == pytest.approx(3 / 12)
    assert b["map"] == pytest.approx((3 / 4 + 1 / 4 + 1 / 4) / 3)  # AP of a constant score = eval prevalence
    constant = np.broadcast_to(train.mean(axis=0), eval_targets.shape)
    sk_map = np.mean([average_precision_score(eval_targets[:, k], constant[:, k]) for k in range(3)])
    assert b["map"] == pytest.approx(sk_map)


def test_constant_baseline_empty_and_rare_sets() -> None:
    # The empty set only wins when train has no positives: any class with positives lifts micro-F1 above 0.
    assert not constant_label_set(np.zeros((5, 3))).any()
    b = constant_baseline(np.zeros((5, 3)), np.array([[1, 0, 0], [0, 0, 0]], dtype=float))
    assert b["f1_micro"] == 0.0 and b["f1_macro"] == 0.0 and b["subset_accuracy"] == 0.5
    assert b["hamming_loss"] == pytest.approx(1 / 6)
    # No frequent class (each in 2 of 10 rows): {class 0} gives TP2 FP8 FN4 -> 4/16 ; adding class 1 gives
    # TP4 FP16 FN2 -> 8/26, better ; class 2: TP6 FP24 FN0 -> 12/36, better still -> all three.
    rare = np.zeros((10, 3))
    rare[0:2, 0] = rare[2:4, 1] = rare[4:6, 2] = 1
    assert constant_label_set(rare).all()
    assert constant_baseline(rare, rare)["f1_micro"] == pytest.approx(12 / 36)
