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
            if hasattr(param, "full_tensor"):  # FSDP2 shard (DTensor): the full weight, gathered (collective)
                param = param.full_tensor()
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


def fsdp_requested(config: Any) -> bool:
    """An accelerate FSDP config (`accelerate launch --config_file fsdp.yaml`) or `training.fsdp` in the recipe."""
    return os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" or bool(config.training.get("fsdp"))


def fsdp_version(config: Any) -> int:
    """FSDP 1 or 2, as accelerate will read it (`training.fsdp_config.version` wins over the launch config)."""
    fsdp_config = config.training.get("fsdp_config") or {}
    version = fsdp_config.get("version", fsdp_config.get("fsdp_version")) if isinstance(fsdp_config, dict) else None
    return int(version or os.environ.get("FSDP_VERSION") or 1)


def check_launch(config: Any) -> None:
    """Before any data or weights are loaded: launches hfft cannot honour are errors, not silent fallbacks.

    - FSDP 1 on CPU processes: hfft runs FSDP on CPUs (gloo) only as FSDP2 (`fully_shard`, see `fsdp_on_cpu`).
    - DeepSpeed (an accelerate DeepSpeed config, or `training.deepspeed`) without the `deepspeed` package.
    """
    import importlib.util

    from hfft.errors import ConfigError
    from hfft.training_args import has_accelerator

    if fsdp_requested(config) and not has_accelerator() and fsdp_version(config) != 2:
        raise ConfigError(
            "FSDP on CPU processes needs FSDP2: set `fsdp_version: 2` in the accelerate config (as "
            "recipes/accelerate/fsdp.yaml does) or `training.fsdp_config: {version: 2}`. FSDP1 needs GPUs."
        )
    deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true" or bool(
        config.training.get("deepspeed")
    )
    if deepspeed and importlib.util.find_spec("deepspeed") is None:
        raise ConfigError(
            "A DeepSpeed launch (accelerate DeepSpeed config or training.deepspeed) needs the deepspeed package: "
            "pip install deepspeed (it builds its CUDA ops for your GPUs), or use recipes/accelerate/fsdp.yaml."
        )


def check_sharded_resume(checkpoint: str | None, config: Any, world_size: int) -> None:
    """A checkpoint of an FSDP run holds sharded states (`pytorch_model_fsdp_0/`, torch.distributed.checkpoint),
    which Trainer loads only under FSDP; said before data or weights are loaded. Under FSDP the states reshard
    to another number of processes (2 or more)."""
    from pathlib import Path

    from hfft.errors import ConfigError

    if checkpoint is None or not any(Path(checkpoint).glob("pytorch_model_fsdp_*")):
        return
    if not fsdp_requested(config) or world_size < 2:
        raise ConfigError(
            f"Checkpoint '{checkpoint}' holds FSDP-sharded model and optimizer states (pytorch_model_fsdp_0/): "
            "resume it under FSDP with 2 or more processes (e.g. `accelerate launch --config_file "
            "recipes/accelerate/fsdp.yaml --num_processes 2 -m hfft train RECIPE.yaml --resume`). The run's final "
            "model directory is a normal one that loads anywhere."
        )


def fsdp_on_cpu(trainer: Any) -> bool:
    """Turn an FSDP request on CPU processes into FSDP2 sharding; True when it did.

    accelerate (1.15) enables FSDP only for GPU-like devices and silently runs CPU processes (`MULTI_CPU`) as
    plain DDP, although torch's `fully_shard` works on CPU with gloo. Called right after Trainer creates its
    Accelerator: the FSDP plugin (from `training.fsdp*` or the launch config's FSDP_* variables) is attached and
    the distributed type set to FSDP in both of accelerate's shared states (AcceleratorState copies PartialState's
    on every construction), so that `prepare`, checkpoints and `get_state_dict` take their FSDP2 paths."""
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    state = trainer.accelerator.state
    requested = os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" or trainer.args.fsdp_plugin_args
    if not requested or state.distributed_type != DistributedType.MULTI_CPU:
        return False
    plugin = FullyShardedDataParallelPlugin(**(trainer.args.fsdp_plugin_args or {}))
    if state.mixed_precision != "no":
        plugin.set_mixed_precision(state.mixed_precision)
    PartialState().distributed_type = state.distributed_type = DistributedType.FSDP
    state.fsdp_plugin = plugin
    return True


def fit_for_fsdp(trainer: Any) -> None:
    """Mend two gaps in accelerate's (1.15) FSDP2 preparation, on GPUs as on CPUs:

    - transformer-based wrapping without named layer classes wraps the model's `_no_split_modules`, then shards
      the input embeddings on their own and fails on ones already inside a sharded block (BERT's
      `BertEmbeddings`: `TypeError: Invariant encountered` in `fully_shard`): hfft names the layer classes,
      leaving out those that hold the input embeddings;
    - it asks every model for its input embeddings, and models without any (vision CNNs such as ResNet) raise
      `NotImplementedError`: such a model answers None instead."""
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

    model = trainer.model
    embeddings = input_embeddings(model)
    if embeddings is None:
        model.get_input_embeddings = lambda: None
    plugin = trainer.accelerator.state.fsdp_plugin
    if plugin.auto_wrap_policy is not transformer_auto_wrap_policy or plugin.transformer_cls_names_to_wrap:
        return
    holding = {type(m).__name__ for m in model.modules() if embeddings is not None and embeddings in set(m.modules())}
    plugin.transformer_cls_names_to_wrap = sorted(set(getattr(model, "_no_split_modules", None) or ()) - holding)


def input_embeddings(model: Any) -> Any:
    """The model's input embedding module, or None (vision and audio models have none: transformers raises)."""
    try:
        return model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        return None


def meta_copy(model: Any) -> Any:
    """The model's structure with its parameters on the meta device (no memory), buffers copied: filled from the
    gathered full state dict after sharded training (`unsharded_model`), it saves like the unwrapped model."""
    import copy

    import torch

    memo = {id(p): torch.nn.Parameter(p.detach().to("meta"), requires_grad=p.requires_grad) for p in model.parameters()}
    return copy.deepcopy(model, memo)


def unsharded_model(trainer: Any, structure: Any) -> Any:
    """After FSDP training: the full weights gathered to rank 0 (a collective: every rank calls it) and loaded
    into ``structure`` (`meta_copy` of the model before sharding); None on other ranks."""
    state_dict = trainer.accelerator.get_state_dict(trainer.model)  # FSDP2: full, on CPU, on rank 0 only
    if not trainer.is_world_process_zero():
        return None
    _, unexpected = structure.load_state_dict(state_dict, strict=False, assign=True)
    still_meta = [name for name, p in structure.named_parameters() if p.is_meta]
    if unexpected or still_meta:
        raise RuntimeError(f"gathered FSDP state dict does not fit the model: {unexpected or still_meta}")
    if hasattr(structure, "tie_weights"):
        structure.tie_weights()  # tied weights were gathered as two equal tensors
    return structure


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
