"""Speech recognition: audio -> transcript, with encoder-decoder models (Whisper and any
`AutoModelForSpeechSeq2Seq`: generation-based evaluation) or CTC models (wav2vec2, HuBERT, ...:
`AutoModelForCTC`, a character vocabulary built from the training transcripts when the checkpoint has none).

Owns the transcript column, its normalisation and tokenisation, over-long targets, the CTC head, the
generation settings (language, task, new tokens, beams), WER/CER and the checkpoint's zero-shot WER."""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hfft import cleaning
from hfft.config import RecipeConfig, option
from hfft.errors import ConfigError, DataError, ModelError
from hfft.hooks import find_column
from hfft.recipe import Recipe
from hfft.transcripts import (
    TranscriptNormalizer,
    ctc_vocabulary,
    out_of_vocabulary,
    speech_metrics,
    write_ctc_tokenizer,
)

logger = logging.getLogger("hfft")
TRANSCRIPT_CANDIDATES = ("text", "sentence", "transcription", "transcript", "normalized_text", "sentence_text")
ENGLISH = ("en", "english", "<|en|>")


@dataclass
class TranscriptOptions:
    """How transcripts become targets, and how the model writes them back."""

    lowercase: bool = option(False, "Lower-case the target transcripts (train and evaluation references).")
    remove_punctuation: bool = option(
        False, "Remove punctuation from the target transcripts (apostrophes inside words are kept)."
    )
    numbers: Literal["keep", "digits"] = option(
        "keep",
        "`digits`: spelled-out numbers in targets become digits ('twenty one' -> '21') with Whisper's English "
        "number normaliser; needs lowercase: true. `keep`: as written.",
    )
    max_target_tokens: int | None = option(
        None,
        "Longest target in tokens (encoder-decoder models, prefix tokens included). None: the decoder's limit "
        "(Whisper: max_target_positions, 448). CTC models always drop transcripts with more characters than the "
        "model has output frames for the clip (CTC cannot emit them).",
    )
    long_targets: Literal["drop", "truncate"] = option(
        "drop",
        "Transcripts over max_target_tokens: `drop` the row (counted as long_transcript) or `truncate` the tokens "
        "(keeping end-of-text; the model then learns to stop early, and references are truncated too).",
    )
    vocabulary: Literal["auto", "checkpoint", "build"] = option(
        "auto",
        "CTC models: `build` a character vocabulary from the training transcripts (spaces become the `|` word "
        "delimiter; a new lm_head), use the `checkpoint`'s tokenizer, or `auto`: the checkpoint's if it has one.",
    )
    language: str | None = option(
        None,
        "Whisper: the spoken language (e.g. english, de). Required for multilingual checkpoints: it is set in the "
        "generation config and in the target prefix tokens. English-only (.en) checkpoints accept only English.",
    )
    speech_task: Literal["transcribe", "translate"] = option(
        "transcribe", "Whisper: transcribe, or translate into English (multilingual checkpoints)."
    )
    max_new_tokens: int = option(128, "Encoder-decoder models: most tokens generated per clip in evaluation/predict.")
    num_beams: int = option(1, "Encoder-decoder models: beam width in evaluation and predict (1: greedy).")
    zero_shot_baseline: bool = option(
        True,
        "Before training, evaluate the unmodified checkpoint on validation and test (`*_zero_shot_wer`), so the "
        "run shows what fine-tuning bought. A new CTC head is untrained there (WER near 1).",
    )


