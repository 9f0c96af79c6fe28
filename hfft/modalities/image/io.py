"""Reading images from any column form (file, bytes, array, PIL) and fitting them to the processor.

Dataset image columns are kept undecoded (`datasets.Image(decode=False)`: a dict of
``bytes``/``path``), so a corrupt file is found by `image_problem` and dropped during
cleaning instead of crashing the `datasets` decoder mid-training.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from typing import Any

import numpy as np

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def image_name(value: Any) -> str:
    """A human-readable name for an image value (its file path where known)."""
    if isinstance(value, dict) and value.get("path"):
        return str(value["path"])
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    if isinstance(value, dict) and value.get("bytes") is not None:
        return f"<embedded image, {len(value['bytes'])} bytes>"
    return f"<{type(value).__name__}>"


def open_image(value: Any) -> Any:
    """Open (lazily: header only) a PIL image from a path, ``{"bytes", "path"}`` dict, array or PIL image."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict):
        if value.get("bytes") is not None:
            return Image.open(io.BytesIO(value["bytes"]))
        if value.get("path"):
            return Image.open(value["path"])
        raise ValueError("image value holds neither bytes nor a path")
    if isinstance(value, (str, os.PathLike)):
        return Image.open(value)
    return Image.fromarray(array_to_uint8(np.asarray(value)))


def array_to_uint8(array: np.ndarray) -> np.ndarray:
    """An image array as HxW or HxWxC uint8: channels-first is transposed, floats in [0, 1] scaled to 255."""
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = array.transpose(1, 2, 0)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or array.size == 0 or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(f"image array of shape {array.shape}: expected HxW, HxWxC or CxHxW with C in 1, 3, 4")
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating) and array.size and float(np.nanmax(array)) <= 1.0:
        array = array * 255.0
    return np.clip(np.nan_to_num(array), 0, 255).astype(np.uint8)


def image_problem(value: Any) -> str | None:
    """None when the image decodes completely, else a cleaning reason naming the file."""
    if value is None:
        return "missing_image"
    try:
        image = open_image(value)
        image.load()  # a full decode: truncated files pass a header check but fail here
        if image.width == 0 or image.height == 0:
            raise ValueError("empty image")
    except Exception:  # PIL raises OSError, ValueError, SyntaxError, DecompressionBombError, ...
        return f"corrupt_image: {image_name(value)}"
    return None


def to_mode(image: Any, channels: int) -> Any:
    """Upright 8-bit RGB (channels=3) or L (channels=1); transparency composited onto white."""
    from PIL import Image, ImageOps

    image = ImageOps.exif_transpose(image)
    if image.mode in SIXTEEN_BIT_MODES:
        image = Image.fromarray((np.asarray(image, dtype=np.float64) / 257.0).clip(0, 255).astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    target = "L" if channels == 1 else "RGB"
    return image if image.mode == target else image.convert(target)


def load_image(value: Any, channels: int = 3) -> np.ndarray:
    """Decode ``value`` to an HxWxC uint8 array with the model's number of channels."""
    array = np.asarray(to_mode(open_image(value), channels))
    return array[..., None] if array.ndim == 2 else array


def describe_images(values: list[Any]) -> dict[str, Any]:
    """Modes and size range of some images (headers only), for the data report."""
    modes: Counter = Counter()
    widths, heights = [], []
    for value in values:
        try:
            image = open_image(value)
        except Exception:
            continue
        modes[image.mode] += 1
        widths.append(image.width)
        heights.append(image.height)
    if not widths:
        return {}
    return {
        "image_modes": dict(modes),
        "image_sizes": f"{min(widths)}x{min(heights)} to {max(widths)}x{max(heights)} (WxH)",
    }


def _edges(size: Any) -> tuple[int | None, int | None, int | None]:
    get = size.get if isinstance(size, dict) else lambda k: getattr(size, k, None)
    return get("height"), get("width"), get("shortest_edge")


def processor_overrides(processor: Any, image_size: int | None) -> dict[str, Any]:
    """Keyword arguments for ``processor(...)`` giving square ``image_size`` outputs (None: its own size).

    Keeps the processor's own resize-then-crop ratio (e.g. 256 -> 224, or ConvNeXt's ``crop_pct``).
    """
    size = getattr(processor, "size", None) or {}
    height, width, shortest = _edges(size)
    crop = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop", False) else None
    fixed = (height and width) or crop or hasattr(processor, "crop_pct")
    if image_size is None:
        return {} if fixed else {"size": {"height": shortest, "width": shortest}}
    if hasattr(processor, "crop_pct") and shortest:
        return {"size": {"shortest_edge": image_size}}
    if crop:
        crop_h, crop_w, crop_se = _edges(crop)
        ratio = (shortest or height) / (crop_se or crop_h)
        resized = round(image_size * ratio)
        new_size = {"shortest_edge": resized} if shortest else {"height": resized, "width": resized}
        return {"size": new_size, "crop_size": {"height": image_size, "width": image_size}}
    return {"size": {"height": image_size, "width": image_size}}
