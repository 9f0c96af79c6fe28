"""hfft's token-classification recipe (MiniLM on WNUT-2016 tweets): speed, memory and entity F1 per variant.

    python benchmarks/ner.py --quick                       # 300 train tweets, 1 epoch: speed and memory only
    python benchmarks/ner.py                               # all 1,847 train tweets, 3 epochs: also entity F1
    python benchmarks/ner.py --methods lora --precisions default --train-samples 200

Each variant is one `hfft train recipes/text/wnut16-minilm-{lora,full}.yaml ...` process (peak RSS from wait4):
`--epochs` (3; quick 1) on a seeded subset of train (data.max_train_samples), no per-epoch validation or checkpoint inside
Trainer's timed loop (so no best-model reload); each recipe keeps its own learning rate (LoRA 1e-3, full 1e-4),
batch size, max_length and augmentation. Validation and test (231 tweets each) are evaluated once after
training; test entity F1 (seqeval default and strict) is recorded. Precision: hfft's default (bf16 autocast
where the CPU has native bf16) or training.bf16=false. Every row records the 1-minute load average before /
after and the CPU time other processes used meanwhile. Needs the MiniLM wheel and data/wnut16 (make
assets-ner). Writes benchmarks/results/<stamp>-ner[-quick].{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402
from grid import heavy_others, machine_meta, process_cpu, run_grid  # noqa: E402
from run import cpu_busy_seconds, worker_env  # noqa: E402

RECIPES = {method: ROOT / "recipes" / "text" / f"wnut16-minilm-{method}.yaml" for method in ("lora", "full")}
DATA = ROOT / "data" / "wnut16"
METRICS = (
    "train_samples_per_second",
    "eval_samples_per_second",
    "test_samples_per_second",
    "test_f1",
    "test_f1_strict",
    "test_precision",
    "test_recall",
    "eval_f1",
    "train_loss",
)


def overrides(precision: str, args: argparse.Namespace, out_dir: Path) -> list[str]:
    """The dotted overrides of one variant on top of the shipped recipe."""
    items = [
        f"training.output_dir={out_dir}",
        f"training.num_train_epochs={args.epochs}",
        "training.eval_strategy='no'",  # quoted: YAML reads a bare no as false
        "training.save_strategy='no'",
        "training.load_best_model_at_end=false",
        f"seed={args.seed}",
        "overwrite=true",
    ]
    if args.train_samples:
        items.append(f"data.max_train_samples={args.train_samples}")
    if args.eval_samples:
        items.append(f"data.max_eval_samples={args.eval_samples}")
    return items + (["training.bf16=false"] if precision == "fp32" else [])


def run_variant(method: str, precision: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One `hfft train` process: its metrics, peak RSS, wall time, and the machine's load around it."""
    out_dir, log = work / f"{method}-{precision}", work / f"{method}-{precision}.log"
    recipe, extra = RECIPES[method], overrides(precision, args, out_dir)
    cmd = [sys.executable, "-m", "hfft", "train", str(recipe), *extra]
    seen = process_cpu()
    first = {pid: cpu for pid, (_, _, cpu) in seen.items()}
    load_before, busy_before, started = os.getloadavg()[0], cpu_busy_seconds(), time.time()
    with open(log, "w") as log_file:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=worker_env(), stdout=log_file, stderr=subprocess.STDOUT)
        polls = 0
        while not (done := os.wait4(proc.pid, os.WNOHANG))[0]:  # wait4: the child's own peak RSS
            if time.time() > started + args.timeout:
                proc.kill()
                done = os.wait4(proc.pid, 0)
                break
            polls += 1
            if polls % 4 == 0:
                seen.update(process_cpu())
            time.sleep(0.5)
    seen.update(process_cpu())
    _, status, usage = done
    wall = time.time() - started
    row: dict[str, Any] = {"method": method, "precision": precision, "ok": False, "wall_s": round(wall, 1)}
    results = out_dir / "all_results.json"
    if os.waitstatus_to_exitcode(status) == 0 and results.is_file():
        metrics = json.loads(results.read_text())
        row.update({k: metrics.get(k) for k in METRICS}, ok=True, hfft_wall_time_s=metrics.get("wall_time_s"))
    else:
        row["error"] = log.read_text()[-2000:]
        print(f"  {method}/{precision} FAILED (see {log}):\n{row['error'][-800:]}", flush=True)
    own = usage.ru_utime + usage.ru_stime
    row.update(
        peak_rss_mb=round(usage.ru_maxrss / 1024),
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
        other_cores_busy=round(max(0.0, (cpu_busy_seconds() - busy_before - own) / max(wall, 1e-6)), 2),
        heavy_processes=heavy_others(first, seen, proc.pid, wall),
        command=" ".join(["hfft", "train", str(recipe.relative_to(ROOT)), *extra]),
    )
    return row


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The results as a small Markdown report."""
    lines = [
        f"# hfft token-classification benchmark, {meta['date']}",
        "",
        f"Machine: {meta['cpu']}, {meta['cores']} cores; native bf16: {meta['native_bf16']} "
        f"(flags: {', '.join(meta['bf16_flags']) or 'none'}); torch {meta['torch']}, transformers "
        f"{meta['transformers']}. Command: `{meta['command']}` ({meta['duration_s']} s). Data: WNUT-2016, "
        f"{meta['train_samples'] or 'all 1,847'} train tweets (seeded), {meta['eval_samples'] or 'all'} validation / test tweets, "
        f"{meta['epochs']} epoch(s), MiniLM-L6 (LoRA lr 1e-3, full lr 1e-4).",
        "",
        "| method | precision | train samples/s | eval samples/s | test samples/s | wall s | peak RSS MB "
        "| test F1 | test F1 (strict) | load 1 min before → after | other procs' busy cores | heavy processes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        keys = ("train_samples_per_second", "eval_samples_per_second", "test_samples_per_second")
        speed = " | ".join(f"{r[k]:.1f}" if r.get(k) is not None else "–" for k in keys)
        quality = " | ".join(f"{r[k]:.3f}" if r.get(k) is not None else "–" for k in ("test_f1", "test_f1_strict"))
        lines.append(
            f"| {r['method']} | {meta['precisions'][r['precision']]} | {speed} | {r['wall_s']} | {r['peak_rss_mb']} "
            f"| {quality} | {r['load_before']} → {r['load_after']} | {r['other_cores_busy']} "
            f"| {'; '.join(r['heavy_processes']) or 'none'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 train tweets")
    parser.add_argument("--train-samples", type=int, help="data.max_train_samples (default: all, quick 300)")
    parser.add_argument("--epochs", type=int, help="training.num_train_epochs (default 3, quick 1)")
    parser.add_argument("--eval-samples", type=int, help="data.max_eval_samples (default: all 231)")
    parser.add_argument("--methods", default="lora,full", help="comma-separated: lora,full")
    parser.add_argument("--precisions", default="default,fp32", help="comma-separated: default (hfft's), fp32")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=float, default=900, help="seconds before a run is killed")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    args.train_samples = args.train_samples or (300 if args.quick else None)  # None: every tweet
    args.epochs = args.epochs or (1 if args.quick else 3)
    if not all((DATA / f"{split}.conll").is_file() for split in ("train", "dev", "test")):
        raise SystemExit(f"{DATA} is missing: run `make assets-ner` (or recipes/text/prepare_wnut16.py) first.")

    meta = machine_meta(args, train_samples=args.train_samples, epochs=args.epochs, eval_samples=args.eval_samples)
    run_grid("ner", args, meta, run_variant, markdown)


if __name__ == "__main__":
    main()
