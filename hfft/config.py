"""Typed recipe configuration: YAML files, dotted overrides, strict validation.

Every section is a dataclass whose fields carry a ``help`` string. Unknown keys are
errors that name the key and suggest the closest valid one; values are checked
against the field types before anything expensive (data, model) is loaded.
``training:`` is passed unchanged to ``transformers.TrainingArguments``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from hfft.errors import ConfigError


def option(default: Any = None, help: str = "", **kwargs: Any) -> Any:
    """A dataclass field with a help string (shown by ``hfft explain``)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)


@dataclass
class DataConfig:
    """Where the data comes from and which columns hold inputs and labels."""

    train: str | None = option(
        None,
        "Training data: a Hub dataset id, a local directory (saved dataset, "
        "imagefolder/audiofolder, or data files) or a csv/tsv/json/jsonl/parquet file.",
    )
    validation: str | None = option(
        None,
        "Validation data (same forms as `train`). Absent: a seeded, "
        "stratified `validation_size` split of train (or the source's own validation split).",
    )
    test: str | None = option(None, "Test data (same forms as `train`). Absent: the source's own test split if any.")
    subset: str | None = option(None, "Hub dataset configuration name (the `name` argument of `load_dataset`).")
    train_split: str = option("train", "Split name to train on when the source has several splits.")
    validation_split: str | None = option(None, "Split name used for validation (default: validation/valid/dev).")
    test_split: str | None = option(None, "Split name used for testing (default: test).")
    text_column: str | None = option(None, "Text column (text tasks). Auto-detected: text, sentence, content, ...")
    text_pair_column: str | None = option(None, "Optional second text column for sentence-pair tasks.")
    image_column: str | None = option(None, "Image column (image tasks). Auto-detected: image, img, pixel_values.")
    audio_column: str | None = option(None, "Audio column (audio tasks). Auto-detected: audio, file, path.")
    label_column: str | None = option(None, "Label column. Auto-detected: label, labels, fine_label, category, ...")
    messages_column: str | None = option(
        None,
        "Causal LM: conversation column (role/content or ShareGPT from/value turns). Auto: messages, conversations.",
    )
    prompt_column: str | None = option(None, "Causal LM: prompt column of prompt/completion data. Auto: prompt, ...")
    completion_column: str | None = option(None, "Causal LM: completion column. Auto: completion, response, output.")
    image_root: str | None = option(
        None,
        "COCO instances JSON sources (image tasks): the folder their image file_names are relative to. "
        "None: the JSON's folder, then its parent folder.",
    )
    validation_size: float = option(0.1, "Fraction of train held out for validation when no validation split exists.")
    max_train_samples: int | None = option(None, "Use a seeded random subset of this many training rows.")
    max_eval_samples: int | None = option(None, "Use a seeded random subset of this many validation/test rows.")
    drop_duplicates: bool = option(True, "Drop exact duplicate rows (same input and label) from train; counted.")
    max_bad_fraction: float = option(0.05, "Fail when more than this fraction of a split is unreadable/corrupt.")
    drop_leaked: bool = option(
        False,
        "Split leakage: remove from validation the rows whose input is also in train, and from test those also in "
        "train or validation (exact duplicates after the modality's normalisation: text with whitespace collapsed, "
        "lower-cased for uncased tokenizers; decoded image pixels; decoded audio samples), counted as `leaked` "
        "drops. False: they are only reported (data report, console summary, model card).",
    )
    near_duplicate_threshold: float | None = option(
        0.9,
        "Report (never remove) validation/test rows that nearly duplicate a train (test: or validation) row: text "
        "at this Jaccard similarity of word 3-gram sets or more; images at this fraction of agreeing bits of "
        "64-bit difference hashes (0.9: at most 6 bits differ). Compares at most 2,000 rows of a split against "
        "at most 100,000 (seeded samples, said in the report). Audio: not checked. None: off.",
    )
    normalize_labels: bool = option(
        False,
        "Classification: merge string labels that differ only by case, surrounding whitespace or Unicode form "
        "(NFKC) into their most frequent training spelling (counted in the data report). False: such labels are "
        "reported in one warning with the suggested mapping and kept as separate classes.",
    )
    min_class_rows: int = option(
        5, "Classification: warn about classes with fewer than this many training rows (with their counts); 0: off."
    )
    exclude: str | None = option(
        None,
        "Drop these training rows (counted as `excluded_by_audit` in the data report): an `hfft audit` audit.json "
        "(its flagged rows, and those its audit had excluded), or a .txt (one row per line), .csv (a `row` column) "
        "or .json (a list, or {rows: [...]}) of source rows: 0-based positions among the rows of data.train as "
        "loaded (a CSV's header is not a row). Rows out of range, or an audit of other data, are errors.",
    )


