"""Baseline (A): a plain transformers Trainer script written the way the official examples write it.

Text (run_glue.py style): pad every example to `max_length`, no length grouping, preprocessing
recomputed on every run (`load_from_cache_file=False`, as with `--overwrite_cache`), full logits
gathered for the metric. No hfft. Started by run.py: `python benchmarks/baseline_a.py --spec JSON --out FILE`.
"""

from __future__ import annotations

from typing import Any

from common import Counter, accuracy_metrics, set_threads, step_timer, training_numbers, worker_args, write_result


def text(spec: dict[str, Any]) -> dict[str, Any]:
    import datasets
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    raw = datasets.load_dataset("csv", data_files={"train": spec["data"]["train"], "test": spec["data"]["test"]})
    names = sorted(set(raw["train"]["label"]))
    label2id = {name: i for i, name in enumerate(names)}
    tokenizer = AutoTokenizer.from_pretrained(spec["model"])

    def preprocess(batch: dict[str, list]) -> dict[str, list]:
        encoded = tokenizer(batch["text"], padding="max_length", max_length=spec["max_length"], truncation=True)
        encoded["labels"] = [label2id[name] for name in batch["label"]]
        return encoded

    encoded = raw.map(preprocess, batched=True, load_from_cache_file=False, remove_columns=["text", "label"])
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
    counter, timer = Counter(default_data_collator), step_timer()
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
        accuracy=metrics["eval_accuracy"],
        eval_samples_per_second=metrics["eval_samples_per_second"],
    )


if __name__ == "__main__":
    spec, out = worker_args()
    set_threads(spec.get("threads"))
    write_result(out, spec, **{"text": text}[spec["case"]](spec))
