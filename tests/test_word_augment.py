"""Word-sequence augmentation (mention replacement, re-casing) and the word corruption suite."""

from __future__ import annotations

import random

import numpy as np
import pytest

from hfft.modalities.text import word_corruptions as wc
from hfft.modalities.text.word_augment import MentionBank, change_case, replace_mentions
from hfft.tags import entity_spans

PER = [["Alice"], ["Bob", "Smith"], ["Carol", "Ann", "Lee"], ["Dan"]]
LOC = [["Paris"], ["New", "York"], ["Rome"]]
ORG = [["Acme", "Corp"]]  # a single mention: never replaced
FILLER = ["the", "met", "in", "at", "and", "today", "works", "for", "visited"]


def make_sentences(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """Random sentences of filler words and mentions, with valid IOB2 tags."""
    r = random.Random(seed)
    sentences = []
    for _ in range(n):
        words: list[str] = []
        tags: list[str] = []
        for _ in range(r.randint(1, 8)):
            kind = r.choice(["O", "O", "PER", "LOC", "ORG"])
            if kind == "O":
                words.append(r.choice(FILLER))
                tags.append("O")
            else:
                mention = r.choice({"PER": PER, "LOC": LOC, "ORG": ORG}[kind])
                words += mention
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(mention) - 1)
        sentences.append((words, tags))
    return sentences


def valid_iob2(tags: list[str]) -> bool:
    prev = "O"
    for tag in tags:
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            return False
        if tag != "O" and not tag.startswith(("B-", "I-")):
            return False
        prev = tag
    return True


def mentions(words: list[str], tags: list[str]) -> list[tuple[str, tuple[str, ...]]]:
    return [(kind, tuple(words[s:e])) for s, e, kind in entity_spans(tags)]


@pytest.fixture(scope="module")
def sentences() -> list[tuple[list[str], list[str]]]:
    return make_sentences(300)


@pytest.fixture(scope="module")
def bank(sentences) -> MentionBank:
    return MentionBank.from_sentences(sentences)


def test_bank(sentences, bank):
    first_seen: dict[str, list[tuple[str, ...]]] = {}
    for words, tags in sentences:
        for kind, mention in mentions(words, tags):
            if mention not in first_seen.setdefault(kind, []):
                first_seen[kind].append(mention)
    assert bank.mentions == first_seen and bank.types() == list(first_seen)  # first-seen order
    assert set(bank.types()) == {"PER", "LOC", "ORG"}
    assert set(bank.mentions["PER"]) == {tuple(m) for m in PER}
    assert set(bank.mentions["LOC"]) == {tuple(m) for m in LOC}
    assert bank.mentions["ORG"] == [("Acme", "Corp")]
    assert len(bank) == len(PER) + len(LOC) + len(ORG)
    small = MentionBank.from_sentences(
        [(["Bob", "Smith", "and", "Alice", "Bob", "Smith"], ["B-PER", "I-PER", "O", "B-PER", "B-PER", "I-PER"])]
    )
    assert small.mentions == {"PER": [("Bob", "Smith"), ("Alice",)]} and len(small) == 2
    with pytest.raises(ValueError):
        MentionBank.from_sentences([(["a", "b"], ["O"])])


def test_replace_keeps_alignment(sentences, bank):
    rng = np.random.default_rng(0)
    changed = 0
    for words, tags in sentences:
        new_words, new_tags = replace_mentions(words, tags, bank, 0.5, rng)
        assert len(new_words) == len(new_tags)
        assert valid_iob2(new_tags)
        before, after = mentions(words, tags), mentions(new_words, new_tags)
        assert len(before) == len(after)
        assert [k for k, _ in before] == [k for k, _ in after]
        for kind, mention in after:
            assert mention in bank.mentions[kind]
        # words outside mentions are untouched
        assert [w for w, t in zip(words, tags) if t == "O"] == [w for w, t in zip(new_words, new_tags) if t == "O"]
        changed += before != after
    assert changed > 0


