"""The Recipe base class: one fine-tuning run, readable top to bottom in `train()`.

A recipe is a *modality* (`hfft/modalities/`: how inputs are found, checked, preprocessed, augmented,
collated and corrupted) times a *task* (`hfft/tasks/`: targets, head, loss, metrics, predictions and
outputs), composed by `hfft.registry.recipe_class`. Both fill in the hooks of `hfft/hooks.py`; the flow
itself lives only here.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, ClassVar

from hfft import audit, cleaning, data, leakage, outputs
from hfft.config import NoOptions, RecipeConfig, load_config
from hfft.distributed import (
    check_launch,
    check_sharded_resume,
    elastic_restart,
    gather_fingerprints,
    init_restarted_process_group,
    meta_copy,
    parallelism,
    unsharded_model,
)
from hfft.errors import ConfigError, DataError
from hfft.hooks import ModalityHooks, TaskHooks
from hfft.inference import InferenceMixin
from hfft.resume import resume_checkpoint, run_training, seeded_augmentation

logger = logging.getLogger("hfft")


class Recipe(ModalityHooks, TaskHooks, InferenceMixin):
    """Base class of all recipes. Build from a config, keyword arguments or a YAML path."""

    task: ClassVar[str] = ""  # the config's `task:` name, e.g. "image-classification"
    modality: ClassVar[str] = ""  # "text" | "image" | "audio": reads data.<modality>_column
    input_candidates: ClassVar[tuple[str, ...]] = ()
    folder_builder: ClassVar[str | None] = None  # datasets builder for class-subfolder directories
    dedup: ClassVar[bool] = False  # drop duplicate (input, target) rows from train
    Preprocessing: ClassVar[type] = NoOptions  # modality config sections
    Augmentation: ClassVar[type] = NoOptions
    Labels: ClassVar[type] = NoOptions  # task config section
    default_models: ClassVar[dict[str, str]] = {}  # task: modality -> default checkpoint
    model_classes: ClassVar[dict[str, str]] = {}  # task: modality -> transformers Auto class name
    primary_metric: ClassVar[str] = "loss"  # task: best-model selection, generalisation gap, robustness
    greater_is_better: ClassVar[bool] = False
    stratify_column: ClassVar[str | None] = None  # task: column a split of train is stratified by
    robustness_metrics: ClassVar[tuple[str, ...]] = ("loss",)  # task: reported by `hfft robustness`
    trainer_class: ClassVar[str] = "Trainer"  # task: "Seq2SeqTrainer" for generation-based evaluation
    training_arguments_class: ClassVar[str] = "TrainingArguments"  # task: or "Seq2SeqTrainingArguments"
    crops_inputs: ClassVar[bool] = True  # task: may the modality crop long inputs (not when targets span them)
    default_clip_seconds: ClassVar[float] = 5.0  # task: audio clip length when preprocessing.max_duration is None
    train_eval_rows: ClassVar[int] = 500  # rows of train re-evaluated without augmentation (generalisation gap)
    splits_rows: ClassVar[bool] = False  # modality: preprocessing may turn one row into several (windows)
    default_tuning_method: ClassVar[str] = "lora"  # task: tuning.method when the config does not set it
    lora_targets_auto: ClassVar[str | None] = None  # task: what target_modules `auto` means (None: by architecture)
    pipeline_tag: ClassVar[str | None] = None  # task: the transformers pipeline name, when not the task name
    normalizes_labels: ClassVar[bool] = False  # task: data.normalize_labels applies (string class labels)

    def __init__(self, config: RecipeConfig | dict[str, Any] | None = None, **kwargs: Any) -> None:
        if config is None or isinstance(config, dict):
            raw = dict(config or {}, **kwargs)
            raw.setdefault("task", self.task)
            config = load_config(raw)
        self.config: RecipeConfig = config
        self.processor: Any = None
        self.model: Any = None
        self.report = cleaning.DataReport()
        self.columns: dict[str, str] = {}
        self.model_notes: dict[str, Any] = {}  # e.g. a re-initialised head (saved in run_info.json)
        self.predictions: dict[str, Any] = {}  # split -> Trainer PredictionOutput, for the task's outputs
        self.callbacks: list[Any] = []  # more TrainerCallbacks (e.g. hfft search's pruning)
        self.use_test = True  # False: the test split is not loaded (hfft search: trials never see it)
        self.model_path: str | None = None  # the checkpoint as `preflight` resolved it
        # hfft audit: the training rows (source rows, see cleaning.SOURCE_ROW) held out as this run's validation
        # split, one fold of a cross-validation; None: the usual validation split
        self.holdout_rows: list[int] | None = None
        self.row_ids: dict[str, list[int]] = {}  # split -> each row's source row in data.train (set by load_splits)

    @classmethod
    def check_config(cls, config: RecipeConfig) -> None:
        super().check_config(config)
        if config.data.normalize_labels and not cls.normalizes_labels:
            raise ConfigError(
                f"'data.normalize_labels' applies to classification tasks (string class labels), not {config.task}."
            )

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: list[str] | None = None) -> Recipe:
        """Build the recipe named by a YAML file's `task:` (any subclass)."""
        from hfft.registry import recipe_class

        config = load_config(path, overrides)
        return recipe_class(config.task)(config)

    @property
    def output_dir(self) -> Path:
        return Path(self.config.training.get("output_dir", f"runs/{self.task}"))

    @property
    def default_model(self) -> str:
        return self.default_models[self.modality]

    @property
    def model_class_name(self) -> str:
        return self.model_classes[self.modality]

    # ------------------------------------------------------------------ the run

    def train(self, resume: bool | str = False) -> dict[str, float]:
        """Load data, build the model, fine-tune, evaluate, save. Returns all metrics."""
        from transformers import set_seed

        started = time.time()
        check_launch(self.config)  # FSDP1 on CPUs, DeepSpeed without its package: errors, not fallbacks
        restarts = elastic_restart()
        if restarts and not resume:  # torchrun restarted the group after a worker died: continue, do not restart
            logger.info("elastic restart %d: resuming from the last complete checkpoint", restarts)
            resume = True
        init_restarted_process_group()  # a fresh rendezvous for the restarted group (torch keeps stale addresses)
        args = self.training_arguments()
        model_path = self.model_path = self.preflight(resume)
        checkpoint = resume_checkpoint(self.output_dir, resume, main_process=args.process_index == 0)
        check_sharded_resume(checkpoint, self.config, args.world_size)  # FSDP states resume only under FSDP
        set_seed(self.config.seed)
        with args.main_process_first(desc="loading and preprocessing data"):
            splits = self.load_splits()
            self.processor = self.load_processor(model_path)
            self.load_target_processor(model_path)
            encoded = {name: self.encode(ds, name) for name, ds in splits.items()}
        if args.process_index == 0:
            print("data:\n" + self.report.summary(), flush=True)
        self.model = self.build_model(model_path)
        self.resolve_learning_rate(args)  # the recipe's, or hfft's default for this architecture and method
        trainer = self.build_trainer(args, encoded)
        structure = meta_copy(self.model) if trainer.is_fsdp_enabled and trainer.is_world_process_zero() else None
        before = self.pretrained_metrics(trainer, encoded)  # e.g. the zero-shot WER of the unmodified checkpoint
        trainer.release_evaluated_model()  # so that training wraps it in DDP after all
        if args.hfft_learning_rate_auto:  # training.learning_rate: auto
            args.learning_rate = self.model_notes["learning_rate"]["value"] = self.auto_learning_rate(trainer, resume)
        train_result = run_training(trainer, checkpoint)  # out of memory / disk full: a message, not a trace
        metrics = {**before, **train_result.metrics}
        metrics.update(self.evaluate_split(trainer, encoded["validation"], "eval"))
        metrics.update(self.after_validation(trainer))  # e.g. decision thresholds tuned on validation
        metrics.update(self.train_eval_metrics(trainer, encoded["train"]))
        key = self.primary_metric
        gap = metrics[f"train_eval_{key}"] - metrics[f"eval_{key}"]  # > 0: better on train than on validation
        metrics["generalization_gap"] = gap if self.greater_is_better else -gap
        if "test" in encoded:
            metrics.update(self.evaluate_split(trainer, encoded["test"], "test"))
        for split, prefix in (("validation", "eval"), ("test", "test")):
            if split in encoded:
                baseline = self.baseline_metrics(encoded["train"], encoded[split])
                metrics.update({f"{prefix}_{name}": value for name, value in baseline.items()})
        metrics["wall_time_s"] = round(time.time() - started, 1)
        if "learning_rate_auto" in self.model_notes:  # what `auto` cost, against the whole run
            auto = self.model_notes["learning_rate_auto"]
            auto["fraction_of_run"] = round(auto["seconds"] / max(metrics["wall_time_s"], 1e-9), 3)
        metrics["world_size"] = args.world_size
        self.model_notes["parallelism"] = {**parallelism(trainer), "elastic_restarts": restarts}
        self.rank_fingerprints = gather_fingerprints(trainer.model)  # all ranks must end with equal weights
        trained = unsharded_model(trainer, structure) if trainer.is_fsdp_enabled else trainer.model  # FSDP: gathered
        if trainer.is_world_process_zero():
            self.save(trainer, metrics, model_path, trained)
        return metrics

    def resolve_learning_rate(self, args: Any) -> None:
        """Set ``args.learning_rate``: the recipe's value, or hfft's default for this architecture family, tuning
        method and task (hfft/defaults.py); the value and its source are logged and saved in run_info.json."""
        from hfft.defaults import LearningRateChoice, default_learning_rate
        from hfft.modeling import base_model

        setting = self.config.training.get("learning_rate")
        if setting is None:
            choice = default_learning_rate(base_model(self.model).config, self.config.tuning.method, self.task)
            args.learning_rate = choice.value
        elif setting == "auto":
            choice = LearningRateChoice("auto", "learning-rate range test (training.learning_rate: auto)")
        else:
            choice = LearningRateChoice(setting, "training.learning_rate")
        self.model_notes["learning_rate"] = vars(choice)
        if args.process_index == 0:
            logger.info("learning rate: %s (%s)", choice.value, choice.source)

    def auto_learning_rate(self, trainer: Any, resume: bool | str) -> float:
        """The range test's learning rate (hfft/lr_finder.py); a resumed run keeps the one it chose first."""
        import json

        from hfft.lr_finder import RESULT_FILE, find_learning_rate

        saved = self.output_dir / RESULT_FILE
        if resume and saved.is_file():
            chosen = json.loads(saved.read_text(encoding="utf-8"))
        else:
            chosen = vars(find_learning_rate(trainer, self.output_dir))
        keep = ("learning_rate", "rule", "steps", "seconds")
        self.model_notes["learning_rate_auto"] = {k: chosen[k] for k in keep}
        return chosen["learning_rate"]

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

        return build_training_arguments(self.config, self)

    def load_splits(self) -> dict[str, Any]:
        """Load train/validation/test, clean them, encode targets, split and subsample. The source row of every
        train row (and of a validation split taken from train) is kept in `self.row_ids`."""
        splits = self.cleaned_splits()
        if self.holdout_rows is not None:  # hfft audit: one cross-validation fold
            splits["train"], splits["validation"] = audit.split_holdout(self, splits["train"])
        elif "validation" not in splits:
            splits["train"], splits["validation"] = self.split_off_validation(splits["train"])
        splits = self.subsample(splits)
        splits = leakage.check_splits(self, splits)  # rows of validation/test also in train: reported
        for role, ds in splits.items():
            self.report.splits[role].notes.update(self.target_notes(ds))
        row = cleaning.SOURCE_ROW
        self.row_ids = {role: list(ds[row]) for role, ds in splits.items() if row in ds.column_names}
        return {role: ds.remove_columns(row) if row in ds.column_names else ds for role, ds in splits.items()}

    def cleaned_splits(self) -> dict[str, Any]:
        """The configured splits cleaned (train: without the rows of data.exclude), targets encoded; train rows
        carry their source row (0-based among the rows of data.train as loaded) in the cleaning.SOURCE_ROW
        column."""
        splits = self.load_raw_splits()
        where = {role: cleaning.source_name(self.config.data, role) for role in splits}  # "data.train ('x.csv')"
        self.columns = self.find_columns(splits["train"], where["train"])
        for role, ds in splits.items():
            missing = [c for c in self.columns.values() if c not in ds.column_names]
            if missing:
                raise DataError(
                    f"{where[role]}: columns {missing} (found in train) are missing; it has {', '.join(ds.column_names)}."
                )
            ds = ds.select_columns(list(dict.fromkeys(self.columns.values())))
            if role == "train":
                ds = ds.add_column(cleaning.SOURCE_ROW, list(range(len(ds))))
            splits[role] = self.clean(ds, role)
        if self.config.data.exclude is not None:
            splits["train"] = audit.exclude_rows(self, splits["train"])
        return self.encode_targets(splits, where)

    def load_raw_splits(self) -> dict[str, Any]:
        """The configured sources as {"train", "validation"?, "test"?} datasets, before any cleaning."""
        dc = self.config.data
        options = {"subset": dc.subset, "folder_builder": self.folder_builder, "image_root": dc.image_root}
        source = data.load_source(dc.train, "data.train", **options)
        train = source[dc.train_split] if dc.train_split in source else data.only_split(source, "data.train", dc.train)
        splits = {"train": train}
        for role, names in (("validation", data.VALIDATION_NAMES), ("test", ("test",))):
            spec = getattr(dc, role)
            if spec is not None:
                splits[role] = data.only_split(data.load_source(spec, f"data.{role}", **options), f"data.{role}", spec)
            else:
                found = data.pick_split(source, getattr(dc, f"{role}_split"), names, "data.train")
                if found is not None:
                    splits[role] = found
        if not self.use_test:
            splits.pop("test", None)
        if self.holdout_rows is not None:  # a cross-validation fold validates on its held-out train rows
            splits.pop("validation", None)
        return {role: self.convert_source(ds, cleaning.source_name(dc, role)) for role, ds in splits.items()}

    def find_columns(self, dataset: Any, where: str) -> dict[str, str]:
        """{"input": ..., <target roles>: ...}: the modality's input columns, then the task's target columns."""
        return {**self.input_columns(dataset, where), **self.target_columns(dataset, where)}

    def clean(self, dataset: Any, split: str) -> Any:
        """Drop (and count) rows whose input the modality rejects or whose target the task rejects."""

        def check(batch: dict[str, list]) -> list[str | None]:
            inputs, targets = self.check_batch(batch), self.check_targets(batch)
            return [a or b for a, b in zip(inputs, targets)]

        dedup = (
            list(self.columns.values())
            if self.dedup and self.config.data.drop_duplicates and split == "train"
            else None
        )
        where = cleaning.source_name(self.config.data, split)
        return cleaning.clean_split(dataset, split, self.report, check, dedup, self.config.data.max_bad_fraction, where)

    def split_off_validation(self, train: Any) -> tuple[Any, Any]:
        """A seeded split of train, stratified by the task's `stratify_column` when every class has 2+ rows."""
        size = self.config.data.validation_size
        if math.ceil(len(train) * size) >= len(train):  # datasets rounds the held-out part up
            raise DataError(
                f"data.train has {len(train)} rows after cleaning: too few to hold out data.validation_size={size} "
                "of them for validation. Give data.validation, or more training rows."
            )
        try:
            parts = train.train_test_split(
                test_size=size, seed=self.config.seed, stratify_by_column=self.stratify_column
            )
        except ValueError as err:
            logger.warning("validation split is not stratified (%s)", err)
            parts = train.train_test_split(test_size=size, seed=self.config.seed)
        train_report = self.report.splits["train"]
        train_report.rows_out = len(parts["train"])
        train_report.notes["moved_to_validation"] = len(parts["test"])
        how = "stratified " if self.stratify_column else ""
        self.report.splits["validation"] = cleaning.SplitReport(
            rows_in=len(parts["test"]), rows_out=len(parts["test"]), notes={"source": f"{how}{size:.0%} of train"}
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

        def preprocess(batch: dict[str, list]) -> dict[str, list]:
            encoded = self.preprocess(batch)
            return {**encoded, **self.preprocess_targets(batch, encoded, split)}

        # rows that become several (windows) keep only what preprocessing returns
        remove = dataset.column_names if self.splits_rows else [self.columns["input"]]
        encoded = dataset.map(preprocess, batched=True, remove_columns=remove, desc=f"preprocessing {split}")
        notes = self.preprocessing_notes(encoded)
        if notes:
            self.report.splits.setdefault(split, cleaning.SplitReport()).notes.update(notes)
        return encoded

    def build_model(self, model_path: str) -> Any:
        """The checkpoint with the task's head and the modality's settings, then LoRA / full / freeze."""
        from hfft.modeling import apply_tuning

        model = self.load_base_model(model_path, self.model_notes)
        self.adapt_model(model)
        self.init_head(model)
        heads = self.head_modules(model)
        return apply_tuning(model, self.config, heads, self.frozen_trainable(model), self.lora_targets_auto)

    def load_base_model(self, model_path: str, notes: dict[str, Any] | None = None) -> Any:
        """Weights of ``model_path`` under a config the task and modality have adapted (no tuning applied)."""
        import transformers

        from hfft.modeling import load_model, load_model_config

        model_config = self.adapt_model_config(self.configure_head(load_model_config(model_path, self.config)))
        model_class = getattr(transformers, self.model_class_name)
        return load_model(model_class, model_path, model_config, self.config, notes=notes)

    def build_trainer(self, args: Any, encoded: dict[str, Any]) -> Any:
        from transformers import EarlyStoppingCallback

        from hfft import perf  # its Trainer reads the length column through wrappers: no start-up scan

        train, collator, callbacks = encoded["train"], self.collator(), list(self.callbacks)
        if self.config.regularization.augment and self.has_train_transform():  # resume-safe: seeded per batch
            train, collator, epoch = seeded_augmentation(train, self.train_transform, collator, self.config.seed)
            callbacks.append(epoch)
        elif not self.config.regularization.augment:
            train = self.with_eval_transform(train)
        if self.config.regularization.early_stopping_patience is not None:
            callbacks.append(EarlyStoppingCallback(self.config.regularization.early_stopping_patience))
        trainer = getattr(perf, self.trainer_class)(
            model=self.model,
            args=args,
            train_dataset=train,
            eval_dataset=self.with_eval_transform(encoded["validation"]),
            data_collator=collator,
            processing_class=self.processor,
            compute_metrics=self.compute_metrics,
            preprocess_logits_for_metrics=self.preprocess_logits,
            callbacks=callbacks,
        )
        trainer.compute_loss_func = self.loss_function(encoded["train"])  # None: the model's own loss
        trainer.sample_weights = self.sample_weights(encoded["train"])  # None: uniform sampling
        trainer.head_learning_rate = self.config.tuning.head_learning_rate
        return trainer

    def evaluate_unmodified(self, trainer: Any, encoded: dict[str, Any]) -> dict[str, float]:
        """Metrics of the model as loaded (before fine-tuning; LoRA starts as the identity) on validation and test,
        as ``<prefix>_zero_shot_*``; the predictions are kept in `self.predictions` (for a task's
        `pretrained_metrics`)."""
        metrics = {}
        for split, prefix in (("validation", "eval"), ("test", "test")):
            if split in encoded:
                key = f"{prefix}_zero_shot"
                output = trainer.predict(self.with_eval_transform(encoded[split]), metric_key_prefix=key)
                self.predictions[key] = output
                metrics.update({k: v for k, v in output.metrics.items() if not k.endswith(("runtime", "per_second"))})
        return metrics

    def evaluate_split(self, trainer: Any, dataset: Any, prefix: str) -> dict[str, float]:
        """Metrics of one split; its predictions are kept for the task's outputs (plots, reports)."""
        output = trainer.predict(self.with_eval_transform(dataset), metric_key_prefix=prefix)
        self.predictions[prefix] = output
        return dict(output.metrics)

    def train_eval_metrics(self, trainer: Any, train: Any) -> dict[str, float]:
        """Metrics on (a seeded sample of) the training rows, unaugmented: for the generalisation gap."""
        rows = train.shuffle(seed=self.config.seed).select(range(min(self.train_eval_rows, len(train))))
        metrics = trainer.evaluate(self.with_eval_transform(rows), metric_key_prefix="train_eval")
        return {k: v for k, v in metrics.items() if not k.endswith(("runtime", "per_second", "samples"))}

    def save(self, trainer: Any, metrics: dict[str, float], model_path: str, model: Any) -> None:
        """``model`` (LoRA: merged, with the adapter in adapter/), processor, metrics, config, report, model card."""
        outputs.save_model(trainer, self.output_dir, model)
        if self.processor is not None:
            self.processor.save_pretrained(str(self.output_dir))
        trainer.save_metrics("all", metrics, combined=False)
        trainer.save_state()
        outputs.write_run_files(self, metrics, model_path, trainer)

    def with_eval_transform(self, dataset: Any) -> Any:
        return dataset.with_transform(self.eval_transform) if self.has_eval_transform() else dataset

    def has_train_transform(self) -> bool:
        return type(self).train_transform is not ModalityHooks.train_transform

    def has_eval_transform(self) -> bool:
        return type(self).eval_transform is not ModalityHooks.eval_transform
