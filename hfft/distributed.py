"""Helpers for runs under several processes (torchrun / accelerate launch)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger("hfft")
RAM_EFFICIENT_LOADING = "FSDP_CPU_RAM_EFFICIENT_LOADING"  # set by accelerate launch from fsdp_cpu_ram_efficient_loading


@contextlib.contextmanager
def weights_on_every_rank() -> Iterator[None]:
    """Load real weights on every rank, also under FSDP's `fsdp_cpu_ram_efficient_loading` (where transformers
    would leave ranks > 0 on the meta device): hfft sizes and initialises the task head, freezes layers and
    adds LoRA adapters after loading, which needs real tensors. FSDP then shards the (equal) weights as usual."""
    if os.environ.get(RAM_EFFICIENT_LOADING, "").lower() not in ("true", "1"):
        yield
        return
    if os.environ.get("RANK", "0") == "0":
        logger.warning(
            "fsdp_cpu_ram_efficient_loading: every rank loads the weights (hfft edits the model after loading)"
        )
    os.environ[RAM_EFFICIENT_LOADING] = "false"
    try:
        yield
    finally:
        os.environ[RAM_EFFICIENT_LOADING] = "true"


def weight_fingerprint(model: Any, chunk: int = 1 << 20) -> float:
    """A cheap checksum of all weights (sum of float64 sums and squares): equal on ranks in sync.

    Converted to float64 a million values at a time: a whole-tensor copy (two, with the squares) of a
    large embedding matrix would raise the run's peak memory (MiniLM: +140 MB, more than training).
    """
    import torch

    total = 0.0
    with torch.no_grad():
        for param in model.parameters():
            for part in param.detach().reshape(-1).split(chunk):
                data = part.to(torch.float64)
                total += float(data.sum()) + float((data * data).sum())
    return total


def gather_fingerprints(model: Any) -> list[float]:
    """Every rank's weight fingerprint (a one-element list in a single process)."""
    import torch.distributed as dist

    mine = weight_fingerprint(model)
    if not (dist.is_available() and dist.is_initialized()):
        return [mine]
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    return everyone


def parallelism(trainer: Any) -> dict[str, Any]:
    """How a run was spread over processes, for run_info.json: accelerate's distributed type, whether the weights
    were sharded (FSDP), world size, and the effective batch (per-device batch x processes x accumulation)."""
    args = trainer.args
    wrapped = getattr(trainer, "model_wrapped", None) or trainer.model
    sharded = "FullyShardedDataParallel" in type(wrapped).__name__ or any(
        type(p).__name__ == "DTensor" for p in trainer.model.parameters()
    )
    return {
        "distributed_type": str(trainer.accelerator.distributed_type).rsplit(".", 1)[-1],
        "fsdp_sharded": sharded,
        "world_size": args.world_size,
        "nodes": int(os.environ.get("GROUP_WORLD_SIZE") or 1),  # torchrun: the number of worker groups (nodes)
        "per_device_train_batch_size": args.per_device_train_batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "effective_batch_size": args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps,
    }


def check_launch(config: Any) -> None:
    """Before any data or weights are loaded: launches hfft cannot honour are errors, not silent fallbacks.

    - FSDP (an accelerate FSDP config, or `training.fsdp`) without a GPU: accelerate runs CPU processes as
      plain DDP (`MULTI_CPU`), whatever the config says, so the run would not be sharded.
    - DeepSpeed (an accelerate DeepSpeed config, or `training.deepspeed`) without the `deepspeed` package.
    """
    import importlib.util

    from hfft.errors import ConfigError
    from hfft.training_args import has_accelerator

    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" or bool(config.training.get("fsdp"))
    if fsdp and not has_accelerator():
        raise ConfigError(
            "FSDP needs GPUs (or XPU/NPU devices): without one, accelerate runs the processes as plain DDP and "
            "nothing would be sharded. On CPUs launch DDP instead: `hfft train RECIPE.yaml --num-processes N` or "
            "`accelerate launch --config_file recipes/accelerate/multi-gpu-ddp.yaml --num_processes N -m hfft "
            "train RECIPE.yaml`."
        )
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true" or bool(
        config.training.get("deepspeed")
    )
    if deepspeed and importlib.util.find_spec("deepspeed") is None:
        raise ConfigError(
            "A DeepSpeed launch (accelerate DeepSpeed config or training.deepspeed) needs the deepspeed package: "
            "pip install deepspeed (it builds its CUDA ops for your GPUs), or use recipes/accelerate/fsdp.yaml."
        )


def init_restarted_process_group() -> None:
    """After an elastic restart, start the default process group on a store prefixed with the attempt number.

    torchrun's agent keeps its TCPStore across restarts, and the restarted workers would read the previous
    attempt's gloo/NCCL addresses from it (torch 2.13: `Gloo connectFullMesh failed ... Connection refused`, also
    with plain torch). accelerate and transformers skip their own `init_process_group` when one exists."""
    import datetime

    import torch
    import torch.distributed as dist

    attempt = elastic_restart()
    if not attempt or dist.is_initialized() or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
        timeout=datetime.timedelta(minutes=30),
    )  # fmt: skip
    backend = "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        backend = "cuda:nccl,cpu:gloo"
    dist.init_process_group(
        backend,
        store=dist.PrefixStore(f"hfft/attempt_{attempt}", store),
        rank=int(os.environ["RANK"]),
        world_size=int(os.environ["WORLD_SIZE"]),
    )


def elastic_restart() -> int:
    """How many times torchrun's elastic agent has restarted this worker group (TORCHELASTIC_RESTART_COUNT; 0 on
    the first attempt and outside torchrun). A restarted group resumes from its last complete checkpoint."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)
