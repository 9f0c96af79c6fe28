"""Token classification (NER, tagging): one tag per word. Owns the tag column (ClassLabel, strings or ids;
any BIO scheme, converted to IOB2), word-to-sub-token label alignment, entity-level metrics (seqeval), the
all-O baseline, entity mention replacement and the entity spans `predict` returns."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hfft import tags as bio
from hfft.config import RecipeConfig, option
from hfft.errors import ConfigError, DataError
from hfft.hooks import find_column
from hfft.labels import list_feature_inner
from hfft.recipe import Recipe

logger = logging.getLogger("hfft")
TAG_CANDIDATES = ("ner_tags", "tags", "labels", "ner", "pos_tags", "upos", "chunk_tags")
IGNORED = -100  # label of sub-tokens and words that are not trained or evaluated (CrossEntropyLoss ignore_index)
SCHEMES = ("auto", "IOB2", "IOB1", "BIOES", "BILOU", "IO", "plain")


@dataclass
class TokenLabels:
    """What the tags are, how they are aligned to sub-tokens and how entities are scored."""

    scheme: Literal["auto", "IOB2", "IOB1", "BIOES", "BILOU", "IO", "plain"] = option(
        "auto",
        "Tag scheme of the data: `auto` detects it from train. Chunk schemes are converted to IOB2 for training "
        "(what `transformers.pipeline` aggregates); `plain` tags (e.g. POS) have no entities: token accuracy only.",
    )
    invalid_tags: Literal["repair", "keep", "error"] = option(
        "repair",
        "IOB2 sequences where I-X does not continue an X chunk (after O or another type): counted per split and "
        "`repair`ed to B-X (seqeval's default reading), kept as they are, or an `error` naming the row.",
    )
    label_all_subtokens: bool = option(
        False,
        "Train every sub-token of a word (continuations get the I- form of the word's tag) instead of the first "
        "only; evaluation always scores each word once, at its first sub-token.",
    )
    seqeval_mode: Literal["default", "strict"] = option(
        "default",
        "Entity scoring for `f1`/`precision`/`recall`: `default` (conlleval: an I-X after O starts an entity) or "
        "`strict` (IOB2: only B-X starts one, and an entity must match exactly). Both are reported (`f1_default`, "
        "`f1_strict`).",
    )
    names: list[str] | None = option(
        None, "Tag names for integer tags without `ClassLabel` names: names[i] is the tag of id i."
    )


class TokenClassification(Recipe):
    """Token classification (a tag per word: NER, POS, slots)."""

    Labels = TokenLabels
    default_models = {"text": "distilbert/distilbert-base-cased"}  # cased: capitalisation is evidence of names
    model_classes = {"text": "AutoModelForTokenClassification"}
    primary_metric = "f1"
    greater_is_better = True
    robustness_metrics = ("f1", "accuracy")
    dedup = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.label_names: list[str] = []  # id -> tag (IOB2); "O" first
        self.scheme: str | None = None  # the data's scheme (before conversion)
        self.mentions: Any = None  # MentionBank of train (augmentation)

    @classmethod
    def check_config(cls, config: RecipeConfig) -> None:
        super().check_config(config)
        reg = config.regularization
        if reg.class_weights != "none" or reg.balanced_sampler:
            raise ConfigError(
                "'regularization.class_weights' and 'regularization.balanced_sampler' apply to classification; "
                "token classification weighs every word equally."
            )

    # ------------------------------------------------------------------ targets

    def convert_source(self, dataset: Any, where: str) -> Any:
        """Character-span annotations (`text` + `entities: [{start, end, label}]`) become words + IOB2 tags."""
        columns = dataset.column_names
        if "entities" not in columns or "text" not in columns or any(c in columns for c in self.input_candidates):
            return dataset

        def convert(row: dict[str, Any], index: int) -> dict[str, Any]:
            words, tags = bio.spans_to_words(row["text"] or "", row["entities"] or [], f"{where} row {index}")
            return {"tokens": words, "ner_tags": tags}

        return dataset.map(convert, with_indices=True, remove_columns=["text", "entities"], desc="character spans")

    def target_columns(self, dataset: Any, where: str) -> dict[str, str]:
        column = find_column(dataset, self.config.data.label_column, TAG_CANDIDATES, "data.label_column", where)
        if list_feature_inner(dataset.features[column]) is None:
            raise DataError(
                f"{where}: tag column '{column}' holds {dataset.features[column]}; {self.task} expects a list of "
                "tags per row, one per word."
            )
        return {"label": column}

    def check_targets(self, batch: dict[str, list]) -> list[str | None]:
        return ["missing_tags" if tags is None else None for tags in batch[self.columns["label"]]]

    def clean(self, dataset: Any, split: str) -> Any:
        """Words and tags of different lengths are an error naming the row (the data is misaligned), before the
        modality's and task's row checks."""
        from hfft import cleaning

        where = cleaning.source_name(self.config.data, split)
        words, tags = dataset[self.columns["input"]], dataset[self.columns["label"]]
        for row, (w, t) in enumerate(zip(words, tags)):
            if w is not None and t is not None and len(w) != len(t):
                raise DataError(
                    f"{where}: row {row} has {len(w)} words but {len(t)} tags in '{self.columns['label']}' "
                    f"(words: {' '.join(map(str, w[:8]))}{' ...' if len(w) > 8 else ''}); each word needs one tag."
                )
        # rows keep their source index: later messages (unknown or invalid tags) name the row of the file
        return super().clean(dataset.add_column("source_row", list(range(len(dataset)))), split)

    def tag_names(self, dataset: Any, where: str) -> list[str] | None:
        """Names of integer tags (ClassLabel or `labels.names`); None when the tags are strings."""
        column = self.columns["label"]
        inner = list_feature_inner(dataset.features[column])
        if getattr(inner, "names", None):
            return list(inner.names)
        if getattr(inner, "dtype", None) in ("string", "large_string"):
            return None
        if self.config.labels.names is None:
            raise DataError(
                f"{where}: tag column '{column}' holds {inner} values without names; set labels.names to the tag "
                "of each id (e.g. [O, B-PER, I-PER]) or use string tags."
            )
        return list(self.config.labels.names)

    def string_tags(self, dataset: Any, where: str) -> list[list[str]]:
        column, names = self.columns["label"], self.tag_names(dataset, where)
        if names is None:
            return [list(t) for t in dataset[column]]
        out = []
        for row, ids in zip(dataset["source_row"], dataset[column]):
            if any(not 0 <= i < len(names) for i in ids):
                bad = next(i for i in ids if not 0 <= i < len(names))
                raise DataError(f"{where}: row {row} has tag id {bad}, outside the {len(names)} tag names.")
            out.append([names[i] for i in ids])
        return out

    def encode_targets(self, splits: dict[str, Any], where: dict[str, str]) -> dict[str, Any]:
        """Tags as strings, the scheme detected on train and converted to IOB2, invalid sequences counted (and
        repaired), the tag set learned from train (a reloaded run keeps its own), every split encoded as a
        `labels` column of per-word ids."""
        learn = not self.label_names
        tags = {role: self.string_tags(ds, where[role]) for role, ds in splits.items()}
        if learn:
            self.scheme = self.config.labels.scheme if self.config.labels.scheme != "auto" else None
            self.scheme = self.scheme or bio.detect_scheme(tags["train"])
        encoded = {}
        for role, ds in splits.items():
            sequences = self.to_iob2(tags[role], ds["source_row"], role, where[role])
            if learn and role == "train":
                named = self.tag_names(ds, where[role]) if self.scheme in ("IOB2", "plain") else None
                self.label_names = self.tag_set(sequences, named)
                self.build_mention_bank(ds[self.columns["input"]], sequences)
            encoded[role] = self.encode_tags(ds, sequences, role, where[role])
        return encoded

    def to_iob2(self, sequences: list[list[str]], source_rows: list[int], role: str, where: str) -> list[list[str]]:
        notes = self.report.splits[role].notes
        notes["tag_scheme"] = self.scheme if self.scheme == "IOB2" else f"{self.scheme} (converted to IOB2)"
        if self.scheme == "plain":
            notes["tag_scheme"] = "plain (no entities)"
            return sequences
        sequences = [bio.to_iob2(tags, self.scheme) for tags in sequences]
        invalid = [(row, bio.invalid_positions(tags)) for row, tags in enumerate(sequences)]
        invalid = [(row, positions) for row, positions in invalid if positions]
        if invalid:
            notes["invalid_tag_sequences"] = {"rows": len(invalid), "tags": sum(len(p) for _, p in invalid)}
            row, positions = invalid[0]
            before, tag = sequences[row][positions[0] - 1] if positions[0] else "start", sequences[row][positions[0]]
            example = f"row {source_rows[row]}, word {positions[0]}: {before} -> {tag}"
            if self.config.labels.invalid_tags == "error":
                raise DataError(
                    f"{where}: {len(invalid)} rows have an I- tag that continues no entity (first: {example}); set "
                    "labels.invalid_tags: repair to read them as B- tags."
                )
            action = "repaired to B-" if self.config.labels.invalid_tags == "repair" else "kept"
            logger.warning(
                "%s: %d rows have I- tags that continue no entity (%s), %s", role, len(invalid), example, action
            )
            if self.config.labels.invalid_tags == "repair":
                sequences = [bio.repair(tags) for tags in sequences]
        return sequences

    @staticmethod
    def tag_set(sequences: list[list[str]], names: list[str] | None = None) -> list[str]:
        """The data's own tag names in their order (ClassLabel or labels.names, when kept as they are), else "O"
        first, then B-X and I-X of every type; B-X and I-X always both, so the model can begin and continue any
        entity."""
        seen = {t for tags in sequences for t in tags} | set(names or [])
        types = sorted({bio.split_tag(t)[1] for t in seen if bio.split_tag(t)[0] in ("B", "I")})
        plain = sorted(t for t in seen if bio.split_tag(t)[0] not in ("B", "I", "O"))
        ordered = ["O"] * ("O" in seen or bool(types)) + [f"{p}-{k}" for k in types for p in ("B", "I")] + plain
        if names is None:
            return ordered
        return list(dict.fromkeys(names)) + [t for t in ordered if t not in names]

    def encode_tags(self, dataset: Any, sequences: list[list[str]], role: str, where: str) -> Any:
        lookup = {name: i for i, name in enumerate(self.label_names)}
        for row, tags in enumerate(sequences):
            unknown = [t for t in tags if t not in lookup]
            if unknown:
                words = " ".join(map(str, dataset[row][self.columns["input"]][:8]))
                raise DataError(
                    f"{where}: row {dataset[row]['source_row']} ({words} ...) has tag '{unknown[0]}', which train "
                    f"does not have; train's tags: {', '.join(self.label_names)}."
                )
        ids = [[lookup[t] for t in tags] for tags in sequences]
        return dataset.remove_columns([self.columns["label"], "source_row"]).add_column("labels", ids)

    def build_mention_bank(self, words: list[list[str]], sequences: list[list[str]]) -> None:
        from hfft.modalities.text.word_augment import MentionBank

        if self.config.regularization.augment and getattr(self.config.augmentation, "mention_replace_prob", 0) > 0:
            self.mentions = MentionBank.from_sentences(zip(words, sequences))

    def target_notes(self, dataset: Any) -> dict[str, Any]:
        names = self.label_names
        entities = Counter(kind for ids in dataset["labels"] for *_, kind in bio.entity_spans([names[i] for i in ids]))
        return {"words": int(sum(len(ids) for ids in dataset["labels"])), "entities": dict(sorted(entities.items()))}

    # ------------------------------------------------------------------ alignment

    def window_starts(self, batch: dict[str, list]) -> list[list[bool]] | None:
        if "labels" not in batch:
            return None
        return [bio.starts_chunk([self.label_names[i] for i in ids]) for ids in batch["labels"]]

    @property
    def continuation_ids(self) -> list[int]:
        """For each tag id, the id a word's later sub-tokens get (B-X -> I-X) with labels.label_all_subtokens."""
        lookup = {name: i for i, name in enumerate(self.label_names)}
        return [
            lookup.get("I-" + name[2:], i) if name.startswith("B-") else i for i, name in enumerate(self.label_names)
        ]

    def preprocess_targets(self, batch: dict[str, list], encoded: dict[str, list], split: str) -> dict[str, list]:
        """Token `labels`: the word's tag at its first sub-token (train with labels.label_all_subtokens: at
        every sub-token), -100 elsewhere and for words another window owns; `word_labels`: the window's
        per-word ids (-100 for words it does not own), for word-level augmentation."""
        if "labels" not in batch:
            return {}
        every = self.config.labels.label_all_subtokens and split == "train"
        continuation = self.continuation_ids
        labels, window_labels = [], []
        for s, first, (lo, hi), word_ids in zip(
            encoded["sentence"], encoded["first"], encoded["owned"], encoded["word_ids"]
        ):
            sentence = batch["labels"][s]
            n = max(hi, max(word_ids) + 1)
            words = [sentence[first + w] if lo <= w < hi else IGNORED for w in range(n)]
            row, previous = [], -1
            for w in word_ids:
                if w < 0 or words[w] == IGNORED:
                    row.append(IGNORED)
                elif w != previous:
                    row.append(words[w])
                else:
                    row.append(continuation[words[w]] if every else IGNORED)
                previous = w
            labels.append(row)
            window_labels.append(words)
        return {"labels": labels, "word_labels": window_labels}

    def augment_words(self, words: list[str], labels: list[int], rng: Any) -> tuple[list[str], list[int]]:
        """Each entity mention replaced, with probability augmentation.mention_replace_prob, by another mention
        of the same type from train; the tags follow the new words."""
        from hfft.modalities.text.word_augment import replace_mentions

        if self.mentions is None or not len(self.mentions):
            return words, labels
        names = [self.label_names[i] if i != IGNORED else "X-ignored" for i in labels]
        words, names = replace_mentions(words, names, self.mentions, self.config.augmentation.mention_replace_prob, rng)
        lookup = {name: i for i, name in enumerate(self.label_names)}
        return words, [lookup.get(n, IGNORED) for n in names]

    # ------------------------------------------------------------------ head and batches

    def configure_head(self, model_config: Any) -> Any:
        model_config.num_labels = len(self.label_names)
        model_config.id2label = dict(enumerate(self.label_names))
        model_config.label2id = {name: i for i, name in enumerate(self.label_names)}
        return model_config

    def collate_targets(self, rows: list[dict[str, Any]]) -> Any:
        """`labels` padded with -100 to the longest row, on the tokenizer's padding side."""
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        left = getattr(self.processor, "padding_side", "right") == "left"
        padded = [
            [IGNORED] * (width - len(r["labels"])) + list(r["labels"]) if left
            else list(r["labels"]) + [IGNORED] * (width - len(r["labels"]))
            for r in rows
        ]  # fmt: skip
        return torch.tensor(padded, dtype=torch.long)

    # ------------------------------------------------------------------ metrics

    def preprocess_logits(self, logits: Any, labels: Any) -> Any:
        from hfft.metrics import argmax_logits

        return argmax_logits(logits, labels)

    def word_sequences(self, predictions: Any, label_ids: Any) -> tuple[list[list[str]], list[list[str]]]:
        """Per row (window), the gold and predicted tags of the words it is evaluated on, in order."""
        predictions, label_ids = np.asarray(predictions), np.asarray(label_ids)
        names = np.asarray(self.label_names, dtype=object)
        gold, predicted = [], []
        for pred_row, gold_row in zip(predictions, label_ids):
            keep = gold_row != IGNORED
            gold.append(names[gold_row[keep]].tolist())
            predicted.append(names[np.clip(pred_row[keep], 0, len(names) - 1)].tolist())
        return gold, predicted

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        """Entity-level precision/recall/F1 (seqeval, labels.seqeval_mode; both modes' F1 reported), per type
        F1, and word accuracy."""
        from hfft.metrics_tokens import entity_metrics

        gold, predicted = self.word_sequences(eval_pred.predictions, eval_pred.label_ids)
        return entity_metrics(gold, predicted, self.config.labels.seqeval_mode, entities=self.scheme != "plain")

    def baseline_metrics(self, train: Any, split: Any) -> dict[str, float]:
        """The all-O tagger (entities: F1 0) or, for plain tags, the most frequent tag: its word accuracy."""
        counts = Counter(i for ids in split["labels"] for i in ids if i != IGNORED)
        total = sum(counts.values())
        if not total:
            return {}
        train_counts = Counter(i for ids in train["labels"] for i in ids if i != IGNORED)
        majority = train_counts.most_common(1)[0][0] if train_counts else 0
        return {"majority_baseline_accuracy": counts[majority] / total}

    # ------------------------------------------------------------------ predictions and outputs

    def predict(self, inputs: list[Any], batch_size: int = 16) -> list[dict[str, Any]]:
        """Entity spans of raw texts (or of lists of words): {"entities": [{"type", "text", "start", "end",
        "score"}], "words": [...], "tags": [...]} per input; character offsets index the text, scores are the
        mean probability of the entity's words (each word read at its first sub-token)."""
        import torch

        if self.model is None:
            raise RuntimeError("predict() needs a trained model: call train() or Recipe.from_run(run_dir).")
        texts, sentences, offsets = [], [], []
        for item in inputs:
            if isinstance(item, str):
                found = bio.split_words(item)
                texts.append(item)
                sentences.append([w for w, _, _ in found])
                offsets.append([(a, b) for _, a, b in found])
            else:
                words = [str(w) for w in item]
                spans, at = [], 0
                for w in words:
                    spans.append((at, at + len(w)))
                    at += len(w) + 1
                texts.append(" ".join(words))
                sentences.append(words)
                offsets.append(spans)
        encoded = self.encode_words(self.words(sentences))
        probs = [np.zeros((len(ws), len(self.label_names)), dtype=np.float32) for ws in sentences]
        self.model.eval()
        device = next(self.model.parameters()).device
        collate = self.collator()
        for start in range(0, len(encoded["input_ids"]), batch_size):
            rows = [
                {k: encoded[k][i] for k in encoded}
                for i in range(start, min(start + batch_size, len(encoded["input_ids"])))
            ]
            batch = {k: v.to(device) for k, v in collate(rows).items()}
            with torch.no_grad():
                window_probs = torch.softmax(self.model(**batch).logits.float(), dim=-1).cpu().numpy()
            for row, p in zip(rows, window_probs):
                lo, hi = row["owned"]
                left = (
                    len(p) - len(row["word_ids"]) if getattr(self.processor, "padding_side", "right") == "left" else 0
                )
                seen = set()
                for position, w in enumerate(row["word_ids"]):
                    if w >= 0 and w not in seen and lo <= w < hi:
                        probs[row["sentence"]][row["first"] + w] = p[left + position]
                    seen.add(w)
        results = []
        for text, words, spans, p in zip(texts, sentences, offsets, probs):
            tags = [self.label_names[i] for i in p.argmax(-1)] if len(words) else []
            scores = p.max(-1) if len(words) else np.zeros(0)
            entities = []
            for a, b, kind in bio.entity_spans(bio.repair(tags)):
                start, end = spans[a][0], spans[b - 1][1]
                entities.append({"type": kind, "text": text[start:end], "start": start, "end": end,
                                 "score": round(float(scores[a:b].mean()), 4)})  # fmt: skip
            results.append({"entities": entities, "words": words, "tags": tags})
        return results

    def task_info(self) -> dict[str, Any]:
        return {"labels": self.label_names, "scheme": self.scheme}

    def restore_task(self, info: dict[str, Any]) -> None:
        self.label_names, self.scheme = list(info["labels"]), info.get("scheme")

    def write_task_outputs(self, out: Path) -> list[str]:
        """entity_report.{json,md}: per-type precision/recall/F1/support in both seqeval modes, per evaluated
        split; entity_confusion.png: which type each word of the validation set was predicted as."""
        from hfft import plots
        from hfft.metrics_tokens import entity_report, markdown_report, type_confusion

        lines = [f"- tags ({len(self.label_names)}, IOB2; data scheme {self.scheme}): {', '.join(self.label_names)}"]
        if self.scheme == "plain":
            return lines
        reports = {}
        for split, output in self.predictions.items():
            gold, predicted = self.word_sequences(output.predictions, output.label_ids)
            reports[split] = entity_report(gold, predicted)
        if reports:
            import json

            (out / "entity_report.json").write_text(json.dumps(reports, indent=2))
            (out / "entity_report.md").write_text(markdown_report(reports))
            lines.append("- entity precision/recall/F1 per type (seqeval default and strict): `entity_report.md`")
        if "eval" in self.predictions:
            gold, predicted = self.word_sequences(
                self.predictions["eval"].predictions, self.predictions["eval"].label_ids
            )
            types, truth, guess = type_confusion(gold, predicted)
            plots.confusion_matrix(guess, truth, types, out / "entity_confusion.png",
                                   title="Entity type of each validation word (true vs predicted)")  # fmt: skip
            lines.append("- word-level confusion between entity types (validation): `entity_confusion.png`")
        return lines
