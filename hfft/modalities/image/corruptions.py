"""The image corruption suite for `hfft robustness`: functions ``(value, severity, rng) -> value`` on the
natural form of image: an RGB `PIL.Image`, strength growing with the severity (1..5)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from hfft.corruptions import Corruption, level


def _rgb_array(image: Any) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def _to_image(array: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def gaussian_noise(image: Any, severity: int, rng: np.random.Generator) -> Any:
    sigma = level((0.04, 0.08, 0.12, 0.18, 0.26), severity) * 255
    array = _rgb_array(image)
    return _to_image(array + rng.normal(0, sigma, array.shape))


def gaussian_blur(image: Any, severity: int, rng: np.random.Generator) -> Any:
    from PIL import ImageFilter

    radius = level((0.3, 0.6, 1.0, 1.5, 2.2), severity) * min(image.size) / 32
    return image.convert("RGB").filter(ImageFilter.GaussianBlur(radius))


def contrast(image: Any, severity: int, rng: np.random.Generator) -> Any:
    from PIL import ImageEnhance

    return ImageEnhance.Contrast(image.convert("RGB")).enhance(level((0.7, 0.5, 0.4, 0.3, 0.15), severity))


def brightness(image: Any, severity: int, rng: np.random.Generator) -> Any:
    """Darkening (factor < 1): brightening saturates white-background images to nothing."""
    from PIL import ImageEnhance

    return ImageEnhance.Brightness(image.convert("RGB")).enhance(level((0.8, 0.6, 0.45, 0.3, 0.2), severity))


def jpeg(image: Any, severity: int, rng: np.random.Generator) -> Any:
    from PIL import Image

    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=int(level((60, 30, 18, 10, 5), severity)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def rotation(image: Any, severity: int, rng: np.random.Generator) -> Any:
    degrees = level((5, 10, 15, 22, 30), severity) * rng.choice((-1, 1))
    return image.convert("RGB").rotate(float(degrees), resample=2)  # 2 = bilinear


def occlusion(image: Any, severity: int, rng: np.random.Generator) -> Any:
    """A grey square covering a growing fraction of the side, at a random position."""
    array = _rgb_array(image)
    h, w = array.shape[:2]
    side = max(1, int(level((0.15, 0.25, 0.35, 0.45, 0.55), severity) * min(h, w)))
    top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    array[top : top + side, left : left + side] = 127.0
    return _to_image(array)


SUITE: dict[str, Corruption] = {
    "gaussian_noise": gaussian_noise,
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
    "brightness": brightness,
    "jpeg": jpeg,
    "rotation": rotation,
    "occlusion": occlusion,
}
