"""Resuming killed runs: complete-checkpoint detection, and augmentation that is the same after a resume.

Trainer writes ``checkpoint-N/`` file by file (weights, optimizer, scheduler, RNG states) and
``trainer_state.json`` last. A process killed mid-write leaves a directory without that file, or
(with a power cut) with truncated files; such checkpoints are skipped and removed before resuming.

Augmentation draws from RNGs seeded per batch from (seed, epoch, dataset row ids) and leaves the
global RNG states untouched, so a resumed run sees exactly the augmented batches of an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import random
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from hfft.errors import ConfigError, TrainingError

logger = logging.getLogger("hfft")
CHECKPOINT = re.compile(r"checkpoint-(\d+)")
TRAINER_STATE = "trainer_state.json"
WEIGHTS = ("model.safetensors", "adapter_model.safetensors", "model.safetensors.index.json")


def checkpoint_problem(path: Path) -> str | None:
    """None when ``path`` is a complete checkpoint, else why it is not (in a few words)."""
    from safetensors import safe_open

    try:
        json.loads((path / TRAINER_STATE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"no {TRAINER_STATE} (written last: the save was interrupted)"
    except (OSError, ValueError):
        return f"{TRAINER_STATE} is truncated or unreadable"
    weights = [path / name for name in WEIGHTS if (path / name).is_file()]
    if not weights:
        if any(path.glob("pytorch_model_fsdp_*")) or any(path.glob("global_step*")):
            return None  # FSDP / DeepSpeed sharded states, written by this run and loaded by accelerate
        return f"no safetensors weights ({' / '.join(WEIGHTS)})"
    files = list(weights)
    if weights[0].name.endswith(".index.json"):
        try:
            shards = json.loads(weights[0].read_text(encoding="utf-8"))["weight_map"].values()
        except (OSError, ValueError, KeyError):
            return f"{weights[0].name} is truncated or unreadable"
        files = [path / name for name in sorted(set(shards))]
    for file in files:
        try:
            with safe_open(str(file), framework="pt"):
                pass
        except Exception as err:  # missing, truncated header, bad JSON header, ...
            return f"{file.name} does not load ({type(err).__name__})"
    empty = [p.name for p in path.iterdir() if p.suffix in (".pt", ".pth") and p.stat().st_size == 0]
    return f"empty {', '.join(empty)}" if empty else None


def checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """Every `checkpoint-N` directory, oldest step first."""
    found = [(int(m.group(1)), p) for p in output_dir.glob("checkpoint-*") if (m := CHECKPOINT.fullmatch(p.name))]
    return sorted(p for p in found if p[1].is_dir())


def last_checkpoint(output_dir: Path, remove_incomplete: bool = False) -> str | None:
    """The newest complete checkpoint; incomplete newer ones are logged (and removed when asked)."""
    for _, path in reversed(checkpoints(output_dir)):
        problem = checkpoint_problem(path)
        if problem is None:
            return str(path)
        logger.warning("skipping incomplete checkpoint %s: %s", path, problem)
        if remove_incomplete:
            shutil.rmtree(path, ignore_errors=True)
    return None


def resume_checkpoint(output_dir: Path, resume: bool | str, main_process: bool = True) -> str | None:
    """The checkpoint to resume from: ``resume`` itself when it is a path, else the newest complete one."""
    if not resume:
        return None
    if isinstance(resume, str):
        problem = checkpoint_problem(Path(resume)) if Path(resume).is_dir() else "no such directory"
        if problem:
            raise ConfigError(f"Cannot resume from '{resume}': {problem}.")
        return resume
    found = last_checkpoint(output_dir, remove_incomplete=main_process)
    if found is None:
        logger.warning("--resume: no complete checkpoint in '%s'; training from the start.", output_dir)
    else:
        state = json.loads((Path(found) / TRAINER_STATE).read_text(encoding="utf-8"))
        logger.info("resuming from %s (step %s of %s)", found, state.get("global_step"), state.get("max_steps"))
    return found


def train_unless_finished(
    config_path: str | Path, overrides: list[str], run_dir: Path, prepare: Callable[[Any], None] | None = None
) -> bool:
    """Train the recipe (``overrides`` applied) into ``run_dir`` unless a finished run is already there; an
    interrupted one resumes from its last checkpoint. ``prepare(recipe)`` adjusts the recipe before it trains
    (`hfft compare`, `hfft search` and `hfft audit` run their runs through here). True when it trained."""
    from hfft.outputs import is_finished_run
    from hfft.recipe import Recipe

    if is_finished_run(run_dir):
        return False
    recipe = Recipe.from_yaml(config_path, [*overrides, f"training.output_dir={run_dir}"])
    if prepare is not None:
        prepare(recipe)
    recipe.train(resume=any(run_dir.glob("checkpoint-*")))
    return True


def run_training(trainer: Any, checkpoint: str | None) -> Any:
    """``trainer.train``, with running out of memory or disk turned into a message that says what to change."""
    import errno

    import torch

    args = trainer.args
    try:
        return trainer.train(resume_from_checkpoint=checkpoint)
    except torch.OutOfMemoryError as err:
        raise TrainingError(
            f"Out of accelerator memory at batch size {args.per_device_train_batch_size} per device. Lower "
            "training.per_device_train_batch_size (and raise training.gradient_accumulation_steps to keep the "
            "effective batch), shorten the inputs (preprocessing), or set training.gradient_checkpointing: true; "
            "then continue with `hfft train CONFIG --resume`."
        ) from err
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        raise TrainingError(
            f"Disk full while writing to '{args.output_dir}' ({err.filename or err}). Free space, or keep fewer "
            "checkpoints with training.save_total_limit, then continue with `hfft train CONFIG --resume`."
        ) from err


# ----------------------------------------------------------------------------- resume-safe augmentation


@contextmanager
def seeded_rngs(entropy: list[int]) -> Iterator[None]:
    """Seed numpy's, Python's and torch's (CPU) global RNGs from ``entropy``; restore them afterwards."""
    import torch

    saved = np.random.get_state(), random.getstate(), torch.get_rng_state()
    words = np.random.SeedSequence(entropy).generate_state(3)
    np.random.seed(int(words[0]))
    random.seed(int(words[1]))
    torch.default_generator.manual_seed(int(words[2]))
    try:
        yield
    finally:
        np.random.set_state(saved[0])
        random.setstate(saved[1])
        torch.set_rng_state(saved[2])


