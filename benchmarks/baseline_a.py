"""Baseline (A): a plain transformers Trainer script written the way the official examples write it.

No hfft. One thread (the setting the issue measured (A) at). Preprocessing is never cached across runs:
- text (run_glue.py): pad every example to `max_length`, no length grouping, `load_from_cache_file=False`
  (as with `--overwrite_cache`), full logits gathered for the metric;
- image (run_image_classification.py): decode and run the image processor per batch (`set_transform`);
- audio (run_audio_classification.py): decode, resample, crop and extract features per batch (`set_transform`).
Started by run.py: `python benchmarks/baseline_a.py --spec JSON --out FILE`.
"""

from __future__ import annotations

from typing import Any

from common import (
    classifier,
    folder_rows,
    image_folders,
    load_clip,
    set_threads,
    text_csvs,
    train_and_test,
    whisper_classifier,
    whisper_extractor,
    worker_args,
    write_result,
)


def text(spec: dict[str, Any]) -> dict[str, Any]:
    from transformers import default_data_collator

    raw, tokenizer, label2id = text_csvs(spec)

    def preprocess(batch: dict[str, list]) -> dict[str, list]:
        encoded = tokenizer(batch["text"], padding="max_length", max_length=spec["max_length"], truncation=True)
        encoded["labels"] = [label2id[name] for name in batch["label"]]
        return encoded

    encoded = raw.map(preprocess, batched=True, load_from_cache_file=False, remove_columns=["text", "label"])
    model = classifier("AutoModelForSequenceClassification", spec, list(label2id))
    return train_and_test(spec, model, encoded["train"], encoded["test"], default_data_collator)


def image(spec: dict[str, Any]) -> dict[str, Any]:
    from transformers import default_data_collator

    raw, processor, size = image_folders(spec)

    def transform(batch: dict[str, list]) -> dict[str, Any]:
        pixels = processor([img.convert("RGB") for img in batch["image"]], size=size, return_tensors="pt")
        return {"pixel_values": pixels["pixel_values"], "labels": batch["label"]}

    raw.set_transform(transform)
    model = classifier("AutoModelForImageClassification", spec, raw["train"].features["label"].names)
    return train_and_test(spec, model, raw["train"], raw["test"], default_data_collator)


def audio(spec: dict[str, Any]) -> dict[str, Any]:
    import datasets
    from transformers import default_data_collator

    raw = datasets.DatasetDict(
        {split: datasets.Dataset.from_dict(folder_rows(spec["data"][split], (".wav",))) for split in ("train", "test")}
    )
    names = sorted(set(raw["train"]["label"]))
    label2id = {name: i for i, name in enumerate(names)}
    extractor = whisper_extractor(spec["model"], spec["seconds"])
    rate = extractor.sampling_rate

    def transform(batch: dict[str, list]) -> dict[str, Any]:
        waves = [load_clip(path, rate, extractor.n_samples) for path in batch["path"]]
        features = extractor(waves, sampling_rate=rate, return_tensors="pt")
        return {"input_features": features["input_features"], "labels": [label2id[n] for n in batch["label"]]}

    raw.set_transform(transform)
    model = whisper_classifier(spec, names, extractor)
    return train_and_test(spec, model, raw["train"], raw["test"], default_data_collator)


if __name__ == "__main__":
    spec, out = worker_args()
    set_threads(spec.get("threads"))
    write_result(out, spec, **{"text": text, "image": image, "audio": audio}[spec["case"]](spec))
