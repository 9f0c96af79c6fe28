"""Text inputs: tokenise with truncation, pad dynamically, mask tokens as augmentation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hfft.config import RecipeConfig, option
from hfft.errors import ConfigError, DataError, ModelError
from hfft.recipe import Recipe

logger = logging.getLogger("hfft")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "tokenizer.model",
)


@dataclass
class TextPreprocessing:
    """How text becomes token ids."""

    max_length: int = option(
        256,
        "Truncate to this many tokens (capped at the model's limit); truncated rows are counted in the data report.",
    )
    lowercase: bool = option(False, "Lower-case text before tokenising (for cased models on noisy text).")


@dataclass
class TextAugmentation:
    """Train-only text augmentation (applied when regularization.augment is true)."""

    token_mask_prob: float = option(
        0.1,
        "Replace each non-special token with the mask token (or drop it "
        "when the tokenizer has none) with this probability.",
    )


class TextModality(Recipe):
    """Text (or text pairs) with the checkpoint's tokenizer."""

    modality = "text"
    input_candidates = ("text", "sentence", "content", "review", "document", "utterance", "tweet", "question")
    dedup = True
    Preprocessing = TextPreprocessing
    Augmentation = TextAugmentation
    fingerprint_roles: ClassVar[tuple[str, ...]] = ("input", "pair", "context", "completion")  # what the model reads
    _folds_case: bool | None = None  # set by fingerprint_method: compare texts lower-cased

    @classmethod
    def check_config(cls, config: RecipeConfig) -> None:
        super().check_config(config)
        if config.preprocessing.max_length < 2:
            raise ConfigError(f"'preprocessing.max_length' must be >= 2, got {config.preprocessing.max_length}.")
        if not 0.0 <= config.augmentation.token_mask_prob < 1.0:
            raise ConfigError(
                f"'augmentation.token_mask_prob' must be in [0, 1), got {config.augmentation.token_mask_prob}."
            )

    @classmethod
    def corruption_suite(cls) -> dict[str, Any]:
        from hfft.modalities.text.corruptions import SUITE

        return SUITE

    def input_columns(self, dataset: Any, where: str) -> dict[str, str]:
        columns = super().input_columns(dataset, where)
        pair = self.config.data.text_pair_column
        if pair is not None:
            if pair not in dataset.column_names:
                raise DataError(
                    f"{where}: column '{pair}' (from 'data.text_pair_column') not found; columns are: "
                    f"{', '.join(dataset.column_names)}."
                )
            columns["pair"] = pair
        for role in ("input", "pair"):
            if role in columns:
                dtype = getattr(dataset.features[columns[role]], "dtype", None)
                if dtype not in ("string", "large_string"):
                    raise DataError(
                        f"{where}: column '{columns[role]}' holds {dtype or dataset.features[columns[role]]}"
                        " values; text classification expects strings."
                    )
        return columns

    def load_processor(self, model_path: str) -> Any:
        from transformers import AutoTokenizer

        # transformers builds an empty-vocabulary tokenizer (every word -> [UNK]) when there are no files.
        if Path(model_path).is_dir() and not any((Path(model_path) / f).is_file() for f in TOKENIZER_FILES):
            raise ModelError(
                f"'model': '{model_path}' has no tokenizer files ({', '.join(TOKENIZER_FILES)}). Save the "
                f"tokenizer next to the weights: `AutoTokenizer.from_pretrained(BASE).save_pretrained('{model_path}')`."
            )
        try:
            return AutoTokenizer.from_pretrained(model_path, trust_remote_code=self.config.trust_remote_code)
        except (OSError, ValueError) as err:
            raise ModelError(f"'model': could not load the tokenizer of '{model_path}': {err}") from err

    def texts(self, batch: dict[str, list], role: str = "input") -> list[str]:
        texts = batch[self.columns[role]]
        return [t.lower() for t in texts] if self.config.preprocessing.lowercase else texts

    def check_batch(self, batch: dict[str, list]) -> list[str | None]:
        for role in [r for r in ("input", "pair") if r in self.columns]:
            column = self.columns[role]
            batch[column] = [t.strip() if isinstance(t, str) else t for t in batch[column]]
        return ["empty_text" if not text else None for text in batch[self.columns["input"]]]

    # ------------------------------------------------------------------ split leakage

    def fingerprint_method(self) -> str:
        self._folds_case = self.folds_case()
        case = {
            True: "lower-cased (preprocessing.lowercase)"
            if getattr(self.config.preprocessing, "lowercase", False)
            else "lower-cased (the tokenizer is uncased)",
            False: "case-sensitive (the tokenizer is cased)",
            None: "case-sensitive (the tokenizer's casing is unknown)",
        }[self._folds_case]
        return f"text with whitespace collapsed, {case}"

    def fingerprints(self, batch: dict[str, list]) -> dict[str, list]:
        """Text (pairs joined; word lists joined by spaces; conversations as `role: content` lines) with whitespace
        collapsed, lower-cased when the model cannot tell case apart: a SHA-1 of it, and the text itself for the
        near-duplicate check."""
        import hashlib

        from hfft.leakage import preview

        roles = [r for r in self.fingerprint_roles if r in self.columns]
        rows = zip(*(batch[self.columns[r]] for r in roles))
        shown = ["\n".join(" ".join(_as_text(v).split()) for v in row) for row in rows]
        texts = [t.lower() for t in shown] if self._folds_case else shown
        return {
            "exact": [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in texts],
            "preview": [repr(preview(t)) for t in shown],
            "near_text": texts,
        }

    def folds_case(self) -> bool | None:
        """Whether the model reads text lower-cased (preprocessing.lowercase, or an uncased tokenizer); None when
        unknown. Before `load_processor` the checkpoint's tokenizer is read once for this."""
        if getattr(self.config.preprocessing, "lowercase", False):
            return True
        tokenizer = self.processor
        if tokenizer is None:
            path = self.model_path  # resolved by preflight; else only a local checkpoint (never the Hub from here)
            if path is None and self.config.model is not None and Path(self.config.model).is_dir():
                path = self.config.model
            if path is None:
                return None
            try:
                from transformers import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=self.config.trust_remote_code)
            except Exception:  # load_processor reports a broken tokenizer properly later
                return None
        return tokenizer_lowercases(tokenizer)

    @property
    def max_length(self) -> int:
        return self.max_length_of(self.processor)

    def max_length_of(self, tokenizer: Any) -> int:
        """preprocessing.max_length, capped at the tokenizer's limit (ignored when it is a "no limit" sentinel)."""
        limit = getattr(tokenizer, "model_max_length", None) or 10**9
        return min(self.config.preprocessing.max_length, limit if limit < 10**6 else 10**9)

    def preprocess(self, batch: dict[str, list]) -> dict[str, list]:
        pairs = self.texts(batch, "pair") if "pair" in self.columns else None
        full = self.processor(self.texts(batch), pairs, truncation=False)
        encoded = self.processor(self.texts(batch), pairs, truncation=True, max_length=self.max_length)
        # untruncated: for the report, and kept for length-grouped batches (the collator drops it)
        encoded["length"] = [len(ids) for ids in full["input_ids"]]
        return encoded

    def preprocessing_notes(self, encoded: Any) -> dict[str, Any]:
        lengths = np.asarray(encoded["length"])
        notes = {
            "truncated": int((lengths > self.max_length).sum()),
            "max_length": self.max_length,
            "median_tokens": float(np.median(lengths)) if len(lengths) else 0.0,
        }
        if self.config.preprocessing.max_length > self.max_length:
            notes["max_length_capped_from"] = self.config.preprocessing.max_length  # the model's limit is lower
        return notes

    def encode(self, dataset: Any, split: str) -> Any:
        encoded = super().encode(dataset, split)
        notes = self.report.splits[split].notes
        if notes.get("truncated"):
            capped = notes.get("max_length_capped_from")
            logger.warning(
                "%s: %d of %d texts are longer than %d tokens and were truncated (%s).",
                split,
                notes["truncated"],
                len(encoded),
                notes["max_length"],
                f"the model's limit; preprocessing.max_length is {capped}" if capped else "preprocessing.max_length",
            )
        drop = [c for c in (self.columns.get("pair"),) if c and c in encoded.column_names]
        return encoded.remove_columns(drop)

    def train_transform(self, batch: dict[str, list]) -> dict[str, Any]:
        prob = self.config.augmentation.token_mask_prob
        mask_id = self.processor.mask_token_id
        special = set(self.processor.all_special_ids)
        rng = np.random.default_rng(np.random.randint(2**31))  # numpy's global RNG is seeded by set_seed
        out = dict(batch)
        new_ids, new_masks = [], []
        for ids in batch["input_ids"]:
            hit = rng.random(len(ids)) < prob
            hit &= np.array([t not in special for t in ids], dtype=bool)
            if mask_id is not None:
                new_ids.append([mask_id if h else t for t, h in zip(ids, hit)])
            else:
                new_ids.append([t for t, h in zip(ids, hit) if not h])
            new_masks.append([1] * len(new_ids[-1]))
        out["input_ids"] = new_ids
        if "attention_mask" in out:
            out["attention_mask"] = new_masks
        if "token_type_ids" in out and mask_id is None:
            out["token_type_ids"] = [tt[: len(ids)] for tt, ids in zip(batch["token_type_ids"], new_ids)]
        return out

    def has_train_transform(self) -> bool:
        return self.config.augmentation.token_mask_prob > 0

    def collator(self) -> Any:
        return PaddingCollator(self.processor, self.collate_targets)

    def prepare_inputs(self, inputs: list[Any]) -> dict[str, Any]:
        texts = [str(t).strip() for t in inputs]
        if self.config.preprocessing.lowercase:
            texts = [t.lower() for t in texts]
        return self.processor(texts, truncation=True, max_length=self.max_length, padding=True, return_tensors="pt")


