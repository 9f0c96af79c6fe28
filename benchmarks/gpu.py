"""One-shot GPU benchmark: hfft in bf16 on text, image, audio and token classification, a batch-size sweep, peak
GPU memory, and MFU (text) against the GPU's bf16 matmul peak measured here. Unattended, within ``--budget``.

    bash benchmarks/gpu.sh                         # the one command: python benchmarks/gpu.py --budget 420
    python benchmarks/gpu.py --cases text --batch-sizes 64,256 --steps 50
    python benchmarks/gpu.py --smoke --tiny-model DIR   # checks this script on CPU (tiny text model, 3 steps)

Every run is one process (benchmarks/hfft_run.py, as in run.py; token classification: `hfft train` on
recipes/text/wnut16-minilm-full.yaml) with `training.max_steps` optimizer steps at each batch size and
`training.skip_memory_metrics=false` (Trainer's peak-memory metrics). Cases whose data or model is missing
are listed with the reason and skipped; runs that would start after the budget are skipped and listed.
Writes benchmarks/results/<stamp>-gpu.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402
from grid import run_train  # noqa: E402
from run import CASES, run_worker, worker_env  # noqa: E402

NER_RECIPE = ROOT / "recipes" / "text" / "wnut16-minilm-full.yaml"
# dense bf16 tensor-core peaks from the vendors' data sheets (TFLOP/s), quoted beside the measured one
DATASHEET_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0, "L40S": 362.0}


def gpu_peak_tflops(device: str, size: int = 8192, tries: int = 10) -> float:
    """Best bf16 matmul TFLOP/s of a size x size product on ``device``."""
    import torch

    a = torch.randn(size, size, dtype=torch.bfloat16, device=device)
    b = torch.randn(size, size, dtype=torch.bfloat16, device=device)
    best = float("inf")
    for _ in range(tries):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best / 1e12


def case_specs(args: argparse.Namespace, work: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """run.py's case specs for the requested cases (quick data sizes); the reason for each that is unavailable."""
    sizes = argparse.Namespace(tiny_model=args.tiny_model, text_rows=40 if args.tiny_model else 640,
                               image_per_class=64, audio_per_word=16)  # fmt: skip
    specs, missing = {}, {}
    for name in args.cases:
        if name == "ner":
            data = ROOT / "data" / "wnut16"
            if not (data / "train.conll").is_file():
                missing[name] = f"{data} missing (make assets-ner)"
            continue
        try:
            specs[name] = CASES[name](sizes, work)
        except (SystemExit, Exception) as err:  # a missing model, Debian data set or preparation tool
            missing[name] = str(err)[-300:]
    return specs, missing


