"""The hooks a modality and a task fill in, with their defaults; `hfft.recipe.Recipe.train` calls them.

`ModalityHooks`: how inputs are found, checked, preprocessed, augmented, collated and corrupted.
`TaskHooks`: targets, head, loss, metrics, predictions and outputs. See docs/architecture.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hfft.config import RecipeConfig
from hfft.errors import DataError


class ModalityHooks:
    """Input side of a recipe (implemented in `hfft/modalities/<name>/modality.py`)."""

    @classmethod
    def check_config(cls, config: RecipeConfig) -> None:
        """Hook (modality and task, chained with super()): config checks at load time, before any data is read."""

    @classmethod
    def corruption_suite(cls) -> dict[str, Any]:
        """Hook: {name: corruption} for `hfft robustness` (see hfft/corruptions.py)."""
        return {}

    def input_columns(self, dataset: Any, where: str) -> dict[str, str]:
        """Hook: {"input": column} (and e.g. "pair"), from explicit config keys or auto-detection."""
        key = f"{self.modality}_column"
        return {
            "input": find_column(dataset, getattr(self.config.data, key), self.input_candidates, f"data.{key}", where)
        }

    def load_processor(self, model_path: str) -> Any:
        """Hook: the tokenizer / image processor / feature extractor of the checkpoint."""
        raise NotImplementedError

    def check_batch(self, batch: dict[str, list]) -> list[str | None]:
        """Hook: per row, None if the input is usable, else a drop reason ("reason" or "reason: detail")."""
        return [None] * len(next(iter(batch.values())))

    def fingerprint_method(self) -> str | None:
        """Hook (split leakage, hfft/leakage.py): what `fingerprints` compares, in a few words for the data report
        (e.g. "text, whitespace collapsed, lower-cased"); None: the modality has none (leakage is not checked).
        Called once before the batches go through `fingerprints` (it may settle how they are normalised)."""
        return None

    def fingerprints(self, batch: dict[str, list]) -> dict[str, list]:
        """Hook (split leakage): per row of a batch of cleaned rows, ``{"exact": [...], "preview": [...]}`` and
        optionally ``"near_text"`` or ``"near_hash"``. ``exact``: a string equal for two rows exactly when the
        model would read the same input after the modality's normalisation (None: the row is not compared);
        ``preview``: a short text or file name for reports; ``near_text``: the normalised text (near-duplicates by
        word 3-gram Jaccard similarity); ``near_hash``: a 64-bit perceptual hash as 16 hex digits (near-duplicates
        by agreeing bits)."""
        raise NotImplementedError

    def preprocess(self, batch: dict[str, list]) -> dict[str, list]:
        """Hook: deterministic batched preprocessing (cached); keeps `labels`."""
        raise NotImplementedError

    def preprocessing_notes(self, encoded: Any) -> dict[str, Any]:
        """Hook: facts about preprocessing for the data report (e.g. truncated rows)."""
        return {}

    def train_transform(self, batch: dict[str, list]) -> dict[str, Any]:
        """Hook: on-the-fly, train-only augmentation (set with `with_transform`)."""
        raise NotImplementedError

    def eval_transform(self, batch: dict[str, list]) -> dict[str, Any]:
        """Hook: on-the-fly deterministic transform for evaluation, if preprocessing is lazy."""
        raise NotImplementedError

    def adapt_model_config(self, model_config: Any) -> Any:
        """Hook: modality settings in the checkpoint's config before the weights load (e.g. input length)."""
        return model_config

    def adapt_model(self, model: Any) -> None:
        """Hook: modality-specific model settings (e.g. freeze a feature encoder)."""

    def collator(self) -> Any:
        """Hook: the data collator (dynamic padding, stacking); targets are collated by `collate_targets`."""
        return None

    @property
    def mixes_targets(self) -> bool:
        """Hook: True when training batches carry mixed (soft) targets, e.g. mixup/cutmix."""
        return False

    def prepare_inputs(self, inputs: list[Any]) -> dict[str, Any]:
        """Hook: raw inputs -> a batch of model input tensors (for `predict`)."""
        raise NotImplementedError

    def to_natural(self, value: Any) -> Any:
        """Hook: a dataset value as the corruption functions take it."""
        return value

    def from_natural(self, value: Any) -> Any:
        """Hook: a corrupted value back into a form the input column accepts."""
        return value


