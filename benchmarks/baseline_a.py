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

from common import folder_rows, load_clip, set_threads, train_and_test, whisper_extractor, worker_args, write_result


def text(spec: dict[str, Any]) -> dict[str, Any]:
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, default_data_collator

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
        spec["model"], num_labels=len(names), id2label=dict(enumerate(names)), ignore_mismatched_sizes=True
    )
    return train_and_test(spec, model, encoded["train"], encoded["test"], default_data_collator)


def image(spec: dict[str, Any]) -> dict[str, Any]:
    import datasets
    from transformers import AutoImageProcessor, AutoModelForImageClassification, default_data_collator

    raw = datasets.DatasetDict(
        {
            split: datasets.load_dataset("imagefolder", data_dir=spec["data"][split])["train"]
            for split in ("train", "test")
        }
    )
    names = raw["train"].features["label"].names
    processor = AutoImageProcessor.from_pretrained(spec["model"])
    size = {"height": spec["image_size"], "width": spec["image_size"]}

    def transform(batch: dict[str, list]) -> dict[str, Any]:
        pixels = processor([img.convert("RGB") for img in batch["image"]], size=size, return_tensors="pt")
        return {"pixel_values": pixels["pixel_values"], "labels": batch["label"]}

    raw.set_transform(transform)
    model = AutoModelForImageClassification.from_pretrained(
        spec["model"], num_labels=len(names), id2label=dict(enumerate(names)), ignore_mismatched_sizes=True
    )
    return train_and_test(spec, model, raw["train"], raw["test"], default_data_collator)


def audio(spec: dict[str, Any]) -> dict[str, Any]:
    import datasets
    from transformers import AutoModelForAudioClassification, default_data_collator

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
    model = AutoModelForAudioClassification.from_pretrained(
        spec["model"],
        num_labels=len(names),
        id2label=dict(enumerate(names)),
        max_source_positions=extractor.nb_max_frames // 2,
        ignore_mismatched_sizes=True,  # Whisper's positions are sinusoids: re-created for the shorter input
    )
    for conv in (model.encoder.conv1, model.encoder.conv2):  # as run_audio_classification's freeze_feature_encoder
        conv.requires_grad_(False)
    return train_and_test(spec, model, raw["train"], raw["test"], default_data_collator)


if __name__ == "__main__":
    spec, out = worker_args()
    set_threads(spec.get("threads"))
    write_result(out, spec, **{"text": text, "image": image, "audio": audio}[spec["case"]](spec))