class SpeechRecognition(Recipe):
    """Speech recognition (transcripts)."""

    Labels = TranscriptOptions
    default_models = {"audio": "openai/whisper-tiny"}
    primary_metric = "wer"
    greater_is_better = False
    robustness_metrics = ("wer", "cer")
    trainer_class = "Seq2SeqTrainer"  # generation-based evaluation (CTC models evaluate as with Trainer)
    training_arguments_class = "Seq2SeqTrainingArguments"
    crops_inputs = False  # a crop would cut words out of the transcript: long clips are dropped instead
    default_clip_seconds = 30.0
    pipeline_tag = "automatic-speech-recognition"
    train_eval_rows = 100  # generation is slow: the generalisation gap is measured on fewer rows

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokenizer: Any = None
        self.vocab: dict[str, int] | None = None  # CTC vocabulary built from train (saved in run_info.json)
        self._architecture: dict[str, Any] | None = None
        labels = self.config.labels
        self.normalize = TranscriptNormalizer(labels.lowercase, labels.remove_punctuation, labels.numbers)

    @classmethod
    def check_config(cls, config: RecipeConfig) -> None:
        super().check_config(config)
        labels, reg = config.labels, config.regularization
        if labels.numbers == "digits" and not labels.lowercase:
            raise ConfigError("'labels.numbers: digits' reads lower-case number words: set labels.lowercase: true.")
        for key in ("max_new_tokens", "num_beams", "max_target_tokens"):
            value = getattr(labels, key)
            if value is not None and value < 1:
                raise ConfigError(f"'labels.{key}' must be >= 1, got {value}.")
        if reg.class_weights != "none" or reg.balanced_sampler:
            raise ConfigError("'regularization.class_weights' / 'balanced_sampler' apply to classification only.")

    # ------------------------------------------------------------------ architecture

    @property
    def checkpoint_dir(self) -> Path:
        """Where the checkpoint is (a local directory, or a Hub id as a path that does not exist)."""
        from hfft.modeling import resolve_model_path

        return Path(resolve_model_path(self.config.model or self.default_model))

    @property
    def architecture(self) -> dict[str, Any]:
        """The checkpoint's config.json (read without loading weights); decides seq2seq vs CTC."""
        if self._architecture is None:
            path = self.checkpoint_dir
            if (path / "config.json").is_file():
                self._architecture = json.loads((path / "config.json").read_text(encoding="utf-8"))
            else:  # a Hub id: preflight checks it can be reached and names what to do if not
                from transformers import AutoConfig

                from hfft.modeling import check_model_source

                check_model_source(str(path))
                self._architecture = AutoConfig.from_pretrained(str(path)).to_dict()
        return self._architecture

    @property
    def seq2seq(self) -> bool:
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_CTC_MAPPING_NAMES,
            MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES,
        )

        model_type = self.architecture.get("model_type")
        if model_type in MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES:
            return True
        if model_type in MODEL_FOR_CTC_MAPPING_NAMES:
            return False
        raise ModelError(
            f"'model': model_type {model_type!r} is neither a speech encoder-decoder (AutoModelForSpeechSeq2Seq: "
            "whisper, speech_to_text, ...) nor a CTC model (AutoModelForCTC: wav2vec2, hubert, ...)."
        )

    @property
    def model_class_name(self) -> str:
        return "AutoModelForSpeechSeq2Seq" if self.seq2seq else "AutoModelForCTC"

    @property
    def english_only(self) -> bool:
        """A Whisper checkpoint without language tokens (`.en`): its generation config says it is not
        multilingual (older exports: the 51,864-token English vocabulary)."""
        if self.architecture.get("model_type") != "whisper":
            return False
        path = self.checkpoint_dir / "generation_config.json"
        if path.is_file():
            multilingual = json.loads(path.read_text(encoding="utf-8")).get("is_multilingual")
            if multilingual is not None:
                return not multilingual
        return self.architecture.get("vocab_size") == 51864

    @property
    def multilingual_whisper(self) -> bool:
        return self.architecture.get("model_type") == "whisper" and not self.english_only

    def preflight(self, resume: bool | str) -> str:
        path = super().preflight(resume)
        labels, language = self.config.labels, (self.config.labels.language or "").lower()
        if not self.seq2seq and self.config.regularization.label_smoothing:
            raise ConfigError("'regularization.label_smoothing' does not apply to CTC models (CTC has no smoothing).")
        if self.english_only and language and language not in ENGLISH:
            raise ConfigError(f"'labels.language': {labels.language!r} on an English-only Whisper checkpoint ({path}).")
        if self.english_only and labels.speech_task == "translate":
            raise ConfigError(f"'labels.speech_task: translate' needs a multilingual Whisper checkpoint ({path}).")
        if not self.seq2seq and (labels.language or labels.speech_task != "transcribe"):
            raise ConfigError("'labels.language' / 'labels.speech_task' apply to Whisper models only.")
        if self.multilingual_whisper and not labels.language:
            raise ConfigError(
                f"'labels.language' is required for the multilingual Whisper checkpoint '{path}' (e.g. "
                "language: english): targets and generation must use the same language token."
            )
        return path

    # ------------------------------------------------------------------ targets

    def target_columns(self, dataset: Any, where: str) -> dict[str, str]:
        key = "data.label_column"
        return {"label": find_column(dataset, self.config.data.label_column, TRANSCRIPT_CANDIDATES, key, where)}

    def check_targets(self, batch: dict[str, list]) -> list[str | None]:
        from hfft.modalities.audio.io import source_name

        problems = []
        for text, source in zip(batch[self.columns["label"]], batch[self.columns["input"]]):
            if not isinstance(text, str):
                problems.append(f"missing_transcript: {source_name(source)}" if text is None else
                                f"bad_transcript: {source_name(source)} ({type(text).__name__}, not text)")  # fmt: skip
            else:
                problems.append(None if text.strip() else f"empty_transcript: {source_name(source)}")
        return problems

    def encode_targets(self, splits: dict[str, Any], where: dict[str, str]) -> dict[str, Any]:
        """Normalise the transcripts as configured (rows left empty are dropped, counted); a CTC vocabulary is
        built from the training transcripts when the checkpoint has none."""
        from hfft.modalities.audio.io import source_name

        column, audio = self.columns["label"], self.columns["input"]

        def normalize(batch: dict[str, list]) -> dict[str, list]:
            return {column: [self.normalize(text) for text in batch[column]]}

        for role, ds in splits.items():
            ds = ds.map(normalize, batched=True, desc=f"normalising {role} transcripts")
            empty = [None if text else f"empty_transcript: {source_name(src)} (after normalisation)"
                     for text, src in zip(ds[column], ds[audio])]  # fmt: skip
            splits[role] = cleaning.drop_rows(ds, empty, role, self.report)
        if "train" in splits and not self.seq2seq and self.vocab is None and self.builds_vocabulary():
            self.vocab = ctc_vocabulary(splits["train"][column])
            logger.info("CTC vocabulary built from the training transcripts: %d symbols", len(self.vocab))
        return splits

    def builds_vocabulary(self) -> bool:
        """CTC: whether the character vocabulary comes from the data (`labels.vocabulary`)."""
        choice = self.config.labels.vocabulary
        if choice != "auto":
            return choice == "build"
        return not any(
            (self.checkpoint_dir / name).is_file() for name in ("vocab.json", "tokenizer.json", "tokenizer_config.json")
        )

    def target_notes(self, dataset: Any) -> dict[str, Any]:
        words = [len(text.split()) for text in dataset[self.columns["label"]]]
        return {"words_per_transcript": round(float(np.mean(words)), 2) if words else 0.0, "words": int(sum(words))}

    def load_target_processor(self, model_path: str) -> None:
        """The tokenizer: the checkpoint's, or a CTC one over the vocabulary built from the training transcripts."""
        from transformers import AutoTokenizer

        if self.vocab is not None:
            with tempfile.TemporaryDirectory() as tmp:
                self.tokenizer = write_ctc_tokenizer(self.vocab, Path(tmp))
        else:
            try:
                self.tokenizer = AutoTokenizer.from_pretrained(
                    model_path, trust_remote_code=self.config.trust_remote_code
                )
            except (OSError, ValueError) as err:
                raise ModelError(
                    f"'model': '{model_path}' has no tokenizer ({' '.join(str(err).split())[:200]}). CTC models: set "
                    "labels.vocabulary: build to build one from the training transcripts."
                ) from None
        control = [t for t in self.tokenizer.get_added_vocab() if t.startswith("<|") and t.endswith("|>")]
        if control and not set(self.tokenizer.convert_tokens_to_ids(control)) <= set(self.tokenizer.all_special_ids):
            # Whisper control tokens (<|notimestamps|>, ...) saved as plain added tokens would be printed in the
            # pipeline's transcripts: mark them special, as the original tokenizer does
            self.tokenizer.add_special_tokens({"additional_special_tokens": control})
        if self.tokenizer.pad_token is None and self.tokenizer.eos_token is not None:
            self.tokenizer.pad_token = self.tokenizer.eos_token  # Whisper's convention; labels are masked by length
        if self.multilingual_whisper:  # labels.language is required (preflight)
            self.tokenizer.set_prefix_tokens(language=self.config.labels.language, task=self.config.labels.speech_task)

    def preprocess_targets(self, batch: dict[str, list], encoded: dict[str, list], split: str) -> dict[str, list]:
        return {"labels": self.tokenizer(batch[self.columns["label"]]).input_ids}

    def encode(self, dataset: Any, split: str) -> Any:
        """Targets the model cannot learn are dropped (or truncated), counted and named: transcripts over the
        decoder's limit; CTC transcripts with more symbols than the clip has output frames."""
        from hfft.modalities.audio.io import source_name

        names = [source_name(s) for s in dataset[self.columns["input"]]]
        if not self.seq2seq:  # a checkpoint's CTC vocabulary may lack characters of these transcripts
            unknown = out_of_vocabulary(dataset[self.columns["label"]], self.tokenizer)
            if unknown:
                self.report.splits[split].notes["characters_outside_vocabulary"] = dict(unknown.most_common(20))
                logger.warning("%s: characters the CTC vocabulary cannot spell (become [UNK]): %s", split,
                               ", ".join(f"{c!r} x{n}" for c, n in unknown.most_common(10)))  # fmt: skip
        encoded = super().encode(dataset, split)
        lengths = [len(ids) for ids in encoded["labels"]]
        if self.seq2seq:
            limit = self.max_target_tokens
            problems = [None if n <= limit else f"long_transcript: {name} ({n} tokens > {limit})"
                        for n, name in zip(lengths, names)]  # fmt: skip
            if self.config.labels.long_targets == "truncate" and any(problems):
                self.report.splits[split].notes["truncated_transcripts"] = sum(p is not None for p in problems)
                return encoded.map(lambda row: {"labels": row["labels"][: limit - 1] + row["labels"][-1:]}
                                   if len(row["labels"]) > limit else {})  # fmt: skip
        else:
            frames = [self.ctc_frames(round(seconds * self.sampling_rate)) for seconds in encoded["duration"]]
            problems = [None if n <= f else f"transcript_too_long_for_audio: {name} ({n} symbols > {f} CTC frames)"
                        for n, f, name in zip(lengths, frames, names)]  # fmt: skip
        return cleaning.drop_rows(encoded, problems, split, self.report)

    @property
    def max_target_tokens(self) -> int:
        limit = self.architecture.get("max_target_positions") or self.architecture.get("max_length") or 10**9
        return min(self.config.labels.max_target_tokens or limit, limit)

    def ctc_frames(self, samples: int) -> int:
        """Output frames of a CTC model's convolutional front end for a clip of ``samples`` samples."""
        arch = self.architecture
        for kernel, stride in zip(arch.get("conv_kernel", ()), arch.get("conv_stride", ())):
            samples = math.floor((samples - kernel) / stride) + 1
        return max(samples, 0)

    # ------------------------------------------------------------------ head and targets

    def configure_head(self, model_config: Any) -> Any:
        if not self.seq2seq:  # a CTC head over the tokenizer's vocabulary; blank = pad
            model_config.vocab_size = len(self.tokenizer)
            model_config.pad_token_id = self.tokenizer.pad_token_id
            model_config.ctc_loss_reduction = "mean"
            model_config.ctc_zero_infinity = True  # impossible alignments are dropped in `encode`; this is a guard
        return model_config

    def init_head(self, model: Any) -> None:
        """Encoder-decoder models: the generation settings used in evaluation, predict and the saved pipeline.
        CTC models: in evaluation, frames past each clip's end (batch padding) predict the blank."""
        from hfft.modeling import base_model

        model = base_model(model)
        if not self.seq2seq:
            if not getattr(model, "hfft_masks_padded_frames", False):
                model.register_forward_hook(blank_padded_frames, with_kwargs=True)
                model.hfft_masks_padded_frames = True
            return
        labels, generation = self.config.labels, model.generation_config
        # as a max_length (prompt + new tokens): Seq2SeqTrainer fills in a default max_length of 20 otherwise,
        # and generate() then warns on every batch that both are set
        prompt = len(getattr(self.tokenizer, "prefix_tokens", None) or [None])
        generation.max_new_tokens, generation.num_beams = None, labels.num_beams
        generation.max_length = min(prompt + labels.max_new_tokens, self.max_target_tokens)
        if getattr(generation, "is_multilingual", False):
            generation.language, generation.task = labels.language, labels.speech_task
        if hasattr(generation, "forced_decoder_ids"):
            generation.forced_decoder_ids = None  # language/task come from the fields above

    def head_modules(self, model: Any) -> list[str]:
        return [] if self.seq2seq else ["lm_head"]

    def frozen_trainable(self, model: Any) -> list[str]:
        """`tuning.method: freeze`: encoder-decoder models train the decoder (encoder frozen); CTC the lm_head."""
        return ["model.decoder"] if self.seq2seq else ["lm_head"]

    def collate_targets(self, rows: list[dict[str, Any]]) -> Any:
        """Token ids padded with -100 where the attention mask is 0 (never by id: Whisper's pad is its
        end-of-text token, which must stay in the targets); the decoder start token is left to the model."""
        batch = self.tokenizer.pad({"input_ids": [r["labels"] for r in rows]}, return_tensors="pt")
        labels = batch["input_ids"].masked_fill(batch["attention_mask"].ne(1), -100)
        start = getattr(self.model.config if self.model is not None else None, "decoder_start_token_id", None)
        if self.seq2seq and start is not None and labels.shape[1] and bool((labels[:, 0] == start).all()):
            labels = labels[:, 1:]
        if self.seq2seq and self.config.regularization.label_smoothing and start is not None:
            # Trainer's label smoother takes `labels` away from the model, which then cannot derive its decoder
            # inputs from them: pass them explicitly (the targets shifted right behind the start token)
            decoder_inputs = labels.new_full(labels.shape, self.tokenizer.pad_token_id)
            decoder_inputs[:, 0] = start
            decoder_inputs[:, 1:] = labels[:, :-1].masked_fill(labels[:, :-1] == -100, self.tokenizer.pad_token_id)
            return {"labels": labels, "decoder_input_ids": decoder_inputs}
        return labels

    def training_defaults(self) -> dict[str, Any]:
        return {"predict_with_generate": self.seq2seq, "label_names": ["labels"], "per_device_eval_batch_size": 16}

    # ------------------------------------------------------------------ metrics

    def preprocess_logits(self, logits: Any, labels: Any) -> Any:
        """Generated ids pass through; CTC (or teacher-forced) logits become their argmax ids."""
        logits = logits[0] if isinstance(logits, tuple) else logits
        return logits.argmax(-1) if logits.ndim == 3 else logits

    def decode(self, ids: Any, targets: bool = False) -> list[str]:
        """Token ids (-100 padded) -> text; CTC predictions collapse repeats, CTC targets do not."""
        ids = np.where(np.asarray(ids) < 0, self.tokenizer.pad_token_id, np.asarray(ids))
        if self.seq2seq:
            return [t.strip() for t in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]
        return [t.strip() for t in self.tokenizer.batch_decode(ids, group_tokens=not targets)]

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        predictions = eval_pred.predictions[0] if isinstance(eval_pred.predictions, tuple) else eval_pred.predictions
        return speech_metrics(self.decode(eval_pred.label_ids, targets=True), self.decode(predictions))

    def pretrained_metrics(self, trainer: Any, encoded: dict[str, Any]) -> dict[str, float]:
        """The checkpoint's WER before fine-tuning on validation and test (its transcripts are saved beside the
        fine-tuned ones)."""
        return self.evaluate_unmodified(trainer, encoded) if self.config.labels.zero_shot_baseline else {}

    # ------------------------------------------------------------------ predictions and outputs

    def predict(self, inputs: list[Any], batch_size: int = 8) -> list[dict[str, Any]]:
        """Transcripts of audio files or arrays, {"text": ...} each; clips longer than the model's window are
        transcribed in overlapping chunks by the transformers ASR pipeline."""
        import copy

        from transformers import pipeline

        from hfft.modalities.audio.io import load_waveform

        if self.model is None:
            raise RuntimeError("predict() needs a trained model: call train() or Recipe.from_run(run_dir).")
        model = self.model
        if hasattr(model, "merge_and_unload"):  # the pipeline takes a plain transformers model
            model = copy.deepcopy(model).merge_and_unload()
        asr = pipeline(
            "automatic-speech-recognition", model=model, tokenizer=self.tokenizer, feature_extractor=self.processor,
            chunk_length_s=self.max_samples / self.sampling_rate, device=model.device,
        )  # fmt: skip
        waves = []
        for item in inputs:
            try:
                waves.append({"raw": load_waveform(item, self.sampling_rate)[0], "sampling_rate": self.sampling_rate})
            except FileNotFoundError as err:
                raise DataError(f"predict: input file '{err.filename}' does not exist.") from None
        return [{"text": out["text"].strip()} for out in asr(waves, batch_size=batch_size)]

    def task_info(self) -> dict[str, Any]:
        return {"model_kind": "seq2seq" if self.seq2seq else "ctc", "vocabulary": self.vocab}

    def restore_task(self, info: dict[str, Any]) -> None:
        self.vocab = info.get("vocabulary")

    def write_task_outputs(self, out: Path) -> list[str]:
        """The tokenizer beside the model (for `pipeline`), and every evaluated clip's reference and transcript."""
        self.tokenizer.save_pretrained(str(out))
        lines = [f"- {'encoder-decoder (generation)' if self.seq2seq else 'CTC'}; targets: "
                 f"lowercase {self.config.labels.lowercase}, punctuation removed {self.config.labels.remove_punctuation}, "
                 f"numbers {self.config.labels.numbers}"]  # fmt: skip
        for split, output in self.predictions.items():
            references, predictions = self.decode(output.label_ids, targets=True), self.decode(output.predictions)
            rows = [{"reference": r, "prediction": p} for r, p in zip(references, predictions)]
            (out / f"transcripts_{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
            lines.append(f"- {split} transcripts (reference and prediction per clip): `transcripts_{split}.jsonl`")
        return lines


def blank_padded_frames(model: Any, args: tuple, kwargs: dict[str, Any], output: Any) -> Any:
    """Forward hook of CTC models in evaluation: the logits of frames past each clip's real length (padding in
    a batch) are set to predict the blank, so greedy decoding does not read letters out of the padding."""
    mask = kwargs.get("attention_mask")
    if model.training or mask is None or getattr(output, "logits", None) is None:
        return output
    import torch

    lengths = model._get_feat_extract_output_lengths(mask.sum(-1)).to(output.logits.device)
    padded = torch.arange(output.logits.shape[1], device=lengths.device)[None, :] >= lengths[:, None]
    blank = torch.full_like(output.logits, float("-inf"))
    blank[..., model.config.pad_token_id] = 0.0
    output.logits = torch.where(padded[..., None], blank, output.logits)
    return output
