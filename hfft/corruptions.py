"""Corruption suites at severities 1..5, for `hfft robustness`: what they share.

Each modality keeps its own suite (`hfft/modalities/<modality>/corruptions.py`, named by the modality
class's `corruptions`). Every corruption is a function ``(value, severity, rng) -> value`` on the modality's natural
form (text: ``str``; image: RGB ``PIL.Image``; audio: ``(float32 mono array, sampling_rate)``).
``rng`` is a ``numpy.random.Generator`` seeded per row, so results are reproducible.
Severity tables are chosen so that strength grows monotonically with the severity.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

SEVERITIES = (1, 2, 3, 4, 5)
Corruption = Callable[[Any, int, np.random.Generator], Any]


def level(table: tuple[float, ...], severity: int) -> float:
    """The strength for ``severity`` (1-based) from a table of five increasing strengths."""
    if not 1 <= severity <= len(table):
        raise ValueError(f"severity must be in 1..{len(table)}, got {severity}")
    return table[severity - 1]


def row_rng(seed: int, corruption: str, severity: int, row: int) -> np.random.Generator:
    """The generator for one row: the same seed gives the same corrupted data."""
    salt = sum(ord(c) * (i + 1) for i, c in enumerate(corruption))
    return np.random.default_rng([seed, salt, severity, row])


def suite(modality: str) -> dict[str, Corruption]:
    """The corruption suite of a registered modality."""
    from hfft.registry import modality_class

    return modality_class(modality).corruption_suite()


def __getattr__(name: str) -> Any:
    if name == "SUITES":  # {modality: suite}, built from the registry on first use
        from hfft.registry import MODALITIES

        return {modality: suite(modality) for modality in MODALITIES}
    raise AttributeError(f"module 'hfft.corruptions' has no attribute '{name}'")
