"""COCO-style box metrics (pycocotools, built in memory) accumulated batch by batch.

Only the kept detections (at most ``max_detections`` per image, highest scores) and the ground-truth boxes are
stored, never logits, so memory stays flat on large evaluation sets. Boxes come in as ``xyxy`` pixels; they are
converted to COCO ``xywh`` inside. Image ids are 1..N in the order images are added; category id = class index + 1.

Conventions of ``DetectionEvaluator.compute()``:

- a value COCOeval reports as -1 (e.g. ``map_small`` when the data has no small objects) is reported as -1.0,
  never NaN, so Trainer/JSON logging stays happy;
- classes without any ground-truth box are left out of the ``ap_<class>`` keys and of the mean (COCOeval's own rule);
- no ground-truth box at all: every headline metric is 0.0 (and there are no ``ap_<class>`` keys);
- no detections: every metric over objects that exist is 0.0.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

from hfft.boxes import xyxy_to_xywh

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # COCOeval's default
AREA_NAMES = ("all", "small", "medium", "large")  # COCOeval's areaRngLbl order


def _to_numpy(value: Any, dtype: Any) -> np.ndarray:
    """Array from a list, numpy array or (any-device) torch tensor."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


def _boxes(value: Any, what: str) -> np.ndarray:
    boxes = _to_numpy(value, np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{what} boxes must have shape [n, 4] (xyxy), got {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise ValueError(f"{what} boxes contain NaN or infinite values")
    return boxes


def _annotations(
    boxes: np.ndarray, labels: np.ndarray, image_id: int, first_id: int, scores: np.ndarray | None = None
) -> list[dict]:
    """COCO annotation dicts of one image's xyxy boxes (widths/heights below 0 clipped to 0); with ``scores``:
    detections."""
    xywh = xyxy_to_xywh(boxes)
    xywh[:, 2:] = np.clip(xywh[:, 2:], 0.0, None)
    out = []
    for k, (box, label) in enumerate(zip(xywh.tolist(), labels.tolist())):
        ann = {"id": first_id + k, "image_id": image_id, "category_id": label + 1, "bbox": box,
               "area": box[2] * box[3], "iscrowd": 0}  # fmt: skip
        if scores is not None:
            ann["score"] = float(scores[k])
        out.append(ann)
    return out


def _mean_valid(values: np.ndarray) -> float:
    """Mean of entries > -1 (COCOeval's rule); -1.0 when there are none."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else -1.0


class DetectionEvaluator:
    """Accumulates ground truth and detections image by image; `compute()` gives COCO metrics."""

    def __init__(self, class_names: list[str], max_detections: int = 100) -> None:
        if not class_names:
            raise ValueError("class_names must not be empty")
        if len(set(class_names)) != len(class_names):
            raise ValueError(f"class_names must be unique, got {class_names}")
        if max_detections < 1:
            raise ValueError(f"max_detections must be >= 1, got {max_detections}")
        self.class_names = list(class_names)
        self.max_detections = int(max_detections)
        # COCOeval recall thresholds: [1, 10, max_detections] (fewer when max_detections < 10).
        self.max_dets = sorted({1, min(10, self.max_detections), self.max_detections})
        self.reset()

    def reset(self) -> None:
        """Forget every image added so far."""
        self._sizes: list[tuple[int, int]] = []
        self._gt: list[tuple[np.ndarray, np.ndarray]] = []  # (boxes xyxy [n, 4], labels [n])
        self._dt: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (boxes [m, 4], scores [m], labels [m])

    def __len__(self) -> int:
        return len(self._sizes)

    def _labels(self, value: Any, n: int, what: str) -> np.ndarray:
        labels = _to_numpy(value, np.int64).reshape(-1)
        if labels.shape[0] != n:
            raise ValueError(f"{what}: {n} boxes but {labels.shape[0]} labels")
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise ValueError(f"{what} labels must be in [0, {len(self.class_names)}), got {np.unique(labels)}")
        return labels

    def add(self, image_sizes: list[tuple[int, int]], targets: list[dict], detections: list[dict]) -> None:
        """One batch. image_sizes: (height, width) per image. targets[i]: {"boxes": array [n, 4] xyxy pixels,
        "labels": array [n] int class ids} (n may be 0). detections[i]: {"boxes": [m, 4] xyxy pixels,
        "scores": [m], "labels": [m]} (m may be 0). Keeps at most max_detections per image (highest scores)."""
        if not len(image_sizes) == len(targets) == len(detections):
            raise ValueError(
                f"image_sizes, targets and detections differ in length: "
                f"{len(image_sizes)}, {len(targets)}, {len(detections)}"
            )
        batch = []
        for size, target, det in zip(image_sizes, targets, detections):
            height, width = (int(v) for v in size)
            gt_boxes = _boxes(target["boxes"], "target")
            gt_labels = self._labels(target["labels"], len(gt_boxes), "target")
            dt_boxes = _boxes(det["boxes"], "detection")
            dt_scores = _to_numpy(det["scores"], np.float64).reshape(-1)
            if dt_scores.shape[0] != len(dt_boxes):
                raise ValueError(f"detection: {len(dt_boxes)} boxes but {dt_scores.shape[0]} scores")
            dt_labels = self._labels(det["labels"], len(dt_boxes), "detection")
            keep = np.argsort(-dt_scores, kind="stable")[: self.max_detections]
            batch.append(((height, width), (gt_boxes, gt_labels), (dt_boxes[keep], dt_scores[keep], dt_labels[keep])))
        for size, gt, dt in batch:  # validated first, so a bad batch adds nothing
            self._sizes.append(size)
            self._gt.append(gt)
            self._dt.append(dt)

    def _coco_dicts(self) -> tuple[dict, list[dict]]:
        """(ground-truth dataset dict, detection annotations) in COCO format."""
        images = [{"id": i + 1, "height": h, "width": w} for i, (h, w) in enumerate(self._sizes)]
        categories = [{"id": k + 1, "name": name} for k, name in enumerate(self.class_names)]
        gt_anns: list[dict] = []
        dt_anns: list[dict] = []
        for image_id, ((gt_boxes, gt_labels), (dt_boxes, dt_scores, dt_labels)) in enumerate(
            zip(self._gt, self._dt), start=1
        ):
            gt_anns += _annotations(gt_boxes, gt_labels, image_id, len(gt_anns) + 1)
            dt_anns += _annotations(dt_boxes, dt_labels, image_id, len(dt_anns) + 1, dt_scores)
        return {"images": images, "categories": categories, "annotations": gt_anns}, dt_anns

    def _empty_metrics(self) -> dict[str, float]:
        metrics = dict.fromkeys(["map", "map_50", "map_75", "map_small", "map_medium", "map_large"], 0.0)
        metrics.update({f"mar_{d}": 0.0 for d in self.max_dets})
        return metrics

    def compute(self) -> dict[str, float]:
        """COCO box metrics over every image added: map (AP@[.5:.95]), map_50, map_75, map_small/medium/large,
        mar_1/mar_10/mar_<max_detections>, ap_<class> per class with ground truth, images and boxes (counts).

        A metric COCOeval leaves undefined (-1, e.g. no small objects) is -1.0. With no ground-truth box at all
        every metric is 0.0 and no ap_<class> key is given."""
        num_boxes = int(sum(len(labels) for _, labels in self._gt))
        counts = {"images": float(len(self)), "boxes": float(num_boxes)}
        if num_boxes == 0:
            return {**self._empty_metrics(), **counts}

        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        gt_dataset, dt_anns = self._coco_dicts()
        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = COCO()
            coco_gt.dataset = gt_dataset
            coco_gt.createIndex()
            # Built by hand rather than with loadRes, which fails on an empty detection list.
            coco_dt = COCO()
            coco_dt.dataset = {"images": gt_dataset["images"], "categories": gt_dataset["categories"]}
            coco_dt.dataset["annotations"] = dt_anns
            coco_dt.createIndex()
            evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
            evaluator.params.maxDets = list(self.max_dets)
            evaluator.evaluate()
            evaluator.accumulate()

        precision = evaluator.eval["precision"]  # [T iou, R recall, K class, A area, M maxDets]
        recall = evaluator.eval["recall"]  # [T, K, A, M]
        iou_thrs = evaluator.params.iouThrs
        i50, i75 = int(np.argmin(np.abs(iou_thrs - 0.5))), int(np.argmin(np.abs(iou_thrs - 0.75)))
        metrics = {
            "map": _mean_valid(precision[:, :, :, 0, -1]),
            "map_50": _mean_valid(precision[i50, :, :, 0, -1]),
            "map_75": _mean_valid(precision[i75, :, :, 0, -1]),
        }
        for a, name in enumerate(AREA_NAMES[1:], start=1):
            metrics[f"map_{name}"] = _mean_valid(precision[:, :, :, a, -1])
        for m, max_det in enumerate(self.max_dets):
            metrics[f"mar_{max_det}"] = _mean_valid(recall[:, :, 0, m])
        cat_ids = list(evaluator.params.catIds)
        for k, name in enumerate(self.class_names):
            ap = _mean_valid(precision[:, :, cat_ids.index(k + 1), 0, -1])
            if ap > -1:  # classes without ground truth: absent, not -1
                metrics[f"ap_{name}"] = ap
        return {**metrics, **counts}


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def per_class_table(metrics: dict[str, float], class_names: list[str]) -> str:
    """Markdown table class | AP (from `ap_<class>` keys), best first; classes without a value show "n/a"."""
    present = [(name, metrics[f"ap_{name}"]) for name in class_names if f"ap_{name}" in metrics]
    present.sort(key=lambda item: -item[1])  # stable: ties keep class order
    absent = [name for name in class_names if f"ap_{name}" not in metrics]
    lines = ["| class | AP |", "| --- | --- |"]
    lines += [f"| {_escape(name)} | {ap:.4f} |" for name, ap in present]
    lines += [f"| {_escape(name)} | n/a |" for name in absent]
    return "\n".join(lines)