class TaskHooks:
    """Target side of a recipe (implemented in `hfft/tasks/<name>.py`)."""

    def convert_source(self, dataset: Any, where: str) -> Any:
        """Hook: a loaded source in another layout of the task's data, converted before columns are looked up
        (e.g. character-span annotations into words and tags)."""
        return dataset

    def target_columns(self, dataset: Any, where: str) -> dict[str, str]:
        """Hook: {"label": column, ...}: where the targets are."""
        raise NotImplementedError

    def check_targets(self, batch: dict[str, list]) -> list[str | None]:
        """Hook: per row, None if the target is usable, else a drop reason."""
        return [None] * len(next(iter(batch.values())))

    def encode_targets(self, splits: dict[str, Any], where: dict[str, str]) -> dict[str, Any]:
        """Hook: validate targets and encode them as the model's `labels` column (learned from train)."""
        raise NotImplementedError

    def load_target_processor(self, model_path: str) -> None:
        """Hook: what the task needs to encode targets beside the modality's processor (e.g. a tokenizer for
        transcripts), loaded after `load_processor`."""

    def preprocess_targets(self, batch: dict[str, list], encoded: dict[str, list], split: str) -> dict[str, list]:
        """Hook: batched target preprocessing that needs the processor (e.g. tokenised transcripts), run after
        the modality's `preprocess` (``encoded``: its output, e.g. word ids of windows); returns only the columns
        it adds or replaces."""
        return {}

    def window_starts(self, batch: dict[str, list]) -> list[list[bool]] | None:
        """Hook (word-level tasks): per row and word, whether an evaluation window may begin at that word without
        cutting a target span in two (an entity); None: anywhere."""
        return None

    def augment_words(self, words: list[str], labels: list[int], rng: Any) -> tuple[list[str], list[int]]:
        """Hook (word-level tasks): train-only augmentation that changes words and their targets together (e.g.
        entity mention replacement); ``labels`` are per-word ids, -100 for words another window owns."""
        return words, labels

    def target_notes(self, dataset: Any) -> dict[str, Any]:
        """Hook: facts about a split's targets for the data report (e.g. the class distribution)."""
        return {}

    def configure_head(self, model_config: Any) -> Any:
        """Hook: the task's settings in the checkpoint's config (labels, problem type)."""
        return model_config

    def init_head(self, model: Any) -> None:
        """Hook: initialise the new head from the training targets (e.g. output biases at the class priors)."""

    def head_modules(self, model: Any) -> list[str]:
        """Hook: top-level modules that are new for this task (trained in full and saved beside LoRA adapters)."""
        from hfft.modeling import head_modules

        return head_modules(model)

    def frozen_trainable(self, model: Any) -> list[str]:
        """Hook: module paths that `tuning.method: freeze` trains (default: the head)."""
        return self.head_modules(model)

    def pretrained_metrics(self, trainer: Any, encoded: dict[str, Any]) -> dict[str, float]:
        """Hook: metrics of the model before fine-tuning (e.g. the checkpoint's zero-shot WER), computed
        just before training starts."""
        return {}

    def training_defaults(self) -> dict[str, Any]:
        """Hook: the task's TrainingArguments defaults (under the user's `training:` values)."""
        return {}

    def collate_targets(self, rows: list[dict[str, Any]]) -> Any:
        """Hook: the `labels` tensor of a batch (audio: or a dict of target tensors, e.g. with decoder inputs)."""
        raise NotImplementedError

    def loss_function(self, train: Any) -> Any:
        """Hook: a Trainer `compute_loss_func` (``train``: the encoded training split), or None for the model's
        own loss."""
        return None

    def sample_weights(self, train: Any) -> list[float] | None:
        """Hook: per-row sampling weights for training (e.g. class-balanced), or None."""
        return None

    def preprocess_logits(self, logits: Any, labels: Any) -> Any:
        """Hook: `preprocess_logits_for_metrics` (keep only what the metrics need)."""
        return logits

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        """Hook: Trainer `compute_metrics`."""
        return {}

    def after_validation(self, trainer: Any) -> dict[str, float]:
        """Hook: work on the validation predictions (`self.predictions["eval"]`) before test, e.g. thresholds."""
        return {}

    def baseline_metrics(self, train: Any, split: Any) -> dict[str, float]:
        """Hook: the trivial predictor's metrics on ``split`` (the floor a model must beat)."""
        return {}

    def format_predictions(self, logits: Any) -> list[dict[str, Any]]:
        """Hook: model outputs -> one JSON-able result per input (for `predict`)."""
        raise NotImplementedError

    def task_info(self) -> dict[str, Any]:
        """Hook: what `run_info.json` must hold to rebuild the task (labels, thresholds, ...)."""
        return {}

    def restore_task(self, info: dict[str, Any]) -> None:
        """Hook: the inverse of `task_info`, when a run is loaded back."""

    def write_task_outputs(self, out: Path) -> list[str]:
        """Hook: plots and reports next to the model; returns model card lines about them."""
        return []


def find_column(dataset: Any, explicit: str | None, candidates: tuple[str, ...], key: str, where: str) -> str:
    """The explicit column (must exist) or the single matching candidate."""
    columns = dataset.column_names
    if explicit is not None:
        if explicit not in columns:
            raise DataError(
                f"{where}: column '{explicit}' (from '{key}') not found; columns are: {', '.join(columns)}."
            )
        return explicit
    found = [c for c in candidates if c in columns]
    if not found:
        raise DataError(
            f"{where}: no column for '{key}' found (looked for {', '.join(candidates)}); columns are: "
            f"{', '.join(columns)}. Set {key}."
        )
    if len(found) > 1:
        raise DataError(f"{where}: columns {', '.join(found)} could each be '{key}'; set {key} to choose one.")
    return found[0]
