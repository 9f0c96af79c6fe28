"""Baseline (B) for causal-LM fine-tuning: the plain TRL `SFTTrainer` script a careful user writes.

No hfft. Plain language modelling on a `text` column (TRL appends EOS and trains on every token), LoRA through
`peft_config` (peft's LoraConfig: r, alpha, dropout, all-linear, as hfft's recipe), the best thread count
(benchmarks/baseline_b.py). The training sentences are the seeded subset hfft's data.max_train_samples takes (empty
texts and, in train, exact duplicates dropped first; then `shuffle(seed).select(range(n))`), so both train on the
same sentences. Batching (`--packing`):
- `off`: each batch of `--batch-size` sentences padded to its longest (TRL's default collator; random order);
- `padding-free`: each batch of `--batch-size` sentences flattened into one row, position ids restarting per
  sentence (SFTConfig(padding_free=True); TRL then wants max_length=None: PTB sentences are at most 142 tokens
  with EOS, so nothing is cut either way): batches built as hfft's preprocessing.packing builds them (both
  drawn at random since hfft's packed runs stopped grouping by length);
- `bfd`: SFTConfig(packing=True), TRL's default best-fit-decreasing packing into rows of `--max-length` tokens,
  `--batch-size` such rows per step (padding-free): ~10x the sentences per step of hfft's packed batches.
TRL's default gradient checkpointing is turned off (hfft does not recompute activations; `--gradient-checkpointing`
turns it back on). Validation / test perplexity = exp(mean next-token NLL over every target token, EOS
included), padded batches, in the training precision, as hfft computes it. Writes OUT/all_results.json as
`hfft train` does, so benchmarks/lm.py reads both the same way; `train_samples_per_second` counts training
sentences (sentences x epochs / train_runtime, as hfft's does), TRL's own figure (packed rows with `bfd`) is kept
as `trl_train_samples_per_second`:

    python benchmarks/lm_baseline.py --model DIR --train train.jsonl --validation validation.jsonl \\
        --test test.jsonl --out DIR [--train-samples N] [--eval-samples N] [--packing padding-free] [--bf16]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from baseline_b import best_threads


def read_texts(path: str, limit: int | None, seed: int, dedup: bool) -> Any:
    """The `text` column of a JSON-lines file without empty texts (and, ``dedup``, exact duplicates after their
    first occurrence), then a seeded random ``limit`` of them."""
    import datasets

    rows = datasets.load_dataset("json", data_files={"train": path})["train"].select_columns(["text"])
    seen: set[str] = set()
    keep = []
    for i, text in enumerate(rows["text"]):
        if not isinstance(text, str) or not text.strip() or (dedup and text in seen):
            continue
        seen.add(text)
        keep.append(i)
    rows = rows.select(keep)
    return rows if limit is None or len(rows) <= limit else rows.shuffle(seed=seed).select(range(limit))


def perplexity(model: Any, tokenizer: Any, texts: list[str], batch_size: int, bf16: bool) -> tuple[float, int]:
    """exp(mean negative log-likelihood of every next token, EOS included) over ``texts``, padded batches."""
    import torch

    model.eval()
    tokenizer.padding_side = "right"  # position ids count from the first token
    total, tokens = 0.0, 0
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(texts), batch_size):
            chunk = [text + tokenizer.eos_token for text in texts[start : start + batch_size]]
            batch = tokenizer(chunk, return_tensors="pt", padding=True)
            logits = model(**batch, use_cache=False).logits
            targets = batch["input_ids"][:, 1:].masked_fill(batch["attention_mask"][:, 1:] == 0, -100)
            nll = torch.nn.functional.cross_entropy(
                logits[:, :-1].float().transpose(1, 2), targets, ignore_index=-100, reduction="sum"
            )
            total, tokens = total + float(nll), tokens + int((targets != -100).sum())
    return math.exp(min(total / max(tokens, 1), 50.0)), tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("--model", "--train", "--validation", "--test", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--train-samples", type=int, help="seeded subset of the training sentences (default: all)")
    parser.add_argument("--eval-samples", type=int, help="seeded subset of validation and of test (default: all)")
    parser.add_argument("--packing", choices=("off", "padding-free", "bfd"), default="off")
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--warmup", type=float, default=0.1, help="warmup steps, or a fraction of them below 1")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=int, default=32)
    parser.add_argument("--lora-dropout", type=float, default=0.05)
    parser.add_argument("--gradient-checkpointing", action="store_true", help="TRL's default; off here as in hfft")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bf16", action="store_true", help="(B+bf16): bf16 autocast, as on a CPU with native bf16")
    args = parser.parse_args()

    from peft import LoraConfig
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    train = read_texts(args.train, args.train_samples, args.seed, dedup=True)
    held_out = {
        split: read_texts(path, args.eval_samples, args.seed, dedup=False)["text"]
        for split, path in (("eval", args.validation), ("test", args.test))
    }
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    peft_config = LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    training_args = SFTConfig(
        output_dir=args.out,
        dataset_text_field="text",
        max_length=None if args.packing == "padding-free" else args.max_length,
        packing=args.packing == "bfd",
        padding_free=args.packing == "padding-free",
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup,
        gradient_checkpointing=args.gradient_checkpointing,
        seed=args.seed,
        bf16=args.bf16,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=20,
        report_to="none",
        use_cpu=True,
    )
    trainer = SFTTrainer(
        model=args.model,
        args=training_args,
        train_dataset=train,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    rows = trainer.train_dataset
    first = trainer.data_collator([rows[i] for i in range(min(args.batch_size, len(rows)))])
    trial = best_threads(trainer.model, {**first, "use_cache": False})
    metrics = dict(trainer.train().metrics)
    metrics.update(
        trl_train_samples_per_second=metrics["train_samples_per_second"],
        train_samples_per_second=len(train) * args.epochs / metrics["train_runtime"],
        train_sentences=len(train),
        train_rows=len(rows),
        packing=args.packing,
        thread_trial_s=trial,
    )
    for prefix, texts in held_out.items():
        value, tokens = perplexity(trainer.model, tokenizer, list(texts), args.eval_batch_size, args.bf16)
        metrics.update(
            {f"{prefix}_perplexity": value, f"{prefix}_target_tokens": tokens, f"{prefix}_samples": len(texts)}
        )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "all_results.json").write_text(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
