"""Images with boxes (object detection): box geometry checked against each image once (clipped or dropped,
counted by reason), bbox-safe albumentations for training, the checkpoint's detection image processor
(resize, normalise, targets as its normalised boxes) for every split."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from hfft.cleaning import SplitReport
from hfft.config import option
from hfft.errors import ConfigError
from hfft.modalities.image.modality import CV2_INTERPOLATION, ImageModality

BOX_EXAMPLES = 20  # file names listed per split in the data report


@dataclass
class BoxAugmentation:
    """Train-only, bbox-safe image augmentation (albumentations; boxes move with the pixels and are clipped)."""

    horizontal_flip: bool = option(True, "Mirror left-right with probability 0.5 (boxes mirrored too).")
    crop_prob: float = option(
        0.5, "With this probability, crop a random window that keeps every box whole (RandomSizedBBoxSafeCrop)."
    )
    scale_limit: float = option(0.2, "Zoom in or out by up to this fraction (boxes scaled; clipped at the border).")
    color_jitter: float = option(0.2, "Vary brightness, contrast and saturation by up to +-this fraction (0: off).")
    blur_prob: float = option(0.1, "Gaussian blur with this probability.")
    min_visibility: float = option(
        0.3, "A box less than this fraction visible after cropping/zooming is removed from that training image."
    )


class BoxesModality(ImageModality):
    """Images with object boxes (COCO instances JSON, Pascal VOC XML, imagefolder + `objects`)."""

    folder_builder = "boxes"  # COCO JSON files; VOC folders; else datasets' imagefolder (metadata.jsonl `objects`)
    Augmentation = BoxAugmentation

    min_image_size = 32

    @classmethod
    def check_augmentation(cls, aug: BoxAugmentation) -> None:
        for key in ("crop_prob", "blur_prob", "min_visibility", "scale_limit", "color_jitter"):
            if not 0.0 <= getattr(aug, key) <= 1.0:
                raise ConfigError(f"'augmentation.{key}' must be in [0, 1], got {getattr(aug, key)}.")

    @classmethod
    def corruption_suite(cls) -> dict[str, Any]:
        from hfft.modalities.image.corruptions import SUITE

        return {name: f for name, f in SUITE.items() if name != "rotation"}  # rotation would move the boxes

    # ------------------------------------------------------------------ boxes against their images

    def clean(self, dataset: Any, split: str) -> Any:
        """Every box checked against its image (read from the file header once): NaN and degenerate boxes and
        boxes wholly outside the image are dropped, boxes partly outside are clipped; both counted, by reason,
        with file names in the data report. Images left without boxes are kept and counted."""
        from hfft.boxes import check_boxes
        from hfft.modalities.image.io import image_name, open_image

        dataset = super().clean(dataset, split)  # unreadable images first (counted by the image modality)
        column, objects = self.columns["input"], self.columns["label"]
        dropped: Counter = Counter()
        clipped, examples, empty = 0, [], 0

        def check(row: dict[str, Any]) -> dict[str, Any]:
            nonlocal clipped, empty
            image = open_image(row[column])
            boxes = np.asarray(row[objects]["bbox"], dtype=np.float64).reshape(-1, 4)
            kept, index, reasons, n_clipped = check_boxes(boxes, image.height, image.width)
            dropped.update(reasons)
            clipped += n_clipped
            if (reasons or n_clipped) and len(examples) < BOX_EXAMPLES:
                examples.append(f"{image_name(row[column])} ({', '.join(reasons + ['clipped'] * n_clipped)})")
            empty += len(kept) == 0
            out = {key: [values[i] for i in index] for key, values in row[objects].items()}
            out["bbox"] = kept.tolist()
            return {objects: out, "image_height": image.height, "image_width": image.width}

        dataset = dataset.map(check, desc=f"checking {split} boxes")
        notes = self.report.splits.setdefault(split, SplitReport()).notes
        notes.update(images_without_boxes=empty, boxes_clipped=clipped, boxes_dropped=dict(dropped))
        if examples:
            notes["box_problems"] = examples
        return dataset

    # ------------------------------------------------------------------ images and boxes -> model inputs

    def set_processor(self, processor: Any) -> None:
        super().set_processor(processor)
        if "size" in self.eval_kwargs:  # saved with the run: `pipeline` and predict resize as training did
            processor.size = self.eval_kwargs.pop("size")

    def build_augmentation(self) -> Any:
        import albumentations as A

        aug, (height, width) = self.config.augmentation, self.input_size
        interpolation = CV2_INTERPOLATION.get(getattr(self.processor, "resample", 2), 1)
        steps: list[Any] = []
        if aug.crop_prob > 0:
            steps.append(A.RandomSizedBBoxSafeCrop(height=height, width=width, interpolation=interpolation,
                                                   p=aug.crop_prob))  # fmt: skip
        if aug.scale_limit > 0:
            steps.append(A.Affine(scale=(1 - aug.scale_limit, 1 + aug.scale_limit), p=0.5))
        if aug.horizontal_flip:
            steps.append(A.HorizontalFlip(p=0.5))
        if aug.color_jitter > 0:
            s = aug.color_jitter
            steps.append(A.ColorJitter(brightness=s, contrast=s, saturation=s, hue=0.0, p=0.8))
        if aug.blur_prob > 0:
            steps.append(A.GaussianBlur(p=aug.blur_prob))
        boxes = A.BboxParams(format="coco", label_fields=["category"], clip=True, min_visibility=aug.min_visibility,
                             min_area=1.0)  # fmt: skip
        return A.Compose(steps, bbox_params=boxes, seed=0)

    def encode_batch(self, images: list[np.ndarray], objects: list[dict[str, Any]]) -> dict[str, Any]:
        """The processor's resize and normalisation, with each image's boxes as its (COCO-format) targets."""
        annotations = [
            {"image_id": i, "annotations": [{"bbox": list(b), "category_id": int(c), "area": float(b[2] * b[3]),
                                             "iscrowd": 0} for b, c in zip(o["bbox"], o["category"])]}
            for i, o in enumerate(objects)
        ]  # fmt: skip
        encoded = self.processor(images=images, annotations=annotations, return_tensors="pt",
                                 input_data_format="channels_last", **self.eval_kwargs)  # fmt: skip
        return {"pixel_values": encoded["pixel_values"], "labels": list(encoded["labels"])}

    def eval_transform(self, batch: dict[str, list]) -> dict[str, Any]:
        images = self.decode(batch)
        if self.columns.get("label") not in batch:
            return {"pixel_values": self.normalise(images, self.eval_kwargs)}
        return self.encode_batch(images, batch[self.columns["label"]])

    def train_transform(self, batch: dict[str, list]) -> dict[str, Any]:
        """Bbox-safe crop, zoom, flip, colour and blur; boxes follow the pixels (clipped, or removed when less
        than `min_visibility` stays in view)."""
        self.pipeline.set_random_seed(int(np.random.randint(2**31 - 1)))  # numpy's RNG is seeded by set_seed
        images, objects = [], []
        for image, target in zip(self.decode(batch), batch[self.columns["label"]]):
            out = self.pipeline(image=image, bboxes=np.asarray(target["bbox"], np.float32).reshape(-1, 4),
                                    category=list(target["category"]))  # fmt: skip
            images.append(out["image"])
            objects.append(
                {"bbox": np.asarray(out["bboxes"]).reshape(-1, 4).tolist(), "category": list(out["category"])}
            )
        return self.encode_batch(images, objects)

    def collator(self) -> Any:
        return BoxCollator()


class BoxCollator:
    """Stacks `pixel_values` (every image has the processor's fixed size) and keeps `labels` as the list of
    per-image target dicts DETR-style models take."""

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        batch = {"pixel_values": torch.stack([f["pixel_values"] for f in features])}
        if "labels" in features[0]:
            batch["labels"] = [f["labels"] for f in features]
        return batch
