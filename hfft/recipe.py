"""The Recipe base class: one fine-tuning run, readable top to bottom in `train()`.

A modality subclass (text, image, audio) fills in the hooks marked "hook" below:
which columns to look for, how to check/clean rows, preprocess, augment, collate
and turn raw inputs into model inputs. The flow itself is never copied.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from hfft import cleaning, data, outputs
from hfft.config import NoOptions, RecipeConfig, load_config
from hfft.distributed import gather_fingerprints
from hfft.errors import DataError
from hfft.inference import InferenceMixin
from hfft.labels import LabelSpace
from hfft.resume import resume_checkpoint, run_training, seeded_augmentation

logger = logging.getLogger("hfft")
LABEL_CANDIDATES = ("label", "labels", "fine_label", "category", "class", "target", "intent", "sentiment")
TRAIN_EVAL_ROWS = 500  # rows of train re-evaluated without augmentation, for the generalisation gap


class Recipe(InferenceMixin):
    """Base class of all recipes. Build from a config, keyword arguments or a YAML path."""

    task: ClassVar[str] = ""
    default_model: ClassVar[str] = ""
    model_class_name: ClassVar[str] = ""  # a transformers Auto class name
    input_kind: ClassVar[str] = ""  # "text" | "image" | "audio": reads data.<kind>_column
    input_candidates: ClassVar[tuple[str, ...]] = ()
    folder_builder: ClassVar[str | None] = None  # datasets builder for class-subfolder directories
    dedup: ClassVar[bool] = False  # drop duplicate (input, label) rows from train
    Preprocessing: ClassVar[type] = NoOptions
    Augmentation: ClassVar[type] = NoOptions

    def __init__(self, config: RecipeConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        if config is None or isinstance(config, dict):
            raw = dict(config or {}, **kwargs)
            raw.setdefault("task", self.task)
            config = load_config(raw)
        self.config: RecipeConfig = config
        self.labels: LabelSpace | None = None
        self.processor: Any = None
        self.model: Any = None
        self.report = cleaning.DataReport()
        self.columns: dict[str, str] = {}
        self.model_notes: dict[str, Any] = {}  # e.g. a re-initialised head (saved in run_info.json)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> Recipe:
        """Build the recipe named by a YAML file's `task:` (any subclass)."""
        config = load_config(path, overrides)
        from hfft.tasks import recipe_class

        return recipe_class(config.task)(config)

    @property
    def output_dir(self) -> Path:
        return Path(self.config.training.get("output_dir", f"runs/{self.task}"))

    # ------------------------------------------------------------------ the run

    def train(self, resume: bool | str = False) -> dict[str, float]:
        """Load data, build the model, fine-tune, evaluate, save. Returns all metrics."""
        from transformers import set_seed

        started = time.time()
        args = self.training_arguments()
        model_path = self.preflight(resume)
        set_seed(self.config.seed)
        with args.main_process_first(desc="loading and preprocessing data"):
            splits = self.load_splits()
            self.processor = self.load_processor(model_path)
            encoded = {name: self.encode(ds, name) for name, ds in splits.items()}
        if args.process_index == 0:
            print("data:\n" + self.report.summary(), flush=True)
        self.model = self.build_model(model_path)
        trainer = self.build_trainer(args, encoded)
        checkpoint = resume_checkpoint(self.output_dir, resume, main_process=args.process_index == 0)
        train_result = run_training(trainer, checkpoint)  # out of memory / disk full: a message, not a trace
        metrics = dict(train_result.metrics)
        validation = trainer.predict(self.with_eval_transform(encoded["validation"]), metric_key_prefix="eval")
        metrics.update(validation.metrics)
        self.validation_predictions = (validation.predictions, validation.label_ids)  # for the confusion matrix
        metrics.update(self.train_eval_metrics(trainer, encoded["train"]))
        metrics["generalization_gap"] = metrics["train_eval_accuracy"] - metrics["eval_accuracy"]
        if "test" in encoded:
            metrics.update(trainer.evaluate(self.with_eval_transform(encoded["test"]), metric_key_prefix="test"))
        for split in ("validation", "test"):
            if split in encoded:
                metrics[f"{'eval' if split == 'validation' else split}_majority_baseline"] = majority(encoded[split])
        metrics["wall_time_s"] = round(time.time() - started, 1)
        metrics["world_size"] = args.world_size
        self.rank_fingerprints = gather_fingerprints(trainer.model)  # all ranks must end with equal weights
        if trainer.is_world_process_zero():
            self.save(trainer, metrics, model_path)
        return metrics

    def preflight(self, resume: bool | str) -> str:
        """Cheap checks that must pass before data or weights are loaded."""
        from hfft.preflight import check_model

        outputs.check_output_dir(self.output_dir, overwrite=self.config.overwrite, resume=bool(resume))
        for key in ("train", "validation", "test"):
            spec = getattr(self.config.data, key)
            if spec is not None:
                data.check_source(spec, f"data.{key}")
        if self.config.data.train is None:
            raise DataError("'data.train' is required: a Hub dataset id, a local directory or a data file.")
        return check_model(self.config.model or self.default_model, self.config, self.model_class_name)

    def training_arguments(self) -> Any:
        from hfft.training_args import build_training_arguments

        return build_training_arguments(self.config, self.task)

    def load_splits(self) -> dict[str, Any]:
        """Load train/validation/test, clean them, map labels, split and subsample."""
        dc = self.config.data
        source = data.load_source(dc.train, "data.train", subset=dc.subset, folder_builder=self.folder_builder)
        train = source[dc.train_split] if dc.train_split in source else data.only_split(source, "data.train", dc.train)
        splits = {"train": train}
        for role, names in (("validation", data.VALIDATION_NAMES), ("test", ("test",))):
            spec = getattr(dc, role)
            if spec is not None:
                loaded = data.load_source(spec, f"data.{role}", subset=dc.subset, folder_builder=self.folder_builder)
                splits[role] = data.only_split(loaded, f"data.{role}", spec)
            else:
                found = data.pick_split(source, getattr(dc, f"{role}_split"), names, "data.train")
                if found is not None:
                    splits[role] = found
        where = {role: cleaning.source_name(dc, role) for role in splits}  # e.g. "data.train ('train.csv')"
        self.columns = self.find_columns(splits["train"], where["train"])
        for role, ds in splits.items():
            missing = [c for c in self.columns.values() if c not in ds.column_names]
            if missing:
                raise DataError(
                    f"{where[role]}: columns {missing} (found in train) are missing; it has {', '.join(ds.column_names)}."
                )
            splits[role] = self.clean(ds.select_columns(list(dict.fromkeys(self.columns.values()))), role)
        label = self.columns["label"]
        self.labels = LabelSpace.from_dataset(splits["train"], label, where["train"])
        splits = {r: self.labels.encode_column(ds, label, where[r]) for r, ds in splits.items()}
        if "validation" not in splits:
            splits["train"], splits["validation"] = self.split_off_validation(splits["train"])
        return self.subsample(splits)

    def find_columns(self, dataset: Any, where: str) -> dict[str, str]:
        """{"input": ..., "label": ...} from explicit config keys or auto-detection."""
        key = f"{self.input_kind}_column"
        return {
            "input": find_column(dataset, getattr(self.config.data, key), self.input_candidates, f"data.{key}", where),
            "label": find_column(dataset, self.config.data.label_column, LABEL_CANDIDATES, "data.label_column", where),
        }

    def clean(self, dataset: Any, split: str) -> Any:
        label = self.columns["label"]

        def check(batch: dict[str, list]) -> list[str | None]:
            problems = self.check_batch(batch)
            return [p or ("missing_label" if batch[label][i] is None else None) for i, p in enumerate(problems)]

        dedup = list(self.columns.values()) if self.dedup and split == "train" else None
        where = cleaning.source_name(self.config.data, split)
        return cleaning.clean_split(dataset, split, self.report, check, dedup, self.config.data.max_bad_fraction, where)

    def split_off_validation(self, train: Any) -> tuple[Any, Any]:
        """A seeded split of train, stratified by label when every class has 2+ rows."""
        size = self.config.data.validation_size
        try:
            parts = train.train_test_split(test_size=size, seed=self.config.seed, stratify_by_column="labels")
        except ValueError as err:
            logger.warning("validation split is not stratified (%s)", err)
            parts = train.train_test_split(test_size=size, seed=self.config.seed)
        train_report = self.report.splits["train"]
        train_report.rows_out = len(parts["train"])
        train_report.notes["moved_to_validation"] = len(parts["test"])
        self.report.splits["validation"] = cleaning.SplitReport(
            rows_in=len(parts["test"]), rows_out=len(parts["test"]), notes={"source": f"{size:.0%} of train"}
        )
        return parts["train"], parts["test"]

    def subsample(self, splits: dict[str, Any]) -> dict[str, Any]:
        dc = self.config.data
        limits = {"train": dc.max_train_samples, "validation": dc.max_eval_samples, "test": dc.max_eval_samples}
        for role, dataset in splits.items():
            splits[role] = cleaning.subsample(dataset, limits.get(role), self.config.seed, self.report.splits[role])
        return splits

    def encode(self, dataset: Any, split: str) -> Any:
        """Deterministic preprocessing, batched and cached by `datasets`."""
        encoded = dataset.map(
            self.preprocess, batched=True, remove_columns=[self.columns["input"]], desc=f"preprocessing {split}"
        )
        notes = self.preprocessing_notes(encoded)
        if notes:
            self.report.splits.setdefault(split, cleaning.SplitReport()).notes.update(notes)
        return encoded

    def build_model(self, model_path: str) -> Any:
        import transformers

        from hfft.modeling import apply_tuning, load_model, load_model_config

        model_config = self.adapt_model_config(load_model_config(model_path, self.config, self.labels))
        model_class = getattr(transformers, self.model_class_name)
        model = load_model(model_class, model_path, model_config, self.config, notes=self.model_notes)
        self.adapt_model(model)
        return apply_tuning(model, self.config)

    def build_trainer(self, args: Any, encoded: dict[str, Any]) -> Any:
        from transformers import EarlyStoppingCallback

        from hfft.metrics import argmax_logits, classification_metrics
        from hfft.perf import Trainer  # reads the length column through wrappers: no start-up scan

        train, collator, callbacks = encoded["train"], self.collator(), []
        if self.config.regularization.augment and self.has_train_transform():  # resume-safe: seeded per batch
            train, collator, epoch = seeded_augmentation(train, self.train_transform, collator, self.config.seed)
            callbacks.append(epoch)
        elif not self.config.regularization.augment:
            train = self.with_eval_transform(train)
        if self.config.regularization.early_stopping_patience is not None:
            callbacks.append(EarlyStoppingCallback(self.config.regularization.early_stopping_patience))
        return Trainer(
            model=self.model,
            args=args,
            train_dataset=train,
            eval_dataset=self.with_eval_transform(encoded["validation"]),
            data_collator=collator,
            processing_class=self.processor,
            compute_metrics=classification_metrics(len(self.labels)),
            preprocess_logits_for_metrics=argmax_logits,
            callbacks=callbacks,
        )

    def train_eval_metrics(self, trainer: Any, train: Any) -> dict[str, float]:
        """Accuracy on (a seeded sample of) the training rows, unaugmented: for the generalisation gap."""
        rows = train.shuffle(seed=self.config.seed).select(range(min(TRAIN_EVAL_ROWS, len(train))))
        metrics = trainer.evaluate(self.with_eval_transform(rows), metric_key_prefix="train_eval")
        return {k: v for k, v in metrics.items() if k in ("train_eval_accuracy", "train_eval_f1", "train_eval_loss")}

    def save(self, trainer: Any, metrics: dict[str, float], model_path: str) -> None:
        """Model (or adapter + head), processor, metrics, resolved config, report and model card."""
        trainer.save_model(str(self.output_dir))
        if self.processor is not None:
            self.processor.save_pretrained(str(self.output_dir))
        trainer.save_metrics("all", metrics, combined=False)
        trainer.save_state()
        outputs.write_run_files(self, metrics, model_path, trainer)

    def with_eval_transform(self, dataset: Any) -> Any:
        return dataset.with_transform(self.eval_transform) if self.has_eval_transform() else dataset

    def has_train_transform(self) -> bool:
        return type(self).train_transform is not Recipe.train_transform

    def has_eval_transform(self) -> bool:
        return type(self).eval_transform is not Recipe.eval_transform

    # ------------------------------------------------------------------ hooks

    @classmethod
    def check_config(cls, config: RecipeConfig) -> None:
        """Hook: task-specific config checks (run at load time, before any data is read)."""

    def load_processor(self, model_path: str) -> Any:
        """Hook: the tokenizer / image processor / feature extractor of the checkpoint."""
        raise NotImplementedError

    def check_batch(self, batch: dict[str, list]) -> list[str | None]:
        """Hook: per row, None if usable, else a drop reason ("reason" or "reason: detail")."""
        return [None] * len(next(iter(batch.values())))

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
        """Hook: change the checkpoint's config before the weights load (also when a LoRA run is reloaded)."""
        return model_config

    def adapt_model(self, model: Any) -> None:
        """Hook: modality-specific model settings (e.g. freeze a feature encoder)."""

    def collator(self) -> Any:
        """Hook: the data collator (dynamic padding, stacking)."""
        return None

    def prepare_inputs(self, inputs: list[Any]) -> dict[str, Any]:
        """Hook: raw inputs -> a batch of model input tensors (for `predict`)."""
        raise NotImplementedError


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


def majority(dataset: Any) -> float:
    """Accuracy of always predicting the most frequent class (the floor a model must beat)."""
    counts = Counter(dataset["labels"])
    return max(counts.values()) / len(dataset) if len(dataset) else 0.0
