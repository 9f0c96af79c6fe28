"""Bounding-box formats and sanity checks (numpy only).

The detection task keeps ONE internal format: COCO ``[x, y, w, h]`` in pixels (top-left corner, width, height).
Other formats are converted at load (``xyxy`` = ``[x1, y1, x2, y2]`` pixel corners; ``cxcywh`` normalized =
``[cx, cy, w, h]`` divided by the image width/height, as DETR-style models expect).
All converters take ``[n, 4]`` arrays or nested lists (``n`` may be 0) and return float arrays of shape ``(n, 4)``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

DROP_REASONS = ("nan_box", "degenerate_box", "outside_image")
MIN_AREA = 1.0  # px²: smaller boxes (after clipping) are dropped as degenerate


def _as_boxes(boxes: Any) -> np.ndarray:
    """``boxes`` as a float array of shape (n, 4); keeps a floating numpy dtype, else float64."""
    arr = np.asarray(boxes)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if arr.size == 0:
        return arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"expected boxes of shape (n, 4), got shape {arr.shape}")
    return arr


def _check_size(height: float, width: float) -> None:
    if not (height > 0 and width > 0):
        raise ValueError(f"image height and width must be > 0, got height={height}, width={width}")


def xywh_to_xyxy(boxes: Any) -> np.ndarray:
    """COCO ``[x, y, w, h]`` -> ``[x1, y1, x2, y2]`` (same units)."""
    b = _as_boxes(boxes)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def xyxy_to_xywh(boxes: Any) -> np.ndarray:
    """``[x1, y1, x2, y2]`` -> COCO ``[x, y, w, h]`` (same units)."""
    b = _as_boxes(boxes)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def xywh_to_cxcywh_normalized(boxes: Any, height: float, width: float) -> np.ndarray:
    """COCO ``[x, y, w, h]`` pixels -> ``[cx, cy, w, h]`` as fractions of the image width / height."""
    _check_size(height, width)
    b = _as_boxes(boxes)
    scale = np.array([width, height, width, height], dtype=b.dtype)
    return np.concatenate([b[:, :2] + b[:, 2:] / 2, b[:, 2:]], axis=1) / scale


def cxcywh_normalized_to_xyxy(boxes: Any, height: float, width: float) -> np.ndarray:
    """``[cx, cy, w, h]`` fractions of the image -> ``[x1, y1, x2, y2]`` pixels."""
    _check_size(height, width)
    b = _as_boxes(boxes)
    scale = np.array([width, height, width, height], dtype=b.dtype)
    b = b * scale
    return np.concatenate([b[:, :2] - b[:, 2:] / 2, b[:, :2] + b[:, 2:] / 2], axis=1)


def check_boxes(
    boxes_xywh: Any, image_height: float, image_width: float, mode: Literal["clip", "drop"] = "clip"
) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """Validate COCO pixel boxes against an image of ``image_height`` x ``image_width``.

    Returns ``(kept, kept_indices, dropped_reasons, clipped)``: the kept boxes (xywh float32, clipped to
    ``[0, W] x [0, H]``), their indices into the input (int64), one reason per dropped box in input order, and
    the number of kept boxes that clipping changed. Reasons: ``"nan_box"`` (a NaN/inf coordinate),
    ``"degenerate_box"`` (w <= 0 or h <= 0 as given, or area < 1 px² after clipping), ``"outside_image"``
    (no overlap with the image; with ``mode="drop"`` also any box reaching outside it).
    """
    if mode not in ("clip", "drop"):
        raise ValueError(f"mode must be 'clip' or 'drop', got {mode!r}")
    _check_size(image_height, image_width)
    b = _as_boxes(boxes_xywh).astype(np.float64)
    n = len(b)
    reason = np.full(n, "", dtype=object)

    nan = ~np.isfinite(b).all(axis=1)
    reason[nan] = "nan_box"
    with np.errstate(invalid="ignore"):
        x1, y1 = b[:, 0], b[:, 1]
        x2, y2 = x1 + b[:, 2], y1 + b[:, 3]
        open_ = reason == ""
        degenerate = open_ & ((b[:, 2] <= 0) | (b[:, 3] <= 0))
        reason[degenerate] = "degenerate_box"
        open_ = reason == ""
        outside = open_ & ((x2 <= 0) | (y2 <= 0) | (x1 >= image_width) | (y1 >= image_height))
        reason[outside] = "outside_image"
        open_ = reason == ""
        partial = open_ & ((x1 < 0) | (y1 < 0) | (x2 > image_width) | (y2 > image_height))
        if mode == "drop":
            reason[partial] = "outside_image"
        cx1, cy1 = np.clip(x1, 0, image_width), np.clip(y1, 0, image_height)
        cx2, cy2 = np.clip(x2, 0, image_width), np.clip(y2, 0, image_height)
        open_ = reason == ""
        small = open_ & ((cx2 - cx1) * (cy2 - cy1) < MIN_AREA)
        reason[small] = "degenerate_box"

    keep = reason == ""
    kept = np.stack([cx1, cy1, cx2 - cx1, cy2 - cy1], axis=1)[keep].astype(np.float32).reshape(-1, 4)
    kept_indices = np.flatnonzero(keep).astype(np.int64)
    dropped = [str(r) for r in reason[~keep]]
    clipped = int(np.count_nonzero(partial & keep))
    return kept, kept_indices, dropped, clipped
