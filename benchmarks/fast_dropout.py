"""Experiment (not an hfft default): dropout with a fast CPU random source, swapped in for `torch.nn.Dropout`.

torch's CPU Bernoulli draws every element from one Mersenne-Twister stream (~5 ns per element): on 2
cores that is 36% of MiniLM's bf16 forward pass (benchmarks/README.md). Here the keep-mask comes from
numpy's SFC64 generator, 16 random bits per element, ~3.4x faster. Its seed is drawn from torch's
generator, so `seed`, `set_seed` and the RNG states Trainer checkpoints still decide every mask; the
drop probability is rounded to a multiple of 1/65536. Not adopted: it changes the random stream of every
run, and the statistical check it would need (same accuracy distribution over many seeds) is not done.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

LEVELS = 65536  # 16 random bits per element


class CPUDropout(torch.nn.Dropout):
    """`torch.nn.Dropout` with an SFC64 keep-mask for CPU tensors; anything else goes to torch's own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not 0.0 < self.p < 1.0 or x.device.type != "cpu" or not x.is_floating_point():
            return super().forward(x)
        seed = int(torch.randint(0, 2**62, (1,)))
        count = x.numel()
        raw = np.random.Generator(np.random.SFC64(seed)).bit_generator.random_raw((count + 3) // 4)
        bits = torch.from_numpy(raw.view(np.int16)[:count]).view(x.shape)
        keep = bits >= round(self.p * LEVELS) - LEVELS // 2  # P(keep) = 1 - p
        return torch.where(keep, x * (1.0 / (1.0 - self.p)), 0.0)


def use_cpu_dropout(model: Any) -> int:
    """Swap every plain `nn.Dropout` in ``model`` for `CPUDropout` (same p; no weights); how many."""
    swapped = 0
    for module in model.modules():
        if type(module) is torch.nn.Dropout:
            module.__class__ = CPUDropout
            swapped += 1
    return swapped