@dataclass
class LoraSection:
    """LoRA adapter settings (peft)."""

    r: int = option(8, "Rank of the low-rank update matrices.")
    alpha: int = option(16, "Scaling numerator: the update is scaled by alpha / r.")
    dropout: float = option(0.1, "Dropout on the LoRA input.")
    target_modules: str | list[str] = option(
        "auto",
        "Module names to adapt (or `all-linear`); `auto` picks the attention (and for some models MLP/conv) layers "
        "for the architecture (causal-lm: all-linear, every linear layer but the output layer).",
    )
    bias: Literal["none", "all", "lora_only"] = option("none", "Which biases to train.")


@dataclass
class TuningConfig:
    """Which parameters are trained."""

    method: Literal["lora", "full", "freeze", "qlora"] = option(
        "lora",
        "`lora`: adapters + head; `qlora` (causal-lm; needs a CUDA GPU and bitsandbytes): adapters over the model "
        "loaded in 4-bit NF4; `full`: every weight; `freeze`: only the task head (speech recognition: Whisper's "
        "decoder with the encoder frozen, or a CTC lm_head; detection: all but the backbone). Default: lora "
        "(object detection: full).",
    )
    lora: LoraSection = field(default_factory=LoraSection, metadata={"help": "LoRA settings (method: lora)."})
    head_learning_rate: float | None = option(
        None,
        "Learning rate of the task head's parameters (the newly initialised classifier), which start from scratch "
        "while the backbone is pretrained. None: training.learning_rate for all.",
    )


@dataclass
class RegularizationConfig:
    """Regularisation knobs, each easy to switch on and compare (see `hfft compare`)."""

    dropout: float | None = option(
        None,
        "Set every dropout probability in the model config "
        "(hidden, attention, classifier, ...). None keeps the checkpoint's values.",
    )
    weight_decay: float = option(0.01, "AdamW weight decay; biases and normalisation weights are excluded.")
    label_smoothing: float = option(0.0, "Label smoothing factor for the cross-entropy loss.")
    augment: bool = option(True, "Apply the modality's train-only augmentation (see `augmentation:`).")
    class_weights: str | dict[str, float] = option(
        "none",
        "Per-class loss weights against class imbalance: `none`, `balanced` (single-label: rows / (classes x "
        "class rows); multi-label: negatives / positives per class, as BCE pos_weight) or {label: weight}.",
    )
    balanced_sampler: bool = option(
        False,
        "Draw training rows with probability inversely proportional to their class's frequency (multi-label: "
        "the mean over the row's classes), with replacement; seeded per epoch.",
    )
    early_stopping_patience: int | None = option(
        None, "Stop after this many evaluations without improvement and keep the best model."
    )


@dataclass
class NoOptions:
    """A task without options in this section."""


