"""CoNLL-style token-classification files ("token<sep>...<sep>tag" lines) as a ``datasets.DatasetDict``.

One word per line: fields are split on tabs when the line holds a tab, else on whitespace; the first field is the
token and the last the tag (so CoNLL-2003's "EU NNP B-NP B-ORG" gives ("EU", "B-ORG")). Blank or whitespace-only
lines separate sentences; ``-DOCSTART-`` lines are skipped and end the current sentence.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from hfft.errors import DataError

if TYPE_CHECKING:
    import datasets

CONLL_SUFFIXES = (".conll", ".iob", ".iob2", ".bio", ".bioes", ".txt")
DOCSTART = "-DOCSTART-"
SNIFF_LINES = 50  # non-blank lines looked at by is_conll_file
SNIFF_MAX_LINES = 2000  # lines read at most (blank ones included)
PREFIXED_TAG = re.compile(r"^[BIESLU]-\S")


def _fields(line: str) -> list[str]:
    """A line's non-empty fields: split on tabs when it holds one (tokens may hold spaces), else on whitespace."""
    if "\t" in line:
        return [f for f in (p.strip() for p in line.split("\t")) if f]
    return line.split()


def is_conll_file(path: Path) -> bool:
    """True when ``path`` looks like a CoNLL-style file: a CoNLL suffix and tag-like sampled lines.

    Up to the first 50 non-blank, non ``-DOCSTART-`` lines are sampled: at least 80% of them must have the same
    number of fields (2..10). A ``.txt`` file (which may be prose) must also end at least 30% of those lines
    with a tag-like field: "O" or a prefixed tag ("B-X", "I-X", "E-X", "S-X", "L-X", "U-X"). Undecodable bytes
    do not disqualify a file here: :func:`load_conll` then reports them.
    """
    path = Path(path)
    if path.suffix.lower() not in CONLL_SUFFIXES or not path.is_file():
        return False
    sample: list[list[str]] = []
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            for n, line in enumerate(f):
                if n >= SNIFF_MAX_LINES or len(sample) >= SNIFF_LINES:
                    break
                fields = _fields(line)
                if fields and fields[0] != DOCSTART:
                    sample.append(fields)
    except OSError:
        return False
    if not sample:
        return False
    count, freq = Counter(len(f) for f in sample).most_common(1)[0]
    if not 2 <= count <= 10 or freq < 0.8 * len(sample):
        return False
    if path.suffix.lower() != ".txt":
        return True
    tag_like = sum(1 for f in sample if len(f) >= 2 and (f[-1] == "O" or PREFIXED_TAG.match(f[-1])))
    return tag_like >= 0.3 * len(sample)


def load_conll(path: Path, key: str) -> datasets.DatasetDict:
    """Read a CoNLL-style file into a DatasetDict with one split "train": ``tokens`` and ``ner_tags`` (raw tags).

    ``key`` (the config key naming the file) starts every error message. Raises DataError for a missing or
    non-UTF-8 file, a non-blank line with a single field (naming the 1-based line number), or no sentence.
    """
    import datasets

    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{key}: {path} does not exist.") from None
    except OSError as err:
        raise DataError(f"{key}: cannot read {path} ({err.strerror or err}).") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line_no = raw.count(b"\n", 0, err.start) + 1
        raise DataError(
            f"{key}: {path} is not UTF-8 text (byte {raw[err.start : err.start + 1]!r} on line {line_no}); "
            "save it as UTF-8."
        ) from None

    all_tokens: list[list[str]] = []
    all_tags: list[list[str]] = []
    tokens: list[str] = []
    tags: list[str] = []
    for line_no, line in enumerate(text.split("\n"), start=1):
        fields = _fields(line)
        if not fields or fields[0] == DOCSTART:
            if tokens:
                all_tokens.append(tokens)
                all_tags.append(tags)
                tokens, tags = [], []
            continue
        if len(fields) < 2:
            raise DataError(
                f"{key}: {path}, line {line_no}: expected a token and a tag separated by a tab or spaces "
                f"(e.g. 'Paris\\tB-LOC'); found a single field: {line.rstrip(chr(13))!r}."
            )
        tokens.append(fields[0])
        tags.append(fields[-1])
    if tokens:
        all_tokens.append(tokens)
        all_tags.append(tags)
    if not all_tokens:
        raise DataError(f"{key}: {path} holds no sentence (expected 'token<TAB>tag' lines, blank between sentences).")

    list_type = getattr(datasets, "List", None) or datasets.Sequence
    features = datasets.Features(
        {"tokens": list_type(datasets.Value("string")), "ner_tags": list_type(datasets.Value("string"))}
    )
    train = datasets.Dataset.from_dict({"tokens": all_tokens, "ner_tags": all_tags}, features=features)
    return datasets.DatasetDict({"train": train})


SPLIT_NAMES = {"train": "train", "dev": "validation", "valid": "validation", "validation": "validation",
               "val": "validation", "testa": "validation", "test": "test", "testb": "test"}  # fmt: skip


def load_conll_folder(path: Path, key: str) -> datasets.DatasetDict | None:
    """A directory of CoNLL files named by split (train.conll, dev.txt, test.iob, ...) as a
    DatasetDict; None when the directory holds no CoNLL file (other loaders then try)."""
    import datasets

    files = sorted(p for p in Path(path).iterdir() if p.is_file() and is_conll_file(p))
    if not files:
        return None
    splits: dict[str, datasets.Dataset] = {}
    for file in files:
        split = SPLIT_NAMES.get(file.stem.lower().rsplit(".", 1)[-1])  # train.conll, eng.testa.iob, dev.txt
        if split is None:
            raise DataError(
                f"{key}: CoNLL file '{file.name}' in '{path}' is not named by a split; name the files "
                "train / dev (or validation) / test, e.g. train.conll."
            )
        if split in splits:
            raise DataError(f"{key}: '{path}' holds two CoNLL files for split '{split}'.")
        splits[split] = load_conll(file, key)["train"]
    return datasets.DatasetDict(splits)
