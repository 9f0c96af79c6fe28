"""Image inputs: undecoded image columns checked for corrupt files, decoded lazily per batch, augmented
with albumentations for training only and normalised by the checkpoint's image processor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from hfft.cleaning import SplitReport
from hfft.config import RecipeConfig, option
from hfft.errors import ConfigError, DataError
from hfft.leakage import difference_hash
from hfft.modalities.image.augment import MIX_KEY, ImageAugmentation, ImageCollator, augment, build_pipeline
from hfft.modalities.image.augment import check_augmentation as _check_augmentation
from hfft.modalities.image.io import describe_images, image_name, image_problem, load_image, processor_overrides
from hfft.recipe import Recipe

DESCRIBE_ROWS = 1000  # images whose headers are read for the data report
CV2_INTERPOLATION = {0: 0, 1: 4, 2: 1, 3: 2, 4: 1, 5: 2}  # PIL resample -> cv2 (nearest, lanczos, linear, cubic)


@dataclass
class ImagePreprocessing:
    """How images become `pixel_values` (resize, crop and normalisation come from the image processor)."""

    image_size: int | None = option(
        None,
        "Square input size in pixels instead of the checkpoint's (the processor's resize/crop ratio is kept), "
        "e.g. 64 for fast CPU runs on small images. None: the processor's own size.",
    )


class ImageModality(Recipe):
    """Images (files, bytes, paths or pixel arrays; ViT, ConvNeXt, ResNet, EfficientNet, ...)."""

    modality = "image"
    input_candidates = ("image", "img", "pixel_values")
    folder_builder = "imagefolder"
    Preprocessing = ImagePreprocessing
    Augmentation = ImageAugmentation
    min_image_size: ClassVar[int] = 8  # preprocessing.image_size bound

    @classmethod
    def check_config(cls, config: RecipeConfig) -> None:
        super().check_config(config)
        size = config.preprocessing.image_size
        if size is not None and size < cls.min_image_size:
            raise ConfigError(f"'preprocessing.image_size' must be >= {cls.min_image_size} pixels, got {size}.")
        cls.check_augmentation(config.augmentation)

    @classmethod
    def check_augmentation(cls, aug: Any) -> None:
        """The `augmentation:` section's values (the modality's own dataclass)."""
        _check_augmentation(aug)

    # ------------------------------------------------------------------ data

    @classmethod
    def corruption_suite(cls) -> dict[str, Any]:
        from hfft.modalities.image.corruptions import SUITE

        return SUITE

    def input_columns(self, dataset: Any, where: str) -> dict[str, str]:
        import datasets

        columns = super().input_columns(dataset, where)
        feature = dataset.features[columns["input"]]
        names = ("Sequence", "List", "LargeList", "Array2D", "Array3D")
        arrays = tuple(getattr(datasets, name) for name in names if hasattr(datasets, name))
        is_path = getattr(feature, "dtype", None) in ("string", "large_string")
        if not (isinstance(feature, (datasets.Image, *arrays)) or is_path):
            raise DataError(
                f"{where}: column '{columns['input']}' holds {getattr(feature, 'dtype', feature)} values; image "
                "classification expects images, image file paths or pixel arrays."
            )
        return columns

    def clean(self, dataset: Any, split: str) -> Any:
        import datasets

        column = self.columns["input"]
        feature = dataset.features[column]
        if isinstance(feature, datasets.Image) or getattr(feature, "dtype", None) in ("string", "large_string"):
            dataset = dataset.cast_column(column, datasets.Image(decode=False))  # we decode, and catch errors
        return super().clean(dataset, split)

    def check_batch(self, batch: dict[str, list]) -> list[str | None]:
        return [image_problem(value) for value in batch[self.columns["input"]]]

    def fingerprint_method(self) -> str:
        return "decoded pixels (RGB, upright), so the same picture in two files or formats matches"

    def fingerprints(self, batch: dict[str, list]) -> dict[str, list]:
        """Each image decoded once: a SHA-1 of its RGB pixels and size, and its difference hash (near-duplicates)."""
        import hashlib

        from PIL import Image

        out: dict[str, list] = {"exact": [], "preview": [], "near_hash": []}
        for value in batch[self.columns["input"]]:
            out["preview"].append(image_name(value))
            try:
                pixels = load_image(value, 3)
            except Exception:  # cleaning dropped unreadable images; anything else is not compared
                out["exact"].append(None)
                out["near_hash"].append(None)
                continue
            content = str(pixels.shape).encode() + np.ascontiguousarray(pixels).tobytes()
            out["exact"].append(hashlib.sha1(content).hexdigest())
            out["near_hash"].append(difference_hash(Image.fromarray(pixels).convert("L")))
        return out

    def encode(self, dataset: Any, split: str) -> Any:
        """Nothing is precomputed: images are decoded, augmented and normalised per batch (see transforms)."""
        rows = dataset.select(range(min(DESCRIBE_ROWS, len(dataset))))[self.columns["input"]]
        notes = describe_images(rows)
        if notes:
            notes["model_input"] = "x".join(map(str, self.input_size))
            if len(dataset) > DESCRIBE_ROWS:
                notes["described_rows"] = DESCRIBE_ROWS
            self.report.splits.setdefault(split, SplitReport()).notes.update(notes)
        return dataset

    # ------------------------------------------------------------------ images -> pixel_values

    def load_processor(self, model_path: str) -> Any:
        from transformers import AutoImageProcessor

        try:
            processor = AutoImageProcessor.from_pretrained(model_path, trust_remote_code=self.config.trust_remote_code)
        except (OSError, ValueError) as err:
            raise ConfigError(f"'model': no usable image processor in '{model_path}': {err}") from None
        self.set_processor(processor)
        return processor

    def set_processor(self, processor: Any) -> None:
        """Derive channels, eval resize arguments and the fixed input size from the processor."""
        self.processor = processor
        mean = getattr(processor, "image_mean", None)
        self.channels = 1 if mean is not None and np.size(mean) == 1 else 3
        self.eval_kwargs = processor_overrides(processor, self.config.preprocessing.image_size)
        shapes = {
            tuple(self.normalise([np.zeros((h, w, self.channels), np.uint8)], self.eval_kwargs).shape[-2:])
            for h, w in ((40, 30), (30, 40))
        }
        if len(shapes) != 1:
            raise ConfigError(
                f"the checkpoint's image processor gives inputs of varying size ({shapes}); "
                "set preprocessing.image_size."
            )
        self.input_size: tuple[int, int] = shapes.pop()
        self.pipeline = self.build_augmentation()

    def build_augmentation(self) -> Any:
        """The train-only albumentations pipeline, at the model's input size."""
        interpolation = CV2_INTERPOLATION.get(getattr(self.processor, "resample", 2), 1)
        return build_pipeline(self.config.augmentation, self.input_size, interpolation)

    def normalise(self, images: list[np.ndarray], kwargs: dict[str, Any]) -> Any:
        """The processor's resize/crop (as set by ``kwargs``), rescale and normalisation -> a float tensor."""
        return self.processor(images, return_tensors="pt", input_data_format="channels_last", **kwargs)["pixel_values"]

    def decode(self, batch: dict[str, list]) -> list[np.ndarray]:
        return [load_image(value, self.channels) for value in batch[self.columns["input"]]]

    def eval_transform(self, batch: dict[str, list]) -> dict[str, Any]:
        """Deterministic: the checkpoint's resize, centre crop and normalisation."""
        pixel_values = self.normalise(self.decode(batch), self.eval_kwargs)
        return {"pixel_values": pixel_values, **({"labels": batch["labels"]} if "labels" in batch else {})}

    def train_transform(self, batch: dict[str, list]) -> dict[str, Any]:
        """Random crop/flip/rotation/colour (and policy) at the model's input size, then normalisation."""
        images = augment(self.pipeline, self.decode(batch))
        pixel_values = self.normalise(images, {"do_resize": False, "do_center_crop": False})
        return {"pixel_values": pixel_values, "labels": batch["labels"], MIX_KEY: [True] * len(images)}

    # ------------------------------------------------------------------ training

    @property
    def mixes_targets(self) -> bool:
        aug = self.config.augmentation
        return self.config.regularization.augment and (aug.mixup_alpha > 0 or aug.cutmix_alpha > 0)

    def model_kwargs(self) -> dict[str, Any]:
        """`interpolate_pos_encoding` for ViT-style models fed another size than they were trained at."""
        import inspect

        if self.model is None:
            return {}
        from hfft.modeling import base_model

        base = base_model(self.model)
        trained_at = getattr(base.config, "image_size", None)
        trained_at = tuple(trained_at) if isinstance(trained_at, (list, tuple)) else (trained_at, trained_at)
        accepts = "interpolate_pos_encoding" in inspect.signature(base.forward).parameters
        return {"interpolate_pos_encoding": True} if accepts and trained_at != self.input_size else {}

    def collator(self) -> Any:
        aug = self.config.augmentation
        soft = getattr(self, "soft_targets", None)  # tasks whose targets can be mixed
        mixup, cutmix = (aug.mixup_alpha, aug.cutmix_alpha) if soft else (0.0, 0.0)
        return ImageCollator(self.collate_targets, soft, mixup, cutmix, self.model_kwargs())

    def to_natural(self, value: Any) -> Any:
        from hfft.modalities.image.io import open_image

        return open_image(value).convert("RGB")

    def prepare_inputs(self, inputs: list[Any]) -> dict[str, Any]:
        """Image paths, PIL images or arrays -> {"pixel_values": tensor} (evaluation preprocessing)."""
        images = [load_image(value, self.channels) for value in inputs]
        return {"pixel_values": self.normalise(images, self.eval_kwargs), **self.model_kwargs()}
