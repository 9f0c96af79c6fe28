"""The `hfft` console script, run as a user would (subprocesses, offline)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import text_config

REPO = Path(__file__).resolve().parents[1]
HFFT = shutil.which("hfft") or str(Path(sys.executable).parent / "hfft")


def run(*args: str, cwd: Path = REPO, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([HFFT, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(
            f"hfft {' '.join(map(str, args))} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


@pytest.fixture(scope="module")
def trained_run(tiny_bert, text_csvs, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    config = text_config(
        tiny_bert,
        text_csvs,
        root / "run",
        tuning={"method": "lora"},
        training={"learning_rate": 0.02, "num_train_epochs": 10},
    )
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(config))
    result = run("train", path, "training.logging_steps=5")
    return root, result


def test_train_prints_metrics_and_writes_results(trained_run):
    root, result = trained_run
    assert "eval_accuracy" in result.stdout and f"saved to {root / 'run'}" in result.stdout
    assert "train: 122 rows in" in result.stdout  # the data report is printed
    assert json.loads((root / "run" / "all_results.json").read_text())["eval_accuracy"] > 0.5
    assert yaml.safe_load((root / "run" / "hfft_config.yaml").read_text())["training"]["logging_steps"] == 5


def test_predict_writes_jsonl(trained_run, tmp_path):
    root, _ = trained_run
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("goal ball team\nbread soup cake\n")
    run("predict", root / "run", inputs, "-o", tmp_path / "out.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["input"] for r in rows] == ["goal ball team", "bread soup cake"]
    assert all(set(r) == {"input", "label", "score", "scores"} for r in rows)
    assert all(r["label"] in ("food", "sport", "tech") for r in rows)


def test_refuses_to_overwrite_finished_run(trained_run):
    root, _ = trained_run
    result = run("train", root / "recipe.yaml", check=False)
    assert result.returncode == 2
    assert "already holds a finished run" in result.stderr and "Traceback" not in result.stderr


def test_misspelled_key_fails_fast_without_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("task: text-classification\nmodel: nowhere\ndata: {train: t.csv}\ntrainig: {num_train_epochs: 1}\n")
    started = time.time()
    result = run("train", path, check=False)
    assert result.returncode == 2
    assert "Unknown config key 'trainig'" in result.stderr and "Did you mean 'training'?" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.time() - started < 30  # no model or data was loaded
    debug = run("--debug", "train", path, check=False)
    assert "Traceback" in debug.stderr


def test_ls_cp_and_config(tmp_path):
    listing = run("ls").stdout
    assert "text/fortunes-minilm" in listing
    run("cp", "text/fortunes-minilm", tmp_path)
    assert (tmp_path / "fortunes-minilm.yaml").read_text() == (REPO / "recipes/text/fortunes-minilm.yaml").read_text()
    again = run("cp", "text/fortunes-minilm", tmp_path, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr
    keys = run("config", "text-classification").stdout
    assert "regularization.label_smoothing = 0.0" in keys and "augmentation.token_mask_prob" in keys


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "hfft", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "train" in result.stdout


def test_shipped_recipes_are_valid_configs():
    from hfft.config import load_config

    recipes = sorted((REPO / "recipes").rglob("*.yaml"))
    assert recipes
    for path in recipes:
        if "accelerate" in path.parts:
            continue
        if "search" in path.parts:  # search spaces: checked against every recipe they are written for
            from hfft.search import load_space

            assert load_space(path).params
            continue
        load_config(path)
