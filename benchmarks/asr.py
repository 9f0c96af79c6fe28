"""hfft's speech-recognition recipe (Whisper tiny.en on the Asterisk prompts): speed, memory and WER per variant.

    python benchmarks/asr.py --quick                       # 16 train / 8 eval clips, LoRA and full, both precisions
    python benchmarks/asr.py                               # 64 train / 16 eval clips
    python benchmarks/asr.py --methods lora --precisions default --train-samples 128

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
from grid import add_grid_arguments, machine_meta, report, run_grid, run_train  # noqa: E402

RECIPE = ROOT / "recipes" / "audio" / "asterisk-whisper-tiny-lora.yaml"
LEARNING_RATE = {"lora": "1e-3", "full": "1e-5"}


def overrides(method: str, precision: str, args: argparse.Namespace, out_dir: Path) -> list[str]:
    """The dotted overrides of one variant on top of the shipped recipe."""
    items = [
        f"tuning.method={method}",
        f"training.learning_rate={LEARNING_RATE[method]}",
        f"training.output_dir={out_dir}",
        "training.num_train_epochs=1",
        "training.eval_strategy='no'",  # quoted: YAML reads a bare no as false
        "training.save_strategy='no'",
        f"data.max_train_samples={args.train_samples}",
        f"data.max_eval_samples={args.eval_samples}",
        "preprocessing.max_duration=15",
        "labels.zero_shot_baseline=false",
        f"seed={args.seed}",
        "overwrite=true",
    ]
    return items + (["training.bf16=false"] if precision == "fp32" else [])


def run_variant(method: str, precision: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One `hfft train` process (see grid.run_train)."""
    out_dir = work / f"{method}-{precision}"
    keys = ("train_samples_per_second", "test_samples_per_second", "test_wer", "test_cer", "eval_wer")
    label = {"method": method, "precision": precision}
    return run_train(
        RECIPE,
        overrides(method, precision, args, out_dir),
        keys,
        label,
        args.timeout,
        work / f"{method}-{precision}.log",
    )


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The results as a small Markdown report."""
    data = f"{meta['train_samples']} train / {meta['eval_samples']} eval clips (seeded), 1 epoch, Whisper tiny.en."
    speed = {"train_samples_per_second": "train samples/s", "test_samples_per_second": "test clips/s (generate)"}
    return report(meta, "speech-recognition", data, rows, speed, {"test_wer": "test WER", "test_cer": "test CER"}, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="16 train / 8 eval clips")
    parser.add_argument("--train-samples", type=int, help="data.max_train_samples (default 64, quick 16)")
    parser.add_argument("--eval-samples", type=int, help="data.max_eval_samples (default 16, quick 8)")
    add_grid_arguments(parser, "lora,full", 900)
    args = parser.parse_args()
    args.train_samples = args.train_samples or (16 if args.quick else 64)
    args.eval_samples = args.eval_samples or (8 if args.quick else 16)

    meta = machine_meta(args, train_samples=args.train_samples, eval_samples=args.eval_samples)
    run_grid("asr", args, meta, run_variant, markdown)


if __name__ == "__main__":
    main()
