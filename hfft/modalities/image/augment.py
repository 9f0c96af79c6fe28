"""Train-only image augmentation (albumentations) and mixup/cutmix batching.

albumentations works on numpy arrays and needs no torch, so it cannot clash with this
torch build (PyPI torchvision can: it breaks every transformers model import here).
All randomness is drawn from the global numpy RNG, which `transformers.set_seed` seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from hfft.config import option
from hfft.errors import ConfigError

MIX_KEY = "hfft_mix"  # set on rows from the train transform: the collator mixes only those


@dataclass
class ImageAugmentation:
    """Train-only image augmentation (applied when regularization.augment is true)."""

    crop_scale_min: float = option(
        0.6,
        "RandomResizedCrop: keep a random crop of this fraction (up to 1) of the image area, aspect ratio "
        "3/4 to 4/3, resized to the model's input size. 1.0: plain resize, no cropping. Multi-label: a crop can "
        "cut an object out while its label stays on; keep this high (e.g. 0.85) when objects sit near edges.",
    )
    horizontal_flip: bool = option(
        True, "Mirror left-right with probability 0.5. Switch off for digits, text and other handed data."
    )
    rotation_degrees: float = option(10.0, "Rotate by a uniform random angle in +-this many degrees (0: off).")
    color_jitter: float = option(
        0.2, "Vary brightness, contrast and saturation by up to +-this fraction, hue by a quarter of it (0: off)."
    )
    policy: Literal["none", "trivialaugment", "randaugment"] = option(
        "none",
        "Extra random policy over 14 ops (identity, shear x/y, translate x/y, rotate, brightness, contrast, "
        "saturation, sharpness, posterize, solarize, equalize, autocontrast): `trivialaugment` applies one "
        "per image, `randaugment` applies `policy_ops` distinct ones; strengths uniform up to `policy_magnitude`.",
    )
    policy_ops: int = option(2, "Number of policy ops per image for `randaugment`.")
    policy_magnitude: float = option(0.5, "Policy strength in (0, 1]; 1 is TrivialAugment-Wide's range.")
    mixup_alpha: float = option(
        0.0, "Mixup: blend pairs of training images and their labels, weight ~ Beta(alpha, alpha) (0: off; e.g. 0.2)."
    )
    cutmix_alpha: float = option(
        0.0,
        "CutMix: paste a box from another training image, labels mixed by area (0: off; e.g. 1.0). With "
        "mixup also on, each batch uses one of the two at random.",
    )


def check_augmentation(aug: ImageAugmentation) -> None:
    """Reject meaningless augmentation values at config time."""
    checks = [
        (0.0 < aug.crop_scale_min <= 1.0, "crop_scale_min", "in (0, 1]", aug.crop_scale_min),
        (0.0 <= aug.rotation_degrees <= 180.0, "rotation_degrees", "in [0, 180]", aug.rotation_degrees),
        (0.0 <= aug.color_jitter < 1.0, "color_jitter", "in [0, 1)", aug.color_jitter),
        (1 <= aug.policy_ops <= 14, "policy_ops", "in [1, 14]", aug.policy_ops),
        (0.0 < aug.policy_magnitude <= 1.0, "policy_magnitude", "in (0, 1]", aug.policy_magnitude),
        (aug.mixup_alpha >= 0.0, "mixup_alpha", ">= 0", aug.mixup_alpha),
        (aug.cutmix_alpha >= 0.0, "cutmix_alpha", ">= 0", aug.cutmix_alpha),
    ]
    for ok, key, expected, value in checks:
        if not ok:
            raise ConfigError(f"'augmentation.{key}' must be {expected}, got {value}.")


def policy_transforms(magnitude: float) -> list[Any]:
    """The policy's ops (each always applied when chosen), strengths scaled by ``magnitude``."""
    import albumentations as A
    import cv2

    m = magnitude
    reflect = cv2.BORDER_REFLECT_101
    return [
        A.NoOp(p=1),
        A.Affine(shear={"x": (-30 * m, 30 * m), "y": (0, 0)}, border_mode=reflect, p=1),
        A.Affine(shear={"x": (0, 0), "y": (-30 * m, 30 * m)}, border_mode=reflect, p=1),
        A.Affine(translate_percent={"x": (-0.3 * m, 0.3 * m), "y": (0, 0)}, border_mode=reflect, p=1),
        A.Affine(translate_percent={"x": (0, 0), "y": (-0.3 * m, 0.3 * m)}, border_mode=reflect, p=1),
        A.Affine(rotate=(-30 * m, 30 * m), border_mode=reflect, p=1),
        A.RandomBrightnessContrast(brightness_limit=0.9 * m, contrast_limit=0, p=1),
        A.RandomBrightnessContrast(brightness_limit=0, contrast_limit=0.9 * m, p=1),
        A.ColorJitter(brightness=0, contrast=0, saturation=0.9 * m, hue=0, p=1),
        A.Sharpen(alpha=(0.0, m), lightness=(1.0, 1.0), p=1),
        A.Posterize(num_bits=(max(2, round(8 - 6 * m)), 8), p=1),
        A.Solarize(threshold_range=(1.0 - m, 1.0), p=1),
        A.Equalize(p=1),
        A.AutoContrast(p=1),
    ]


