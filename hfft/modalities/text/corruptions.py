"""The text corruption suite for `hfft robustness`: functions ``(value, severity, rng) -> value`` on the
natural form of text: `str`, strength growing with the severity (1..5)."""

from __future__ import annotations

import string

import numpy as np

from hfft.corruptions import Corruption, level


def char_typos(text: str, severity: int, rng: np.random.Generator) -> str:
    """Keyboard-style noise: each letter swapped with its neighbour, dropped or preceded by a stray letter."""
    rate = level((0.02, 0.05, 0.1, 0.15, 0.25), severity)
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
    rate = level((0.1, 0.25, 0.5, 0.75, 1.0), severity)
    changes = (str.upper, str.lower, str.swapcase)
    return " ".join(changes[rng.integers(3)](w) if rng.random() < rate else w for w in text.split(" "))


def word_dropout(text: str, severity: int, rng: np.random.Generator) -> str:
    """Each word removed with a probability (at least one word is kept)."""
    rate = level((0.05, 0.1, 0.2, 0.3, 0.45), severity)
    words = text.split()
    kept = [w for w in words if rng.random() >= rate]
    return " ".join(kept or words[:1])


SUITE: dict[str, Corruption] = {"char_typos": char_typos, "casing": casing, "word_dropout": word_dropout}
