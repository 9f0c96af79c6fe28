"""Baseline (B): the best plain transformers Trainer script a careful user writes.

Text: truncate without padding and pad each batch dynamically (`DataCollatorWithPadding`), tokenise once
with `datasets`' cache, and run at the best thread count for the machine: before training it times one batch at 1 to
`cores` threads and keeps the fastest (run.py can also pin counts: `--b-threads 1,2`). No hfft. Started by run.py:
`python benchmarks/baseline_b.py --spec JSON --out FILE`.
"""

from __future__ import annotations

import os
from typing import Any

from common import Counter, accuracy_metrics, step_timer, training_numbers, worker_args, write_result


def best_threads(model: Any, batch: dict[str, Any], tries: int = 3) -> dict[int, float]:
    """The careful user's thread count: forward + backward of one training batch at 1..cores threads,
    interleaved, best of `tries`; the fastest count is kept. Returns the seconds per count."""
    import time

    import torch

    if os.environ.get("BENCH_THREADS"):  # run.py pinned a count
        torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
        return {}
    model.train()
    seconds: dict[int, float] = {}
    for _ in range(tries):
        for threads in range(1, len(os.sched_getaffinity(0)) + 1):
            torch.set_num_threads(threads)
            started = time.perf_counter()
            model(**batch).loss.backward()
            seconds[threads] = min(seconds.get(threads, float("inf")), time.perf_counter() - started)
    model.zero_grad(set_to_none=True)
    torch.set_num_threads(min(seconds, key=seconds.get))
    return {t: round(s, 3) for t, s in seconds.items()}


def text(spec: dict[str, Any]) -> dict[str, Any]:
    import datasets
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    raw = datasets.load_dataset("csv", data_files={"train": spec["data"]["train"], "test": spec["data"]["test"]})
    names = sorted(set(raw["train"]["label"]))
    label2id = {name: i for i, name in enumerate(names)}
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])

    def preprocess(batch: dict[str, list]) -> dict[str, list]:
        encoded = tokenizer(batch["text"], max_length=spec["max_length"], truncation=True)
        encoded["labels"] = [label2id[name] for name in batch["label"]]
        return encoded

    encoded = raw.map(preprocess, batched=True, remove_columns=["text", "label"])
    model = AutoModelForSequenceClassification.from_pretrained(
        spec["model"],
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        label2id=label2id,
        ignore_mismatched_sizes=True,
    )
    args = TrainingArguments(
        output_dir=spec["output_dir"],
        num_train_epochs=spec["epochs"],
        per_device_train_batch_size=spec["batch_size"],
        per_device_eval_batch_size=spec["eval_batch_size"],
        learning_rate=spec["learning_rate"],
        seed=spec["seed"],
        eval_strategy="no",
        save_strategy="no",
        logging_steps=10,
        report_to="none",
        use_cpu=True,
    )
    collator = DataCollatorWithPadding(tokenizer)
    threads = best_threads(model, collator([encoded["train"][i] for i in range(spec["batch_size"])]))
    counter, timer = Counter(collator), step_timer()
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=encoded["train"],
        data_collator=counter,
        processing_class=tokenizer,
        compute_metrics=accuracy_metrics,
        callbacks=[timer],
    )
    counter.watch(trainer)
    numbers = training_numbers(trainer, timer, counter, trainer.train().metrics)
    counter.training = False
    metrics = trainer.evaluate(encoded["test"])
    return dict(
        numbers,
        thread_trial_s=threads,
        accuracy=metrics["eval_accuracy"],
        eval_samples_per_second=metrics["eval_samples_per_second"],
    )


if __name__ == "__main__":
    spec, out = worker_args()
    if spec.get("threads"):
        os.environ["BENCH_THREADS"] = str(spec["threads"])
    write_result(out, spec, **{"text": text}[spec["case"]](spec))
