"""Speech recognition on tiny random Whisper and wav2vec2-CTC checkpoints and synthetic "letter" speech."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jiwer
import numpy as np
import pytest
import yaml
from asr_fixtures import make_speech_folder, save_tiny_wav2vec2_ctc, save_tiny_whisper_asr
from conftest import kill_at_first_checkpoint, resume_killed, with_sections

from hfft import SpeechRecognition
from hfft.errors import ConfigError, DataError
from hfft.outputs import load_run
from hfft.transcripts import english_normalizer, speech_metrics, write_ctc_tokenizer

HFFT = shutil.which("hfft") or str(Path(sys.executable).parent / "hfft")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_speech_folder(tmp_path_factory.mktemp("speech"), n_train=24)


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_whisper_asr(tmp_path_factory.mktemp("whisper"))


@pytest.fixture(scope="module")
def tiny_ctc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_wav2vec2_ctc(tmp_path_factory.mktemp("ctc"))


def asr_config(model: Path, speech: Path, out: Path, **extra) -> dict:
    config = {
        "task": "speech-recognition",
        "model": str(model),
        "data": {key: str(speech / key) for key in ("train", "validation", "test")},
        "preprocessing": {"max_duration": 3.0},
        "labels": {"max_new_tokens": 12, "zero_shot_baseline": False},
        "regularization": {"augment": False},
        "training": {
            "output_dir": str(out),
            "num_train_epochs": 1,
            "per_device_train_batch_size": 8,
            "logging_steps": 2,
            "use_cpu": True,
            "save_strategy": "no",
            "eval_strategy": "no",
        },
    }
    return with_sections(config, extra)


def ctc_config(model: Path, speech: Path, out: Path, **extra) -> dict:
    """Full fine-tuning that learns the letters within the test (see asr_fixtures.make_speech_folder)."""
    training = {"num_train_epochs": 60, "learning_rate": 3e-3, "lr_scheduler_type": "constant", "warmup_steps": 0,
                "per_device_train_batch_size": 8, "bf16": False}  # fmt: skip
    return asr_config(model, speech, out, tuning={"method": "full"}, training={**training, **extra.pop("training", {})},
                      preprocessing={"freeze_feature_encoder": False}, **extra)  # fmt: skip


def prepared(config: dict) -> SpeechRecognition:
    """A recipe with its data, tokenizer and model loaded, as `train()` has them before the Trainer starts."""
    recipe = SpeechRecognition(config)
    path = recipe.preflight(False)
    splits = recipe.load_splits()
    recipe.processor = recipe.load_processor(path)
    recipe.load_target_processor(path)
    recipe.encoded = {name: recipe.encode(ds, name) for name, ds in splits.items()}
    recipe.model = recipe.build_model(path)
    return recipe


# ----------------------------------------------------------------------------- targets, collation, decoding


def test_collator_keeps_the_final_end_of_text_token_and_masks_only_padding(tiny_whisper, speech, tmp_path):
    recipe = prepared(asr_config(tiny_whisper, speech, tmp_path / "run"))
    tokenizer = recipe.tokenizer
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # the trap: masking by id would drop end-of-text
    rows = [{"labels": tokenizer(text).input_ids} for text in ("a", "abc dd ab")]
    labels = recipe.collate_targets(rows)
    start = tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    for row, ids in zip(labels.tolist(), (r["labels"] for r in rows)):
        kept = [t for t in row if t != -100]
        assert kept == ids[1:], "the decoder start token is left to the model, everything else is kept"
        assert kept[-1] == tokenizer.eos_token_id and start not in kept
    short = labels[0].tolist()
    assert short[len(rows[0]["labels"]) - 1 :] == [-100] * (labels.shape[1] - len(rows[0]["labels"]) + 1)


def test_ctc_targets_decode_back_exactly(tmp_path):
    from hfft.transcripts import ctc_vocabulary

    tokenizer = write_ctc_tokenizer(ctc_vocabulary(["hello", "a b", "ll"]), tmp_path / "tok")
    recipe = SpeechRecognition(task="speech-recognition")
    recipe.tokenizer, recipe._architecture = tokenizer, {"model_type": "wav2vec2"}
    for text in ("hello", "a b", "hello a b"):
        ids = tokenizer(text).input_ids
        assert recipe.decode([ids], targets=True) == [text]  # double letters and word boundaries survive
    # CTC output: repeats collapse, a blank between two l's keeps both, "|" becomes a space
    blank, ids = tokenizer.pad_token_id, tokenizer.convert_tokens_to_ids(list("hheel") + ["[PAD]", "l", "o", "|", "a"])
    assert blank == 0 and recipe.decode([ids]) == ["hello a"]


def test_wer_and_cer_equal_jiwer():
    references = ["the cat sat", "press one", "Hello, World!"]
    predictions = ["the cat sat down", "press 1", "hello world"]
    metrics = speech_metrics(references, predictions)
    assert metrics["wer"] == pytest.approx(jiwer.wer(references, predictions))
    assert metrics["cer"] == pytest.approx(jiwer.cer(references, predictions))
    # Whisper's English normaliser on both sides: case, punctuation and number formats no longer count as errors
    normalize = english_normalizer()
    expected = jiwer.wer([normalize(r) for r in references], [normalize(p) for p in predictions])
    assert metrics["wer_normalized"] == pytest.approx(expected) and expected == pytest.approx(1 / 7)
    assert metrics["wer_normalized"] < metrics["wer"] and metrics["empty_predictions"] == 0.0
    assert speech_metrics(["a b"], [""])["empty_predictions"] == 1.0


def test_language_and_task_tokens_are_generated_for_a_multilingual_checkpoint(speech, tmp_path):
    import torch

    model_dir = save_tiny_whisper_asr(tmp_path / "multilingual", multilingual=True)
    with pytest.raises(ConfigError, match="labels.language"):
        prepared(asr_config(model_dir, speech, tmp_path / "none"))
    recipe = prepared(asr_config(model_dir, speech, tmp_path / "run", labels={"language": "de"}))
    tokenizer = recipe.tokenizer
    prefix = tokenizer.convert_tokens_to_ids(["<|startoftranscript|>", "<|de|>", "<|transcribe|>"])
    assert recipe.encoded["train"][0]["labels"][:3] == prefix  # targets carry the same prefix as generation
    features = recipe.collator()([recipe.with_eval_transform(recipe.encoded["test"])[0]])["input_features"]
    seen = []  # the decoder's first input: the prompt generation starts from (not returned by generate)
    decoder = recipe.model.get_decoder()
    hook = decoder.register_forward_pre_hook(lambda _, args, kwargs: seen.append(kwargs["input_ids"]), with_kwargs=True)
    with torch.no_grad():
        recipe.model.generate(features)
    hook.remove()
    assert seen[0][0, :3].tolist() == prefix


def test_english_only_checkpoint_rejects_another_language(tiny_whisper, speech, tmp_path):
    with pytest.raises(ConfigError, match="English-only"):
        SpeechRecognition(asr_config(tiny_whisper, speech, tmp_path / "run", labels={"language": "french"})).train()


# ----------------------------------------------------------------------------- training and the run directory


def test_whisper_lora_run_reloads_with_identical_generations_and_loads_in_a_pipeline(tiny_whisper, speech, tmp_path):
    import torch
    from transformers import AutoModelForSpeechSeq2Seq, pipeline

    out = tmp_path / "run"
    config = asr_config(tiny_whisper, speech, out, labels={"zero_shot_baseline": True},
                        training={"learning_rate": 1e-2, "num_train_epochs": 2})  # fmt: skip
    recipe = SpeechRecognition(config)
    metrics = recipe.train()
    for key in ("test_wer", "test_cer", "test_zero_shot_wer", "eval_wer", "train_eval_wer", "test_empty_predictions"):
        assert key in metrics, key
    assert (out / "adapter" / "adapter_model.safetensors").is_file() and (out / "tokenizer_config.json").is_file()
    lines = (out / "transcripts_test.jsonl").read_text().splitlines()
    assert len(lines) == len(recipe.predictions["test"].label_ids) and "reference" in json.loads(lines[0])

    features = recipe.prepare_inputs([str(p) for p in sorted((speech / "test").glob("*.wav"))[:4]])["input_features"]
    with torch.no_grad():
        trained = recipe.model.generate(input_features=features)
        reloaded = load_run(out).model.generate(input_features=features)
        merged = AutoModelForSpeechSeq2Seq.from_pretrained(out).eval().generate(input_features=features)
    assert torch.equal(trained, reloaded)
    assert torch.equal(trained, merged)  # merged weights == adapter on the base

    asr = pipeline("automatic-speech-recognition", model=str(out))
    clip = next((speech / "test").glob("*.wav"))
    result = asr(_clip(clip))
    assert isinstance(result["text"], str) and "<|" not in result["text"]
    predicted = load_run(out).predict([str(clip)])
    assert set(predicted[0]) == {"text"} and "<|" not in predicted[0]["text"]
    from hfft.outputs import export_merged

    exported = export_merged(out, tmp_path / "export")  # LoRA merged, with tokenizer and feature extractor
    assert pipeline("automatic-speech-recognition", model=str(exported))(_clip(clip))["text"] == result["text"]


def _clip(path: Path) -> dict:
    """A clip at 16 kHz for the pipeline (it needs torchaudio to resample, and ffmpeg to read files)."""
    from hfft.modalities.audio.io import load_waveform

    return {"raw": load_waveform(str(path), 16000)[0], "sampling_rate": 16000}


def test_ctc_builds_its_vocabulary_and_learns_the_training_clips(tiny_ctc, speech, tmp_path):
    out = tmp_path / "run"
    metrics = SpeechRecognition(ctc_config(tiny_ctc, speech, out)).train()
    assert metrics["train_eval_wer"] < 0.5, metrics  # targets, loss and decoding agree
    vocab = json.loads((out / "vocab.json").read_text())
    assert {"[PAD]", "[UNK]", "|", "a", "b"} <= set(vocab)
    info = json.loads((out / "run_info.json").read_text())
    assert info["model_kind"] == "ctc" and info["vocabulary"] == vocab
    from transformers import pipeline

    clip = next((speech / "train").glob("*.wav"))
    assert isinstance(pipeline("automatic-speech-recognition", model=str(out))(_clip(clip))["text"], str)
    assert load_run(out).evaluate()["eval_wer"] == pytest.approx(metrics["test_wer"], abs=1e-6)


def test_killed_ctc_run_resumes_to_the_same_final_wer(tiny_ctc, speech, tmp_path):
    settings = {"save_strategy": "steps", "save_steps": 10, "save_total_limit": 2, "num_train_epochs": 50}
    out = tmp_path / "killed"
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(ctc_config(tiny_ctc, speech, out, training=settings)))
    killer = kill_at_first_checkpoint([HFFT, "train", recipe_file], out, ENV)
    # Meanwhile, the uninterrupted reference run, in this process.
    reference = SpeechRecognition(ctc_config(tiny_ctc, speech, tmp_path / "reference", training=settings)).train()
    metrics = resume_killed(killer, [HFFT, "train", recipe_file], out, ENV)
    assert reference["test_wer"] < 0.9  # it learned something: equal numbers mean something
    for key in ("test_wer", "test_cer", "test_loss", "train_eval_wer"):
        assert metrics[key] == pytest.approx(reference[key], rel=1e-4, abs=1e-5), key


# ----------------------------------------------------------------------------- bad inputs


def rewrite_metadata(folder: Path, edit) -> Path:
    """Copy an audiofolder split and change its metadata rows with ``edit(rows) -> rows``."""
    rows = list(csv.DictReader(open(folder / "metadata.csv", encoding="utf-8")))
    rows = edit(rows)
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


def test_missing_transcript_column_is_named(tiny_whisper, speech, tmp_path):
    train = shutil.copytree(speech / "train", tmp_path / "train")
    rewrite_metadata(train, lambda rows: [{"file_name": r["file_name"], "words": r["text"]} for r in rows])
    config = asr_config(tiny_whisper, speech, tmp_path / "run")
    config["data"]["train"] = str(train)
    with pytest.raises(DataError, match=r"data.label_column.*text, sentence, transcription.*file_name|words"):
        SpeechRecognition(config).train()


def test_bad_rows_are_counted_and_named(tiny_whisper, speech, tmp_path):
    train = shutil.copytree(speech / "train", tmp_path / "train")
    (train / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    (train / "notes.wav").write_text("this is not audio")
    long_text = " ".join(["abc"] * 40)

    def edit(rows: list[dict]) -> list[dict]:
        rows[0]["text"] = "   "
        rows[1]["text"] = "..."  # empty once punctuation is removed
        rows[2]["text"] = long_text
        return rows + [{"file_name": "broken.wav", "text": "a"}, {"file_name": "notes.wav", "text": "b"}]

    rewrite_metadata(train, edit)
    config = asr_config(
        tiny_whisper, speech, tmp_path / "run", labels={"remove_punctuation": True, "max_target_tokens": 40}
    )
    config["data"]["train"] = str(train)
    config["data"]["max_bad_fraction"] = 0.2
    recipe = prepared(config)
    dropped, examples = recipe.report.splits["train"].dropped, " ".join(recipe.report.splits["train"].examples)
    assert dropped["empty_transcript"] == 2 and dropped["long_transcript"] == 1 and dropped["corrupt_audio"] == 2
    assert "broken.wav" in examples and "notes.wav" in examples and "tokens > 40" in examples
    assert len(recipe.encoded["train"]) == 24 - 3
    truncated = prepared({**config, "labels": {**config["labels"], "long_targets": "truncate"}})
    assert truncated.report.splits["train"].notes["truncated_transcripts"] == 1
    assert max(len(ids) for ids in truncated.encoded["train"]["labels"]) == 40


def test_clips_longer_than_the_window_are_dropped_not_cropped(tiny_whisper, speech, tmp_path):
    recipe = prepared(asr_config(tiny_whisper, speech, tmp_path / "run", preprocessing={"max_duration": 1.0}))
    report = recipe.report.splits["train"]
    assert report.dropped.get("too_long", 0) > 0 and "> 1 s" in " ".join(report.examples)
    assert report.rows_out == len(recipe.encoded["train"]) == 24 - report.dropped["too_long"]


def test_speech_recognition_robustness_reports_wer(tiny_ctc, speech, tmp_path):
    from hfft.robustness import run_robustness

    out = tmp_path / "run"
    SpeechRecognition(ctc_config(tiny_ctc, speech, out, training={"num_train_epochs": 10})).train()
    result = run_robustness(out, names=["additive_noise"], severities=(1, 5), max_samples=6)
    assert result["metric"] == "wer" and set(result["by_metric"]) == {"wer", "cer"}
    assert result["corruptions"]["additive_noise"]["5"] >= result["corruptions"]["additive_noise"]["1"] - 1e-9
    assert np.isfinite(result["clean_wer"])


def test_compare_reports_wer_for_speech_recognition_runs(tiny_whisper, speech, tmp_path):
    from hfft.compare import run_comparison

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(asr_config(tiny_whisper, speech, tmp_path / "base", tuning={"method": "full"})))
    rows = run_comparison(str(recipe), ["none", "label_smoothing"], out_dir=tmp_path / "cmp", severities=(1,),
                          max_samples=4)  # fmt: skip
    for row in rows:
        assert row["metric"] == "wer" and np.isfinite(row["mean_corrupted_wer"])
        # lower is better: the gap is how much better the model does on train than on validation
        assert row["generalization_gap"] == pytest.approx(row["val_wer"] - row["train_wer"])
    assert "| label_smoothing |" in (tmp_path / "cmp" / "compare.md").read_text()


def test_speech_augmentation_and_corruptions_never_cut_the_clip():
    from types import SimpleNamespace

    from hfft import AudioClassification
    from hfft.modalities.audio.augment import augment

    rng = np.random.default_rng(0)
    wave = rng.uniform(-0.5, 0.5, 16000).astype(np.float32)
    assert "time_shift" in AudioClassification.corruption_suite()  # classification keeps its suite
    suite = SpeechRecognition.corruption_suite()
    assert "time_shift" not in suite and "silence_pad" in suite
    for severity in (1, 5):
        padded, rate = suite["silence_pad"]((wave, 16000), severity, np.random.default_rng(severity))
        start = int(np.flatnonzero(padded)[0])
        assert rate == 16000 and len(padded) > len(wave) and np.array_equal(padded[start : start + len(wave)], wave)
    options = SimpleNamespace(gain_prob=0.0, gain_db=[0, 0], shift_prob=1.0, shift_max_seconds=0.1, noise_prob=0.0)
    for seed in range(5):
        shifted = augment(wave, 16000, options, np.random.default_rng(seed), keep_length=False)
        start = int(np.flatnonzero(shifted)[0])
        assert np.array_equal(shifted[start : start + len(wave)], wave)  # moved in time, nothing cut


def test_two_process_run_evaluates_every_test_clip_once(tiny_whisper, speech, tmp_path):
    out = tmp_path / "two"
    config = asr_config(tiny_whisper, speech, out, training={"per_device_eval_batch_size": 3})  # 8 clips: uneven
    recipe_file = tmp_path / "two.yaml"
    recipe_file.write_text(yaml.safe_dump(config))
    launched = subprocess.run([HFFT, "train", recipe_file, "--num-processes", "2"], env=ENV, capture_output=True,
                              text=True, timeout=600)  # fmt: skip
    assert launched.returncode == 0, launched.stderr[-3000:]
    metrics = json.loads((out / "all_results.json").read_text())
    info = json.loads((out / "run_info.json").read_text())
    assert info["world_size"] == 2 and len(set(info["rank_weight_fingerprints"])) == 1
    references = [row["text"] for row in csv.DictReader(open(speech / "test" / "metadata.csv", encoding="utf-8"))]
    rows = [json.loads(line) for line in (out / "transcripts_test.jsonl").read_text().splitlines()]
    # gathered from both ranks without the clips repeated to even out the last batch (Seq2SeqTrainer keeps them)
    assert sorted(r["reference"] for r in rows) == sorted(references)
    assert np.isfinite(metrics["test_wer"])
