"""Helpers for runs under several processes (torchrun / accelerate launch)."""

from __future__ import annotations

from typing import Any


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
