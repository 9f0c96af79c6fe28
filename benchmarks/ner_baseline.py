"""Baseline (B) for token classification: the plain `run_ner.py`-style Trainer script a careful user writes.

No hfft. CoNLL files read by hand (token and tag per line, blank line between sentences), tokenised once with
`is_split_into_words` (a word's tag on its first sub-token, -100 elsewhere: what hfft evaluates), dynamic
padding (`DataCollatorForTokenClassification`), the best thread count (benchmarks/baseline_b.py), entity F1 with
seqeval's default (conlleval) mode on the test file. Writes OUT/all_results.json as `hfft train` does, so
benchmarks/ner.py reads both the same way:

    python benchmarks/ner_baseline.py --model DIR --train train.conll --test test.conll --out DIR [--bf16]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from baseline_b import best_threads


def read_conll(path: str) -> list[tuple[list[str], list[str]]]:
    sentences, tokens, tags = [], [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines() + [""]:
        parts = line.split()
        if not parts:
            if tokens:
                sentences.append((tokens, tags))
            tokens, tags = [], []
            continue
        tokens.append(parts[0])
        tags.append(parts[-1])
    return sentences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("--model", "--train", "--test", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--epochs", type=float, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bf16", action="store_true", help="(B+bf16): bf16 autocast, as on a CPU with native bf16")
    args = parser.parse_args()

    import datasets
    import numpy as np
    from seqeval.metrics import f1_score
    from transformers import (
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        Trainer,
        TrainingArguments,
    )

    train, test = read_conll(args.train), read_conll(args.test)
    names = sorted({tag for _, tags in train for tag in tags})
    label2id = {name: i for i, name in enumerate(names)}
    tokenizer = AutoTokenizer.from_pretrained(args.model)

    def encode(batch: dict[str, list]) -> dict[str, Any]:
        encoded = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=args.max_length)
        encoded["labels"] = []
        for i, tags in enumerate(batch["tags"]):
            labels, previous = [], None
            for word in encoded.word_ids(i):
                first = word is not None and word != previous
                labels.append(label2id.get(tags[word], label2id["O"]) if first else -100)
                previous = word
            encoded["labels"].append(labels)
        return encoded

    splits = {}
    for name, rows in (("train", train), ("test", test)):
        raw = datasets.Dataset.from_dict({"tokens": [t for t, _ in rows], "tags": [g for _, g in rows]})
        splits[name] = raw.map(encode, batched=True, remove_columns=["tokens", "tags"])
    model = AutoModelForTokenClassification.from_pretrained(
        args.model, num_labels=len(names), id2label=dict(enumerate(names)), label2id=label2id
    )
    collator = DataCollatorForTokenClassification(tokenizer)
    trial = best_threads(model, collator([splits["train"][i] for i in range(args.batch_size)]))
    training_args = TrainingArguments(
        output_dir=args.out,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        seed=args.seed,
        bf16=args.bf16,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=20,
        report_to="none",
        use_cpu=True,
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=splits["train"], data_collator=collator)
    metrics = dict(trainer.train().metrics)
    output = trainer.predict(splits["test"], metric_key_prefix="test")
    predicted = np.argmax(output.predictions, axis=-1)
    truth, guess = [], []
    for row_labels, row_predicted in zip(output.label_ids, predicted):
        keep = row_labels != -100
        truth.append([names[i] for i in row_labels[keep]])
        guess.append([names[i] for i in row_predicted[keep]])
    metrics.update(output.metrics, test_f1=f1_score(truth, guess), thread_trial_s=trial)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "all_results.json").write_text(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