def test_replace_prob_0_and_1(sentences, bank):
    rng = np.random.default_rng(1)
    for words, tags in sentences:
        assert replace_mentions(words, tags, bank, 0.0, rng) == (words, tags)
        new_words, new_tags = replace_mentions(words, tags, bank, 1.0, rng)
        for (kind, old), (kind2, new) in zip(mentions(words, tags), mentions(new_words, new_tags)):
            assert kind == kind2
            if kind == "ORG":  # the only mention of its type: never replaced
                assert new == old
            else:
                assert new != old and new in bank.mentions[kind]


def test_replace_input_not_modified_and_unknown_types(bank):
    words, tags = ["Alice", "met", "Zed", "Q"], ["B-PER", "O", "B-MISC", "I-MISC"]
    copy = (list(words), list(tags))
    new_words, new_tags = replace_mentions(words, tags, bank, 1.0, np.random.default_rng(0))
    assert (words, tags) == copy
    assert new_words[-2:] == ["Zed", "Q"] and new_tags[-2:] == ["B-MISC", "I-MISC"]  # no MISC in the bank
    with pytest.raises(ValueError):
        replace_mentions(words, tags, bank, 1.5, np.random.default_rng(0))


def test_replace_deterministic(sentences, bank):
    def run(seed: int):
        rng = np.random.default_rng(seed)
        return [replace_mentions(w, t, bank, 0.5, rng) for w, t in sentences]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_change_case():
    words = ["Alice", "visited", "NEW", "york"]
    rng = np.random.default_rng(0)
    assert all(change_case(words, 0.0, rng) == words for _ in range(20))
    seen = set()
    for _ in range(60):
        out = change_case(words, 1.0, rng)
        assert len(out) == len(words)
        seen.add(tuple(out))
    assert seen == {
        ("alice", "visited", "new", "york"),
        ("ALICE", "VISITED", "NEW", "YORK"),
        ("Alice", "Visited", "New", "York"),
    }
    assert change_case(words, 0.5, np.random.default_rng(7)) == change_case(words, 0.5, np.random.default_rng(7))


def random_words(n: int, seed: int = 0) -> list[str]:
    r = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [r.choice(letters).upper() + "".join(r.choice(letters) for _ in range(r.randint(2, 7))) for _ in range(n)]


@pytest.mark.parametrize("name", sorted(wc.SUITE))
def test_corruptions_keep_length_and_grow_with_severity(name):
    corrupt = wc.SUITE[name]
    words = random_words(2000)
    fractions = []
    for severity in (1, 5):
        out = corrupt(words, severity, np.random.default_rng(0))
        assert len(out) == len(words) and all(isinstance(w, str) for w in out)
        fractions.append(np.mean([a != b for a, b in zip(words, out)]))
        assert corrupt(words, severity, np.random.default_rng(0)) == out  # seeded determinism
    assert 0 < fractions[0] < fractions[1]
    assert corrupt([], 3, np.random.default_rng(0)) == []
    with pytest.raises(ValueError):
        corrupt(words, 6, np.random.default_rng(0))


def test_word_dropout_keeps_one_word():
    for seed in range(200):
        assert wc.word_dropout(["Alice"], 5, np.random.default_rng(seed)) == ["Alice"]
        out = wc.word_dropout(["a", "b", "c"], 5, np.random.default_rng(seed))
        assert len(out) == 3 and any(out)
    # already-empty words stay empty and do not count as kept
    for seed in range(50):
        out = wc.word_dropout(["", "x", ""], 5, np.random.default_rng(seed))
        assert out == ["", "x", ""]
    dropped = wc.word_dropout(random_words(2000), 5, np.random.default_rng(0))
    assert "" in dropped


def test_char_typos_never_empties_a_word():
    words = ["a", "I", "x", "", "ab"] * 200
    for severity in (1, 5):
        out = wc.char_typos(words, severity, np.random.default_rng(0))
        assert [bool(w) for w in out] == [bool(w) for w in words]


def test_casing_changes_case_only():
    words = random_words(500)
    out = wc.casing(words, 5, np.random.default_rng(0))
    assert [w.lower() for w in out] == [w.lower() for w in words]
