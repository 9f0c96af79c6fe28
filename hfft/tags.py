"""Token-classification tag schemes (IOB1, IOB2, IO, BIOES, BILOU, plain) and word-level entity spans.

Tags are strings such as ``"B-PER"``, ``"I-geo-loc"``, ``"O"`` or, for plain tagging (POS), ``"NOUN"``.
Everything downstream works on IOB2; :func:`to_iob2` converts the other schemes and :func:`repair` fixes an
``I-X`` that does not continue a chunk of type X (it becomes ``B-X``, as seqeval's default mode assumes).
Pure Python: no torch, no transformers.
"""

from __future__ import annotations

import bisect
import re
from typing import Any

from hfft.errors import DataError

PREFIXES = frozenset("BIESLU")  # chunk prefixes; "O" is the outside tag
SCHEMES = ("IOB2", "IOB1", "IO", "BIOES", "BILOU", "plain")
# URLs, then @handles / #hashtags and words (inner apostrophes and hyphens kept), then any other mark alone
WORD_RE = re.compile(r"https?://\S+|www\.\S+|[@#]?\w+(?:['’\-]\w+)*|[^\w\s]")
EXCERPT_CHARS = 30


def split_tag(tag: str) -> tuple[str, str]:
    """Split a tag into (prefix, type) on its first '-': "B-PER" -> ("B", "PER"), "O" -> ("O", "").

    A tag without a recognised prefix (B, I, E, S, L, U; case-sensitive) and a non-empty type is a plain tag:
    "NOUN" -> ("", "NOUN"), "-LRB-" -> ("", "-LRB-"), "B-" -> ("", "B-").
    """
    if tag == "O":
        return "O", ""
    prefix, sep, type_ = tag.partition("-")
    if sep and prefix in PREFIXES and type_:
        return prefix, type_
    return "", tag


def _continues(prev: str | None, type_: str) -> bool:
    """True when an I-``type_`` after the tag ``prev`` continues a chunk (IOB semantics)."""
    if prev is None:
        return False
    prefix, prev_type = split_tag(prev)
    return prefix in ("B", "I") and prev_type == type_


def detect_scheme(sequences: list[list[str]]) -> str:
    """Guess the tag scheme of a dataset from its tag sequences; one of :data:`SCHEMES`.

    Heuristics, in order:

    - no prefixed tag at all (only "O" and/or plain tags such as POS) -> "plain";
    - any E-/S- tag -> "BIOES"; otherwise any L-/U- tag -> "BILOU";
    - no B- tag but some I- tag -> "IO" (converted like IOB1: an I-X that starts a chunk becomes B-X);
    - B- tags present, some chunk starts with I-X (at the start, after O or after another type) and every B-X
      directly follows a B-X/I-X (i.e. only separates two adjacent same-type chunks) -> "IOB1";
    - otherwise "IOB2" (an I-X that starts a chunk is then an annotation error; see :func:`repair`).
    """
    prefixes: set[str] = set()
    i_starts = False  # some I-X starts a chunk
    b_after_other = False  # some B-X does not follow a same-type B-X/I-X
    for tags in sequences:
        prev: str | None = None
        for tag in tags:
            prefix, type_ = split_tag(tag)
            prefixes.add(prefix)
            if prefix == "I" and not _continues(prev, type_):
                i_starts = True
            elif prefix == "B" and not _continues(prev, type_):
                b_after_other = True
            prev = tag
    if not prefixes & PREFIXES:
        return "plain"
    if prefixes & {"E", "S"}:
        return "BIOES"
    if prefixes & {"L", "U"}:
        return "BILOU"
    if "B" not in prefixes:
        return "IO"
    if i_starts and not b_after_other:
        return "IOB1"
    return "IOB2"


def to_iob2(tags: list[str], scheme: str) -> list[str]:
    """Convert one tag sequence from ``scheme`` to IOB2.

    IOB1/IO: an I-X that starts a chunk becomes B-X. BIOES/BILOU: S-/U- -> B-, E-/L- -> I- (a malformed
    sequence may then hold invalid I- tags: :func:`repair` fixes them). IOB2 and plain: unchanged (a copy).
    """
    if scheme in ("IOB2", "plain"):
        return list(tags)
    if scheme in ("IOB1", "IO"):
        return repair(tags)
    if scheme in ("BIOES", "BILOU"):
        mapping = {"S": "B", "U": "B", "E": "I", "L": "I"}
        out = []
        for tag in tags:
            prefix, type_ = split_tag(tag)
            out.append(f"{mapping[prefix]}-{type_}" if prefix in mapping else tag)
        return out
    raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")


def invalid_positions(tags: list[str]) -> list[int]:
    """Indices of the I-X tags of an IOB2 sequence that do not continue a chunk of type X."""
    bad = []
    prev: str | None = None
    for i, tag in enumerate(tags):
        prefix, type_ = split_tag(tag)
        if prefix == "I" and not _continues(prev, type_):
            bad.append(i)
        prev = tag
    return bad


def repair(tags: list[str]) -> list[str]:
    """IOB2 repair: every invalid I-X (see :func:`invalid_positions`) becomes B-X; returns a new list."""
    out = list(tags)
    for i in invalid_positions(tags):
        out[i] = "B-" + split_tag(tags[i])[1]
    return out


