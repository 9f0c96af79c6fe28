"""Transcripts: target normalisation, CTC vocabularies built from data, and WER/CER (with `jiwer`)."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

WORD_DELIMITER = "|"
PAD, UNK = "[PAD]", "[UNK]"


def remove_punctuation(text: str) -> str:
    """Unicode punctuation removed (apostrophes inside words kept: "don't"), each mark replaced by a space."""
    out = []
    for i, char in enumerate(text):
        inside_word = char == "'" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()
        out.append(char if inside_word or not unicodedata.category(char).startswith("P") else " ")
    return "".join(out)


class TranscriptNormalizer:
    """What `labels.lowercase`, `labels.remove_punctuation` and `labels.numbers` do to a target transcript;
    whitespace is always collapsed."""

    def __init__(self, lowercase: bool = False, punctuation: bool = False, numbers: str = "keep") -> None:
        self.lowercase, self.punctuation, self.numbers = lowercase, punctuation, numbers
        self._numbers: Any = None

    def __call__(self, text: str) -> str:
        text = unicodedata.normalize("NFC", text)
        if self.lowercase:
            text = text.lower()
        if self.punctuation:
            text = remove_punctuation(text)
        if self.numbers == "digits":
            if self._numbers is None:
                from transformers.models.whisper.english_normalizer import EnglishNumberNormalizer

                self._numbers = EnglishNumberNormalizer()
            text = self._numbers(text)
        return " ".join(text.split())


def ctc_vocabulary(transcripts: list[str]) -> dict[str, int]:
    """A character vocabulary for a new CTC head: ``[PAD]`` (the CTC blank) = 0, ``[UNK]`` = 1, ``|`` (word
    delimiter, for spaces) = 2, then every character of the transcripts, most frequent first."""
    counts = Counter(char for text in transcripts for char in text if not char.isspace())
    vocab = {PAD: 0, UNK: 1, WORD_DELIMITER: 2}
    for char, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        vocab.setdefault(char, len(vocab))
    return vocab


def write_ctc_tokenizer(vocab: dict[str, int], directory: Path) -> Any:
    """A `Wav2Vec2CTCTokenizer` over ``vocab``, saved in ``directory`` (vocab.json + tokenizer files)."""
    from transformers import Wav2Vec2CTCTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer = Wav2Vec2CTCTokenizer(  # no <s> / </s>: CTC targets have no sentence markers
        str(directory / "vocab.json"),
        unk_token=UNK,
        pad_token=PAD,
        word_delimiter_token=WORD_DELIMITER,
        bos_token=None,
        eos_token=None,
    )
    tokenizer.save_pretrained(str(directory))
    return tokenizer


def out_of_vocabulary(transcripts: list[str], tokenizer: Any) -> Counter:
    """Characters of the transcripts a CTC tokenizer cannot spell (they become [UNK])."""
    known = set(tokenizer.get_vocab())
    return Counter(c for text in transcripts for c in text if not c.isspace() and c not in known)


_english: Any = None


def english_normalizer() -> Any:
    """Whisper's English text normaliser (lower case, no punctuation, spelled-out numbers as digits, ...)."""
    global _english
    if _english is None:
        from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

        _english = EnglishTextNormalizer({})
    return _english


def speech_metrics(references: list[str], predictions: list[str]) -> dict[str, float]:
    """WER and CER as written and after Whisper's English normaliser, and the share of empty predictions.

    Normalised pairs whose reference becomes empty (e.g. only "hmm") are left out of the normalised rates.
    """
    import jiwer

    if not references:
        return {}
    references = [" ".join(r.split()) for r in references]
    predictions = [" ".join(p.split()) for p in predictions]
    normalize = english_normalizer()
    pairs = [(normalize(r), normalize(p)) for r, p in zip(references, predictions)]
    pairs = [(r, p) for r, p in pairs if r.strip()]
    metrics = {
        "wer": float(jiwer.wer(references, predictions)),
        "cer": float(jiwer.cer(references, predictions)),
        "empty_predictions": sum(not p for p in predictions) / len(predictions),
    }
    if pairs:
        refs, hyps = map(list, zip(*pairs))
        metrics["wer_normalized"] = float(jiwer.wer(refs, hyps))
        metrics["cer_normalized"] = float(jiwer.cer(refs, hyps))
    return metrics
