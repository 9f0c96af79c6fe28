"""Real multi-process runs on the CPU (gloo): torchrun via `hfft --num-processes`, and accelerate launch."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import make_sentences, text_config, write_csv
from safetensors import safe_open

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp-data")
    return {
        "train": write_csv(root / "train.csv", make_sentences(60, seed=11)),
        "test": write_csv(root / "test.csv", make_sentences(20, seed=12)),
    }


def write_recipe(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def results(run: Path) -> tuple[dict, dict]:
    return json.loads((run / "all_results.json").read_text()), json.loads((run / "run_info.json").read_text())


def test_two_processes_match_one_process(tiny_bert, data, tmp_path):
    common = {"tuning": {"method": "full"}, "training": {"num_train_epochs": 3, "learning_rate": 5e-3}}
    one = text_config(tiny_bert, data, tmp_path / "one", **common)
    one["training"]["per_device_train_batch_size"] = 16
    two = text_config(tiny_bert, data, tmp_path / "two", **common)
    two["training"]["per_device_train_batch_size"] = 8  # same global batch: 2 x 8
    subprocess.run(
        [BIN / "hfft", "train", write_recipe(tmp_path / "one.yaml", one)],
        env=ENV,
        check=True,
        capture_output=True,
        timeout=600,
    )
    launched = subprocess.run(
        [BIN / "hfft", "train", write_recipe(tmp_path / "two.yaml", two), "--num-processes", "2"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert "torch.distributed.run" in launched.stdout
    metrics_one, info_one = results(tmp_path / "one")
    metrics_two, info_two = results(tmp_path / "two")
    assert info_one["world_size"] == 1 and info_two["world_size"] == 2
    fingerprints = info_two["rank_weight_fingerprints"]
    assert len(fingerprints) == 2 and fingerprints[0] == fingerprints[1]  # every rank ends with the same weights
    report = json.loads((tmp_path / "two" / "data_report.json").read_text())
    assert metrics_two["eval_samples"] == report["validation"]["rows_out"] == metrics_one["eval_samples"]
    assert metrics_two["test_samples"] == 60  # the whole test set, no padding duplicates
    assert abs(metrics_two["eval_accuracy"] - metrics_one["eval_accuracy"]) <= 0.01
    assert abs(metrics_two["test_accuracy"] - metrics_one["test_accuracy"]) <= 0.01
    # Loss is logged as in one process (transformers' token averaging would double it under DDP).
    first_loss = [
        h["loss"]
        for h in json.loads((tmp_path / "two" / "trainer_state.json").read_text())["log_history"]
        if "loss" in h
    ][0]
    assert first_loss < 2.0


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants (torchrun starts workers in their own sessions)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, found = [pid], []
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    for victim in found:
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass


def adapter_keys(path: Path) -> set[str]:
    with safe_open(str(path), framework="pt") as f:
        return set(f.keys())


def test_lora_killed_and_resumed_under_accelerate_launch(tiny_bert, data, tmp_path):
    config = text_config(
        tiny_bert,
        data,
        tmp_path / "run",
        tuning={"method": "lora"},
        training={
            "max_steps": 240,
            "save_strategy": "steps",
            "save_steps": 10,
            "eval_strategy": "no",
            "per_device_train_batch_size": 4,
            "learning_rate": 0.05,
            "logging_steps": 10,
        },
    )
    recipe = write_recipe(tmp_path / "lora.yaml", config)
    launch = [
        BIN / "accelerate",
        "launch",
        "--config_file",
        REPO / "recipes/accelerate/multi-gpu-ddp.yaml",
        "--num_processes",
        "2",
        "--mixed_precision",
        "no",
        "-m",
        "hfft",
        "train",
        recipe,
    ]
    proc = subprocess.Popen(launch, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = tmp_path / "run" / "checkpoint-10" / "trainer_state.json"
    deadline = time.time() + 300
    while not first.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    kill_tree(proc.pid)
    proc.wait()
    assert first.exists(), "no checkpoint was written before the kill"
    assert not (tmp_path / "run" / "all_results.json").exists(), "the run finished before it could be killed"
    killed_at = max(
        int(p.name.split("-")[1])
        for p in (tmp_path / "run").glob("checkpoint-*")
        if (p / "trainer_state.json").exists()
    )

    resumed = subprocess.run([*launch, "--resume"], env=ENV, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    # transformers 5.24 takes one extra optimizer step after a DDP resume with an uneven last batch
    # (uninterrupted: 240). Reported on the issue; the bound keeps the test honest about it.
    assert 240 <= state["global_step"] <= 241
    logged_steps = [h["step"] for h in state["log_history"] if "loss" in h]
    assert logged_steps[0] == 10 and logged_steps == sorted(set(logged_steps))  # one history, continued
    resumed_from = re.search(r"resuming from \S*checkpoint-(\d+)", resumed.stderr)
    assert resumed_from, resumed.stderr[-3000:]
    assert int(resumed_from.group(1)) == killed_at
    _, info = results(tmp_path / "run")
    assert info["world_size"] == 2 and len(set(info["rank_weight_fingerprints"])) == 1
    keys = adapter_keys(tmp_path / "run" / "adapter" / "adapter_model.safetensors")
    lora = [k for k in keys if "lora_A" in k or "lora_B" in k]
    assert len(lora) == 2 * 3 * 2  # 2 layers x (query, key, value) x (A, B)
    assert any("classifier" in k and k.endswith("weight") for k in keys)  # the trained head is saved


def test_launch_configs_parse_and_build_plugins():
    from accelerate import FullyShardedDataParallelPlugin
    from accelerate.commands.config.config_args import load_config_from_file

    configs = sorted((REPO / "recipes" / "accelerate").glob("*.yaml"))
    assert {c.stem for c in configs} >= {
        "single-device",
        "multi-gpu-ddp",
        "fsdp",
        "deepspeed-zero2",
        "deepspeed-zero3",
        "multi-node",
    }
    for path in configs:
        text = path.read_text()
        assert "accelerate launch --config_file recipes/accelerate/" in text, f"{path.name}: no launch command"
        config = load_config_from_file(str(path))
        assert config.num_processes >= 1 and config.machine_rank < config.num_machines
        if config.fsdp_config:
            options = {k.removeprefix("fsdp_"): v for k, v in config.fsdp_config.items()}
            plugin = FullyShardedDataParallelPlugin(**options)
            assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
        if config.deepspeed_config:
            assert config.deepspeed_config["zero_stage"] in (2, 3)
            pytest.importorskip("deepspeed", reason="DeepSpeedPlugin needs the deepspeed package (and a GPU)")
            from accelerate import DeepSpeedPlugin

            DeepSpeedPlugin(**{k: v for k, v in config.deepspeed_config.items() if k != "deepspeed_multinode_launcher"})


# ----------------------------------------------------------------------------- elastic restart, nodes, FSDP


def elastic_config(tiny_bert: Path, data: dict, out: Path) -> dict:
    return text_config(
        tiny_bert,
        data,
        out,
        tuning={"method": "full"},
        training={
            "max_steps": 80,
            "save_strategy": "steps",
            "save_steps": 10,
            "eval_strategy": "no",
            "per_device_train_batch_size": 4,
            "learning_rate": 5e-3,
            "logging_steps": 10,
            "bf16": False,  # float32: FSDP's bf16 policy (bf16 weights in compute) differs from DDP's autocast
        },
    )


def logged_losses(run: Path) -> list[float]:
    return [h["loss"] for h in json.loads((run / "trainer_state.json").read_text())["log_history"] if "loss" in h]


@pytest.fixture(scope="module")
def two_process_run(tiny_bert, data, tmp_path_factory):
    """The reference: an uninterrupted `hfft train --num-processes 2` run (torchrun, standalone)."""
    root = tmp_path_factory.mktemp("reference")
    recipe = write_recipe(root / "recipe.yaml", elastic_config(tiny_bert, data, root / "run"))
    done = subprocess.run([BIN / "hfft", "train", recipe, "--num-processes", "2"], env=ENV, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "run"


def test_elastic_restart_after_a_worker_is_killed_resumes_by_itself(tiny_bert, data, tmp_path, two_process_run):
    """SIGKILL one of two workers mid-run: torchrun's agent restarts the group (--max-restarts 1), which resumes from
    the last complete checkpoint without --resume and ends exactly where the uninterrupted run ends (also when the
    checkpoint lies inside a later epoch: the resumed epoch's batches are that epoch's)."""
    import psutil

    run = tmp_path / "run"
    recipe = write_recipe(tmp_path / "recipe.yaml", elastic_config(tiny_bert, data, run))
    cmd = [BIN / "hfft", "train", recipe, "--num-processes", "2", "--max-restarts", "1"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    # after epoch 1 (21 steps an epoch): a mid-epoch resume past epoch 0 must draw that epoch's batch order
    while not (run / "checkpoint-30" / "trainer_state.json").exists() and time.time() < deadline:
        time.sleep(0.1)
    workers = [
        p
        for p in psutil.Process(proc.pid).children(recursive=True)
        if "hfft" in " ".join(p.cmdline()) and "torch.distributed.run" not in " ".join(p.cmdline())
    ]
    assert len(workers) == 2 and not (run / "all_results.json").exists(), "the run ended before the kill"
    workers[0].kill()
    output, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, output[-3000:]
    assert "elastic restart 1: resuming" in output
    resumed_from = re.search(r"resuming from \S*checkpoint-(\d+)", output)
    assert resumed_from and int(resumed_from.group(1)) >= 30, output[-3000:]
    metrics, info = results(run)
    reference, _ = results(two_process_run)
    assert info["parallelism"]["elastic_restarts"] == 1 and len(set(info["rank_weight_fingerprints"])) == 1
    assert logged_losses(run) == pytest.approx(logged_losses(two_process_run), rel=1e-5)
    assert metrics["test_loss"] == pytest.approx(reference["test_loss"], rel=1e-5)


def test_two_nodes_on_localhost_match_two_local_processes(tiny_bert, data, tmp_path, two_process_run):
    """Two torchrun agents (2 "nodes" x 1 process) meeting through c10d rendezvous train what one agent with two
    local processes trains; run_info.json records the nodes and the effective batch."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    recipe = write_recipe(tmp_path / "recipe.yaml", elastic_config(tiny_bert, data, tmp_path / "run"))
    node = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend",
            "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "hfft-test", "-m", "hfft", "train", recipe]  # fmt: skip
    nodes = [subprocess.Popen(node, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in "ab"]
    outputs = [n.communicate(timeout=600)[0] for n in nodes]
    assert all(n.returncode == 0 for n in nodes), outputs[0][-2000:] + outputs[1][-2000:]
    metrics, info = results(tmp_path / "run")
    reference, _ = results(two_process_run)
    assert info["parallelism"]["nodes"] == 2 and info["parallelism"]["world_size"] == 2
    assert info["parallelism"]["effective_batch_size"] == 8
    assert logged_losses(tmp_path / "run") == pytest.approx(logged_losses(two_process_run), rel=1e-5)
    assert metrics["test_loss"] == pytest.approx(reference["test_loss"], rel=1e-5)


def fsdp_train(recipe: Path, *extra: str) -> subprocess.CompletedProcess:
    """`hfft train RECIPE --num-processes 2 --launch-config recipes/accelerate/fsdp-cpu.yaml` (FSDP2 over gloo)."""
    cmd = [BIN / "hfft", "train", recipe, *extra, "--num-processes", "2", "--launch-config",
           REPO / "recipes/accelerate/fsdp-cpu.yaml"]  # fmt: skip
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_fsdp_trains_what_ddp_trains_and_its_sharded_checkpoint_resumes(tiny_bert, data, tmp_path, two_process_run):
    """FSDP2 on two CPU processes (accelerate alone would run them as DDP) ends with the DDP run's losses; the final
    model is gathered into a normal directory that loads in a pipeline; a sharded checkpoint resumes under FSDP to
    the same end, and in one process it is a clear error before anything loads."""
    import shutil

    from transformers import pipeline

    run = tmp_path / "fsdp"
    fsdp_train(write_recipe(tmp_path / "recipe.yaml", elastic_config(tiny_bert, data, run)))
    metrics, info = results(run)
    reference, _ = results(two_process_run)
    assert info["parallelism"]["distributed_type"] == "FSDP" and info["parallelism"]["fsdp_sharded"]
    assert (run / "checkpoint-80" / "pytorch_model_fsdp_0").is_dir() and len(set(info["rank_weight_fingerprints"])) == 1
    assert logged_losses(run) == pytest.approx(logged_losses(two_process_run), rel=1e-5)
    assert metrics["test_loss"] == pytest.approx(reference["test_loss"], rel=1e-5)
    assert pipeline("text-classification", model=str(run))("spicy noodle soup")[0]["label"] in {"food", "sport", "tech"}

    resumed = tmp_path / "resumed"
    shutil.copytree(run / "checkpoint-70", resumed / "checkpoint-70")
    recipe = write_recipe(tmp_path / "resumed.yaml", elastic_config(tiny_bert, data, resumed))
    assert re.search(r"resuming from \S*checkpoint-70", fsdp_train(recipe, "--resume").stderr)
    assert logged_losses(resumed) == pytest.approx(logged_losses(run), rel=1e-6)
    assert results(resumed)[0]["test_loss"] == pytest.approx(metrics["test_loss"], rel=1e-6)
    (resumed / "all_results.json").unlink()
    shutil.rmtree(resumed / "checkpoint-80")
    one = subprocess.run([BIN / "hfft", "train", recipe, "--resume"], env=ENV, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert one.returncode != 0 and "holds FSDP-sharded model and optimizer states" in one.stderr, one.stderr[-2000:]
    assert "Loading weights" not in one.stderr


def test_fsdp_lora_matches_ddp_lora(tiny_bert, data, tmp_path):
    """LoRA under FSDP2 (frozen base and trainable adapters in the same sharded blocks) trains the adapters DDP
    trains; the saved adapter and merged model are normal files."""
    from safetensors.torch import load_file

    runs = {}
    for name in ("ddp", "fsdp"):
        config = elastic_config(tiny_bert, data, tmp_path / name)
        config["tuning"] = {"method": "lora"}
        config["training"].update(max_steps=20, save_strategy="no", learning_rate=0.05)
        recipe = write_recipe(tmp_path / f"{name}.yaml", config)
        if name == "fsdp":
            fsdp_train(recipe)
        else:
            done = subprocess.run([BIN / "hfft", "train", recipe, "--num-processes", "2"], env=ENV,
                                  capture_output=True, text=True, timeout=600)  # fmt: skip
            assert done.returncode == 0, done.stderr[-3000:]
        runs[name] = tmp_path / name
    assert results(runs["fsdp"])[1]["parallelism"]["fsdp_sharded"]
    assert logged_losses(runs["fsdp"]) == pytest.approx(logged_losses(runs["ddp"]), rel=1e-5)
    for file in ("adapter/adapter_model.safetensors", "model.safetensors"):
        ddp, fsdp = load_file(runs["ddp"] / file), load_file(runs["fsdp"] / file)
        assert fsdp.keys() == ddp.keys()
        assert all(torch_close(fsdp[k], ddp[k]) for k in ddp), file


def test_fsdp_trains_a_convolutional_network(tmp_path):
    """A CNN without input embeddings (ResNet: accelerate's FSDP2 preparation would raise NotImplementedError) and
    with batch norm trains under FSDP2; hfft's channels-last layout is off there (FSDP shards only contiguous
    parameters); the gathered model loads in an image-classification pipeline."""
    from image_fixtures import image_config, make_image_folder, save_tiny_resnet
    from PIL import Image
    from transformers import pipeline

    folder = make_image_folder(tmp_path / "images", n_per_class=6)
    config = image_config(save_tiny_resnet(tmp_path / "resnet"), folder, tmp_path / "run")
    config["training"].update(max_steps=6, bf16=False)
    fsdp_train(write_recipe(tmp_path / "recipe.yaml", config))
    _, info = results(tmp_path / "run")
    assert info["parallelism"]["fsdp_sharded"] and len(set(info["rank_weight_fingerprints"])) == 1
    losses = logged_losses(tmp_path / "run")
    assert len(losses) == 6 and min(losses[3:]) < losses[0]
    image = Image.open(next(folder.rglob("*.png")))
    assert pipeline("image-classification", model=str(tmp_path / "run"))(image)[0]["label"] in {"red", "green", "blue"}


def torch_close(a, b) -> bool:
    import torch

    return torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_fsdp1_on_cpus_and_deepspeed_without_its_package_are_errors(tiny_bert, data, tmp_path):
    """No silent fallback, said before anything loads: FSDP1 needs GPUs (hfft shards CPU processes with FSDP2 only);
    DeepSpeed needs its package."""
    import importlib.util

    from hfft import TextClassification
    from hfft.errors import ConfigError

    fsdp1 = {"fsdp": "full_shard", "fsdp_config": {"version": 1}}
    with pytest.raises(ConfigError, match="needs FSDP2"):
        TextClassification(text_config(tiny_bert, data, tmp_path / "fsdp1", training=fsdp1)).train()
    assert not (tmp_path / "fsdp1").exists()
    if importlib.util.find_spec("deepspeed") is None:
        config = text_config(tiny_bert, data, tmp_path / "ds", training={"deepspeed": str(tmp_path / "ds.json")})
        with pytest.raises(ConfigError, match="needs the deepspeed package"):
            TextClassification(config).train()
        assert not (tmp_path / "ds").exists()


def test_two_process_checkpoint_resumes_in_one_process(tiny_bert, data, tmp_path, two_process_run):
    """A checkpoint of the 2-process run continues in one process at the same global batch (2 x 4 -> 1 x 8): the
    same rows per step, so it ends close to the 2-process run (dropout masks differ: the RNG state was per rank)."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(two_process_run / "checkpoint-70", run / "checkpoint-70")
    config = elastic_config(tiny_bert, data, run)
    config["training"]["per_device_train_batch_size"] = 8
    recipe = write_recipe(tmp_path / "recipe.yaml", config)
    done = subprocess.run([BIN / "hfft", "train", recipe, "--resume"], env=ENV, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"resuming from \S*checkpoint-70", done.stderr)
    metrics, info = results(run)
    reference, _ = results(two_process_run)
    state = json.loads((run / "trainer_state.json").read_text())
    assert state["global_step"] == 80 and info["parallelism"]["world_size"] == 1
    assert info["parallelism"]["effective_batch_size"] == 8
    assert metrics["test_loss"] == pytest.approx(reference["test_loss"], rel=0.1)
    assert metrics["test_accuracy"] == pytest.approx(reference["test_accuracy"], abs=0.05)
