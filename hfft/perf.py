"""Speed defaults: OpenMP waiting, CPU threads, native bf16, and length-grouped batches without a scan.

Measured on 2 CPU cores (benchmarks/README.md): passive OpenMP waiting keeps 2 threads at 1-thread speed
when another process uses a core (spinning threads run ~5x slower there); bf16 autocast on a CPU with
AVX512-BF16 or AMX runs MiniLM's training step ~3-4x faster than float32; grouping texts of similar
length cuts the padded tokens of short texts ~2x.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any


def configure_openmp() -> None:
    """Idle OpenMP threads sleep instead of spinning. Read once when torch loads, so a no-op after that;
    an explicit OMP_WAIT_POLICY wins."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def usable_cores() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota (containers)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def set_cpu_threads() -> None:
    """No more torch threads than usable cores (torch counts the host's cores, not the container's quota);
    OMP_NUM_THREADS, when set, wins."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ and torch.get_num_threads() > usable_cores():
        torch.set_num_threads(usable_cores())


def native_cpu_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AVX512-BF16 or AMX): bf16 autocast then beats float32."""
    import torch

    try:
        capability = torch._C._cpu._get_cpu_capability()
    except (AttributeError, RuntimeError):
        return False
    return bool(capability.get("avx512_bf16") or capability.get("amx_bf16"))


def precomputed_lengths(dataset: Any, column: str) -> list[int] | None:
    """The length column of a `datasets.Dataset`, also when wrapped (e.g. by seeded augmentation)."""
    inner = getattr(dataset, "dataset", dataset)
    if len(inner) != len(dataset) or column not in (getattr(inner, "column_names", None) or ()):
        return None
    return list(inner[column])


def __getattr__(name: str) -> Any:
    if name == "Trainer":  # built on first use: importing transformers costs seconds
        globals()["Trainer"] = trainer = _trainer_class()
        return trainer
    raise AttributeError(f"module 'hfft.perf' has no attribute '{name}'")


def _trainer_class() -> type:
    import torch
    import transformers
    from accelerate.utils import extract_model_from_parallel
    from transformers.trainer_pt_utils import LengthGroupedSampler

    class SeededLengthGroupedSampler(LengthGroupedSampler):
        """Shuffled from (seed + epoch) like accelerate's default seedable sampler: the same order after a
        resume, on every rank, and exactly the default order when all lengths are equal."""

        def __init__(self, batch_size: int, lengths: list[int], seed: int) -> None:
            super().__init__(batch_size, lengths=lengths)
            self.seed, self.epoch = seed, 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __iter__(self) -> Any:
            self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
            return super().__iter__()

    class Trainer(transformers.Trainer):
        """`transformers.Trainer` that (1) groups by the precomputed length column also through a dataset
        wrapper, instead of scanning (and transforming) every row at start-up, and (2) leaves the model
        without accelerate's mixed-precision forward wrapper after training, so the trained model in memory
        computes what the saved one computes when reloaded."""

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            dataset = self.train_dataset if train_dataset is None else train_dataset
            if self.args.train_sampling_strategy == "group_by_length" and dataset is not None:
                lengths = precomputed_lengths(dataset, self.args.length_column_name)
                if lengths is not None:
                    batch = self.args.train_batch_size * self.args.gradient_accumulation_steps
                    seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
                    return SeededLengthGroupedSampler(batch, lengths, seed)
            return super()._get_train_sampler(train_dataset)

        def train(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().train(*args, **kwargs)
            finally:
                extract_model_from_parallel(self.model, keep_fp32_wrapper=False)

    return Trainer
