"""`training.learning_rate: auto`: a learning-rate range test before training (as fastai's `lr_find` and
Lightning's `Tuner.lr_find`).

The model trains for at most ``steps`` batches with AdamW while the learning rate grows exponentially from
``min_lr`` to ``max_lr``; the loss is smoothed (exponential moving average, bias-corrected) and the test stops
once it exceeds ``divergence`` x its minimum. Selection rule: one tenth of the learning rate at the smoothed
loss's minimum (see `choose`). Weights, buffers, gradients and
random states are restored afterwards, so training starts exactly as it would have without the test. Under
several processes every rank runs the test on its own shard of the data and rank 0's choice is used by all.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("hfft")
RESULT_FILE = "lr_find.json"


@dataclass
class RangeTest:
    """The outcome of one learning-rate range test."""

    learning_rate: float  # the chosen one
    rule: str = "one tenth of the learning rate at the smoothed loss's minimum"
    steepest: float | None = None  # where the smoothed loss falls fastest (recorded, not used)
    steps: int = 0
    seconds: float = 0.0
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    smoothed: list[float] = field(default_factory=list)


def range_test(
    trainer: Any,
    min_lr: float = 1e-7,
    max_lr: float = 1.0,
    steps: int = 60,
    beta: float = 0.9,
    divergence: float = 4.0,
) -> RangeTest:
    """Run the range test on ``trainer``'s model and training data; everything is restored afterwards."""
    import numpy as np
    import torch

    started = time.time()
    model = trainer.model
    saved = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=min_lr, weight_decay=trainer.args.weight_decay)
    autocast = trainer.args.bf16 or trainer.args.fp16
    was_training = model.training
    model.train()
    lrs, losses, smoothed, average, best = [], [], [], 0.0, math.inf
    try:
        batches = iter(trainer.get_train_dataloader())
        for step in range(steps):
            try:
                batch = next(batches)
            except StopIteration:
                batches = iter(trainer.get_train_dataloader())
                batch = next(batches)
            lr = min_lr * (max_lr / min_lr) ** (step / max(steps - 1, 1))
            for group in optimizer.param_groups:
                group["lr"] = lr
            inputs = trainer._prepare_inputs(batch)
            with trainer.accelerator.autocast() if autocast else torch.enable_grad():
                loss = trainer.compute_loss(model, inputs)
            loss.backward()
            if trainer.args.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, trainer.args.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            value = float(loss.detach())
            average = beta * average + (1 - beta) * value
            current = average / (1 - beta ** (step + 1))
            lrs.append(lr)
            losses.append(value)
            smoothed.append(current)
            best = min(best, current)
            if not math.isfinite(current) or current > divergence * best:
                break
    finally:
        model.load_state_dict(saved)
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
    return RangeTest(choose(lrs, smoothed, min_lr), steepest=steepest(lrs, smoothed), steps=len(lrs),
                     seconds=round(time.time() - started, 1), lrs=lrs, losses=losses, smoothed=smoothed)  # fmt: skip


def choose(lrs: list[float], smoothed: list[float], fallback: float) -> float:
    """One tenth of the learning rate at the smoothed loss's minimum (fastai's `lr_min / 10`): the loss still
    falls there, an order of magnitude below where it starts to climb. The steepest-descent point (see
    `steepest`) is often too bold for fine-tuning pretrained weights: MiniLM on fortunes, full fine-tuning,
    test accuracy 0.58 with it (1.4e-3) against 0.83 at 1e-4."""
    import numpy as np

    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    if len(finite) < 3:
        return fallback
    return float(lrs[finite[int(np.argmin([smoothed[i] for i in finite]))]] / 10)


def steepest(lrs: list[float], smoothed: list[float]) -> float | None:
    """The learning rate where the smoothed loss falls fastest against log(lr), before its minimum."""
    import numpy as np

    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    end = int(np.argmin([smoothed[i] for i in finite])) + 1 if finite else 0
    start = min(len(lrs) // 10, max(end - 2, 0))
    if end - start < 2:
        return None
    slopes = np.gradient(np.asarray(smoothed[start:end]), np.log10(lrs[start:end]))
    return float(lrs[start + int(np.argmin(slopes))])


def test_steps(trainer: Any, fraction: float = 0.25, fewest: int = 20, most: int = 60) -> int:
    """Batches the range test may use: ``fraction`` of the run's optimizer steps, within [fewest, most]."""
    args = trainer.args
    if args.max_steps and args.max_steps > 0:
        total = args.max_steps
    else:
        per_epoch = math.ceil(len(trainer.get_train_dataloader()) / args.gradient_accumulation_steps)
        total = math.ceil(per_epoch * args.num_train_epochs)
    return max(fewest, min(most, round(fraction * total)))


def find_learning_rate(trainer: Any, out: Path) -> RangeTest:
    """The range test on rank 0's choice, saved as lr_find.json + lr_find.png in ``out`` (rank 0). It uses a
    quarter of the run's steps, 20 to 60 batches (`test_steps`)."""
    import torch.distributed as dist

    result = range_test(trainer, steps=test_steps(trainer))
    if dist.is_available() and dist.is_initialized():
        chosen = [result.learning_rate]
        dist.broadcast_object_list(chosen, src=0)
        result.learning_rate = chosen[0]
    if trainer.is_world_process_zero():
        out.mkdir(parents=True, exist_ok=True)
        (out / RESULT_FILE).write_text(json.dumps(asdict(result), indent=1), encoding="utf-8")
        plot(result, out / "lr_find.png")
    logger.warning("learning_rate: auto -> %.3g (range test: %d steps, %.0f s; %s)", result.learning_rate,
                   result.steps, result.seconds, result.rule)  # fmt: skip
    return result


def plot(result: RangeTest, path: Path) -> Path:
    from hfft.plots import _pyplot, _save

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(result.lrs, result.losses, alpha=0.3, label="loss")
    ax.plot(result.lrs, result.smoothed, label="smoothed loss")
    ax.axvline(result.learning_rate, color="tab:red", linestyle="--", label=f"chosen {result.learning_rate:.2g}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss", title="Learning-rate range test")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)
