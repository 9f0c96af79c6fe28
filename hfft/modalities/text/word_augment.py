"""Train-only augmentation of word sequences that keeps IOB2 tags aligned: entity mentions swapped for other mentions
of the same type (`MentionBank`, `replace_mentions`) and whole-sentence re-casing (`change_case`)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hfft.tags import entity_spans


def _check_prob(prob: float) -> None:
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"prob must be in [0, 1], got {prob}")


class MentionBank:
    """Entity mentions (word tuples) by type, deduplicated, in first-seen order."""

    def __init__(self, mentions: dict[str, list[tuple[str, ...]]] | None = None) -> None:
        self.mentions: dict[str, list[tuple[str, ...]]] = {}
        self._index: dict[str, dict[tuple[str, ...], int]] = {}
        for kind, items in (mentions or {}).items():
            for mention in items:
                self.add(kind, mention)

    @classmethod
    def from_sentences(cls, sentences: Iterable[tuple[list[str], list[str]]]) -> MentionBank:
        """The mentions of (words, IOB2 tags) sentences."""
        bank = cls()
        for words, tags in sentences:
            if len(words) != len(tags):
                raise ValueError(f"{len(words)} words but {len(tags)} tags")
            for start, end, kind in entity_spans(list(tags)):
                bank.add(kind, tuple(words[start:end]))
        return bank

    def add(self, kind: str, mention: tuple[str, ...]) -> None:
        """Add one mention of type ``kind`` (ignored when already there or empty)."""
        if not mention:
            return
        mention = tuple(mention)
        index = self._index.setdefault(kind, {})
        if mention not in index:
            index[mention] = len(index)
            self.mentions.setdefault(kind, []).append(mention)

    def types(self) -> list[str]:
        """The entity types, in first-seen order."""
        return list(self.mentions)

    def other(self, kind: str, mention: tuple[str, ...], rng: np.random.Generator) -> tuple[str, ...] | None:
        """A random mention of type ``kind`` other than ``mention``; None when there is none."""
        items = self.mentions.get(kind, [])
        own = self._index.get(kind, {}).get(tuple(mention))
        n = len(items) - (own is not None)
        if n <= 0:
            return None
        j = int(rng.integers(n))
        return items[j + 1 if own is not None and j >= own else j]

    def __len__(self) -> int:
        return sum(len(items) for items in self.mentions.values())

    def __repr__(self) -> str:
        return f"MentionBank({ {kind: len(items) for kind, items in self.mentions.items()} })"


def replace_mentions(
    words: list[str], tags: list[str], bank: MentionBank, prob: float, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    """Each mention replaced, with probability ``prob``, by another mention of its type from ``bank`` (tagged B-X,
    I-X, ...); the rest is untouched. The length may change; words and tags stay aligned."""
    _check_prob(prob)
    if len(words) != len(tags):
        raise ValueError(f"{len(words)} words but {len(tags)} tags")
    out_words: list[str] = []
    out_tags: list[str] = []
    last = 0
    for start, end, kind in entity_spans(list(tags)):
        if rng.random() >= prob:
            continue
        new = bank.other(kind, tuple(words[start:end]), rng)
        if new is None:
            continue
        out_words += words[last:start] + list(new)
        out_tags += tags[last:start] + [f"B-{kind}"] + [f"I-{kind}"] * (len(new) - 1)
        last = end
    return out_words + list(words[last:]), out_tags + list(tags[last:])


def _title(word: str) -> str:
    return word[:1].upper() + word[1:].lower()


_CASES = (str.lower, str.upper, _title)


def change_case(words: list[str], prob: float, rng: np.random.Generator) -> list[str]:
    """With probability ``prob``, the whole sentence lower-, upper- or title-cased (chosen at random)."""
    _check_prob(prob)
    if rng.random() >= prob:
        return list(words)
    change = _CASES[int(rng.integers(len(_CASES)))]
    return [change(w) for w in words]
