"""Per-modality corruption suites at severities 1..5, for `hfft robustness`.

Every corruption is a function ``(value, severity, rng) -> value`` on the modality's natural
form (text: ``str``; image: RGB ``PIL.Image``; audio: ``(float32 mono array, sampling_rate)``).
``rng`` is a ``numpy.random.Generator`` seeded per row, so results are reproducible.
Severity tables are chosen so that strength grows monotonically with the severity.
"""

from __future__ import annotations

import io
import string
from collections.abc import Callable
from typing import Any

import numpy as np

SEVERITIES = (1, 2, 3, 4, 5)
Corruption = Callable[[Any, int, np.random.Generator], Any]


def _level(table: tuple[float, ...], severity: int) -> float:
    if not 1 <= severity <= len(table):
        raise ValueError(f"severity must be in 1..{len(table)}, got {severity}")
    return table[severity - 1]


# ----------------------------------------------------------------------------- text


def char_typos(text: str, severity: int, rng: np.random.Generator) -> str:
    """Keyboard-style noise: each letter swapped with its neighbour, dropped or preceded by a stray letter."""
    rate = _level((0.02, 0.05, 0.1, 0.15, 0.25), severity)
    chars, out, i = list(text), [], 0
    while i < len(chars):
        c = chars[i]
        if c.isalpha() and rng.random() < rate:
            op = rng.integers(3)
            if op == 0 and i + 1 < len(chars):
                out += [chars[i + 1], c]
                i += 2
                continue
            if op == 2:
                out += [string.ascii_lowercase[rng.integers(26)], c]
        else:
            out.append(c)
        i += 1
    return "".join(out)


def casing(text: str, severity: int, rng: np.random.Generator) -> str:
    """Words upper-cased, lower-cased or swap-cased at random."""
    rate = _level((0.1, 0.25, 0.5, 0.75, 1.0), severity)
    changes = (str.upper, str.lower, str.swapcase)
    return " ".join(changes[rng.integers(3)](w) if rng.random() < rate else w for w in text.split(" "))


def word_dropout(text: str, severity: int, rng: np.random.Generator) -> str:
    """Each word removed with a probability (at least one word is kept)."""
    rate = _level((0.05, 0.1, 0.2, 0.3, 0.45), severity)
    words = text.split()
    kept = [w for w in words if rng.random() >= rate]
    return " ".join(kept or words[:1])


# ----------------------------------------------------------------------------- image


def _rgb_array(image: Any) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def _to_image(array: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def gaussian_noise(image: Any, severity: int, rng: np.random.Generator) -> Any:
    sigma = _level((0.04, 0.08, 0.12, 0.18, 0.26), severity) * 255
    array = _rgb_array(image)
    return _to_image(array + rng.normal(0, sigma, array.shape))


def gaussian_blur(image: Any, severity: int, rng: np.random.Generator) -> Any:
    from PIL import ImageFilter

    radius = _level((0.3, 0.6, 1.0, 1.5, 2.2), severity) * min(image.size) / 32
    return image.convert("RGB").filter(ImageFilter.GaussianBlur(radius))


def contrast(image: Any, severity: int, rng: np.random.Generator) -> Any:
    from PIL import ImageEnhance

    return ImageEnhance.Contrast(image.convert("RGB")).enhance(_level((0.7, 0.5, 0.4, 0.3, 0.15), severity))


def brightness(image: Any, severity: int, rng: np.random.Generator) -> Any:
    """Darkening (factor < 1): brightening saturates white-background images to nothing."""
    from PIL import ImageEnhance

    return ImageEnhance.Brightness(image.convert("RGB")).enhance(_level((0.8, 0.6, 0.45, 0.3, 0.2), severity))


def jpeg(image: Any, severity: int, rng: np.random.Generator) -> Any:
    from PIL import Image

    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=int(_level((60, 30, 18, 10, 5), severity)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def rotation(image: Any, severity: int, rng: np.random.Generator) -> Any:
    degrees = _level((5, 10, 15, 22, 30), severity) * rng.choice((-1, 1))
    return image.convert("RGB").rotate(float(degrees), resample=2)  # 2 = bilinear


def occlusion(image: Any, severity: int, rng: np.random.Generator) -> Any:
    """A grey square covering a growing fraction of the side, at a random position."""
    array = _rgb_array(image)
    h, w = array.shape[:2]
    side = max(1, int(_level((0.15, 0.25, 0.35, 0.45, 0.55), severity) * min(h, w)))
    top, left = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    array[top : top + side, left : left + side] = 127.0
    return _to_image(array)


# ----------------------------------------------------------------------------- audio


def additive_noise(audio: tuple[np.ndarray, int], severity: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """White noise at a decreasing signal-to-noise ratio (30 dB down to 0 dB)."""
    wave, rate = audio
    snr_db = _level((30, 20, 10, 5, 0), severity)
    power = float(np.mean(wave.astype(np.float64) ** 2)) or 1e-10
    noise = rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), wave.shape)
    return (wave + noise).astype(np.float32), rate


def gain(audio: tuple[np.ndarray, int], severity: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Louder with clipping at +-1 (quieter is undone by most feature extractors' normalisation)."""
    wave, rate = audio
    peak = float(np.max(np.abs(wave))) or 1.0
    factor = _level((1.5, 2.5, 4.0, 7.0, 12.0), severity) / peak
    return np.clip(wave * factor, -1.0, 1.0).astype(np.float32), rate


def time_shift(audio: tuple[np.ndarray, int], severity: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Delay or advance by a growing fraction of the clip, filling with silence."""
    wave, rate = audio
    shift = int(_level((0.05, 0.1, 0.2, 0.3, 0.4), severity) * len(wave)) * int(rng.choice((-1, 1)))
    out = np.zeros_like(wave)
    if shift >= 0:
        out[shift:] = wave[: len(wave) - shift]
    else:
        out[:shift] = wave[-shift:]
    return out, rate


def band_limit(audio: tuple[np.ndarray, int], severity: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Telephone-like: resample down to a lower rate and back up (loses high frequencies)."""
    import soxr

    wave, rate = audio
    low = int(min(rate, _level((8000, 6000, 4000, 3000, 2000), severity)))
    if low >= rate:
        return wave, rate
    restored = soxr.resample(soxr.resample(wave, rate, low), low, rate)
    return restored[: len(wave)].astype(np.float32), rate


SUITES: dict[str, dict[str, Corruption]] = {
    "text": {"char_typos": char_typos, "casing": casing, "word_dropout": word_dropout},
    "image": {
        "gaussian_noise": gaussian_noise,
        "gaussian_blur": gaussian_blur,
        "contrast": contrast,
        "brightness": brightness,
        "jpeg": jpeg,
        "rotation": rotation,
        "occlusion": occlusion,
    },
    "audio": {"additive_noise": additive_noise, "gain": gain, "time_shift": time_shift, "band_limit": band_limit},
}


def row_rng(seed: int, corruption: str, severity: int, row: int) -> np.random.Generator:
    """The generator for one row: the same seed gives the same corrupted data."""
    salt = sum(ord(c) * (i + 1) for i, c in enumerate(corruption))
    return np.random.default_rng([seed, salt, severity, row])
