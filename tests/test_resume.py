"""Kill -9 a real `hfft train` mid-epoch, resume it, and get the uninterrupted run's metrics."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import text_config, write_csv

from hfft import TextClassification
from hfft.resume import checkpoint_problem, last_checkpoint

HFFT = shutil.which("hfft") or str(Path(sys.executable).parent / "hfft")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
COMPARED = ("eval_loss", "eval_accuracy", "test_loss", "test_accuracy", "train_eval_loss", "train_eval_accuracy")
# Multi-label with class weights and the seeded balanced sampler: the sampler's draws must resume too.
MULTI_LABEL = {
    "labels": {"problem": "multi_label", "delimiter": ";"},
    "regularization": {"class_weights": "balanced", "balanced_sampler": True},
}
COMPARED_MULTI_LABEL = ("eval_loss", "eval_map", "eval_f1_micro", "test_loss", "test_map", "train_eval_loss")
STEPS_PER_EPOCH = 14  # 108 training rows / batch 8
SAVE_STEPS = 4  # checkpoints land mid-epoch


def step(path: Path) -> int:
    return int(path.name.split("-")[1])


def resume_config(tiny_bert: Path, text_csvs: dict, out: Path, method: str, extra: dict | None = None) -> dict:
    """Dropout, LoRA dropout and token masking on: every RNG the run uses must be restored on resume."""
    extra = extra or {}
    return text_config(
        tiny_bert,
        text_csvs,
        out,
        tuning={"method": method},
        labels=extra.get("labels", {}),
        regularization={"dropout": 0.05, **extra.get("regularization", {})},
        augmentation={"token_mask_prob": 0.1},
        training={
            "num_train_epochs": 3,
            "per_device_train_batch_size": 8,
            "learning_rate": 5e-3 if method == "full" else 3e-2,
            "save_strategy": "steps",
            "save_steps": SAVE_STEPS,
            "save_total_limit": 2,
            "logging_steps": SAVE_STEPS,
        },
    )


def kill_in_second_epoch(proc: subprocess.Popen, out: Path) -> None:
    """SIGKILL as soon as the directory of the second checkpoint of epoch 2 appears (steps 14-27), usually
    while its files are being written; the last complete checkpoint is then mid-epoch 2."""
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if any(step(p) >= STEPS_PER_EPOCH + 2 * SAVE_STEPS for p in out.glob("checkpoint-*")):
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def tagged_csvs(root: Path) -> dict[str, Path]:
    """120 training rows (108 after the validation split: the same steps per epoch) with label sets."""
    from test_multilabel import tagged_sentences

    rows = list(dict(tagged_sentences(200, 7)).items())[:120]
    return {"train": write_csv(root / "train.csv", rows), "test": write_csv(root / "test.csv", tagged_sentences(30, 8))}


@pytest.mark.parametrize("method, multi_label", [("lora", False), ("full", False), ("full", True)])
def test_killed_run_resumes_to_the_uninterrupted_metrics(tiny_bert, text_csvs, tmp_path, method, multi_label):
    out = tmp_path / "killed"
    recipe = tmp_path / "recipe.yaml"
    data, extra = (tagged_csvs(tmp_path), MULTI_LABEL) if multi_label else (text_csvs, None)
    compared = COMPARED_MULTI_LABEL if multi_label else COMPARED
    recipe.write_text(yaml.safe_dump(resume_config(tiny_bert, data, out, method, extra)))
    proc = subprocess.Popen([HFFT, "train", recipe], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killer = threading.Thread(target=kill_in_second_epoch, args=(proc, out), daemon=True)
    killer.start()
    # Meanwhile, the uninterrupted reference run, in this process.
    reference = TextClassification(resume_config(tiny_bert, data, tmp_path / "reference", method, extra)).train()
    killer.join()
    # it learned (chance: ln 3 = 1.099; multi-label, BCE of prevalence-level scores ~0.64): equal metrics mean something
    assert reference["eval_loss"] < (0.55 if multi_label else 1.0), reference
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "all_results.json").exists(), "the run finished before it could be killed"
    complete = last_checkpoint(out)
    assert complete is not None, "killed before the first checkpoint was complete"
    total_steps = json.loads((Path(complete) / "trainer_state.json").read_text())["max_steps"]
    assert STEPS_PER_EPOCH < step(Path(complete)) < 2 * STEPS_PER_EPOCH, "the kill should land mid-epoch 2"
    assert total_steps == 3 * STEPS_PER_EPOCH
    # Newer checkpoints left by a save that was cut short must be skipped, not resumed: one killed before
    # Trainer wrote trainer_state.json (its last file), one whose weights were truncated by a crash.
    unsaved, torn = out / "checkpoint-998", out / "checkpoint-999"
    shutil.copytree(complete, unsaved)
    (unsaved / "trainer_state.json").unlink()
    shutil.copytree(complete, torn)
    weights = next(torn.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    assert "no trainer_state.json" in checkpoint_problem(unsaved) and "does not load" in checkpoint_problem(torn)

    resumed = subprocess.run([HFFT, "train", recipe, "--resume"], env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stderr + resumed.stdout
    assert f"skipping incomplete checkpoint {torn}" in log and f"skipping incomplete checkpoint {unsaved}" in log
    assert f"resuming from {complete} (step {step(Path(complete))} of {total_steps})" in log
    assert not torn.exists() and not unsaved.exists()
    metrics = json.loads((out / "all_results.json").read_text())
    for key in compared:
        assert metrics[key] == pytest.approx(reference[key], rel=1e-4, abs=1e-5), key
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == total_steps
    # Weights only as safetensors; the only pickles are Trainer's own state files, never loaded by hfft
    # (Trainer reads optimizer/scheduler/RNG states back with torch.load(weights_only=True)).
    pickles = {p.name for p in out.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl")}
    assert pickles <= {"training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth"}, pickles
    weights = "adapter_model.safetensors" if method == "lora" else "model.safetensors"
    assert (out / "model.safetensors").is_file() and all((c / weights).is_file() for c in out.glob("checkpoint-*"))
    assert (out / "adapter" / weights).is_file() if method == "lora" else not (out / "adapter").exists()
