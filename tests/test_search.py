"""hfft search (Optuna) and the architecture-aware learning-rate defaults, on the tiny BERT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import text_config

from hfft.errors import ConfigError

SPACE = {
    "trials": 3,
    "startup_trials": 3,  # no pruning among 3 trials: the counts below stay exact
    "space": {
        "training.learning_rate": {"low": 1.0e-3, "high": 1.0e-2, "log": True},
        "regularization.label_smoothing": {"choices": [0.0, 0.1]},
    },
}


def write_search(tmp_path: Path, tiny_bert: Path, text_csvs: dict, epochs: int = 2, **space) -> tuple[Path, Path]:
    config = text_config(tiny_bert, text_csvs, tmp_path / "base", training={"num_train_epochs": epochs})
    config["training"]["save_strategy"] = "epoch"  # checkpoints: an interrupted trial resumes from them
    config["regularization"] = {"label_smoothing": 0.1}
    recipe, space_file = tmp_path / "recipe.yaml", tmp_path / "space.yaml"
    recipe.write_text(yaml.safe_dump(config))
    space_file.write_text(yaml.safe_dump({**SPACE, **space}))
    return recipe, space_file


def test_search_writes_a_best_recipe_that_trains(tiny_bert, text_csvs, tmp_path):
    from hfft.cli import main
    from hfft.search import run_search

    recipe, space = write_search(tmp_path, tiny_bert, text_csvs)
    summary = run_search(str(recipe), str(space), out_dir=tmp_path / "search")
    trials = summary["trials"]
    assert [t["state"] for t in trials] == ["complete"] * 3
    # trial 0 is the recipe's own values (the baseline to beat); the others are sampled inside the space
    assert trials[0]["recipe_values"] and trials[0]["params"] == {
        "training.learning_rate": 5e-3,
        "regularization.label_smoothing": 0.1,
    }
    assert all(1e-3 <= t["params"]["training.learning_rate"] <= 1e-2 for t in trials)
    best = max(trials, key=lambda t: t["eval_accuracy"])
    assert summary["best_value"] == best["eval_accuracy"]
    for t in trials:  # the objective is validation: trials never load the test split
        results = json.loads((Path(t["run_dir"]) / "all_results.json").read_text())
        assert results["eval_accuracy"] == t["eval_accuracy"] and not any(k.startswith("test_") for k in results)
        assert not list(Path(t["run_dir"]).glob("checkpoint-*"))  # only the final model is kept
    best_recipe = yaml.safe_load((tmp_path / "search" / "best.yaml").read_text())
    assert best_recipe["training"]["learning_rate"] == pytest.approx(best["params"]["training.learning_rate"])
    assert best_recipe["regularization"]["label_smoothing"] == best["params"]["regularization.label_smoothing"]
    table = (tmp_path / "search" / "search.md").read_text()
    assert "| trial | state | eval_accuracy |" in table and "Noise: twice the standard error" in table
    report = json.loads((Path(best["run_dir"]) / "data_report.json").read_text())
    p, rows = summary["best_value"], report["validation"]["rows_out"]
    assert summary["noise"] == pytest.approx(2 * (p * (1 - p) / rows) ** 0.5)
    assert main(["train", str(tmp_path / "search" / "best.yaml"), "training.num_train_epochs=1"]) == 0
    results = json.loads((tmp_path / "search" / "best" / "all_results.json").read_text())
    assert "test_accuracy" in results  # the best recipe is a normal run: the test split is back


def test_killed_search_resumes_without_repeating_finished_trials(tiny_bert, text_csvs, tmp_path):
    from hfft.search import run_search

    recipe, space = write_search(tmp_path, tiny_bert, text_csvs, epochs=3)
    out = tmp_path / "search"
    command = [sys.executable, "-m", "hfft", "search", str(recipe), "--space", str(space), "--out", str(out)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONWARNINGS="ignore")
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline and not list((out / "trial-1").glob("checkpoint-*")):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / "trial-0" / "all_results.json").is_file()
    assert not (out / "trial-1" / "all_results.json").exists(), "trial 1 finished before it could be killed"
    finished = (out / "trial-0" / "model.safetensors").stat().st_mtime_ns

    summary = run_search(str(recipe), str(space), out_dir=out)
    states = {t["trial"]: t["state"] for t in summary["trials"]}
    assert states == {0: "complete", 1: "fail", 2: "complete", 3: "complete"}  # 1 killed, retried as 2
    assert (out / "trial-0" / "model.safetensors").stat().st_mtime_ns == finished  # not trained again
    retried = summary["trials"][2]
    assert retried["params"] == summary["trials"][1]["params"] and retried["run_dir"] == str(out / "trial-1")
    state = json.loads((out / "trial-1" / "trainer_state.json").read_text())
    assert state["global_step"] == json.loads((out / "trial-0" / "trainer_state.json").read_text())["global_step"]


@pytest.mark.parametrize(
    "space, message",
    [
        ({"space": {"training.learning_rat": {"low": 1e-4, "high": 1e-3}}}, "learning_rat"),
        ({"space": {"data.train": {"choices": ["a.csv"]}}}, "cannot be searched"),
        ({"space": {"training.learning_rate": {"low": 1e-3, "high": 1e-4}}}, "low < high"),
        ({"space": {"training.learning_rate": {"low": 0.0, "high": 1e-3, "log": True}}}, "low > 0"),
        ({"space": {"tuning.method": {"choices": ["lora", "qlora"]}}}, "qlora"),
        ({"space": {"regularization.dropout": {"min": 0.0, "max": 0.3}}}, "unknown key(s) ['max', 'min']"),
        ({"trails": 3, "space": {"regularization.dropout": {"low": 0.0, "high": 0.3}}}, "unknown key(s) ['trails']"),
        ({"space": {}}, "non-empty 'space:'"),
    ],
)
def test_bad_search_spaces_fail_before_training(tiny_bert, text_csvs, tmp_path, space, message):
    from hfft.search import run_search

    recipe, space_file = write_search(tmp_path, tiny_bert, text_csvs)
    space_file.write_text(yaml.safe_dump(space))
    with pytest.raises(ConfigError, match="space") as err:
        run_search(str(recipe), str(space_file), out_dir=tmp_path / "search")
    assert message in str(err.value)
    assert not (tmp_path / "search" / "search.db").exists()


def test_learning_rate_defaults_follow_architecture_and_method(tiny_bert, text_csvs, tmp_path):
    from transformers import BertConfig, EfficientNetConfig, WhisperConfig

    from hfft.defaults import default_learning_rate
    from hfft.recipe import Recipe

    assert default_learning_rate(EfficientNetConfig(), "full", "image-classification").value == 1e-3
    assert default_learning_rate(BertConfig(), "full", "text-classification").value == 1e-4
    assert default_learning_rate(BertConfig(), "lora", "text-classification").value == 3e-3
    assert default_learning_rate(BertConfig(), "lora", "token-classification").value == 1e-3
    assert default_learning_rate(WhisperConfig(), "full", "speech-recognition").value == 2e-5
    # a recipe without a learning rate trains at the default and says where it came from
    config = text_config(tiny_bert, text_csvs, tmp_path / "run", tuning={"method": "full"})
    del config["training"]["learning_rate"]
    config["training"]["num_train_epochs"] = 1
    Recipe.from_yaml(_write(tmp_path / "r.yaml", config)).train()
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert info["learning_rate"]["value"] == 1e-4 and "transformer (bert) + full" in info["learning_rate"]["source"]
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert max(e["learning_rate"] for e in state["log_history"] if "learning_rate" in e) <= 1e-4


def _write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path
