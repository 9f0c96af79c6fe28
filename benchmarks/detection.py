"""hfft's object-detection recipe (a small RT-DETR on Fashion-MNIST collages): speed, memory and COCO mAP per variant.

    python benchmarks/detection.py --quick                 # 200 train / 100 eval collages, 1 epoch
    python benchmarks/detection.py                         # 600 train / 200 eval collages, 2 epochs
    python benchmarks/detection.py --methods freeze --precisions default --train-samples 100
    python benchmarks/detection.py --quick --methods full,B --precisions default   # against (B), a plain
                                                   # run_object_detection-style script (detection_baseline.py)

Each variant is one `hfft train recipes/image/fashion-collage-rtdetr-scratch.yaml ...` process (peak RSS from
wait4): `--epochs` (2; quick 1) on a seeded subset of train (data.max_train_samples), no per-epoch validation or
checkpoint inside Trainer's timed loop and no untrained-model baseline pass; the recipe keeps its learning rate
(1e-3), batch size and bbox-safe augmentation. Methods: `full` (every weight), `freeze` (backbone frozen;
encoder, decoder and heads train) and `B`: benchmarks/detection_baseline.py, the plain Trainer script a careful
user writes, on the same seeded subsets (same rows) with the same model, learning rate, schedule, batch size,
weight decay and seed; with B among the methods, hfft's augmentation and warmup are off, which the plain script
does not have (the same work), and the Markdown ends with hfft full's train samples/s over B's. A seeded subset
of validation and test (data.max_eval_samples) is evaluated once after training (B: test only); test COCO mAP
(AP@[.5:.95]) and mAP@50 are recorded. The model trains FROM RANDOM WEIGHTS (data/rtdetr-scratch, 6.1M
parameters), so mAP after 1-2 epochs is low: this is a speed and memory benchmark, not a quality one.
Precision: hfft's default or training.bf16=false; on CPU hfft keeps convolution-heavy models such as this
RT-DETR in float32 (channels-last) even where it would pick bf16 autocast, so the two usually match there; B
runs bf16 autocast for `default` where the CPU has native bf16 (B+bf16), float32 otherwise. Every row
records the 1-minute load average before / after and the CPU time other processes used meanwhile. Needs
data/rtdetr-scratch and data/fashion-collage (make assets-detection). Writes
benchmarks/results/<stamp>-detection[-quick].{json,md}.
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

RECIPE = ROOT / "recipes" / "image" / "fashion-collage-rtdetr-scratch.yaml"
MODEL = ROOT / "data" / "rtdetr-scratch"
DATA = ROOT / "data" / "fashion-collage"
METRICS = (
    "train_samples_per_second",
    "eval_samples_per_second",
    "test_samples_per_second",
    "test_map",
    "test_map_50",
    "test_map_75",
    "eval_map",
    "train_loss",
)


def overrides(method: str, precision: str, args: argparse.Namespace, out_dir: Path) -> list[str]:
    """The dotted overrides of one variant on top of the shipped recipe (with the B baseline: hfft's augmentation and
    warmup off, which the plain script does not have: the same work)."""
    items = ["regularization.augment=false", "training.warmup_steps=0"] if "B" in args.methods.split(",") else []
    items += [
        f"training.output_dir={out_dir}",
        f"training.num_train_epochs={args.epochs}",
        "training.eval_strategy='no'",  # quoted: YAML reads a bare no as false
        "training.save_strategy='no'",
        "labels.untrained_baseline=false",
        f"seed={args.seed}",
        "overwrite=true",
        f"data.max_train_samples={args.train_samples}",
        f"data.max_eval_samples={args.eval_samples}",
        f"tuning.method={method}",
    ]
    return items + (["training.bf16=false"] if precision == "fp32" else [])


def baseline_command(precision: str, args: argparse.Namespace, out_dir: Path) -> list[str]:
    """(B): benchmarks/detection_baseline.py with the recipe's model, data (the same seeded subsets), learning rate,
    batch sizes and weight decay; bf16 autocast for the `default` precision where the CPU has native bf16 (what a
    careful user on such a CPU sets, although hfft keeps this convolution-heavy model in float32 there)."""
    annotations = DATA / "annotations"
    script = Path(__file__).resolve().parent / "detection_baseline.py"
    command = [sys.executable, str(script), "--model", str(MODEL), "--images", str(DATA), "--out", str(out_dir),
               "--train", str(annotations / "instances_train.json"), "--test", str(annotations / "instances_test.json"),
               "--train-samples", str(args.train_samples), "--eval-samples", str(args.eval_samples),
               "--epochs", str(args.epochs), "--learning-rate", "1e-3", "--batch-size", "16", "--eval-batch-size",
               "32", "--weight-decay", "1e-4", "--seed", str(args.seed)]  # fmt: skip
    return command + baseline_bf16(precision)


def run_variant(method: str, precision: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One `hfft train` process, or the plain script for method B (see grid.run_train)."""
    out_dir = work / f"{method}-{precision}"
    label = {"method": method, "precision": precision}
    command = baseline_command(precision, args, out_dir) if method == "B" else None
    return run_train(RECIPE, overrides("full" if method == "B" else method, precision, args, out_dir), METRICS,
                     label, args.timeout, work / f"{method}-{precision}.log", command=command)  # fmt: skip


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The results as a small Markdown report."""
    data = (
        f"Fashion-MNIST collages (96x96, COCO boxes, 10 classes), {meta['train_samples']} train collages (seeded), "
        f"{meta['eval_samples']} validation / test collages, {meta['epochs']} epoch(s), RT-DETR (6.1M parameters) "
        "from random weights, lr 1e-3: mAP after so few epochs is low, the rows compare speed and memory."
    )
    if meta.get("with_baseline"):
        data += " hfft's augmentation and warmup off (as the plain script B, which evaluates test only)."
        if meta["native_bf16"]:
            data += " B's `default` rows run bf16 autocast (B+bf16), whatever hfft's default is."
    speed = {"train_samples_per_second": "train samples/s", "eval_samples_per_second": "eval samples/s",
             "test_samples_per_second": "test samples/s"}  # fmt: skip
    text = report(meta, "object-detection", data, rows, speed, {"test_map": "test mAP", "test_map_50": "test mAP@50"})
    return text + baseline_ratio_lines(meta, rows, "detection", "plain run_object_detection-style script")


def default_precision(meta: dict[str, Any]) -> str:
    """What hfft's default precision means for this model: on CPU, convolution-heavy models stay in float32
    where hfft would otherwise choose bf16 autocast (hfft.perf.float32_for_cnns)."""
    if not meta["native_bf16"]:
        return meta["precisions"]["default"]
    from transformers import AutoModelForObjectDetection

    from hfft.perf import convolutional

    if convolutional(AutoModelForObjectDetection.from_pretrained(MODEL)):
        return "hfft default (float32: convolution-heavy model)"
    return meta["precisions"]["default"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 train / 100 eval collages, 1 epoch")
    parser.add_argument("--train-samples", type=int, help="data.max_train_samples (default 600, quick 200)")
    parser.add_argument("--epochs", type=int, help="training.num_train_epochs (default 2, quick 1)")
    parser.add_argument("--eval-samples", type=int, help="data.max_eval_samples (default 200, quick 100)")
    add_grid_arguments(parser, "full,freeze", 1800)  # also B: the plain script (detection_baseline.py)
    args = parser.parse_args()
    args.train_samples = args.train_samples or (200 if args.quick else 600)
    args.eval_samples = args.eval_samples or (100 if args.quick else 200)
    args.epochs = args.epochs or (1 if args.quick else 2)
    annotations = [DATA / "annotations" / f"instances_{split}.json" for split in ("train", "val", "test")]
    if not (MODEL / "config.json").is_file() or not all(path.is_file() for path in annotations):
        raise SystemExit(f"{MODEL} or {DATA} is missing: run `make assets-detection` first.")

    meta = machine_meta(args, train_samples=args.train_samples, epochs=args.epochs, eval_samples=args.eval_samples,
                        with_baseline="B" in args.methods.split(","))  # fmt: skip
    meta["precisions"]["default"] = default_precision(meta)
    run_grid("detection", args, meta, run_variant, markdown)


if __name__ == "__main__":
    main()
