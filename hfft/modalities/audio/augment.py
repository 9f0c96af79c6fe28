"""Waveform cropping and train-only augmentation in numpy (noise, gain, shift, spectrogram masks).

Every random draw comes from the ``rng`` passed in, which recipes seed from numpy's global
RNG (itself seeded by `transformers.set_seed`), so runs are reproducible.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def random_crop(wave: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``length``-sample window of a longer waveform (shorter ones are returned whole)."""
    if len(wave) <= length:
        return wave
    start = int(rng.integers(0, len(wave) - length + 1))
    return wave[start : start + length]


def center_crop(wave: np.ndarray, length: int) -> np.ndarray:
    """The middle ``length`` samples of a longer waveform (shorter ones are returned whole)."""
    if len(wave) <= length:
        return wave
    start = (len(wave) - length) // 2
    return wave[start : start + length]


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white Gaussian noise at ``snr_db`` dB below the waveform's mean power."""
    power = float(np.mean(wave.astype(np.float64) ** 2)) if len(wave) else 0.0
    if power == 0.0:
        return wave
    noise = rng.standard_normal(len(wave)) * np.sqrt(power / 10 ** (snr_db / 10))
    return (wave + noise).astype(np.float32)


def apply_gain(wave: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale the volume by ``gain_db`` decibels."""
    return (wave * 10 ** (gain_db / 20)).astype(np.float32)


def time_shift(wave: np.ndarray, shift: int) -> np.ndarray:
    """Delay (``shift`` > 0) or advance (< 0) the waveform by ``shift`` samples, filling with zeros."""
    if shift == 0 or abs(shift) >= len(wave):
        return wave
    out = np.zeros_like(wave)
    if shift > 0:
        out[shift:] = wave[:-shift]
    else:
        out[:shift] = wave[-shift:]
    return out


def pad_shift(wave: np.ndarray, shift: int) -> np.ndarray:
    """Add ``|shift|`` samples of silence before (``shift`` > 0) or after (< 0) the waveform: nothing is cut."""
    silence = np.zeros(abs(shift), dtype=wave.dtype)
    return np.concatenate([silence, wave] if shift > 0 else [wave, silence])


def augment(
    wave: np.ndarray, sampling_rate: int, options: Any, rng: np.random.Generator, keep_length: bool = True
) -> np.ndarray:
    """Gain, time shift and noise, each applied with its probability from ``options`` (an AudioAugmentation).
    ``keep_length=False`` shifts by padding with silence instead of cutting (targets that span the clip)."""
    if rng.random() < options.gain_prob:
        wave = apply_gain(wave, rng.uniform(*options.gain_db))
    max_shift = int(options.shift_max_seconds * sampling_rate)
    if max_shift > 0 and rng.random() < options.shift_prob:
        shift = int(rng.integers(-max_shift, max_shift + 1))
        wave = time_shift(wave, shift) if keep_length else pad_shift(wave, shift)
    if rng.random() < options.noise_prob:
        wave = add_noise(wave, rng.uniform(*options.noise_snr_db), rng)
    return wave


def mask_spans(features: np.ndarray, axis: int, prob: float, span: int, rng: np.random.Generator) -> np.ndarray:
    """SpecAugment-style masking: about ``prob`` of the positions along ``axis``, in spans of ``span``,
    set to the mean of the features (the same rule as wav2vec2's ``mask_time_prob``)."""
    size = features.shape[axis]
    span = max(1, min(span, size))
    count = int(prob * size / span + rng.random())
    if count == 0:
        return features
    out = np.array(features, copy=True)
    fill = float(out.mean())
    moved = np.moveaxis(out, axis, 0)  # a view: writes go to ``out``
    for start in rng.integers(0, size - span + 1, size=count):
        moved[start : start + span] = fill
    return out