def starts_chunk(tags: list[str]) -> list[bool]:
    """Per position of an IOB2 sequence: True where a chunk boundary may fall before that word.

    False only for an I-X that validly continues a chunk of type X; True for O, B-X, an invalid I-X (it starts
    a chunk) and plain tags. Cutting before a True position never splits an entity.
    """
    out = []
    prev: str | None = None
    for tag in tags:
        prefix, type_ = split_tag(tag)
        out.append(not (prefix == "I" and _continues(prev, type_)))
        prev = tag
    return out


def entity_spans(tags: list[str]) -> list[tuple[int, int, str]]:
    """Word-level chunks of an IOB2 sequence as (start, end_exclusive, type), in order.

    An invalid I-X starts a chunk (seqeval's default semantics); O and plain tags are outside any chunk.
    """
    spans = []
    start: int | None = None
    current = ""
    prev: str | None = None
    for i, tag in enumerate(tags):
        prefix, type_ = split_tag(tag)
        if prefix == "I" and _continues(prev, type_):
            prev = tag
            continue
        if start is not None:
            spans.append((start, i, current))
            start = None
        if prefix in ("B", "I"):
            start, current = i, type_
        prev = tag
    if start is not None:
        spans.append((start, len(tags), current))
    return spans


def split_words(text: str) -> list[tuple[str, int, int]]:
    """Words of ``text`` as (word, start, end_exclusive) character offsets.

    A word is a run of word characters, keeping inner apostrophes and hyphens ("don't", "New-York"); URLs,
    @handles and #hashtags are one word each (as tweet corpora such as WNUT tokenise them); every other
    non-space character (punctuation) is a word of its own.
    """
    return [(m.group(), m.start(), m.end()) for m in WORD_RE.finditer(text)]


def _excerpt(text: str, start: int, end: int) -> str:
    lo, hi = max(0, start - EXCERPT_CHARS), min(len(text), end + EXCERPT_CHARS)
    return ("…" if lo > 0 else "") + text[lo:hi] + ("…" if hi < len(text) else "")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def spans_to_words(text: str, entities: list[dict], where: str) -> tuple[list[str], list[str]]:
    """Character-offset entities (``{"start", "end", "label"}``, end exclusive) -> (words, IOB2 tags).

    Words come from :func:`split_words`; a word overlapping an entity gets its label (B- on the first word).
    ``where`` (e.g. "train.jsonl, line 3") starts every error message. Raises DataError for a malformed entity,
    offsets out of range, overlapping entities, an entity covering no word, or a boundary that cuts a word.
    """
    if not isinstance(entities, list):
        raise DataError(f"{where}: expected a list of entities, found {type(entities).__name__}.")
    checked = []
    for ent in entities:
        if not isinstance(ent, dict):
            raise DataError(f"{where}: each entity must be an object with 'start', 'end' and 'label'; found {ent!r}.")
        missing = [k for k in ("start", "end", "label") if k not in ent]
        if missing:
            raise DataError(f"{where}: entity {ent!r} is missing {', '.join(map(repr, missing))}.")
        start, end, label = ent["start"], ent["end"], ent["label"]
        if not (_is_int(start) and _is_int(end)):
            raise DataError(f"{where}: entity {ent!r}: 'start' and 'end' must be integer character offsets.")
        if not isinstance(label, str) or not label.strip():
            raise DataError(f"{where}: entity {ent!r}: 'label' must be a non-empty string.")
        if not 0 <= start < end:
            raise DataError(f"{where}: entity {ent!r}: expected 0 <= start < end (end is exclusive).")
        if end > len(text):
            raise DataError(
                f"{where}: entity {ent!r}: end {end} is past the end of the text ({len(text)} characters): "
                f"{_excerpt(text, len(text), len(text))!r}."
            )
        checked.append((start, end, label, ent))
    checked.sort(key=lambda e: (e[0], e[1]))
    for (s1, e1, _, a), (s2, _, _, b) in zip(checked, checked[1:]):
        if s2 < e1:
            raise DataError(
                f"{where}: entities {a!r} and {b!r} overlap (nested or overlapping entities are not supported): "
                f"{_excerpt(text, s1, max(e1, s2))!r}."
            )

    words = split_words(text)
    starts = [w[1] for w in words]
    tags = ["O"] * len(words)
    for start, end, label, ent in checked:
        # words overlapping [start, end): from the last word starting at or before `start` onwards
        i = max(0, bisect.bisect_right(starts, start) - 1)
        if i < len(words) and words[i][2] <= start:
            i += 1
        first = i
        while i < len(words) and words[i][1] < end:
            word, ws, we = words[i]
            if ws < start or we > end:
                cut = start if ws < start else end
                raise DataError(
                    f"{where}: entity {ent!r} ({text[start:end]!r}) cuts through the word {word!r} at character "
                    f"{cut}; entity boundaries must fall between words: {_excerpt(text, start, end)!r}."
                )
            tags[i] = ("B-" if i == first else "I-") + label
            i += 1
        if i == first:
            raise DataError(
                f"{where}: entity {ent!r} ({text[start:end]!r}) covers no word (only whitespace): "
                f"{_excerpt(text, start, end)!r}."
            )
    return [w[0] for w in words], tags
