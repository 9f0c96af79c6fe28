"""Text already split into words (token-level tasks such as NER): the checkpoint's fast tokenizer with
``is_split_into_words``, word ids kept for the task, long sentences in overlapping windows (no word lost),
word-level augmentation and corruptions that keep each word's target in place."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from hfft.config import RecipeConfig, option
from hfft.errors import ConfigError, DataError, ModelError
from hfft.labels import list_feature_inner
from hfft.modalities.text.modality import TextAugmentation, TextModality, TextPreprocessing


@dataclass
class WordsPreprocessing(TextPreprocessing):
    """How words become token ids."""

    stride: int = option(
        64,
        "Sentences longer than max_length tokens are split into windows that overlap by about this many tokens "
        "(cut between words); each word is labelled and evaluated in exactly one window, so none is lost.",
    )


@dataclass
class WordsAugmentation(TextAugmentation):
    """Train-only augmentation of word sequences; targets stay aligned (regularization.augment: true)."""

    token_mask_prob: float = option(
        0.0, "Replace each non-special sub-token with the mask token with this probability (labels unchanged)."
    )
    case_change_prob: float = option(
        0.1, "Re-case a training sentence (lower, upper or title case, one chosen at random) with this probability."
    )
    mention_replace_prob: float = option(
        0.2,
        "token-classification: replace each entity mention with another training mention of the same type with "
        "this probability (the tags follow the new words).",
    )


class WordsModality(TextModality):
    """Words (lists of strings) with the checkpoint's fast tokenizer."""

    input_candidates = ("tokens", "words")
    folder_builder = "conll"  # CoNLL-style token/tag text files are read by hfft.conll
    splits_rows = True
    Preprocessing = WordsPreprocessing
    Augmentation = WordsAugmentation

    @classmethod
    def check_config(cls, config: RecipeConfig) -> None:
        super().check_config(config)
        pre, aug = config.preprocessing, config.augmentation
        if not 0 <= pre.stride <= pre.max_length // 2:
            raise ConfigError(
                f"'preprocessing.stride' must be in [0, max_length / 2 = {pre.max_length // 2}], got {pre.stride}."
            )
        for key in ("case_change_prob", "mention_replace_prob"):
            if not 0.0 <= getattr(aug, key) <= 1.0:
                raise ConfigError(f"'augmentation.{key}' must be in [0, 1], got {getattr(aug, key)}.")
        if config.data.text_pair_column is not None:
            raise ConfigError("'data.text_pair_column' does not apply to word sequences (token-level tasks).")

    @classmethod
    def corruption_suite(cls) -> dict[str, Any]:
        from hfft.modalities.text.word_corruptions import SUITE

        return SUITE

    def input_columns(self, dataset: Any, where: str) -> dict[str, str]:
        from hfft.hooks import find_column

        column = find_column(dataset, self.config.data.text_column, self.input_candidates, "data.text_column", where)
        inner = list_feature_inner(dataset.features[column])
        if getattr(inner, "dtype", None) not in ("string", "large_string"):
            raise DataError(
                f"{where}: column '{column}' holds {dataset.features[column]}; {self.task} expects a list of words "
                "per row (e.g. from a CoNLL file, or `text.split()`), or character spans: `text` + `entities` "
                "columns."
            )
        return {"input": column}

    def load_processor(self, model_path: str) -> Any:
        from transformers import AutoTokenizer

        tokenizer = super().load_processor(model_path)
        if not tokenizer.is_fast:
            raise ModelError(
                f"'model': the tokenizer of '{model_path}' ({type(tokenizer).__name__}) is a slow (Python) tokenizer; "
                "word-level tasks need a fast tokenizer's word ids. Save one with `AutoTokenizer.from_pretrained("
                "BASE, use_fast=True).save_pretrained(DIR)` (needs the `tokenizers` package)."
            )
        if getattr(tokenizer, "add_prefix_space", None) is False:  # byte-level BPE (RoBERTa, GPT-2): words need it
            tokenizer = AutoTokenizer.from_pretrained(
                model_path, add_prefix_space=True, trust_remote_code=self.config.trust_remote_code
            )
        return tokenizer

    def words(self, sentences: list[list[str]]) -> list[list[str]]:
        """Sentences as the tokenizer gets them (preprocessing.lowercase)."""
        return [[w.lower() for w in ws] for ws in sentences] if self.config.preprocessing.lowercase else sentences

    def check_batch(self, batch: dict[str, list]) -> list[str | None]:
        problems: list[str | None] = []
        for words in batch[self.columns["input"]]:
            if not words:
                problems.append("empty_sentence")
            elif any(not isinstance(w, str) for w in words):
                problems.append("non_string_word")
            else:
                problems.append(None)
        return problems

    # ------------------------------------------------------------------ tokenisation and windows

    @property
    def capacity(self) -> int:
        """Sub-tokens of words that fit in one window (max_length less the special tokens)."""
        return self.max_length - self.processor.num_special_tokens_to_add()

    def word_token_counts(self, sentences: list[list[str]]) -> list[list[int]]:
        """Sub-tokens per word (0 for a word the tokenizer drops, e.g. an empty string)."""
        encoded = self.processor(
            sentences, is_split_into_words=True, add_special_tokens=False, truncation=False, verbose=False
        )
        counts = []
        for row, words in enumerate(sentences):
            ids = [w for w in encoded.word_ids(row) if w is not None]
            counts.append(np.bincount(ids, minlength=len(words)).tolist() if ids else [0] * len(words))
        return counts

    def windows(self, counts: list[int], starts: list[bool] | None = None) -> list[tuple[int, int, int, int]]:
        """(first, end, owned_first, owned_end) word ranges of one sentence's windows: each holds at most
        `capacity` sub-tokens, consecutive windows overlap by about `preprocessing.stride` sub-tokens, and the
        owned ranges (the words a window labels and is evaluated on) partition the sentence. An ownership cut
        falls where ``starts`` allows (never inside an entity), as near the middle of the overlap as possible."""
        capacity, stride, n = self.capacity, self.config.preprocessing.stride, len(counts)
        spans, first = [], 0
        while True:
            end, used = first, 0
            while end < n and (used + counts[end] <= capacity or end == first):  # a word longer than a window
                used += counts[end]  # is truncated, but its first sub-token (the one labelled) is kept
                end += 1
            spans.append((first, end))
            if end >= n:
                break
            nxt, overlap = end, 0  # back off from `end` while the overlap stays within `stride` sub-tokens
            while nxt - 1 > first and overlap + counts[nxt - 1] <= stride:
                nxt -= 1
                overlap += counts[nxt]
            first = nxt
        cuts = [0]
        for (_, end), (nxt, _) in zip(spans, spans[1:]):
            middle, lowest = (nxt + end) / 2, max(nxt, cuts[-1])
            allowed = [w for w in range(lowest, end + 1) if starts is None or starts[w]]
            cuts.append(min(allowed or [max(round(middle), lowest)], key=lambda w: (abs(w - middle), w)))
        cuts.append(n)
        return [(a, b, cuts[i], cuts[i + 1]) for i, (a, b) in enumerate(spans)]

    def encode_words(
        self, sentences: list[list[str]], starts: list[list[bool] | None] | None = None, split_long: bool = True
    ) -> dict[str, list]:
        """One row per window (``split_long``; else one truncated row per sentence): token ids, `word_ids`
        (index into the window's words, -1 for special tokens), the window's words (input column), `sentence`
        (index into ``sentences``), `first` (the window's first word in its sentence), `owned` [first, end)
        words of the window, `windowed`, `words_without_tokens` (owned words the tokenizer drops) and `length`."""
        starts = starts or [None] * len(sentences)
        counts = self.word_token_counts(sentences)
        rows: list[tuple[int, int, int, int, int]] = []  # sentence, first, end, owned first, owned end
        for s, (sentence_counts, sentence_starts) in enumerate(zip(counts, starts)):
            if not split_long or sum(sentence_counts) <= self.capacity:
                rows.append((s, 0, len(sentence_counts), 0, len(sentence_counts)))
            else:
                rows.extend((s, *span) for span in self.windows(sentence_counts, sentence_starts))
        pieces = [sentences[s][a:b] for s, a, b, _, _ in rows]
        encoded = self.processor(pieces, is_split_into_words=True, truncation=True, max_length=self.max_length)
        out: dict[str, list] = {key: list(values) for key, values in encoded.items()}
        out["word_ids"] = [[-1 if w is None else w for w in encoded.word_ids(i)] for i in range(len(rows))]
        out[self.columns["input"]] = pieces
        out["sentence"] = [s for s, *_ in rows]
        out["first"] = [a for _, a, *_ in rows]
        out["owned"] = [[lo - a, hi - a] for _, a, _, lo, hi in rows]
        out["windowed"] = [len(piece) < len(sentences[s]) for piece, (s, *_) in zip(pieces, rows)]
        out["words_without_tokens"] = [sum(c == 0 for c in counts[s][lo:hi]) for s, _, _, lo, hi in rows]
        out["length"] = [len(ids) for ids in out["input_ids"]]
        return out

    def preprocess(self, batch: dict[str, list]) -> dict[str, list]:
        return self.encode_words(self.words(batch[self.columns["input"]]), self.window_starts(batch))

    def preprocessing_notes(self, encoded: Any) -> dict[str, Any]:
        windowed = np.asarray(encoded["windowed"], dtype=bool)
        owned = np.asarray(encoded["owned"]).reshape(-1, 2)
        return {
            "max_length": self.max_length,
            "median_tokens": float(np.median(encoded["length"])) if len(encoded) else 0.0,
            "sentences_in_windows": int((windowed & (np.asarray(encoded["first"]) == 0)).sum()),
            "windows": int(windowed.sum()),
            "words_labelled": int((owned[:, 1] - owned[:, 0]).sum()) - int(np.sum(encoded["words_without_tokens"])),
            "words_without_tokens": int(np.sum(encoded["words_without_tokens"])),
        }

    # ------------------------------------------------------------------ augmentation and batches

    def train_transform(self, batch: dict[str, list]) -> dict[str, Any]:
        """Word-level augmentation (the task's, e.g. entity mention replacement; re-casing), re-tokenised and
        re-aligned, then sub-token masking."""
        from hfft.modalities.text.word_augment import change_case

        aug = self.config.augmentation
        rng = np.random.default_rng(np.random.randint(2**31))  # numpy's global RNG is seeded by set_seed
        sentences, labels = [], []
        for words, word_labels in zip(batch[self.columns["input"]], batch["word_labels"]):
            words, word_labels = self.augment_words(list(words), list(word_labels), rng)
            sentences.append(change_case(words, aug.case_change_prob, rng) if self.cased else words)
            labels.append(word_labels)
        encoded = self.encode_words(self.words(sentences), split_long=False)  # re-cased words lower-cased again
        out = {**encoded, **self.preprocess_targets({"labels": labels}, encoded, "train")}
        return super().train_transform(out) if aug.token_mask_prob > 0 else out

    @functools.cached_property
    def cased(self) -> bool:
        """Whether the tokenizer keeps case (re-casing is a no-op for an uncased one, e.g. MiniLM's)."""
        ids = self.processor(["Word", "word"], add_special_tokens=False)["input_ids"]
        return ids[0] != ids[1]

    def has_train_transform(self) -> bool:
        aug = self.config.augmentation
        return aug.token_mask_prob > 0 or aug.mention_replace_prob > 0 or (aug.case_change_prob > 0 and self.cased)

    def collator(self) -> Any:
        return WordsCollator(self.processor, self.collate_targets)


class WordsCollator:
    """Pads the model inputs of each batch to its longest window; the task pads `labels`."""

    def __init__(self, tokenizer: Any, collate_targets: Any) -> None:
        from transformers import DataCollatorWithPadding

        self.pad, self.collate_targets = DataCollatorWithPadding(tokenizer), collate_targets
        self.inputs = tuple(tokenizer.model_input_names)

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        batch = self.pad([{k: v for k, v in row.items() if k in self.inputs} for row in features])
        if "labels" in features[0]:
            batch["labels"] = self.collate_targets(features)
        return batch