def build_pipeline(aug: ImageAugmentation, size: tuple[int, int], interpolation: int = 1) -> Any:
    """An albumentations Compose producing ``size`` (height, width) uint8 images."""
    import albumentations as A
    import cv2

    steps: list[Any] = []
    if aug.crop_scale_min < 1.0:
        steps.append(A.RandomResizedCrop(size=size, scale=(aug.crop_scale_min, 1.0), interpolation=interpolation))
    else:
        steps.append(A.Resize(*size, interpolation=interpolation))
    if aug.horizontal_flip:
        steps.append(A.HorizontalFlip(p=0.5))
    if aug.rotation_degrees > 0:
        limit = (-aug.rotation_degrees, aug.rotation_degrees)
        steps.append(A.Affine(rotate=limit, border_mode=cv2.BORDER_REFLECT_101, p=1))
    if aug.color_jitter > 0:
        s = aug.color_jitter
        steps.append(A.ColorJitter(brightness=s, contrast=s, saturation=s, hue=min(s / 4, 0.5), p=1))
    if aug.policy == "trivialaugment":
        steps.append(A.OneOf(policy_transforms(aug.policy_magnitude), p=1))
    elif aug.policy == "randaugment":
        steps.append(A.SomeOf(policy_transforms(aug.policy_magnitude), n=aug.policy_ops, replace=False, p=1))
    return A.Compose(steps, seed=0)


def augment(pipeline: Any, images: list[np.ndarray]) -> list[np.ndarray]:
    """Apply ``pipeline`` to HxWxC uint8 arrays, seeded from numpy's global RNG (reproducible runs)."""
    pipeline.set_random_seed(int(np.random.randint(2**31 - 1)))
    out = []
    for image in images:
        result = pipeline(image=image)["image"]
        out.append(result[..., None] if result.ndim == 2 else result)
    return out


def mix_batch(pixel_values: Any, targets: Any, mixup_alpha: float, cutmix_alpha: float) -> tuple:
    """Mixup or CutMix of a batch with a shuffled copy of itself. ``targets``: float rows (one-hot class
    ids or multi-hot label sets), mixed with the same weight as the pixels."""
    import torch

    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or np.random.rand() < 0.5)
    alpha = cutmix_alpha if use_cutmix else mixup_alpha
    lam = float(np.random.beta(alpha, alpha))
    perm = torch.from_numpy(np.random.permutation(len(targets)))
    if use_cutmix:
        height, width = pixel_values.shape[-2:]
        cut_h, cut_w = int(height * np.sqrt(1 - lam)), int(width * np.sqrt(1 - lam))
        cy, cx = np.random.randint(height), np.random.randint(width)
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
        pixel_values = pixel_values.clone()
        pixel_values[:, :, y0:y1, x0:x1] = pixel_values[perm, :, y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / (height * width)
    else:
        pixel_values = lam * pixel_values + (1 - lam) * pixel_values[perm]
    return pixel_values, lam * targets + (1 - lam) * targets[perm]


class ImageCollator:
    """Stacks `pixel_values` and the task's `labels`; mixes batches of training rows when mixup/cutmix is on."""

    def __init__(
        self,
        collate_targets: Any,
        soft_targets: Any = None,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        extra: dict | None = None,
    ) -> None:
        self.collate_targets, self.soft_targets = collate_targets, soft_targets  # task functions
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.extra = dict(extra or {})  # constant model keyword arguments, e.g. interpolate_pos_encoding

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        pixel_values = torch.stack([torch.as_tensor(row["pixel_values"]) for row in rows])
        labels = self.collate_targets(rows) if "labels" in rows[0] else None
        if labels is not None and rows[0].get(MIX_KEY) and (self.mixup_alpha > 0 or self.cutmix_alpha > 0):
            targets = self.soft_targets(labels)
            pixel_values, labels = mix_batch(pixel_values, targets, self.mixup_alpha, self.cutmix_alpha)
        if labels is None:
            return {"pixel_values": pixel_values, **self.extra}
        return {"pixel_values": pixel_values, "labels": labels, **self.extra}
