"""COCO box metrics (hfft.metrics_detection): exact values on synthetic boxes, no models."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pycocotools")

from hfft.metrics_detection import DetectionEvaluator, per_class_table  # noqa: E402

CLASSES = ["cat", "dog", "bird"]
CELL = 400  # one box per 400-px cell: boxes (<= 250 px) never overlap, even shifted by 30 %
SIZE_RANGES = [(8, 28), (40, 90), (110, 250)]  # COCO small (< 32^2), medium, large


def make_dataset(seed: int = 0, num_images: int = 12) -> tuple[list[tuple[int, int]], list[dict]]:
    """Random non-overlapping boxes of all three classes and sizes; images 0 and 5 have none."""
    rng = np.random.default_rng(seed)
    sizes, targets = [], []
    for i in range(num_images):
        n = 0 if i in (0, 5) else int(rng.integers(1, 6))
        boxes = []
        for j in range(n):
            low, high = SIZE_RANGES[(i + j) % 3]
            w, h = rng.uniform(low, high, size=2)
            x, y = j * CELL + rng.uniform(0, 10), rng.uniform(0, 10)
            boxes.append([x, y, x + w, y + h])
        labels = np.array([(i * 7 + j) % 3 for j in range(n)], dtype=np.int64)
        targets.append({"boxes": np.array(boxes, dtype=float).reshape(-1, 4), "labels": labels})
        sizes.append((CELL, CELL * 5))
    return sizes, targets


def as_detections(targets: list[dict], score: float = 1.0) -> list[dict]:
    return [
        {"boxes": t["boxes"].copy(), "scores": np.full(len(t["labels"]), score), "labels": t["labels"]} for t in targets
    ]


def shifted(targets: list[dict], fraction: float) -> list[dict]:
    """Every box moved right by `fraction` of its width: IoU = (1 - f) / (1 + f)."""
    detections = as_detections(targets)
    for det in detections:
        width = det["boxes"][:, 2] - det["boxes"][:, 0]
        det["boxes"][:, [0, 2]] += fraction * width[:, None]
    return detections


def evaluate(sizes, targets, detections, batches: int = 1, **kwargs) -> dict[str, float]:
    evaluator = DetectionEvaluator(CLASSES, **kwargs)
    for chunk in np.array_split(np.arange(len(sizes)), batches):
        evaluator.add([sizes[i] for i in chunk], [targets[i] for i in chunk], [detections[i] for i in chunk])
    return evaluator.compute()


def test_dataset_covers_every_class_and_size():
    _, targets = make_dataset()
    boxes = np.concatenate([t["boxes"] for t in targets])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    assert (areas < 32**2).any() and ((areas > 32**2) & (areas < 96**2)).any() and (areas > 96**2).any()
    assert set(np.concatenate([t["labels"] for t in targets]).tolist()) == {0, 1, 2}


def test_ground_truth_as_detections_is_perfect():
    sizes, targets = make_dataset()
    metrics = evaluate(sizes, targets, as_detections(targets))
    for key in ["map", "map_50", "map_75", "map_small", "map_medium", "map_large", "mar_10", "mar_100"]:
        assert metrics[key] == pytest.approx(1.0), key
    for name in CLASSES:
        assert metrics[f"ap_{name}"] == pytest.approx(1.0)
    assert metrics["images"] == 12.0
    assert metrics["boxes"] == float(sum(len(t["labels"]) for t in targets))
    assert all(isinstance(v, float) for v in metrics.values())


def test_shifted_boxes_lower_strict_thresholds():
    sizes, targets = make_dataset()
    small = evaluate(sizes, targets, shifted(targets, 0.1))  # IoU 0.818: passes 0.50..0.80, 7 of 10
    assert small["map_50"] == pytest.approx(1.0) and small["map_75"] == pytest.approx(1.0)
    assert small["map"] == pytest.approx(0.7)
    large = evaluate(sizes, targets, shifted(targets, 0.3))  # IoU 0.538: passes 0.50 only
    assert large["map_50"] == pytest.approx(1.0)
    assert large["map_75"] == pytest.approx(0.0)
    assert large["map"] == pytest.approx(0.1)
    assert small["map_50"] >= small["map_75"] >= small["map"]
    # map_75 >= map is not a law: once IoU < 0.75 everywhere, map_75 is 0 while map still counts 0.50..0.70.
    for metrics in (small, large):
        assert metrics["map_50"] >= max(metrics["map_75"], metrics["map"])
        assert metrics["map"] < 1.0
    assert small["map"] > large["map"] and small["map_75"] > large["map_75"]


def test_wrong_labels_score_zero():
    sizes, targets = make_dataset()
    detections = as_detections(targets)
    for det in detections:
        det["labels"] = (det["labels"] + 1) % 3
    metrics = evaluate(sizes, targets, detections)
    assert metrics["map"] == 0.0 and metrics["map_50"] == 0.0 and metrics["mar_100"] == 0.0
    assert all(metrics[f"ap_{name}"] == 0.0 for name in CLASSES)


def test_no_detections_scores_zero():
    sizes, targets = make_dataset()
    empty = [{"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, dtype=int)} for _ in targets]
    metrics = evaluate(sizes, targets, empty)
    for key in ["map", "map_50", "map_75", "map_small", "map_medium", "map_large", "mar_1", "mar_10", "mar_100"]:
        assert metrics[key] == 0.0, key
    assert all(metrics[f"ap_{name}"] == 0.0 for name in CLASSES)


def test_detection_on_image_without_ground_truth_lowers_precision():
    sizes, targets = make_dataset()
    detections = as_detections(targets, score=0.9)
    empty_image = 0
    assert len(targets[empty_image]["labels"]) == 0
    label = int(targets[1]["labels"][0])
    detections[empty_image] = {"boxes": np.array([[10.0, 10.0, 60.0, 60.0]]), "scores": [1.0], "labels": [label]}
    metrics = evaluate(sizes, targets, detections)
    assert metrics["map"] < 1.0
    assert metrics[f"ap_{CLASSES[label]}"] < 1.0
    assert metrics["mar_100"] == pytest.approx(1.0)  # every object is still found
    assert metrics["images"] == 12.0


def test_batches_match_one_batch():
    sizes, targets = make_dataset(seed=3)
    detections = shifted(targets, 0.2)
    rng = np.random.default_rng(1)
    for det in detections:
        det["scores"] = rng.uniform(0.1, 1.0, size=len(det["labels"]))
    assert evaluate(sizes, targets, detections, batches=4) == evaluate(sizes, targets, detections, batches=1)


def add_junk(targets: list[dict], junk_score: float, true_score: float, count: int = 150) -> list[dict]:
    """`count` junk boxes (far from every object) first, the true boxes last."""
    rng = np.random.default_rng(2)
    detections = []
    for t in targets:
        xy = rng.uniform(0, 1000, size=(count, 2)) + [0.0, 1000.0]  # below every ground-truth box
        junk = np.concatenate([xy, xy + 20.0], axis=1)
        detections.append(
            {
                "boxes": np.concatenate([junk, t["boxes"]]),
                "scores": np.concatenate([np.full(count, junk_score), np.full(len(t["labels"]), true_score)]),
                "labels": np.concatenate([rng.integers(0, 3, size=count), t["labels"]]),
            }
        )
    return detections


def test_max_detections_keeps_highest_scores():
    sizes, targets = make_dataset()
    metrics = evaluate(sizes, targets, add_junk(targets, junk_score=0.1, true_score=0.9), max_detections=100)
    assert metrics["map"] == pytest.approx(1.0) and metrics["mar_100"] == pytest.approx(1.0)
    # Junk scored above the true boxes fills all 100 places: the true boxes are dropped.
    metrics = evaluate(sizes, targets, add_junk(targets, junk_score=0.95, true_score=0.9), max_detections=100)
    assert metrics["map"] == 0.0 and metrics["mar_100"] == 0.0


def test_max_detections_names_recall_key():
    sizes, targets = make_dataset()
    metrics = evaluate(sizes, targets, as_detections(targets), max_detections=300)
    assert {"mar_1", "mar_10", "mar_300"} <= metrics.keys() and "mar_100" not in metrics


def test_reset_empties():
    sizes, targets = make_dataset()
    evaluator = DetectionEvaluator(CLASSES)
    evaluator.add(sizes, targets, as_detections(targets))
    assert len(evaluator) == 12
    evaluator.reset()
    assert len(evaluator) == 0
    metrics = evaluator.compute()
    assert metrics["images"] == 0.0 and metrics["boxes"] == 0.0 and metrics["map"] == 0.0


def test_no_ground_truth_at_all_is_zero():
    evaluator = DetectionEvaluator(CLASSES)
    detection = {"boxes": [[0.0, 0.0, 10.0, 10.0]], "scores": [0.5], "labels": [1]}
    evaluator.add([(100, 100)], [{"boxes": np.zeros((0, 4)), "labels": []}], [detection])
    metrics = evaluator.compute()
    assert metrics["images"] == 1.0 and metrics["boxes"] == 0.0
    assert all(v == 0.0 for k, v in metrics.items() if k != "images")
    assert not any(k.startswith("ap_") for k in metrics)


def test_class_without_ground_truth_is_absent_and_missing_sizes_are_minus_one():
    box = np.array([[0.0, 0.0, 50.0, 50.0]])  # medium only; no "bird"
    targets = [{"boxes": box, "labels": [0]}, {"boxes": box, "labels": [1]}]
    detections = [{"boxes": box, "scores": [1.0], "labels": [0]}, {"boxes": box, "scores": [1.0], "labels": [1]}]
    metrics = evaluate([(100, 100)] * 2, targets, detections)
    assert metrics["ap_cat"] == pytest.approx(1.0) and metrics["ap_dog"] == pytest.approx(1.0)
    assert "ap_bird" not in metrics
    assert metrics["map"] == pytest.approx(1.0) and metrics["map_medium"] == pytest.approx(1.0)
    assert metrics["map_small"] == -1.0 and metrics["map_large"] == -1.0


def test_bad_inputs_raise():
    evaluator = DetectionEvaluator(CLASSES)
    good = {"boxes": np.zeros((0, 4)), "labels": []}
    with pytest.raises(ValueError, match="length"):
        evaluator.add([(10, 10)], [good, good], [good])
    with pytest.raises(ValueError, match="labels must be in"):
        evaluator.add([(10, 10)], [{"boxes": [[0, 0, 1, 1]], "labels": [3]}], [{**good, "scores": []}])
    with pytest.raises(ValueError, match="shape"):
        evaluator.add([(10, 10)], [{"boxes": [[0, 0, 1]], "labels": [0]}], [{**good, "scores": []}])
    assert len(evaluator) == 0
    with pytest.raises(ValueError):
        DetectionEvaluator([])


def test_per_class_table():
    table = per_class_table({"ap_cat": 0.25, "ap_dog": 0.75, "map": 0.5}, CLASSES)
    lines = table.splitlines()
    assert lines[0] == "| class | AP |"
    assert lines[2:] == ["| dog | 0.7500 |", "| cat | 0.2500 |", "| bird | n/a |"]
