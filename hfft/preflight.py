"""Checks of the checkpoint that run before any data or weights are loaded (cheap: JSON and file headers).

A local checkpoint must be a `save_pretrained` directory with a readable config.json and safetensors
weights; pickled weights (``pytorch_model.bin``) are refused, since unpickling can run code. A checkpoint
that needs its own Python code (``auto_map`` for a model type transformers does not know) is refused
unless ``trust_remote_code: true``. Explicit LoRA target modules are checked against the architecture,
built on the meta device (no weights).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hfft.config import RecipeConfig
from hfft.errors import ModelError

logger = logging.getLogger("hfft")
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5", "flax_model.msgpack")


def check_model(spec: str, config: RecipeConfig, model_class_name: str) -> str:
    """Resolve the checkpoint and check it; returns the path or Hub id to load from."""
    from hfft.modeling import check_model_source

    path = check_model_source(spec)
    if Path(path).exists():
        check_checkpoint_dir(Path(path), config.trust_remote_code)
    check_lora_targets(path, config, model_class_name)
    return path


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a checkpoint file, or a ModelError naming the file."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ModelError(f"'model': '{path}' is not valid JSON ({err}); the checkpoint is damaged.") from err
    if not isinstance(content, dict):
        raise ModelError(f"'model': '{path}' must hold a JSON object, got {type(content).__name__}.")
    return content


def check_checkpoint_dir(path: Path, trust_remote_code: bool) -> None:
    """config.json readable (its presence is checked by `check_model_source`), no custom code unless trusted,
    safetensors weights present and readable."""
    check_remote_code(path, read_json(path / "config.json"), trust_remote_code)
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        pickled = [name for name in PICKLED_WEIGHTS if (path / name).is_file()] or [p.name for p in path.glob("*.bin")]
        if pickled:
            raise ModelError(
                f"'model': '{path}' has only {', '.join(pickled)} weights and no .safetensors file. hfft loads "
                "safetensors only, because unpickling a file can run code. If you trust the file, convert it once: "
                f"`AutoModelForSequenceClassification.from_pretrained('{path}', use_safetensors=False)"
                f".save_pretrained('{path}')`."
            )
        raise ModelError(f"'model': '{path}' has no weights (expected model.safetensors).")
    from safetensors import safe_open

    for file in weights:
        try:
            with safe_open(str(file), framework="pt"):
                pass
        except Exception as err:  # truncated file, header that is not JSON, ...
            raise ModelError(
                f"'model': '{file}' is not a readable safetensors file ({err}); the copy or download is "
                "probably incomplete."
            ) from err


def check_remote_code(path: Path, model_config: dict[str, Any], trust_remote_code: bool) -> None:
    """Refuse a checkpoint whose model type only its own Python code (``auto_map``) defines, unless trusted."""
    from transformers import CONFIG_MAPPING, __version__

    model_type = model_config.get("model_type")
    auto_map = model_config.get("auto_map") or {}
    known = model_type in CONFIG_MAPPING
    if trust_remote_code or (known and not auto_map):
        return
    if auto_map and known:
        logger.warning(
            "'model': '%s' ships its own code (auto_map: %s), but model_type '%s' is built into transformers: "
            "using transformers' classes. Set trust_remote_code: true to run the checkpoint's code instead.",
            path,
            ", ".join(auto_map),
            model_type,
        )
        return
    if auto_map:
        raise ModelError(
            f"'model': '{path}' needs its own Python code to load (config.json has auto_map for "
            f"{', '.join(auto_map)}; model_type {model_type!r} is not part of transformers). hfft runs no code "
            "from checkpoints unless you set trust_remote_code: true in the recipe; do that only if you trust "
            "its source."
        )
    raise ModelError(
        f"'model': '{path / 'config.json'}' has model_type {model_type!r}, which transformers {__version__} does "
        "not know. Check the file, or upgrade transformers."
    )


def check_lora_targets(path: str, config: RecipeConfig, model_class_name: str) -> None:
    """Explicit `tuning.lora.target_modules` must exist in the architecture (built without weights)."""
    if config.tuning.method != "lora" or config.tuning.lora.target_modules == "auto":
        return
    import torch
    import transformers

    from hfft.modeling import lora_targets

    try:
        model_config = transformers.AutoConfig.from_pretrained(path, trust_remote_code=config.trust_remote_code)
        model_config.num_labels = 2
        with torch.device("meta"):
            model = getattr(transformers, model_class_name).from_config(
                model_config, trust_remote_code=config.trust_remote_code
            )
    except Exception as err:  # unusual architectures: the same check runs again once the weights are loaded
        logger.debug("LoRA targets not checked before loading (%s)", err)
        return
    lora_targets(model, config)
