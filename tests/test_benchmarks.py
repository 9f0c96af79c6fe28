"""Smoke test of benchmarks/run.py on a tiny case: it runs and reports, nothing is timed or compared."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_benchmark_script_runs_on_a_tiny_case(tiny_bert: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--tiny-model", str(tiny_bert)]
    cmd += ["--repeats", "1", "--results", str(tmp_path), "--cpu-bf16", "off"]  # the same runs on every CPU
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ratio_line = next(line for line in proc.stdout.splitlines() if line.startswith("text ratio vs B: "))
    assert "no native bf16" in ratio_line  # the machine class the number belongs to
    result = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert sorted(r["variant"] for r in result["runs"]) == ["A", "B", "hfft"]  # no (B+bf16) without native bf16
    assert result["meta"]["machine_class"].startswith("no native bf16")
    assert set(result["meta"]["cli_latency_s"]) == {"hfft --help", "hfft train (config error)"}
    for run in result["runs"]:
        assert run["ok"] and run["train_samples_per_second"] > 0 and run["peak_rss_mb"] > 0, run
        assert run["startup_s"] < run["first_step_s"] < run["process_wall_s"]
        assert 0.0 <= run["accuracy"] <= 1.0
    assert result["summary"]["text"]["ratios"]["train vs B"]["n"] == 1
    bound = result["summary"]["text"]["same_work_bounds"]["B"]  # hfft and (B) both in float32 here
    assert bound["dtype"] == "float32" and bound["floor_ms"] > 0 and bound["max_ratio"] > 0
    assert any(line.startswith("text same-work bound vs B (float32): ") for line in proc.stdout.splitlines())
    assert (tmp_path / next(tmp_path.glob("*.json")).with_suffix(".md").name).is_file()


def test_gpu_script_smoke_run_on_cpu(tiny_bert: Path, tmp_path: Path) -> None:
    """benchmarks/gpu.py end to end without a GPU (--smoke): a batch-size sweep on the tiny text case, results
    written (the real cases need the benchmark data and models; measured nothing here)."""
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--smoke", "--tiny-model", str(tiny_bert)]
    cmd += ["--cases", "text", "--batch-sizes", "4,8", "--steps", "3", "--results", str(tmp_path)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    result = json.loads(next(tmp_path.glob("*-gpu-smoke.json")).read_text())
    text = [r for r in result["runs"] if r["case"] == "text"]
    assert [r["batch_size"] for r in text] == [4, 8] and all(r["ok"] for r in text), proc.stdout[-3000:]
    assert all(r["train_steps"] == 3 for r in text)
    assert result["meta"]["peak_tflops"] > 0
