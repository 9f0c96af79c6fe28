"""hfft's speech-recognition recipe (Whisper tiny.en on the Asterisk prompts): speed, memory and WER per variant.

    python benchmarks/asr.py --quick                       # 16 train / 8 eval clips, LoRA and full, both precisions
    python benchmarks/asr.py                               # 64 train / 16 eval clips
    python benchmarks/asr.py --methods lora --precisions default --train-samples 128
    python benchmarks/asr.py --methods full,B     # against (B), a plain Seq2SeqTrainer script (asr_baseline.py)

Each variant is one `hfft train recipes/audio/asterisk-whisper-tiny-lora.yaml ...` process (peak RSS from
wait4): 1 epoch on a seeded subset (data.max_train_samples / data.max_eval_samples), max_duration 15 s, no
zero-shot baseline, no per-epoch validation or checkpoint inside Trainer's timed loop; full fine-tuning at
lr 1e-5 (the recipe's 1e-3 is LoRA's). Precision: hfft's default (bf16 autocast where the CPU has native bf16)
or training.bf16=false. Every row records the 1-minute load average before / after and the CPU time other
processes used meanwhile. Needs data/whisper-tiny-en and data/asterisk-asr (see the recipe's header).
Writes benchmarks/results/<stamp>-asr[-quick].{json,md}.
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

RECIPE = ROOT / "recipes" / "audio" / "asterisk-whisper-tiny-lora.yaml"
LEARNING_RATE = {"lora": "1e-3", "full": "1e-5"}


def overrides(method: str, precision: str, args: argparse.Namespace, out_dir: Path) -> list[str]:
    """The dotted overrides of one variant on top of the shipped recipe (with the B baseline: every clip, and hfft's
    augmentation and warmup off, which the plain script does not have: the same work)."""
    with_baseline = "B" in args.methods.split(",")
    items = ["regularization.augment=false", "training.warmup_steps=0"] if with_baseline else []
    if not with_baseline:
        items += [f"data.max_train_samples={args.train_samples}", f"data.max_eval_samples={args.eval_samples}"]
    items += [
        f"tuning.method={method}",
        f"training.learning_rate={LEARNING_RATE[method]}",
        f"training.output_dir={out_dir}",
        "training.num_train_epochs=1",
        "training.eval_strategy='no'",  # quoted: YAML reads a bare no as false
        "training.save_strategy='no'",
        "preprocessing.max_duration=15",
        "labels.zero_shot_baseline=false",
        f"seed={args.seed}",
        "overwrite=true",
    ]
    return items + (["training.bf16=false"] if precision == "fp32" else [])


def baseline_command(precision: str, args: argparse.Namespace, out_dir: Path) -> list[str]:
    """(B): benchmarks/asr_baseline.py on every train and test clip with the full method's learning rate; bf16 for the
    `default` precision where the CPU has native bf16 (the careful user on such a CPU)."""
    data = ROOT / "data" / "asterisk-asr"
    command = [sys.executable, str(Path(__file__).resolve().parent / "asr_baseline.py"), "--model",
               str(ROOT / "data" / "whisper-tiny-en"), "--train", str(data / "train"), "--test", str(data / "test"),
               "--out", str(out_dir), "--learning-rate", LEARNING_RATE["full"], "--seed", str(args.seed)]  # fmt: skip
    return command + baseline_bf16(precision)


def run_variant(method: str, precision: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One `hfft train` process, or the plain script for method B (see grid.run_train)."""
    out_dir = work / f"{method}-{precision}"
    keys = ("train_samples_per_second", "test_samples_per_second", "test_wer", "test_cer", "eval_wer")
    label = {"method": method, "precision": precision}
    command = baseline_command(precision, args, out_dir) if method == "B" else None
    return run_train(RECIPE, overrides("full" if method == "B" else method, precision, args, out_dir), keys, label,
                     args.timeout, work / f"{method}-{precision}.log", command=command)  # fmt: skip


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The results as a small Markdown report."""
    clips = "every train / test clip up to 15 s" if meta.get("with_baseline") else (
        f"{meta['train_samples']} train / {meta['eval_samples']} eval clips (seeded)")  # fmt: skip
    data = f"{clips}, 1 epoch, Whisper tiny.en."
    speed = {"train_samples_per_second": "train samples/s", "test_samples_per_second": "test clips/s (generate)"}
    text = report(meta, "speech-recognition", data, rows, speed, {"test_wer": "test WER", "test_cer": "test CER"}, 2)
    return text + baseline_ratio_lines(meta, rows, "asr", "plain Seq2SeqTrainer script")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="16 train / 8 eval clips")
    parser.add_argument("--train-samples", type=int, help="data.max_train_samples (default 64, quick 16)")
    parser.add_argument("--eval-samples", type=int, help="data.max_eval_samples (default 16, quick 8)")
    add_grid_arguments(parser, "lora,full", 900)
    args = parser.parse_args()
    args.train_samples = args.train_samples or (16 if args.quick else 64)
    args.eval_samples = args.eval_samples or (8 if args.quick else 16)

    with_baseline = "B" in args.methods.split(",")
    meta = machine_meta(
        args, train_samples=args.train_samples, eval_samples=args.eval_samples, with_baseline=with_baseline
    )
    run_grid("asr", args, meta, run_variant, markdown)


if __name__ == "__main__":
    main()
