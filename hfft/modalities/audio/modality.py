"""Audio inputs: decode with soundfile, resample, crop/pad to max_duration, augment on the fly.

Preprocessing (cached by `datasets`) decodes and resamples each clip to the feature extractor's rate. Where a
split's model inputs are deterministic (evaluation splits; training without waveform augmentation) the
features (log-mel spectrograms, normalised waveforms) are computed once and cached too; otherwise cropping,
augmentation and feature extraction run per batch (batched: Whisper's extractor uses torch's STFT).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hfft import cleaning
from hfft.config import RecipeConfig, option
from hfft.errors import ConfigError
from hfft.modalities.audio import augment as audio_aug
from hfft.modalities.audio import io as audio_io
from hfft.recipe import Recipe

logger = logging.getLogger("hfft")
# Models whose inputs are spectrograms that hfft masks itself: time axis of one row's features.
SPECTROGRAM_TIME_AXIS = {"whisper": 1, "audio-spectrogram-transformer": 0}
MASK_FIELDS = ("mask_time_prob", "mask_time_length", "mask_feature_prob", "mask_feature_length")
META_COLUMNS = ("duration", "source_rate", "channels")
CACHE_LIMIT_GB = 8  # cache_features: None caches a split's features up to this size (disk, memory-mapped)


@dataclass
class AudioPreprocessing:
    """How audio files become model inputs."""

    max_duration: float | None = option(
        None,
        "Clip length in seconds. None: classification takes the 95th percentile of the training clips' durations "
        "(at most 5 s; printed and saved in the run's config), speech recognition 30 s. "
        "Classification: training takes a random window of longer clips, evaluation the centre; shorter clips "
        "are padded. Speech recognition never crops (words would be cut from the transcript): longer clips are "
        "dropped and counted as too_long. Whisper encoders are shortened to match (rounded up to whole seconds).",
    )
    silence_db: float = option(-70.0, "Clips whose peak level is at or below this (dBFS) are dropped as silent_audio.")
    cache_features: bool | None = option(
        None,
        "Compute the model's input features (log-mel spectrograms, normalised waveforms) once, cached by `datasets`, "
        "for every split whose inputs are deterministic: validation and test always; train when no waveform "
        "augmentation runs (regularization.augment off, or only SpecAugment masking on clips that are never "
        "cropped). Masking then applies to the cached features. None: cache unless a split's features would take "
        f"more than {CACHE_LIMIT_GB} GB; false: extract per batch.",
    )
    freeze_feature_encoder: bool = option(
        True,
        "Keep the convolutional feature encoder frozen (wav2vec2/HuBERT conv stack, Whisper conv1/conv2, "
        "AST patch embedding); matters for tuning.method: full.",
    )


@dataclass
class AudioAugmentation:
    """Train-only audio augmentation (applied when regularization.augment is true)."""

    noise_prob: float = option(0.5, "Probability of adding white noise to a training clip.")
    noise_snr_db: list[float] = option([10.0, 40.0], "[low, high] signal-to-noise ratio (dB) of that noise.")
    gain_prob: float = option(0.5, "Probability of changing a training clip's volume.")
    gain_db: list[float] = option([-6.0, 6.0], "[low, high] gain in dB.")
    shift_prob: float = option(0.5, "Probability of shifting a training clip in time (zero-filled).")
    shift_max_seconds: float = option(0.1, "Largest time shift, either direction, in seconds.")
    mask_time_prob: float | None = option(
        None,
        "SpecAugment time masking: fraction of frames masked. wav2vec2/HuBERT-style models do it in the model "
        "(config.mask_time_prob; None keeps the checkpoint's value); hfft masks Whisper/AST spectrograms "
        "(None: off).",
    )
    mask_time_length: int | None = option(None, "Frames per time mask (None: the checkpoint's value, else 10).")
    mask_feature_prob: float | None = option(
        None, "SpecAugment feature masking: fraction of feature channels / mel bins masked (None as above)."
    )
    mask_feature_length: int | None = option(None, "Channels per feature mask (None: the checkpoint's value, else 10).")


class AudioModality(Recipe):
    """Audio clips at any sampling rate (wav2vec2, HuBERT, AST, Whisper encoders)."""

    modality = "audio"
    input_candidates = ("audio", "file", "path", "audio_path", "file_path", "filepath", "filename", "file_name")
    folder_builder = "audiofolder"
    Preprocessing = AudioPreprocessing
    Augmentation = AudioAugmentation
    spectrogram_axis: int | None = None  # set by adapt_model_config for models hfft masks itself
    mask_lengths: tuple[int, int] = (10, 10)

    @classmethod
    def check_config(cls, config: RecipeConfig) -> None:
        super().check_config(config)
        pre, aug = config.preprocessing, config.augmentation
        if pre.max_duration is not None and pre.max_duration <= 0:
            raise ConfigError(f"'preprocessing.max_duration' must be > 0 seconds, got {pre.max_duration}.")
        for name in ("noise_prob", "gain_prob", "shift_prob", "mask_time_prob", "mask_feature_prob"):
            value = getattr(aug, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"'augmentation.{name}' must be in [0, 1], got {value}.")
        for name in ("noise_snr_db", "gain_db"):
            value = getattr(aug, name)
            if len(value) != 2 or value[0] > value[1]:
                raise ConfigError(f"'augmentation.{name}' must be [low, high] with low <= high, got {value}.")
        for name in ("mask_time_length", "mask_feature_length"):
            if getattr(aug, name) is not None and getattr(aug, name) < 1:
                raise ConfigError(f"'augmentation.{name}' must be >= 1, got {getattr(aug, name)}.")
        if aug.shift_max_seconds < 0:
            raise ConfigError(f"'augmentation.shift_max_seconds' must be >= 0, got {aug.shift_max_seconds}.")

    # ------------------------------------------------------------------ data

    @classmethod
    def corruption_suite(cls) -> dict[str, Any]:
        from hfft.modalities.audio.corruptions import SUITE, SUITE_WITHOUT_CUTS

        return SUITE if cls.crops_inputs else SUITE_WITHOUT_CUTS  # e.g. speech: a cut would delete words

    def input_columns(self, dataset: Any, where: str) -> dict[str, str]:
        typed = [name for name, feature in dataset.features.items() if type(feature).__name__ == "Audio"]
        if self.config.data.audio_column is None and len(typed) == 1:
            return {"input": typed[0]}
        return super().input_columns(dataset, where)

    def clean(self, dataset: Any, split: str) -> Any:
        cleaned = super().clean(audio_io.undecoded(dataset, self.columns["input"]), split)
        if split == "train" and self.crops_inputs and self.config.preprocessing.max_duration is None:
            self.config.preprocessing.max_duration = self.clip_seconds_from_data(cleaned)
        return cleaned

    def clip_seconds_from_data(self, train: Any, percentile: float = 95.0, most: int = 2000) -> float:
        """The crop/pad window when `preprocessing.max_duration` is unset: the ``percentile`` of the training clips'
        durations (file headers of up to ``most`` seeded clips), rounded up to 0.1 s, at most the task's default.
        Short clips then cost no padded compute (Whisper: positions for the window, rounded up to whole seconds);
        long ones are cropped as before. The value is written into the run's config, so reloads use it too."""
        rows = np.random.default_rng(self.config.seed).permutation(len(train))[:most]
        column = train.select(sorted(rows.tolist()))[self.columns["input"]] if len(train) else []
        durations = [d for d in (audio_io.duration(item) for item in column) if d]
        if not durations:
            return self.default_clip_seconds
        seconds = min(math.ceil(float(np.percentile(durations, percentile)) * 10) / 10, self.default_clip_seconds)
        seconds = max(seconds, 0.1)
        self.model_notes["clip_seconds"] = {
            "value": seconds,
            "source": f"{percentile:g}th percentile of {len(durations)} training clips' durations "
            f"(median {float(np.median(durations)):.2f} s), at most {self.default_clip_seconds:g} s",
        }
        logger.info("preprocessing.max_duration: %s s (%s)", seconds, self.model_notes["clip_seconds"]["source"])
        return seconds

    def fingerprint_method(self) -> str:
        return "decoded samples and sampling rate (near-duplicates are not checked for audio)"

    def fingerprints(self, batch: dict[str, list]) -> dict[str, list]:
        """Each clip decoded once: a SHA-1 of its float32 samples (all channels) and rate, so the same recording in
        two files (or WAV and FLAC) matches. No near-duplicate check: audio has no cheap perceptual hash here."""
        import hashlib

        out: dict[str, list] = {"exact": [], "preview": []}
        for item in batch[self.columns["input"]]:
            out["preview"].append(audio_io.source_name(item))
            try:
                samples, rate = audio_io.decode(item)
            except Exception:  # cleaning dropped unreadable clips; anything else is not compared
                out["exact"].append(None)
                continue
            content = f"{rate}:{samples.shape}".encode() + np.ascontiguousarray(samples, dtype=np.float32).tobytes()
            out["exact"].append(hashlib.sha1(content).hexdigest())
        return out

    def load_processor(self, model_path: str) -> Any:
        from transformers import AutoFeatureExtractor

        processor = AutoFeatureExtractor.from_pretrained(model_path, trust_remote_code=self.config.trust_remote_code)
        if hasattr(processor, "nb_max_frames") and hasattr(processor, "chunk_length"):  # Whisper: fixed-length input
            seconds = math.ceil(self.clip_seconds)
            if seconds > 30:
                logger.warning("Whisper encoders take at most 30 s; clips are cropped to 30 s.")
            processor.chunk_length = min(seconds, 30)
            processor.n_samples = processor.chunk_length * processor.sampling_rate
            processor.nb_max_frames = processor.n_samples // processor.hop_length
        return processor

    @property
    def clip_seconds(self) -> float:
        """The longest input in seconds: `preprocessing.max_duration`, else the task's default."""
        return self.config.preprocessing.max_duration or self.default_clip_seconds

    @property
    def sampling_rate(self) -> int:
        return int(self.processor.sampling_rate)

    @property
    def max_samples(self) -> int:
        fixed = getattr(self.processor, "n_samples", None)
        return int(fixed) if fixed else round(self.clip_seconds * self.sampling_rate)

    def check_batch(self, batch: dict[str, list]) -> list[str | None]:
        silence = self.config.preprocessing.silence_db
        longest = None if self.crops_inputs else self.clip_seconds
        return [audio_io.problem(item, silence, longest) for item in batch[self.columns["input"]]]

    def preprocess(self, batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"waveform": [], "duration": [], "source_rate": [], "channels": []}
        for item in batch[self.columns["input"]]:
            wave, rate, channels = audio_io.load_waveform(item, self.sampling_rate)
            out["waveform"].append(wave)
            out["duration"].append(len(wave) / self.sampling_rate)
            out["source_rate"].append(rate)
            out["channels"].append(channels)
        return out

    def preprocessing_notes(self, encoded: Any) -> dict[str, Any]:
        rates, counts = np.unique(np.asarray(encoded["source_rate"]), return_counts=True)
        durations = np.asarray(encoded["duration"])
        limit = self.max_samples / self.sampling_rate
        return {
            "sampling_rate": self.sampling_rate,
            "resampled_from": {int(r): int(n) for r, n in zip(rates, counts) if r != self.sampling_rate},
            "downmixed_to_mono": int((np.asarray(encoded["channels"]) > 1).sum()),
            "median_seconds": round(float(np.median(durations)), 3) if len(durations) else 0.0,
            "cropped": int((durations > limit + 1e-6).sum()),
            "clip_seconds": limit,
        }

    def encode(self, dataset: Any, split: str) -> Any:
        encoded = super().encode(dataset, split).remove_columns(list(META_COLUMNS))
        caching = self.config.preprocessing.cache_features is not False
        if not caching or not self.deterministic_inputs(split) or not self.cache_fits(encoded, split):
            return encoded

        def extract(batch: dict[str, list]) -> dict[str, list]:
            return self.features([self.fit_length(np.asarray(w, dtype=np.float32)) for w in batch["waveform"]], None)

        name = self.processor.model_input_names[0]
        schema, fixed = None, self.cached_feature_type()
        if fixed is not None:  # otherwise `datasets` infers the type from the first batch
            schema = encoded.features.copy()
            del schema["waveform"]
            schema[name] = fixed
        cached = encoded.map(
            extract, batched=True, batch_size=64, remove_columns=["waveform"], features=schema, desc=f"features {split}"
        )
        self.report.splits.setdefault(split, cleaning.SplitReport()).notes["cached_features"] = name
        return cached.with_format("numpy", columns=[name], output_all_columns=True)

    def cached_feature_type(self) -> Any:
        """The cached features' `datasets` type: `Array2D` for spectrograms, whose rows come back from the cache as
        one array each (a batch of 16 Whisper log-mels: ~4 ms, against ~14 ms as nested lists of floats); None
        (`datasets` infers a list) for 1-D waveforms or shapes that vary in more than their first axis."""
        import datasets

        name = self.processor.model_input_names[0]
        full, half = (
            np.asarray(self.features([np.zeros(n, dtype=np.float32)], None)[name][0]).shape
            for n in (self.max_samples, self.max_samples // 2)
        )
        if len(full) != 2 or len(half) != 2 or full[1:] != half[1:]:
            return None
        return datasets.Array2D(full if full == half else (None, *full[1:]), "float32")

    def deterministic_inputs(self, split: str) -> bool:
        """True when a split's model inputs are the same in every epoch: evaluation splits, and training without
        waveform augmentation (random crops, noise, gain, shifts); SpecAugment masking runs on the features."""
        if split != "train" or not self.config.regularization.augment:
            return True
        aug = self.config.augmentation
        return not self.crops_inputs and not (aug.noise_prob or aug.gain_prob or aug.shift_prob)

    def cache_fits(self, encoded: Any, split: str) -> bool:
        """Whether the split's features, estimated from its first row, stay under CACHE_LIMIT_GB (always, when
        `preprocessing.cache_features` is true)."""
        if not len(encoded) or self.config.preprocessing.cache_features:
            return True
        name = self.processor.model_input_names[0]
        first = self.features([self.fit_length(np.asarray(encoded[0]["waveform"], dtype=np.float32))], None)[name][0]
        size_gb = np.asarray(first, dtype=np.float32).nbytes * len(encoded) / 1e9
        if size_gb <= CACHE_LIMIT_GB:
            return True
        logger.info("%s: features computed per batch (%.1f GB > %s GB to cache)", split, size_gb, CACHE_LIMIT_GB)
        return False

    def with_eval_transform(self, dataset: Any) -> Any:
        return dataset if "waveform" not in dataset.column_names else super().with_eval_transform(dataset)

    def features(self, waves: list[np.ndarray], labels: list[Any] | None, rng: Any = None) -> dict[str, Any]:
        """Feature-extract a batch of waveforms (and mask spectrograms when ``rng`` is given)."""
        name = self.processor.model_input_names[0]
        values = list(self.processor(waves, sampling_rate=self.sampling_rate)[name])
        out: dict[str, Any] = {name: self.mask(values, rng) if rng is not None else values}
        if labels is not None:
            out["labels"] = labels
        return out

    def mask(self, values: list[Any], rng: Any) -> list[Any]:
        """SpecAugment-style time / feature masks on spectrograms (models hfft masks itself, e.g. Whisper)."""
        if self.spectrogram_axis is None:
            return values
        aug, axis = self.config.augmentation, self.spectrogram_axis
        time_len, feature_len = self.mask_lengths
        for prob, length, ax in ((aug.mask_time_prob, time_len, axis), (aug.mask_feature_prob, feature_len, 1 - axis)):
            if prob:
                values = [audio_aug.mask_spans(np.asarray(v), ax, prob, length, rng) for v in values]
        return values

    def train_transform(self, batch: dict[str, list]) -> dict[str, Any]:
        rng = np.random.default_rng(np.random.randint(2**31))  # numpy's global RNG is seeded by set_seed
        if "waveform" not in batch:  # features cached (no waveform augmentation): masking only
            name = self.processor.model_input_names[0]
            out = {name: self.mask(list(batch[name]), rng)}
            return {**out, "labels": batch["labels"]} if "labels" in batch else out
        waves = []
        for wave in batch["waveform"]:
            wave = np.asarray(wave, dtype=np.float32)
            if self.crops_inputs:
                wave = audio_aug.random_crop(wave, self.max_samples, rng)
            waves.append(audio_aug.augment(wave, self.sampling_rate, self.config.augmentation, rng, self.crops_inputs))
        return self.features(waves, batch.get("labels"), rng)

    def eval_transform(self, batch: dict[str, list]) -> dict[str, Any]:
        waves = [self.fit_length(np.asarray(w, dtype=np.float32)) for w in batch["waveform"]]
        return self.features(waves, batch.get("labels"))

    def fit_length(self, wave: np.ndarray) -> np.ndarray:
        """Evaluation: the centre window of a longer clip, where the task allows cropping."""
        return audio_aug.center_crop(wave, self.max_samples) if self.crops_inputs else wave

    # ------------------------------------------------------------------ model

    def adapt_model_config(self, model_config: Any) -> Any:
        """Whisper: positions for max_duration; SpecAugment settings in the config or for hfft's own masking."""
        aug = self.config.augmentation
        if model_config.model_type == "whisper":
            model_config.max_source_positions = self.processor.nb_max_frames // 2
        requested = {name: getattr(aug, name) for name in MASK_FIELDS if getattr(aug, name) is not None}
        self.spectrogram_axis = SPECTROGRAM_TIME_AXIS.get(model_config.model_type)
        if self.spectrogram_axis is not None:
            self.mask_lengths = (
                aug.mask_time_length or getattr(model_config, "mask_time_length", None) or 10,
                aug.mask_feature_length or getattr(model_config, "mask_feature_length", None) or 10,
            )
        elif hasattr(model_config, "apply_spec_augment"):
            for name, value in requested.items():
                setattr(model_config, name, value)
            if not self.config.regularization.augment:
                model_config.apply_spec_augment = False
        elif requested:
            raise ConfigError(
                f"'augmentation.{next(iter(requested))}': hfft knows no SpecAugment for {model_config.model_type}."
            )
        return model_config

    def adapt_model(self, model: Any) -> None:
        if self.config.preprocessing.freeze_feature_encoder:
            frozen = freeze_feature_encoder(model)
            if frozen:
                logger.info("feature encoder frozen: %s", frozen)

    def collator(self) -> Any:
        return AudioCollator(self.processor, self.collate_targets)

    def prepare_inputs(self, inputs: list[Any]) -> dict[str, Any]:
        waves = [audio_io.load_waveform(x, self.sampling_rate)[0] for x in inputs]
        rows = self.features([self.fit_length(w) for w in waves], None)
        name = self.processor.model_input_names[0]
        return self.collator()([{name: value} for value in rows[name]])

    def to_natural(self, value: Any) -> Any:
        samples, rate = audio_io.decode(value)
        return audio_io.to_mono(samples), rate

    def from_natural(self, value: Any) -> Any:
        wave, rate = value
        return {"array": np.asarray(wave, dtype=np.float32), "sampling_rate": int(rate)}


class AudioCollator:
    """Pad a list of feature rows with the feature extractor (attention masks where it returns them); the
    task collates `labels`."""

    def __init__(self, processor: Any, collate_targets: Any) -> None:
        self.processor, self.collate_targets = processor, collate_targets

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        name = self.processor.model_input_names[0]
        batch = self.processor.pad([{name: r[name]} for r in rows], padding=True, return_tensors="pt")
        batch[name] = batch[name].float()
        if "labels" in rows[0]:
            targets = self.collate_targets(rows)  # a tensor, or a dict (e.g. labels + decoder_input_ids)
            batch.update(targets if isinstance(targets, dict) else {"labels": targets})
        return batch


def freeze_feature_encoder(model: Any) -> str | None:
    """Freeze the convolutional front end of wav2vec2-style, Whisper and AST models; what was frozen."""
    if hasattr(model, "freeze_feature_encoder"):
        model.freeze_feature_encoder()
        return "convolutional feature encoder"
    modules = {
        "whisper": lambda m: [m.get_encoder().conv1, m.get_encoder().conv2],
        "audio-spectrogram-transformer": lambda m: [m.audio_spectrogram_transformer.embeddings.patch_embeddings],
    }
    pick = modules.get(model.config.model_type)
    if pick is None:
        logger.warning("no convolutional feature encoder known for %s; nothing frozen", model.config.model_type)
        return None
    for module in pick(model):
        module.requires_grad_(False)
    return "conv1, conv2" if model.config.model_type == "whisper" else "patch embedding"
