"""The corruption suite for word sequences (token classification): functions ``(words, severity, rng) -> words`` on
the natural form ``list[str]``, one entry per word. The tags are not available to a corruption, so each keeps the list
length (position i stays word i); an empty word ``""`` means the word was dropped (the modality leaves it, and its tag,
out of the input and of the evaluation). The rates are those of the text suite, whose functions are reused."""

from __future__ import annotations

import numpy as np

from hfft.corruptions import SEVERITIES, Corruption
from hfft.modalities.text import corruptions as text


def _check(severity: int) -> None:
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be in {SEVERITIES[0]}..{SEVERITIES[-1]}, got {severity}")


def char_typos(words: list[str], severity: int, rng: np.random.Generator) -> list[str]:
    """The text `char_typos` applied to each word; a word a typo would erase entirely is kept as it was."""
    _check(severity)
    out = []
    for w in words:
        typo = text.char_typos(w, severity, rng)
        out.append(typo if typo or not w else w)
    return out


def casing(words: list[str], severity: int, rng: np.random.Generator) -> list[str]:
    """Each word upper-cased, lower-cased or swap-cased at random, at the rates of the text `casing`."""
    _check(severity)
    return [text.casing(w, severity, rng) for w in words]


def word_dropout(words: list[str], severity: int, rng: np.random.Generator) -> list[str]:
    """Each non-empty word replaced by ``""`` (dropped) at the rates of the text `word_dropout`; one is always kept."""
    _check(severity)
    present = [i for i, w in enumerate(words) if w]
    if not present:
        return list(words)
    # the text function on placeholder tokens (one per present word) decides which words survive
    kept = {int(t) for t in text.word_dropout(" ".join(map(str, range(len(present)))), severity, rng).split()}
    dropped = {i for k, i in enumerate(present) if k not in kept}
    return ["" if i in dropped else w for i, w in enumerate(words)]


SUITE: dict[str, Corruption] = {"char_typos": char_typos, "casing": casing, "word_dropout": word_dropout}
