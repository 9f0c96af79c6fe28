"""Baseline (B): the best plain transformers Trainer script a careful user writes.

No hfft. Preprocessing runs once with `datasets.map` (cached across runs) and training runs at the best
thread count for the machine: before training, one batch is timed at 1 to `cores` threads and the fastest
count is kept (run.py can also pin counts: `--b-threads 1,2`).
- text: truncate without padding, pad each batch dynamically (`DataCollatorWithPadding`);
- image: decode + resize + normalise once, stored as arrays;
- audio: decode + resample + crop + log-mel once, stored as arrays (Whisper shortened to the clip length).
Started by run.py: `python benchmarks/baseline_b.py --spec JSON --out FILE`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from common import (
    classifier,
    folder_rows,
    image_folders,
    load_clip,
    text_csvs,
    train_and_test,
    whisper_classifier,
    whisper_extractor,
    worker_args,
    write_csv,
    write_result,
)


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


def run(spec: dict[str, Any], model: Any, encoded: Any, collator: Any, **extra: Any) -> dict[str, Any]:
    first = collator([encoded["train"][i] for i in range(spec["batch_size"])])
    trial = best_threads(model, first)
    return dict(train_and_test(spec, model, encoded["train"], encoded["test"], collator, **extra), thread_trial_s=trial)


def text(spec: dict[str, Any]) -> dict[str, Any]:
    from transformers import DataCollatorWithPadding

    raw, tokenizer, label2id = text_csvs(spec)

    def preprocess(batch: dict[str, list]) -> dict[str, list]:
        encoded = tokenizer(batch["text"], max_length=spec["max_length"], truncation=True)
        encoded["labels"] = [label2id[name] for name in batch["label"]]
        return encoded

    encoded = raw.map(preprocess, batched=True, remove_columns=["text", "label"])
    model = classifier("AutoModelForSequenceClassification", spec, list(label2id))
    return run(spec, model, encoded, DataCollatorWithPadding(tokenizer))


def image(spec: dict[str, Any]) -> dict[str, Any]:
    from transformers import default_data_collator

    raw, processor, size = image_folders(spec)

    def preprocess(batch: dict[str, list]) -> dict[str, Any]:
        pixels = processor([img.convert("RGB") for img in batch["image"]], size=size, return_tensors="np")
        return {"pixel_values": pixels["pixel_values"], "labels": batch["label"]}

    names = raw["train"].features["label"].names
    encoded = raw.map(preprocess, batched=True, remove_columns=["image", "label"]).with_format("torch")
    model = classifier("AutoModelForImageClassification", spec, names)
    return run(spec, model, encoded, default_data_collator)


def audio(spec: dict[str, Any]) -> dict[str, Any]:
    import datasets
    from transformers import default_data_collator

    files = {}
    for split in ("train", "test"):  # a file-backed dataset, so that `map` results are cached
        rows = folder_rows(spec["data"][split], (".wav",))
        files[split] = str(Path(spec["data"][split]).parent / f"bench-{split}.csv")
        write_csv(Path(files[split]), list(zip(rows["path"], rows["label"])))
    raw = datasets.load_dataset("csv", data_files=files).rename_column("text", "path")
    names = sorted(set(raw["train"]["label"]))
    label2id = {name: i for i, name in enumerate(names)}
    extractor = whisper_extractor(spec["model"], spec["seconds"])
    rate = extractor.sampling_rate

    def preprocess(batch: dict[str, list]) -> dict[str, Any]:
        waves = [load_clip(path, rate, extractor.n_samples) for path in batch["path"]]
        features = extractor(waves, sampling_rate=rate, return_tensors="np")
        return {"input_features": features["input_features"], "labels": [label2id[n] for n in batch["label"]]}

    encoded = raw.map(preprocess, batched=True, remove_columns=["path", "label"]).with_format("torch")
    model = whisper_classifier(spec, names, extractor)
    return run(spec, model, encoded, default_data_collator)


if __name__ == "__main__":
    spec, out = worker_args()
    if spec.get("threads"):
        os.environ["BENCH_THREADS"] = str(spec["threads"])
    write_result(out, spec, **{"text": text, "image": image, "audio": audio}[spec["case"]](spec))
