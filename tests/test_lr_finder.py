"""`training.learning_rate: auto`: the range test picks a finite learning rate in its bounds, restores the model
exactly, is saved with the run, and is the same on every rank."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from conftest import text_config

from hfft.errors import ConfigError
from hfft.lr_finder import choose, steepest
from hfft.registry import recipe_class


def test_selection_rule_on_a_synthetic_curve():
    import numpy as np

    lrs = list(np.logspace(-6, 0, 61))
    # flat, then steepest around 1e-3, minimum near 1e-2, then diverging
    smoothed = [2.0 - 1.5 / (1 + np.exp(-(np.log10(lr) + 3) * 4)) + max(0.0, np.log10(lr) + 2) ** 2 for lr in lrs]
    minimum = lrs[int(np.argmin(smoothed))]
    assert choose(lrs, smoothed, 1e-7) == pytest.approx(minimum / 10)
    assert 5e-4 <= steepest(lrs, smoothed) <= 2e-3  # the sigmoid's steepest point, recorded beside the choice
    assert choose(lrs[:2], smoothed[:2], 1e-7) == 1e-7  # too few points: the fallback


def test_range_test_restores_the_model_and_picks_a_finite_rate(tiny_bert, text_csvs, tmp_path):
    import torch

    from hfft.lr_finder import range_test

    config = text_config(tiny_bert, text_csvs, tmp_path / "run", tuning={"method": "full"})
    recipe = recipe_class("text-classification")(config)
    args = recipe.training_arguments()
    splits = recipe.load_splits()
    recipe.processor = recipe.load_processor(str(tiny_bert))
    encoded = {name: recipe.encode(ds, name) for name, ds in splits.items()}
    recipe.model = recipe.build_model(str(tiny_bert))
    trainer = recipe.build_trainer(args, encoded)
    before = {k: v.clone() for k, v in recipe.model.state_dict().items()}
    rng = torch.get_rng_state()
    result = range_test(trainer, min_lr=1e-6, max_lr=1.0, steps=30)
    assert 1e-6 <= result.learning_rate <= 1.0 and result.steps >= 3
    assert all(torch.equal(before[k], v) for k, v in recipe.model.state_dict().items())
    assert all(p.grad is None for p in recipe.model.parameters())
    assert torch.equal(rng, torch.get_rng_state())


def test_auto_learning_rate_run_is_saved_and_trains(tiny_bert, text_csvs, tmp_path):
    out = tmp_path / "run"
    config = text_config(tiny_bert, text_csvs, out, tuning={"method": "lora"}, training={"learning_rate": "auto"})
    metrics = recipe_class("text-classification")(config).train()
    found = json.loads((out / "lr_find.json").read_text())
    info = json.loads((out / "run_info.json").read_text())
    assert info["learning_rate_auto"]["learning_rate"] == found["learning_rate"]
    assert (out / "lr_find.png").is_file() and len(found["lrs"]) == found["steps"]
    assert found["steps"] <= 20  # a quarter of this 28-step run, at least 20 batches
    assert 0 < info["learning_rate_auto"]["fraction_of_run"] < 1
    assert info["learning_rate"] == {"value": found["learning_rate"], "source": info["learning_rate"]["source"]}
    assert "range test" in info["learning_rate"]["source"]
    state = json.loads((out / "trainer_state.json").read_text())
    logged = [h["learning_rate"] for h in state["log_history"] if "learning_rate" in h]
    assert max(logged) <= found["learning_rate"] * 1.0001  # the schedule starts from the chosen rate
    assert metrics["eval_loss"] > 0


def test_auto_is_the_only_word_learning_rate_accepts(tiny_bert, text_csvs, tmp_path):
    with pytest.raises(ConfigError, match="learning_rate"):
        recipe_class("text-classification")(
            text_config(tiny_bert, text_csvs, tmp_path, training={"learning_rate": "fast"})
        )


def test_two_processes_use_rank_zeros_rate(tiny_bert, text_csvs, tmp_path):
    out = tmp_path / "two"
    config = text_config(tiny_bert, text_csvs, out, tuning={"method": "full"},
                         training={"learning_rate": "auto", "num_train_epochs": 1, "per_device_train_batch_size": 8})  # fmt: skip
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "hfft", "train", str(path), "--num-processes", "2"], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((out / "run_info.json").read_text())
    assert info["world_size"] == 2
    assert info["rank_weight_fingerprints"][0] == info["rank_weight_fingerprints"][1]  # same lr, same steps
    assert (
        info["learning_rate_auto"]["learning_rate"] == json.loads((out / "lr_find.json").read_text())["learning_rate"]
    )
