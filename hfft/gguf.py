"""GGUF checkpoints (llama.cpp files): dequantised once into a cached safetensors directory that the rest of
hfft loads like any other checkpoint."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from pathlib import Path

from hfft.errors import ModelError

logger = logging.getLogger("hfft")
MAGIC = b"GGUF"


def gguf_file(path: Path) -> Path | None:
    """The GGUF file ``path`` names: the file itself, or the only .gguf in a directory without config.json."""
    if path.is_file() and path.suffix == ".gguf":
        return path
    if path.is_dir() and not (path / "config.json").is_file():
        found = sorted(path.glob("*.gguf"))
        if len(found) > 1:
            raise ModelError(
                f"'model': '{path}' holds several GGUF files ({', '.join(p.name for p in found)}); set model: to one."
            )
        return found[0] if found else None
    return None


def cache_dir() -> Path:
    """Where dequantised GGUF checkpoints are kept: $HFFT_CACHE, else ~/.cache/hfft."""
    return Path(os.environ.get("HFFT_CACHE", Path.home() / ".cache" / "hfft")) / "gguf"


def dequantised(file: Path) -> str:
    """A `save_pretrained` directory (safetensors, float32, tokenizer and chat template) of GGUF ``file``,
    converted on first use and cached by the file's path, size and modification time."""
    with open(file, "rb") as handle:
        magic = handle.read(4)
    if magic != MAGIC:
        raise ModelError(f"'model': '{file}' is not a readable GGUF file (it starts with {magic!r}, not b'GGUF').")
    stat = file.stat()
    key = hashlib.sha256(f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    out = cache_dir() / f"{file.stem}-{key}"
    if (out / "config.json").is_file():
        return str(out)
    from filelock import FileLock

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):  # several processes of one launch: one converts, the others wait
        if not (out / "config.json").is_file():
            convert(file, out)
    return str(out)


def convert(file: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.time()
    logger.warning("dequantising GGUF '%s' once into '%s' (safetensors; takes a minute) ...", file, out)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(file.parent), gguf_file=file.name)
        quantised = AutoModelForCausalLM.from_pretrained(str(file.parent), gguf_file=file.name, dtype=torch.float32)
    except Exception as err:  # the gguf reader raises many kinds on a damaged or unsupported file
        raise ModelError(f"'model': could not read GGUF file '{file}': {type(err).__name__}: {err}") from None
    model_config = quantised.config
    if hasattr(model_config, "quantization_config"):
        del model_config.quantization_config  # dequantised: plain float weights
    model = AutoModelForCausalLM.from_config(model_config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict())
    model.generation_config = quantised.generation_config
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / "SOURCE.txt").write_text(f"dequantised from {file.resolve()}\n", encoding="utf-8")
    os.replace(tmp, out)
    logger.warning("GGUF dequantised in %.0f s; later runs load '%s' directly.", time.time() - started, out)