@dataclass
class RecipeConfig:
    """A complete recipe: task, model, data, tuning, regularisation and TrainingArguments."""

    task: str = option(None, "Task name, e.g. text-classification (see `hfft ls`).")
    model: str | None = option(
        None,
        "Hub id or local directory of the checkpoint; a `pkg:NAME/sub/dir` "
        "path points inside an installed Python package. None: the task's default.",
    )
    seed: int = option(42, "One seed for data splits, sampling, initialisation and augmentation.")
    trust_remote_code: bool = option(False, "Allow checkpoints to run their own Python code. Off by default.")
    overwrite: bool = option(False, "Allow writing into an output directory that holds a finished run.")
    data: DataConfig = field(default_factory=DataConfig, metadata={"help": "Data sources and columns."})
    tuning: TuningConfig = field(default_factory=TuningConfig, metadata={"help": "LoRA, full or freeze."})
    regularization: RegularizationConfig = field(
        default_factory=RegularizationConfig, metadata={"help": "Dropout, weight decay, ..."}
    )
    labels: Any = field(default_factory=NoOptions, metadata={"help": "Task-specific: what the labels are."})
    preprocessing: Any = field(default_factory=NoOptions, metadata={"help": "Modality-specific preprocessing."})
    augmentation: Any = field(default_factory=NoOptions, metadata={"help": "Modality-specific augmentation."})
    training: dict[str, Any] = option({}, "Any transformers.TrainingArguments field, passed unchanged.")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (for YAML/JSON)."""
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- reading


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file '{path}' does not exist.")
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"Config file '{path}' is not valid YAML: {err}") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"Config file '{path}' must hold a mapping of keys, got {type(content).__name__}.")
    return content


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (values parsed as YAML) to a nested dict."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"Override '{item}' must look like key.subkey=value.")
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"Override '{item}': '{part}' is not a section.")
            node = child
        node[parts[-1]] = yaml.safe_load(value) if value != "" else None
    return raw


def format_override(key: str, value: Any) -> str:
    """The ``key=value`` override that `apply_overrides` reads back as ``value`` with its type (a bare 1e-05
    would be a string to YAML)."""
    if isinstance(value, bool):
        return f"{key}={str(value).lower()}"
    if isinstance(value, float):
        text = repr(value)
        return f"{key}={text.replace('e', '.0e') if 'e' in text and '.' not in text else text}"
    if isinstance(value, (list, dict)):
        return f"{key}={json.dumps(value)}"
    return f"{key}={value}"


def _suggest(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else f" Valid keys: {', '.join(sorted(valid))}."


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a type annotation; convert harmless forms ('3e-5' -> float)."""
    origin = typing.get_origin(annotation)
    if annotation is Any or annotation is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for candidate in options:
            if candidate is type(None):
                continue
            try:
                return coerce(value, candidate, where)
            except ConfigError:
                continue
        names = " or ".join(_type_name(o) for o in options if o is not type(None))
        raise ConfigError(f"'{where}' must be {names}, got {value!r}.")
    if origin is Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise ConfigError(f"'{where}' must be one of {', '.join(map(str, choices))}, got {value!r}.")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"'{where}' must be a list, got {value!r}.")
        (inner,) = typing.get_args(annotation)[:1] or (Any,)
        return [coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"'{where}' must be a mapping, got {value!r}.")
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"'{where}' must be true or false, got {value!r}.")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"'{where}' must be an integer, got {value!r}.")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"'{where}' must be a number, got {value!r}.")
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"'{where}' must be a string, got {value!r}.")
    if dataclasses.is_dataclass(annotation):
        return build_section(annotation, value, where)
    return value


