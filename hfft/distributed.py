"""Helpers for runs under several processes (torchrun / accelerate launch)."""

from __future__ import annotations

from typing import Any


def weight_fingerprint(model: Any) -> float:
    """A cheap checksum of all weights (sum of float64 sums and squares): equal on ranks in sync."""
    import torch

    total = 0.0
    with torch.no_grad():
        for param in model.parameters():
            data = param.detach().to(torch.float64)
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
