"""Baseline (B) for speech recognition: the plain `run_speech_recognition_seq2seq.py`-style Seq2SeqTrainer script a
careful user writes for Whisper.

No hfft. audiofolder-style directories (metadata.csv: file_name, text) read by hand; clips decoded, resampled,
padded and turned into log-mel features once (`datasets.map`), with Whisper's window shortened to the clips
(`--seconds`, as hfft's max_duration) and clips longer than that dropped (as hfft does); transcripts tokenised
once; conv front end frozen; labels padded with -100; greedy decoding on the test split and WER with jiwer.
Writes OUT/all_results.json as `hfft train` does, so benchmarks/asr.py reads both the same way:

    python benchmarks/asr_baseline.py --model DIR --train DIR --test DIR --out DIR [--bf16]
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from baseline_b import best_threads
from common import load_clip, whisper_extractor


def read_folder(root: str) -> list[tuple[str, str]]:
    with open(Path(root) / "metadata.csv", newline="", encoding="utf-8") as f:
        return [(str(Path(root) / row["file_name"]), row["text"]) for row in csv.DictReader(f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("--model", "--train", "--test", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=1e-5)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bf16", action="store_true", help="(B+bf16): bf16 autocast, as on a CPU with native bf16")
    args = parser.parse_args()

    import datasets
    import jiwer
    import soundfile
    import torch
    from transformers import (
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
        WhisperForConditionalGeneration,
        WhisperTokenizer,
    )

    extractor = whisper_extractor(args.model, args.seconds)
    tokenizer = WhisperTokenizer.from_pretrained(args.model)
    if tokenizer.pad_token is None:  # Whisper's convention; padded label positions become -100 anyway
        tokenizer.pad_token = tokenizer.eos_token
    rate = extractor.sampling_rate

    def prepare(batch: dict[str, list]) -> dict[str, Any]:
        waves = [load_clip(path, rate, extractor.n_samples) for path in batch["path"]]
        features = extractor(waves, sampling_rate=rate, return_tensors="np")["input_features"]
        return {"input_features": features, "labels": tokenizer(batch["text"]).input_ids}

    splits = {}
    for name, root in (("train", args.train), ("test", args.test)):
        rows = [(p, t) for p, t in read_folder(root) if soundfile.info(p).duration <= args.seconds]
        raw = datasets.Dataset.from_dict({"path": [p for p, _ in rows], "text": [t for _, t in rows]})
        splits[name] = raw.map(prepare, batched=True, batch_size=16, remove_columns=["path", "text"])
    model = WhisperForConditionalGeneration.from_pretrained(
        args.model, max_source_positions=extractor.nb_max_frames // 2, ignore_mismatched_sizes=True
    )
    for conv in (model.model.encoder.conv1, model.model.encoder.conv2):
        conv.requires_grad_(False)
    model.generation_config.max_new_tokens = args.max_new_tokens
    start = model.config.decoder_start_token_id

    def collate(rows: list[dict[str, Any]]) -> dict[str, Any]:
        features = torch.tensor([row["input_features"] for row in rows], dtype=torch.float32)
        labels = tokenizer.pad({"input_ids": [row["labels"] for row in rows]}, return_tensors="pt")
        ids = labels["input_ids"].masked_fill(labels["attention_mask"].ne(1), -100)
        if (ids[:, 0] == start).all():  # the model prepends the start token itself
            ids = ids[:, 1:]
        return {"input_features": features, "labels": ids}

    trial = best_threads(model, collate([splits["train"][i] for i in range(args.batch_size)]))
    training_args = Seq2SeqTrainingArguments(
        output_dir=args.out,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        seed=args.seed,
        bf16=args.bf16,
        predict_with_generate=True,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=5,
        report_to="none",
        use_cpu=True,
        remove_unused_columns=False,
    )
    trainer = Seq2SeqTrainer(model=model, args=training_args, train_dataset=splits["train"], data_collator=collate)
    metrics = dict(trainer.train().metrics)
    output = trainer.predict(splits["test"], metric_key_prefix="test")
    generated = [[i for i in row if i >= 0] for row in output.predictions]  # batches are padded with -100
    predictions = tokenizer.batch_decode(generated, skip_special_tokens=True)
    label_ids = [[i for i in row if i != -100] for row in output.label_ids]
    references = tokenizer.batch_decode(label_ids, skip_special_tokens=True)
    metrics.update(output.metrics, test_wer=jiwer.wer(references, predictions), thread_trial_s=trial)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "all_results.json").write_text(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
