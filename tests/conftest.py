"""Shared fixtures: tiny random checkpoints written with save_pretrained, and small datasets."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):  # `pytest -n N`: one thread per worker, not N x (threads per core)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

WORDS = {
    "sport": ["ball", "goal", "team", "match", "score", "coach", "race", "win"],
    "food": ["bread", "soup", "cake", "apple", "salt", "cook", "bake", "taste"],
    "tech": ["code", "chip", "data", "disk", "robot", "screen", "byte", "app"],
}
FILLER = ["the", "a", "is", "very", "today", "and", "my", "of"]


def make_sentences(n_per_class: int, seed: int = 0) -> list[tuple[str, str]]:
    """Class-keyword sentences: learnable by a tiny model in a few steps."""
    rng = random.Random(seed)
    rows = []
    for label, words in WORDS.items():
        for _ in range(n_per_class):
            tokens = rng.sample(words, 3) + rng.sample(FILLER, 3)
            rng.shuffle(tokens)
            rows.append((" ".join(tokens), label))
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-hidden random BERT with a word-level vocabulary, saved as safetensors."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(
        {w for ws in WORDS.values() for w in ws} | set(FILLER)
    )
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, model_max_length=64)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    import torch

    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def text_csvs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """train.csv (with an empty and a duplicate row) and test.csv."""
    root = tmp_path_factory.mktemp("text-data")
    train = make_sentences(40, seed=1)
    train += [("   ", "food"), (train[0][0], train[0][1])]
    return {
        "train": write_csv(root / "train.csv", train),
        "test": write_csv(root / "test.csv", make_sentences(10, seed=2)),
    }


def text_config(model: Path, data: dict[str, Path], out: Path, **extra) -> dict:
    """A small, fast text recipe as a dict."""
    config = {
        "task": "text-classification",
        "model": str(model),
        "data": {"train": str(data["train"]), "test": str(data["test"])},
        "preprocessing": {"max_length": 32},
        "training": {
            "output_dir": str(out),
            "num_train_epochs": 4,
            "per_device_train_batch_size": 16,
            "learning_rate": 5e-3,
            "logging_steps": 2,
            "use_cpu": True,
            "save_strategy": "no",
            "eval_strategy": "epoch",
        },
    }
    return with_sections(config, extra)


def with_sections(config: dict, extra: dict) -> dict:
    """``config`` with ``extra`` applied: a dict value updates that section, anything else replaces the key."""
    for key, value in extra.items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return config


def kill_at_first_checkpoint(command: list, out: Path, env: dict) -> threading.Thread:
    """Start ``command`` (an `hfft train` writing to ``out``) and SIGKILL it as soon as its first checkpoint
    exists; the killing happens in the returned (started) thread, so the caller can run the uninterrupted
    reference meanwhile and then ``join()`` it."""
    from hfft.resume import last_checkpoint

    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill() -> None:
        deadline = time.time() + 300
        while proc.poll() is None and time.time() < deadline and last_checkpoint(out) is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    return killer


def resume_killed(killer: threading.Thread, command: list, out: Path, env: dict) -> dict:
    """After ``kill_at_first_checkpoint``: check the run was killed mid-way, resume it (``command`` + --resume)
    and return its final metrics."""
    import json

    from hfft.resume import last_checkpoint

    killer.join()
    assert not (out / "all_results.json").exists(), "the run finished before it could be killed"
    assert last_checkpoint(out) is not None
    resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    return json.loads((out / "all_results.json").read_text())
