"""`training:` -> `transformers.TrainingArguments`, with hfft's defaults underneath the user's values."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from hfft.config import RecipeConfig, _suggest, coerce
from hfft.errors import ConfigError

# Set in hfft's own sections; one place for each knob.
OWNED_BY_HFFT = {
    "seed": "seed",
    "weight_decay": "regularization.weight_decay",
    "label_smoothing_factor": "regularization.label_smoothing",
}

# Until the model is built (Recipe.resolve_learning_rate) a run without a learning rate holds this placeholder;
# the default proper depends on the architecture (hfft/defaults.py).
PLACEHOLDER_LEARNING_RATE = 1e-4

# Texts vary in length: batches of similar lengths (read from the `length` column the text modality keeps)
# carry far less padding than random ones (~2x fewer tokens on short texts).
MODALITY_DEFAULTS: dict[str, dict[str, Any]] = {"text": {"train_sampling_strategy": "group_by_length"}}


def training_argument_fields(class_name: str = "TrainingArguments") -> dict[str, Any]:
    """Name -> type of every `__init__` field of `transformers.<class_name>` (TrainingArguments or a subclass)."""
    import transformers

    arguments = getattr(transformers, class_name)
    hints = typing.get_type_hints(arguments)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(arguments) if f.init}


def validate_training_section(config: RecipeConfig, class_name: str = "TrainingArguments") -> None:
    """Reject unknown / mistyped `training:` keys and keys that hfft sets elsewhere."""
    fields = training_argument_fields(class_name)
    for key, value in list(config.training.items()):
        if key in OWNED_BY_HFFT:
            raise ConfigError(
                f"'training.{key}' is set through '{OWNED_BY_HFFT[key]}' in hfft configs; move the value there."
            )
        if key not in fields:
            raise ConfigError(
                f"Unknown config key 'training.{key}' (not a {class_name} field).{_suggest(key, list(fields))}"
            )
        if key == "learning_rate" and value == "auto":  # a range test before training (hfft/lr_finder.py)
            continue
        config.training[key] = coerce(value, fields[key], f"training.{key}")
    lr = config.training.get("learning_rate")
    if lr is not None and lr != "auto" and lr <= 0:
        raise ConfigError(f"'training.learning_rate' must be > 0, got {lr}.")
    epochs = config.training.get("num_train_epochs")
    if epochs is not None and epochs <= 0:
        raise ConfigError(f"'training.num_train_epochs' must be > 0, got {epochs}.")
    for key in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        if key in config.training and config.training[key] < 1:
            raise ConfigError(f"'training.{key}' must be >= 1, got {config.training[key]}.")


def has_accelerator() -> bool:
    """True when torch sees a CUDA/ROCm, XPU or MPS device."""
    import torch

    xpu = getattr(torch, "xpu", None)
    mps = getattr(torch.backends, "mps", None)
    return bool(torch.cuda.is_available() or (xpu and xpu.is_available()) or (mps and mps.is_available()))


def training_defaults(config: RecipeConfig, recipe: Any) -> dict[str, Any]:
    """hfft's defaults for ``recipe`` (its modality and task); every key can be overridden under `training:`."""
    reg = config.regularization
    defaults: dict[str, Any] = {
        "output_dir": f"runs/{recipe.task}",
        "num_train_epochs": 3,
        "learning_rate": PLACEHOLDER_LEARNING_RATE,
        "per_device_train_batch_size": 16,
        "per_device_eval_batch_size": 64,
        "warmup_steps": 0.1,
        "lr_scheduler_type": "linear",
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "save_total_limit": 2,
        "logging_steps": 10,
        "report_to": "none",
        "remove_unused_columns": False,  # recipes keep exactly the model's columns themselves
        "average_tokens_across_devices": False,  # keeps DDP loss/grad-norm equal to one process
        # LoRA and a frozen backbone use every trainable parameter: skip DDP's unused-parameter search.
        "ddp_find_unused_parameters": None if config.tuning.method == "full" else False,
        # Without an accelerator, CPU training must be explicit for torchrun/accelerate to start gloo DDP.
        "use_cpu": not has_accelerator(),
    }
    defaults.update(MODALITY_DEFAULTS.get(recipe.modality, {}))
    defaults.update(recipe.training_defaults())
    if reg.balanced_sampler:  # the balanced sampler replaces length grouping
        defaults.pop("train_sampling_strategy", None)
    if not config.training.get("fp16"):
        import torch

        from hfft.perf import native_cpu_bf16

        # bf16 autocast: ~3-4x faster transformer steps where the CPU has bf16 units (hfft.perf.Trainer drops it
        # again for convolutional networks, which run faster in float32 + channels_last); on CUDA GPUs with bf16
        # units (Ampere and later) about 2x the float32 step and, unlike fp16, no loss scaling
        on_cpu = defaults["use_cpu"]
        defaults["bf16"] = native_cpu_bf16() if on_cpu else torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if config.training.get("gradient_checkpointing"):
        defaults["gradient_checkpointing_kwargs"] = {"use_reentrant": False}
    if reg.early_stopping_patience is not None:
        defaults.update(
            load_best_model_at_end=True,
            metric_for_best_model=recipe.primary_metric,
            greater_is_better=recipe.greater_is_better,
        )
    return defaults


def build_training_arguments(config: RecipeConfig, recipe: Any) -> Any:
    """TrainingArguments from hfft defaults, hfft-owned knobs and the user's `training:` values."""
    import transformers

    args = training_defaults(config, recipe)
    args.update(config.training)
    args.update(
        seed=config.seed,
        weight_decay=config.regularization.weight_decay,
        label_smoothing_factor=config.regularization.label_smoothing,
    )
    if args.get("eval_strategy") == "no" and args.get("load_best_model_at_end"):
        raise ConfigError(
            "'regularization.early_stopping_patience' / 'training.load_best_model_at_end' need "
            "evaluation: set training.eval_strategy to epoch or steps."
        )
    auto_lr = args.get("learning_rate") == "auto"
    if auto_lr:  # replaced by the range test's choice before the optimizer is built (Recipe.train)
        args["learning_rate"] = PLACEHOLDER_LEARNING_RATE
    if args.get("use_cpu"):
        from hfft.perf import set_cpu_threads

        set_cpu_threads()
    try:
        arguments = getattr(transformers, recipe.training_arguments_class)(**args)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"'training': invalid TrainingArguments: {err}") from None
    arguments.hfft_chose_bf16 = bool(args.get("bf16")) and "bf16" not in config.training  # see hfft.perf
    arguments.hfft_learning_rate_auto = auto_lr
    return arguments