def _as_text(value: Any) -> str:
    """A text column value as one string: word lists joined by spaces, conversations as `role: content` lines."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, dict) for v in value):
            return "\n".join(f"{v.get('role', v.get('from'))}: {v.get('content', v.get('value'))}" for v in value)
        return " ".join(map(str, value))
    return str(value)


def tokenizer_lowercases(tokenizer: Any) -> bool | None:
    """True when ``tokenizer`` lower-cases its input (``do_lower_case``, or a lower-casing normalizer of a fast
    tokenizer), False when it does not, None when that cannot be told."""
    import json

    value = getattr(tokenizer, "do_lower_case", None)
    if isinstance(value, bool):
        return value
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    try:
        normalizer = json.loads(backend.to_str()).get("normalizer")
    except Exception:
        return None

    def lowercases(spec: Any) -> bool:
        if not isinstance(spec, dict):
            return False
        if spec.get("type") == "Lowercase" or (spec.get("type") == "BertNormalizer" and spec.get("lowercase")):
            return True
        return any(lowercases(s) for s in spec.get("normalizers") or [])

    return lowercases(normalizer)


class PaddingCollator:
    """Pads each batch to its longest text; the task collates `labels`; drops `length` (read only by the
    length-grouping sampler)."""

    def __init__(self, tokenizer: Any, collate_targets: Any) -> None:
        from transformers import DataCollatorWithPadding

        self.pad, self.collate_targets = DataCollatorWithPadding(tokenizer), collate_targets

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        batch = self.pad([{k: v for k, v in row.items() if k not in ("length", "labels")} for row in features])
        if "labels" in features[0]:
            batch["labels"] = self.collate_targets(features)
        return batch