def hfft_run(name: str, spec: dict[str, Any], batch: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    overrides = [f"training.max_steps={args.steps}", "training.skip_memory_metrics=false"]
    if not args.smoke:
        overrides.append("training.bf16=true")
    run_spec = dict(spec, batch_size=batch, eval_batch_size=batch, seed=42, epochs=1, levers={"overrides": overrides})
    result = run_worker(f"hfft@{batch}", run_spec, work, worker_env(), args.timeout)
    return {"case": name, "batch_size": batch, **result}


def ner_run(batch: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out_dir = work / f"ner-{batch}"
    overrides = [f"training.per_device_train_batch_size={batch}", f"training.max_steps={args.steps}",
                 "training.eval_strategy='no'", "training.save_strategy='no'", "training.load_best_model_at_end=false",
                 "training.skip_memory_metrics=false", "overwrite=true", f"training.output_dir={out_dir}"]  # fmt: skip
    if not args.smoke:
        overrides.append("training.bf16=true")
    keys = ("train_samples_per_second", "test_samples_per_second", "test_f1", "train_mem_gpu_peaked_delta")
    row = run_train(NER_RECIPE, overrides, keys, {"case": "ner"}, args.timeout, work / f"ner-{batch}.log")
    return {**row, "batch_size": batch}


def mfu(row: dict[str, Any], peak_tflops: float) -> float | None:
    if not row.get("model_flops") or not row.get("step_time_s"):
        return None
    return row["model_flops"] / row["step_time_s"] / 1e12 / peak_tflops


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        f"# hfft GPU benchmark, {meta['date']}",
        "",
        f"GPU: {meta['gpu']}; bf16 matmul peak measured {meta['peak_tflops']:.0f} TFLOP/s (data sheet: "
        f"{meta['datasheet_tflops'] or 'unknown'}); torch {meta['torch']}, transformers {meta['transformers']}. "
        f"Command: `{meta['command']}` ({meta['duration_s']} s, budget {meta['budget_s']} s). "
        f"{meta['steps']} optimizer steps per run.",
        "",
        "| case | batch | train samples/s | peak GPU memory MB | MFU (text: model FLOPs / measured peak) | ok |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        memory = r.get("peak_gpu_mb") or (r.get("train_mem_gpu_peaked_delta") or 0) / 2**20 or None
        share = mfu(r, meta["peak_tflops"])
        lines.append(
            f"| {r['case']} | {r['batch_size']} | {r.get('train_samples_per_second') or '–'} "
            f"| {f'{memory:.0f}' if memory else '–'} | {f'{share:.0%}' if share else '–'} | {r['ok']} |"
        )
    for name, reason in meta["unavailable"].items():
        lines.append(f"\nNot run: {name}: {reason}")
    if meta["skipped_for_budget"]:
        lines.append(f"\nSkipped (budget): {', '.join(meta['skipped_for_budget'])}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="text,image,audio,ner", help="comma-separated: text,image,audio,ner")
    parser.add_argument("--batch-sizes", default="32,64,128,256", help="comma-separated per-device batch sizes")
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps per run")
    parser.add_argument("--budget", type=float, default=420, help="seconds; no run starts after this")
    parser.add_argument("--timeout", type=float, default=180, help="seconds before one run is killed")
    parser.add_argument("--smoke", action="store_true", help="on CPU, float32: checks this script, measures nothing")
    parser.add_argument("--tiny-model", help="a tiny text checkpoint (with --smoke)")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    batches = [int(b) for b in args.batch_sizes.split(",")]

    import torch
    import transformers

    if not torch.cuda.is_available() and not args.smoke:
        raise SystemExit(f"no CUDA GPU visible to torch {torch.__version__}: this script measures a GPU (--smoke: CPU)")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.time()
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none (smoke run on CPU)"
    peak = gpu_peak_tflops(device, size=256 if args.smoke else 8192)
    print(f"GPU: {gpu}; measured bf16 matmul peak {peak:.1f} TFLOP/s", flush=True)
    rows, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="hfft-gpu-bench-") as tmp:
        work = Path(tmp)
        specs, unavailable = case_specs(args, work)
        for name in args.cases:
            if name in unavailable:
                print(f"{name}: not run ({unavailable[name]})", flush=True)
                continue
            for batch in batches:
                if time.time() - started > args.budget:
                    skipped.append(f"{name}@{batch}")
                    continue
                row = ner_run(batch, args, work) if name == "ner" else hfft_run(name, specs[name], batch, args, work)
                rows.append(row)
                print(f"[{time.time() - started:4.0f}s] {name} batch {batch}: {row.get('train_samples_per_second')} "
                      f"samples/s, ok {row['ok']}", flush=True)  # fmt: skip
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "gpu": gpu,
        "peak_tflops": peak,
        "datasheet_tflops": next((v for k, v in DATASHEET_BF16_TFLOPS.items() if k in gpu), None),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "steps": args.steps,
        "budget_s": args.budget,
        "duration_s": round(time.time() - started),
        "unavailable": unavailable,
        "skipped_for_budget": skipped,
    }
    out = Path(args.results)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ("-gpu-smoke" if args.smoke else "-gpu")
    (out / f"{stamp}.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=1))
    report = markdown(meta, rows)
    (out / f"{stamp}.md").write_text(report)
    print("\n" + report + f"\nresults: {out / stamp}.json / .md")
    sys.exit(0 if rows and all(r["ok"] for r in rows) else 1)


if __name__ == "__main__":
    main()
