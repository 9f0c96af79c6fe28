"""Object detection: boxes and their classes per image, for DETR-family models (DETR, Conditional DETR, RT-DETR,
D-FINE, YOLOS; any `AutoModelForObjectDetection`). Owns the `objects` column (category names kept, ids made
contiguous), the heads, COCO mAP accumulated batch by batch (pycocotools), and the boxes `predict` returns."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from hfft.config import RecipeConfig, option
from hfft.errors import ConfigError, DataError
from hfft.hooks import find_column
from hfft.recipe import Recipe

logger = logging.getLogger("hfft")
OBJECT_CANDIDATES = ("objects", "annotations", "boxes")
# the class and box heads of DETR-family models (top level in DETR/YOLOS, inside the decoder in RT-DETR/D-FINE)
DETECTION_HEADS = ("class_labels_classifier", "bbox_predictor", "class_embed", "bbox_embed", "enc_score_head",
                   "enc_bbox_head", "denoising_class_embed")  # fmt: skip


@dataclass
class DetectionLabels:
    """What the boxes are and how detections are kept."""

    names: list[str] | None = option(
        None, "Class names for integer categories without names (names[i] is category i); None: the ids as names."
    )
    score_threshold: float = option(
        0.5, "predict: keep boxes scoring at least this (mAP is computed over every score, threshold 0)."
    )
    max_detections: int = option(100, "Detections per image kept for mAP and predict (COCO's 100).")
    untrained_baseline: bool = option(
        True,
        "Before training, evaluate the model as loaded (its new class and box heads untrained) on validation and "
        "test: `eval_untrained_map`, ...: the floor fine-tuning is measured against.",
    )


class ObjectDetection(Recipe):
    """Object detection (boxes and classes)."""

    Labels = DetectionLabels
    default_models = {"image": "PekingU/rtdetr_r18vd"}  # loads without timm
    model_classes = {"image": "AutoModelForObjectDetection"}
    primary_metric = "map"
    greater_is_better = True
    robustness_metrics = ("map", "map_50")
    train_eval_rows = 100  # images re-evaluated for the generalisation gap
    default_tuning_method = "full"  # LoRA on detectors is experimental (attention projections + heads)
    predict_batch_size = 8

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.class_names: list[str] = []
        self._evaluator: Any = None

    @classmethod
    def check_config(cls, config: RecipeConfig) -> None:
        super().check_config(config)
        labels, reg = config.labels, config.regularization
        if not 0.0 <= labels.score_threshold <= 1.0:
            raise ConfigError(f"'labels.score_threshold' must be in [0, 1], got {labels.score_threshold}.")
        if labels.max_detections < 1:
            raise ConfigError(f"'labels.max_detections' must be >= 1, got {labels.max_detections}.")
        if reg.class_weights != "none" or reg.balanced_sampler or reg.label_smoothing:
            raise ConfigError(
                "'regularization.class_weights', 'balanced_sampler' and 'label_smoothing' apply to classification; "
                "detection models compute their own matching loss."
            )

    # ------------------------------------------------------------------ targets

    def target_columns(self, dataset: Any, where: str) -> dict[str, str]:
        column = find_column(dataset, self.config.data.label_column, OBJECT_CANDIDATES, "data.label_column", where)
        feature = dataset.features[column]
        inner = feature if isinstance(feature, dict) else getattr(feature, "feature", None)  # Sequence({...})
        if not isinstance(inner, dict) or not {"bbox", "category"} <= set(inner):
            raise DataError(
                f"{where}: column '{column}' holds {feature}; object detection expects per image "
                "{'bbox': [[x, y, width, height], ...] (COCO pixels), 'category': [class, ...]}."
            )
        return {"label": column}

    def check_targets(self, batch: dict[str, list]) -> list[str | None]:
        return ["missing_objects" if value is None else None for value in batch[self.columns["label"]]]

    def category_names(self, dataset: Any, where: str) -> list[str] | None:
        """Names of the categories when the data has them (ClassLabel or labels.names); None: raw values."""
        inner = dataset.features[self.columns["label"]]["category"]
        names = getattr(getattr(inner, "feature", inner), "names", None)
        return list(names) if names else (list(self.config.labels.names) if self.config.labels.names else None)

    def encode_targets(self, splits: dict[str, Any], where: dict[str, str]) -> dict[str, Any]:
        """Categories become contiguous ids 0..K-1 with their names kept (ClassLabel names, strings, or integer
        ids with gaps, sorted); a category of validation/test that train lacks is an error naming the image."""
        column = self.columns["label"]
        named = {role: self.category_names(ds, where[role]) for role, ds in splits.items()}
        objects = {role: ds[column] for role, ds in splits.items()}  # each split's column read once
        values = {
            role: [[named[role][c] if named[role] else c for c in o["category"]] for o in objects[role]]
            for role in splits
        }
        if not self.class_names:
            if named["train"]:
                self.class_names = list(named["train"])
            else:
                seen = {v for row in values["train"] for v in row}
                self.class_names = [str(v) for v in sorted(seen, key=lambda v: (isinstance(v, str), v))]
            if not self.class_names:
                raise DataError(f"{where['train']}: no object in any image; detection needs boxes to learn from.")
        lookup = {name: i for i, name in enumerate(self.class_names)}
        encoded = {}
        for role, ds in splits.items():
            for row, categories in enumerate(values[role]):
                unknown = [c for c in categories if str(c) not in lookup]
                if unknown:
                    from hfft.modalities.image.io import image_name

                    raise DataError(
                        f"{where[role]}: image {row} ({image_name(ds[row][self.columns['input']])}) has category "
                        f"{unknown[0]!r}, which train does not have; train's classes: {', '.join(self.class_names)}."
                    )
            rows = [{"bbox": o["bbox"], "category": [lookup[str(c)] for c in categories]}
                    for o, categories in zip(objects[role], values[role])]  # fmt: skip
            encoded[role] = ds.remove_columns([column]).add_column(column, rows)
        return encoded

    def target_notes(self, dataset: Any) -> dict[str, Any]:
        counts = Counter(self.class_names[c] for o in dataset[self.columns["label"]] for c in o["category"])
        boxes = sum(counts.values())
        return {"images": len(dataset), "boxes": boxes, "boxes_per_class": dict(sorted(counts.items()))}

    # ------------------------------------------------------------------ head

    def configure_head(self, model_config: Any) -> Any:
        model_config.num_labels = len(self.class_names)
        model_config.id2label = dict(enumerate(self.class_names))
        model_config.label2id = {name: i for i, name in enumerate(self.class_names)}
        return model_config

    def head_modules(self, model: Any) -> list[str]:
        """The class and box heads (new for these classes): trained in full and saved beside LoRA adapters."""
        found = [name for name, _ in model.named_modules() if name.split(".")[-1] in DETECTION_HEADS]
        found = [n for n in found if not any(n.startswith(f"{other}.") for other in found)]
        if not found:
            raise ConfigError(f"no detection head ({', '.join(DETECTION_HEADS)}) found in {type(model).__name__}.")
        return found

    def frozen_trainable(self, model: Any) -> list[str]:
        """`tuning.method: freeze`: everything but the backbone (transformer encoder/decoder and heads)."""
        backbone = [n for n, _ in model.named_modules() if n.split(".")[-1] == "backbone"]
        if not backbone:
            raise ConfigError(f"no backbone module found in {type(model).__name__}; use tuning.method: full.")
        owners = {name.rsplit(".", 1)[0] for name, _ in model.named_parameters()}
        return sorted(o for o in owners if not o.startswith(f"{backbone[0]}.") and o != backbone[0])

    def training_defaults(self) -> dict[str, Any]:
        # metrics from each batch's kept detections: evaluation memory stays flat on large sets
        return {"batch_eval_metrics": True, "per_device_eval_batch_size": 8}

    def pretrained_metrics(self, trainer: Any, encoded: dict[str, Any]) -> dict[str, float]:
        """mAP of the model before training (labels.untrained_baseline), on validation and test."""
        if not self.config.labels.untrained_baseline:
            return {}
        metrics = {}
        for split, prefix in (("validation", "eval"), ("test", "test")):
            if split in encoded:
                output = trainer.predict(
                    self.with_eval_transform(encoded[split]), metric_key_prefix=f"{prefix}_untrained"
                )
                metrics.update({k: v for k, v in output.metrics.items() if not k.endswith(("runtime", "per_second"))})
        return metrics

    # ------------------------------------------------------------------ detections and metrics

    def detections(self, outputs: Any, sizes: Any, threshold: float = 0.0) -> list[dict[str, Any]]:
        """The checkpoint processor's post-processing: per image, xyxy pixel boxes, scores and class ids."""
        import torch

        results = self.processor.post_process_object_detection(outputs, threshold=threshold, target_sizes=sizes)
        out = []
        for r in results:
            keep = torch.argsort(r["scores"], descending=True)[: self.config.labels.max_detections]
            out.append({k: r[k][keep] for k in ("boxes", "scores", "labels")})
        return out

    def preprocess_logits(self, logits: Any, labels: Any) -> Any:
        """Each image's top detections as rows [x1, y1, x2, y2, score, class] in original-image pixels (padded
        with score -1): all that mAP needs of the model's outputs."""
        import torch

        tensors = [t for t in (logits if isinstance(logits, tuple) else (logits,)) if torch.is_tensor(t)]
        index = next(i for i in range(len(tensors) - 1) if tensors[i].ndim == 3 and tensors[i + 1].shape[-1] == 4)
        outputs = SimpleNamespace(logits=tensors[index].float(), pred_boxes=tensors[index + 1].float())
        sizes = torch.stack([target["orig_size"] for target in labels]).to(tensors[index].device)
        rows = torch.full((len(sizes), self.config.labels.max_detections, 6), -1.0, device=sizes.device)
        for i, found in enumerate(self.detections(outputs, sizes)):
            n = len(found["scores"])
            rows[i, :n] = torch.cat([found["boxes"], found["scores"][:, None], found["labels"][:, None].float()], 1)
        return rows

    def compute_metrics(self, eval_pred: Any, compute_result: bool = True) -> dict[str, float]:
        """COCO metrics (pycocotools) accumulated batch by batch (`batch_eval_metrics`), reported on the last."""
        from hfft.boxes import cxcywh_normalized_to_xyxy
        from hfft.metrics_detection import DetectionEvaluator

        if self._evaluator is None:
            self._evaluator = DetectionEvaluator(self.class_names, self.config.labels.max_detections)
        rows = np.asarray(
            eval_pred.predictions.cpu() if hasattr(eval_pred.predictions, "cpu") else eval_pred.predictions
        )
        sizes, targets, found = [], [], []
        for row, target in zip(rows, eval_pred.label_ids):
            height, width = (int(v) for v in target["orig_size"])
            boxes = np.asarray(target["boxes"].cpu(), dtype=np.float64).reshape(-1, 4)
            sizes.append((height, width))
            targets.append({"boxes": cxcywh_normalized_to_xyxy(boxes, height, width),
                            "labels": np.asarray(target["class_labels"].cpu(), dtype=int)})  # fmt: skip
            kept = row[row[:, 4] >= 0]
            found.append({"boxes": kept[:, :4], "scores": kept[:, 4], "labels": kept[:, 5].astype(int)})
        self._evaluator.add(sizes, targets, found)
        if not compute_result:
            return {}
        metrics = self._evaluator.compute()
        self._evaluator = None
        return metrics

    # ------------------------------------------------------------------ predictions and outputs

    def predict_batch(self, inputs: list[Any]) -> list[dict[str, Any]]:
        """Boxes of images (paths, PIL images or arrays): {"boxes": [{"label", "score", "box": [x1, y1, x2, y2]}]}
        per image, in the image's pixels, scoring at least labels.score_threshold, best first."""
        import torch

        from hfft.modalities.image.io import load_image

        images = [load_image(value, self.channels) for value in inputs]
        pixels = self.normalise(images, self.eval_kwargs).to(next(self.model.parameters()).device)
        with torch.no_grad():
            outputs = self.model(pixel_values=pixels)
        sizes = torch.tensor([image.shape[:2] for image in images])
        return [
            {"boxes": [{"label": self.class_names[int(c)], "score": round(float(s), 4),
                        "box": [round(float(v), 1) for v in b]}
                       for b, s, c in zip(found["boxes"], found["scores"], found["labels"])]}
            for found in self.detections(outputs, sizes, self.config.labels.score_threshold)
        ]  # fmt: skip

    def draw_boxes(self, image: Any, boxes: list[dict[str, Any]], out_dir: Path) -> Path:
        """``image`` (a path) with ``boxes`` (as `predict` returns them) drawn and labelled, saved as
        ``out_dir/<name>.png``."""
        from PIL import ImageDraw

        from hfft.modalities.image.io import open_image

        canvas = open_image(image).convert("RGB")
        draw = ImageDraw.Draw(canvas)
        for box in boxes:
            draw.rectangle(box["box"], outline=(255, 40, 40), width=max(1, round(min(canvas.size) / 150)))
            draw.text((box["box"][0] + 2, box["box"][1] + 1), f"{box['label']} {box['score']:.2f}", fill=(255, 40, 40))
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{Path(str(image)).stem}.png"
        canvas.save(path)
        return path

    def task_info(self) -> dict[str, Any]:
        return {"labels": self.class_names}

    def restore_task(self, info: dict[str, Any]) -> None:
        self.class_names = list(info["labels"])

    def write_task_outputs(self, out: Path) -> list[str]:
        lines = [f"- classes ({len(self.class_names)}): {', '.join(self.class_names)}"]
        metrics = {}
        for split, output in self.predictions.items():
            metrics[split] = {k[len(split) + 1 :]: v for k, v in output.metrics.items() if k.startswith(f"{split}_ap_")}
        if any(metrics.values()):
            import json

            (out / "per_class_ap.json").write_text(json.dumps(metrics, indent=2))
            lines.append("- COCO AP@[.5:.95] per class: `per_class_ap.json`")
        return lines