def build_section(cls: type, raw: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, rejecting unknown keys and wrong types."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"'{where}' must be a mapping of keys, got {raw!r}.")
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in valid:
            prefix = f"{where}." if where else ""
            raise ConfigError(f"Unknown config key '{prefix}{key}'.{_suggest(str(key), valid)}")
    values = {}
    for name, value in raw.items():
        values[name] = coerce(value, hints[name], f"{where}.{name}" if where else name)
    return cls(**values)


def check_ranges(config: RecipeConfig) -> None:
    """Reject values that are well-typed but meaningless."""
    reg, data, lora = config.regularization, config.data, config.tuning.lora
    checks = [
        (reg.dropout is None or 0.0 <= reg.dropout < 1.0, "regularization.dropout", "in [0, 1)", reg.dropout),
        (reg.weight_decay >= 0.0, "regularization.weight_decay", ">= 0", reg.weight_decay),
        (0.0 <= reg.label_smoothing < 1.0, "regularization.label_smoothing", "in [0, 1)", reg.label_smoothing),
        (0.0 < data.validation_size < 1.0, "data.validation_size", "in (0, 1)", data.validation_size),
        (0.0 <= data.max_bad_fraction <= 1.0, "data.max_bad_fraction", "in [0, 1]", data.max_bad_fraction),
        (lora.r > 0, "tuning.lora.r", "> 0", lora.r),
        (0.0 <= lora.dropout < 1.0, "tuning.lora.dropout", "in [0, 1)", lora.dropout),
    ]
    near = data.near_duplicate_threshold
    checks.append((near is None or 0.0 < near <= 1.0, "data.near_duplicate_threshold", "in (0, 1] or null", near))
    checks.append((data.min_class_rows >= 0, "data.min_class_rows", ">= 0", data.min_class_rows))
    for name in ("max_train_samples", "max_eval_samples"):
        value = getattr(data, name)
        checks.append((value is None or value > 0, f"data.{name}", "> 0", value))
    for ok, key, expected, value in checks:
        if not ok:
            raise ConfigError(f"'{key}' must be {expected}, got {value}.")
    if config.tuning.method == "qlora":
        check_qlora(config)


def check_qlora(config: RecipeConfig) -> None:
    """QLoRA needs a causal-lm task, a CUDA GPU and bitsandbytes: a clear error here instead of a crash later."""
    import importlib.util

    if config.task != "causal-lm":
        raise ConfigError(f"'tuning.method: qlora' is for causal-lm; use lora for {config.task}.")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ConfigError("'tuning.method: qlora' needs bitsandbytes (pip install bitsandbytes) and a CUDA GPU.")
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("'tuning.method: qlora' needs a CUDA GPU (4-bit bitsandbytes kernels); none is visible. "
                          "Use tuning.method: lora on this machine.")  # fmt: skip


def resolve_task(task: Any) -> type:
    """The Recipe class registered for a task name."""
    from hfft.registry import RECIPES, recipe_class

    if not isinstance(task, str) or task not in RECIPES:
        raise ConfigError(
            f"'task' must be one of {', '.join(RECIPES)}, got {task!r}.{_suggest(str(task), list(RECIPES))}"
        )
    return recipe_class(task)


def build_config(raw: dict[str, Any], source: str = "config") -> RecipeConfig:
    """Validate a raw mapping into a RecipeConfig (task-specific sections included)."""
    raw = dict(raw)
    valid = [f.name for f in dataclasses.fields(RecipeConfig)]
    for key in raw:
        if key not in valid:
            raise ConfigError(f"Unknown config key '{key}' in {source}.{_suggest(str(key), valid)}")
    if "task" not in raw:
        raise ConfigError(f"{source} has no 'task' key (e.g. task: text-classification).")
    recipe_cls = resolve_task(raw["task"])
    tuning = raw.get("tuning") if isinstance(raw.get("tuning"), dict) else None
    if raw.get("tuning") is None or (tuning is not None and "method" not in tuning):  # the task's default method
        raw["tuning"] = {**(tuning or {}), "method": recipe_cls.default_tuning_method}
    task_sections = {
        "labels": recipe_cls.Labels,
        "preprocessing": recipe_cls.Preprocessing,
        "augmentation": recipe_cls.Augmentation,
    }
    kwargs: dict[str, Any] = {}
    for name, section_cls in task_sections.items():
        kwargs[name] = build_section(section_cls, raw.pop(name, None), name)
    config = build_section(RecipeConfig, raw, "")
    for name, value in kwargs.items():
        setattr(config, name, value)
    from hfft.training_args import validate_training_section

    validate_training_section(config, recipe_cls.training_arguments_class)
    check_ranges(config)
    recipe_cls.check_config(config)
    return config


def load_config(source: str | Path | dict[str, Any], overrides: list[str] | None = None) -> RecipeConfig:
    """Load a RecipeConfig from a YAML path or a mapping, applying dotted overrides."""
    if isinstance(source, dict):
        raw, name = _deep_copy(source), "config"
    else:
        raw, name = read_yaml(source), f"'{source}'"
    return build_config(apply_overrides(raw, list(overrides or [])), name)


def _deep_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def describe(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, help) rows for every field of a section, recursively."""
    rows = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if dataclasses.is_dataclass(default):
            rows.extend(describe(type(default), f"{key}."))
        else:
            rows.append((key, repr(default), f.metadata.get("help", "")))
    return rows