ROW_KEY = "__hfft_row"  # (epoch, row id) on each augmented row, read and removed by SeededCollator


class SeededAugmentation:
    """A map-style training set: ``transform`` applied to each fetched batch of rows under RNGs seeded by
    (seed, epoch, row ids), so the same rows in the same epoch are always augmented the same way."""

    def __init__(self, dataset: Any, transform: Callable[[dict[str, list]], dict[str, Any]], seed: int) -> None:
        self.dataset, self.transform, self.seed, self.epoch = dataset, transform, seed, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> list[dict[str, Any]]:
        rows, epoch = [int(i) for i in indices], self.epoch
        with seeded_rngs([self.seed, epoch, *rows]):
            batch = self.transform(self.dataset[rows])
        return [
            {**{key: values[i] for key, values in batch.items()}, ROW_KEY: (epoch, row)} for i, row in enumerate(rows)
        ]


class SeededCollator:
    """Runs the data collator (which may mix rows: mixup, cutmix) under RNGs seeded by the rows it batches."""

    def __init__(self, collator: Callable[[list[dict[str, Any]]], Any], seed: int) -> None:
        self.collator, self.seed = collator, seed

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        keys = [row.pop(ROW_KEY, None) for row in features]
        if any(key is None for key in keys):  # evaluation rows
            return self.collator(features)
        with seeded_rngs([self.seed, keys[0][0], *(row for _, row in keys), 1]):
            return self.collator(features)


def seeded_augmentation(
    dataset: Any, transform: Callable, collator: Callable | None, seed: int
) -> tuple[SeededAugmentation, SeededCollator, Any]:
    """The augmented training set, its collator, and the Trainer callback that tells them the epoch."""
    from transformers import default_data_collator

    augmented = SeededAugmentation(dataset, transform, seed)
    epoch = epoch_callback(lambda number: setattr(augmented, "epoch", number))
    return augmented, SeededCollator(collator or default_data_collator, seed), epoch


def epoch_callback(set_epoch: Callable[[int], None]) -> Any:
    """A TrainerCallback that calls ``set_epoch(epoch)`` at every epoch start, also for the epoch a resumed run
    starts inside."""
    from transformers import TrainerCallback

    class EpochCallback(TrainerCallback):
        def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            set_epoch(int(state.epoch or 0))  # resumed mid-epoch: state.epoch is e.g. 1.375

    return EpochCallback()
