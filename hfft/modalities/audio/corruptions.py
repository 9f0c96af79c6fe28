"""The audio corruption suite for `hfft robustness`: functions ``(value, severity, rng) -> value`` on the
natural form of audio: `(float32 mono array, sampling_rate)`, strength growing with the severity (1..5)."""

from __future__ import annotations

import numpy as np

from hfft.corruptions import Corruption, level
from hfft.modalities.audio.augment import pad_shift


def additive_noise(audio: tuple[np.ndarray, int], severity: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """White noise at a decreasing signal-to-noise ratio (30 dB down to 0 dB)."""
    wave, rate = audio
    snr_db = level((30, 20, 10, 5, 0), severity)
    power = float(np.mean(wave.astype(np.float64) ** 2)) or 1e-10
    noise = rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), wave.shape)
    return (wave + noise).astype(np.float32), rate


def gain(audio: tuple[np.ndarray, int], severity: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Louder with clipping at +-1 (quieter is undone by most feature extractors' normalisation)."""
    wave, rate = audio
    peak = float(np.max(np.abs(wave))) or 1.0
    factor = level((1.5, 2.5, 4.0, 7.0, 12.0), severity) / peak
    return np.clip(wave * factor, -1.0, 1.0).astype(np.float32), rate


def time_shift(audio: tuple[np.ndarray, int], severity: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Delay or advance by a growing fraction of the clip, filling with silence."""
    wave, rate = audio
    shift = int(level((0.05, 0.1, 0.2, 0.3, 0.4), severity) * len(wave)) * int(rng.choice((-1, 1)))
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
    low = int(min(rate, level((8000, 6000, 4000, 3000, 2000), severity)))
    if low >= rate:
        return wave, rate
    restored = soxr.resample(soxr.resample(wave, rate, low), low, rate)
    return restored[: len(wave)].astype(np.float32), rate


SUITE: dict[str, Corruption] = {
    "additive_noise": additive_noise,
    "gain": gain,
    "time_shift": time_shift,
    "band_limit": band_limit,
}


def silence_pad(audio: tuple[np.ndarray, int], severity: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Silence of a growing fraction of the clip (5% to 40%) before or after it: the content moves in time and
    nothing is cut, so a transcript still matches the audio."""
    wave, rate = audio
    samples = int(level((0.05, 0.1, 0.2, 0.3, 0.4), severity) * len(wave))
    return pad_shift(wave.astype(np.float32), samples if rng.random() < 0.5 else -samples), rate


# For tasks whose targets span the whole clip (speech recognition): time_shift would cut words away.
SUITE_WITHOUT_CUTS: dict[str, Corruption] = {
    "additive_noise": additive_noise,
    "gain": gain,
    "silence_pad": silence_pad,
    "band_limit": band_limit,
}
