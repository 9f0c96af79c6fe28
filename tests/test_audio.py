"""Audio classification end to end: real tiny wav2vec2 / Whisper, real audio files, real Trainer."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from audio_fixtures import TONES, make_audio_folder, save_tiny_ast, save_tiny_wav2vec2, save_tiny_whisper, tone
from conftest import with_sections

from hfft import AudioClassification
from hfft.errors import ConfigError, DataError
from hfft.modalities.audio.augment import add_noise, augment, center_crop, mask_spans, random_crop, time_shift
from hfft.modalities.audio.io import load_audio_folder, load_waveform, problem
from hfft.outputs import load_run


def dominant_frequency(wave: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


def audio_config(model, train, out, **extra) -> dict:
    config = {
        "task": "audio-classification",
        "model": str(model),
        "data": {"train": str(train)},
        "preprocessing": {"max_duration": 0.5},
        "training": {
            "output_dir": str(out),
            "num_train_epochs": 6,
            "per_device_train_batch_size": 8,
            "learning_rate": 1e-2,
            "logging_steps": 2,
            "use_cpu": True,
            "save_strategy": "no",
            "eval_strategy": "no",
        },
    }
    return with_sections(config, extra)


def assert_loss_falls(out, metrics) -> None:
    """Logged (augmented, mini-batch) losses fall; the unaugmented loss on train rows ends far below chance."""
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert np.mean(losses[-4:]) < losses[0] - 0.2, losses
    assert metrics["train_eval_loss"] < 0.25 < np.log(2), metrics


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_audio_folder(tmp_path_factory.mktemp("audio") / "tones")


@pytest.fixture(scope="module")
def wav2vec2_lora(folder, tmp_path_factory):
    root = tmp_path_factory.mktemp("w2v")
    model, out = save_tiny_wav2vec2(root / "model"), root / "run"
    recipe = AudioClassification(audio_config(model, folder, out, augmentation={"mask_time_prob": 0.05}))
    return recipe, recipe.train(), out


@pytest.fixture(scope="module")
def hub_style_test_set(tmp_path_factory):
    """A saved dataset with a `datasets.Audio` column holding WAV bytes, as Hub datasets do."""
    import io

    import datasets

    rng = np.random.default_rng(5)
    rows = {"audio": [], "label": []}
    for i in range(8):
        label = list(TONES)[i % 2]
        buffer = io.BytesIO()
        sf.write(buffer, tone(TONES[label], 16000, 0.5, rng), 16000, format="WAV")
        rows["audio"].append({"bytes": buffer.getvalue(), "path": f"clip{i}.wav"})
        rows["label"].append(label)
    features = datasets.Features(audio={"bytes": datasets.Value("binary"), "path": datasets.Value("string")})
    features["label"] = datasets.Value("string")
    dataset = datasets.Dataset.from_dict(rows, features=features).cast_column("audio", datasets.Audio())
    path = tmp_path_factory.mktemp("hub") / "tones_test"
    dataset.save_to_disk(str(path))
    return path


# ----------------------------------------------------------------------------- audio I/O and augmentation


def test_decoding_resamples_8k_and_44k_and_downmixes_stereo(tmp_path):
    rng = np.random.default_rng(0)
    for rate, channels in ((8000, 1), (44100, 1), (22050, 2)):
        wave = np.sin(2 * np.pi * 1000 * np.arange(rate) / rate).astype(np.float32)
        sf.write(tmp_path / "x.wav", np.stack([wave] * channels, axis=1), rate)
        out, source_rate, source_channels = load_waveform(str(tmp_path / "x.wav"), 16000)
        assert (source_rate, source_channels) == (rate, channels)
        assert abs(len(out) - 16000) <= 1 and out.dtype == np.float32
        assert dominant_frequency(out, 16000) == pytest.approx(1000, abs=2)
        assert np.abs(out).max() == pytest.approx(1.0, abs=0.05)
    array, _, _ = load_waveform((tone(300, 8000, 0.5, rng), 8000), 16000)
    assert len(array) == 8000


def test_bad_files_get_named_reasons(tmp_path):
    sf.write(tmp_path / "silent.wav", np.zeros(800, np.float32), 8000)
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 8000)
    sf.write(tmp_path / "nan.wav", np.full(800, np.nan, np.float32), 8000, subtype="FLOAT")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    (tmp_path / "voice.m4a").write_bytes(b"\x00\x00\x00\x18ftypM4A ")
    sf.write(tmp_path / "ok.flac", tone(300, 8000, 0.2, np.random.default_rng(0)), 8000)
    sf.write(tmp_path / "rate100.wav", tone(300, 8000, 0.2, np.random.default_rng(0)), 100)  # a wrong header
    found = {name: problem(str(tmp_path / name), -70.0) for name in sorted(p.name for p in tmp_path.iterdir())}
    assert found["ok.flac"] is None
    assert found["silent.wav"].startswith("silent_audio: ") and "silent.wav" in found["silent.wav"]
    assert found["empty.wav"].startswith("empty_audio: ")
    assert found["nan.wav"].startswith("corrupt_audio: ") and "NaN" in found["nan.wav"]
    assert found["junk.wav"].startswith("corrupt_audio: ") and "junk.wav" in found["junk.wav"]
    assert found["rate100.wav"].startswith("corrupt_audio: ") and "100 Hz" in found["rate100.wav"]
    assert "FFmpeg" in found["voice.m4a"] and "ffmpeg -i" in found["voice.m4a"]
    assert "file not found" in problem(str(tmp_path / "missing.wav"), -70.0)


def test_folder_loader_layouts(tmp_path, folder):
    loaded = load_audio_folder(folder, "data.train")
    train = loaded["train"]
    assert train.column_names == ["audio", "label"] and set(train["label"]) == set(TONES)
    assert len(train) == 34 and any(p.endswith("stereo.flac") for p in train["audio"])
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        for label in TONES:
            (tmp_path / "splits" / split / label).mkdir(parents=True)
            sf.write(tmp_path / "splits" / split / label / "a.wav", tone(TONES[label], 8000, 0.2, rng), 8000)
    assert sorted(load_audio_folder(tmp_path / "splits", "k")) == ["test", "train"]
    (tmp_path / "meta" / "clips").mkdir(parents=True)
    sf.write(tmp_path / "meta" / "clips" / "a.wav", tone(300, 8000, 0.2, rng), 8000)
    (tmp_path / "meta" / "metadata.csv").write_text("file_name,label\nclips/a.wav,low\nclips/b.wav,high\n")
    meta = load_audio_folder(tmp_path / "meta", "k")["train"]
    assert meta["label"] == ["low", "high"] and meta["audio"][0] == str(tmp_path / "meta" / "clips" / "a.wav")
    (tmp_path / "loose").mkdir()
    sf.write(tmp_path / "loose" / "a.wav", tone(300, 8000, 0.2, rng), 8000)
    with pytest.raises(DataError, match="outside class subfolders"):
        load_audio_folder(tmp_path / "loose", "data.train")
    (tmp_path / "csvs").mkdir()
    (tmp_path / "csvs" / "train.csv").write_text("path,label\n")
    assert load_audio_folder(tmp_path / "csvs", "k") is None  # not an audio folder: read as data files


def test_augmentations_are_measurable_and_reproducible():
    rng = np.random.default_rng(0)
    wave = tone(440, 16000, 1.0, rng)
    noisy = add_noise(wave, 10.0, rng)
    snr = 10 * np.log10(np.mean(wave**2) / np.mean((noisy - wave) ** 2))
    assert snr == pytest.approx(10.0, abs=0.3)
    shifted = time_shift(wave, 100)
    assert np.all(shifted[:100] == 0) and np.array_equal(shifted[100:], wave[:-100])
    assert np.array_equal(time_shift(wave, -100)[:-100], wave[100:])
    assert np.array_equal(center_crop(np.arange(10), 4), [3, 4, 5, 6])
    crops = {tuple(random_crop(np.arange(10), 4, rng)) for _ in range(20)}
    assert len(crops) > 1 and all(len(c) == 4 for c in crops)
    features = np.random.default_rng(1).normal(size=(8, 100))
    masked = mask_spans(features, axis=1, prob=0.2, span=10, rng=np.random.default_rng(3))
    frames = np.all(masked == features.mean(), axis=0)  # masked time frames: every mel bin set to the mean
    assert (
        masked.shape == (8, 100)
        and 10 <= frames.sum() <= 30
        and np.array_equal(masked[:, ~frames], features[:, ~frames])
    )

    class Options:
        noise_prob, noise_snr_db, gain_prob, gain_db, shift_prob, shift_max_seconds = 1, [5, 5], 1, [6, 6], 0, 0.1

    a = augment(wave, 16000, Options, np.random.default_rng(7))
    b = augment(wave, 16000, Options, np.random.default_rng(7))
    assert np.array_equal(a, b) and not np.allclose(a, wave)
    assert np.sqrt(np.mean(a**2)) > 1.5 * np.sqrt(np.mean(wave**2))  # +6 dB gain, then noise


def test_config_checks():
    for bad in ({"noise_snr_db": [30, 10]}, {"gain_prob": 1.5}, {"mask_time_length": 0}):
        with pytest.raises(ConfigError):
            AudioClassification(task="audio-classification", augmentation=bad)
    with pytest.raises(ConfigError, match="max_duration"):
        AudioClassification(preprocessing={"max_duration": 0})


def test_model_config_follows_max_duration_and_spec_augment_settings(tmp_path):
    from transformers import Wav2Vec2Config, WhisperConfig, WhisperFeatureExtractor

    WhisperFeatureExtractor(feature_size=16).save_pretrained(tmp_path)
    recipe = AudioClassification(preprocessing={"max_duration": 1.5})
    recipe.processor = recipe.load_processor(str(tmp_path))
    assert (recipe.processor.n_samples, recipe.processor.nb_max_frames) == (32000, 200)  # rounded up to 2 s
    whisper = recipe.adapt_model_config(WhisperConfig(max_source_positions=1500))
    assert whisper.max_source_positions == 100 and whisper.mask_time_prob == WhisperConfig().mask_time_prob
    recipe = AudioClassification(regularization={"augment": False}, augmentation={"mask_time_prob": 0.2})
    wav2vec2 = recipe.adapt_model_config(Wav2Vec2Config())
    assert wav2vec2.mask_time_prob == 0.2 and wav2vec2.apply_spec_augment is False
    assert AudioClassification().adapt_model_config(Wav2Vec2Config()).mask_time_prob == Wav2Vec2Config().mask_time_prob


def test_too_many_corrupt_files_is_an_error_naming_them(tmp_path):
    rng = np.random.default_rng(0)
    for label in TONES:
        (tmp_path / label).mkdir()
        sf.write(tmp_path / label / "good.wav", tone(TONES[label], 8000, 0.2, rng), 8000)
        (tmp_path / label / "bad.wav").write_bytes(b"garbage")
    recipe = AudioClassification(data={"train": str(tmp_path)})
    with pytest.raises(DataError, match=r"2 of 4 rows are corrupt.*bad\.wav"):
        recipe.load_splits()


# ----------------------------------------------------------------------------- training


def test_wav2vec2_lora_learns_mixed_rates_and_reports_corrupt_file(wav2vec2_lora, folder):
    recipe, metrics, out = wav2vec2_lora
    assert_loss_falls(out, metrics)
    assert metrics["train_eval_accuracy"] > 0.9
    assert json.loads((out / "all_results.json").read_text())["eval_accuracy"] == metrics["eval_accuracy"]
    report = json.loads((out / "data_report.json").read_text())["train"]
    assert report["dropped"] == {"corrupt_audio": 1}
    assert report["examples"][0].startswith(str(folder / "low" / "broken.wav"))
    assert report["notes"]["resampled_from"]["8000"] > 5 and report["notes"]["resampled_from"]["44100"] > 5
    assert report["notes"]["downmixed_to_mono"] == 1
    assert recipe.model.config.mask_time_prob == 0.05  # SpecAugment through the wav2vec2 config
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "preprocessor_config.json").is_file()


def test_lora_run_reloads_with_identical_logits(wav2vec2_lora, folder):
    recipe, _, out = wav2vec2_lora
    files = [str(folder / "low" / "low_0_8000.wav"), str(folder / "high" / "high_1_44100.wav")]
    recipe.model.eval()
    with torch.no_grad():
        before = recipe.model(**recipe.prepare_inputs(files)).logits
    reloaded = load_run(out)
    with torch.no_grad():
        after = reloaded.model(**reloaded.prepare_inputs(files)).logits
    assert torch.equal(before, after)
    assert [p["label"] for p in reloaded.predict(files)] == ["low", "high"]
    batch = reloaded.prepare_inputs([np.zeros(4000, np.float32) + 0.1, np.ones(16000, np.float32) * 0.1])
    assert batch["input_values"].shape == (2, 8000)  # cropped to max_duration, padded to the longest
    assert batch["attention_mask"].sum(dim=1).tolist() == [4000, 8000]


def test_whisper_encoder_is_shortened_and_trains(folder, hub_style_test_set, tmp_path):
    model, out = save_tiny_whisper(tmp_path / "whisper"), tmp_path / "run"
    config = audio_config(
        model,
        folder,
        out,
        data={"test": str(hub_style_test_set)},
        tuning={"method": "full"},
        augmentation={"mask_time_prob": 0.1, "mask_feature_prob": 0.1},
        training={"learning_rate": 3e-3},
    )
    config["preprocessing"]["max_duration"] = None  # the window comes from the clips: all 0.5 s here
    recipe = AudioClassification(config)
    metrics = recipe.train()
    assert_loss_falls(out, metrics)
    assert yaml.safe_load((out / "hfft_config.yaml").read_text())["preprocessing"]["max_duration"] == 0.5
    assert "95th percentile" in json.loads((out / "run_info.json").read_text())["clip_seconds"]["source"]
    assert metrics["test_accuracy"] >= 0.75  # bytes from a datasets.Audio column, decoded without torchcodec
    saved = json.loads((out / "config.json").read_text())
    extractor = json.loads((out / "preprocessor_config.json").read_text())
    assert saved["max_source_positions"] == 50 and extractor["n_samples"] == 16000  # 1 s, not 30 s
    assert (
        not recipe.model.encoder.conv1.weight.requires_grad and recipe.model.encoder.layers[0].fc1.weight.requires_grad
    )
    reloaded = load_run(out)
    predicted = reloaded.predict([(tone(TONES["high"], 44100, 0.5, np.random.default_rng(9)), 44100)])
    assert predicted[0]["label"] == "high"


@pytest.mark.parametrize("method", ["lora", "full"])
def test_ast_spectrogram_masking_lora_targets_and_frozen_patch_embedding(tmp_path, method):
    """AST without a Trainer: hfft's own SpecAugment on (time, mel) inputs, trainable parameters, one backward pass."""
    from hfft.labels import LabelSpace

    model = save_tiny_ast(tmp_path / "ast")
    recipe = AudioClassification(
        model=str(model),
        tuning={"method": method},
        preprocessing={"max_duration": 0.5},
        augmentation={"mask_time_prob": 0.3, "mask_time_length": 8, "mask_feature_prob": 0.3, "mask_feature_length": 4},
    )
    recipe.labels = LabelSpace(names=list(TONES), raw_values=list(TONES))
    recipe.processor = recipe.load_processor(str(model))
    recipe.model = recipe.build_model(str(model))
    assert recipe.spectrogram_axis == 0 and recipe.mask_lengths == (8, 4)
    rng = np.random.default_rng(0)
    waves = [tone(TONES["low"], 16000, 0.6, rng), tone(TONES["high"], 16000, 0.3, rng)]
    clean = recipe.features(waves, [0, 1])["input_values"]
    masked = recipe.features(waves, [0, 1], rng=np.random.default_rng(1))["input_values"]
    assert clean[0].shape == masked[0].shape == (64, 16)  # (frames, mel bins), padded by the extractor
    changed = ~np.isclose(clean[0], masked[0])
    rows, columns = changed.all(axis=1), changed.all(axis=0)  # masked frames (axis 0) and mel bins (axis 1)
    assert rows.sum() >= 8 and columns.sum() >= 4
    assert not changed[~rows][:, ~columns].any()  # nothing changed outside whole masked frames / bins
    np.random.seed(0)
    assert recipe.train_transform({"waveform": waves, "labels": [0, 1]})["input_values"][0].shape == (64, 16)
    on_cached = recipe.train_transform({"input_values": clean, "labels": [0, 1]})  # features cached: masks only
    assert on_cached["labels"] == [0, 1] and on_cached["input_values"][0].shape == (64, 16)
    assert not np.allclose(on_cached["input_values"][0], clean[0])
    inputs = recipe.collator()([{"input_values": v, "labels": i} for i, v in enumerate(masked)])
    loss = recipe.model(**inputs).loss
    loss.backward()
    names = {n for n, p in recipe.model.named_parameters() if p.requires_grad}
    assert any("classifier" in n for n in names) and not any("patch_embeddings" in n for n in names)
    if method == "lora":
        assert {n.split(".lora_A")[0].split(".")[-1] for n in names if "lora_A" in n} == {
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
        }
    else:
        assert any("attention.q_proj" in n for n in names)


def test_lora_run_directory_loads_in_pipeline_and_automodel(wav2vec2_lora, folder):
    from transformers import AutoModelForAudioClassification, pipeline

    from hfft.modalities.audio.io import load_waveform

    recipe, _, out = wav2vec2_lora
    model = AutoModelForAudioClassification.from_pretrained(out)  # merged LoRA, the run's labels
    assert model.config.id2label == recipe.labels.id2label
    classify = pipeline("audio-classification", model=str(out), top_k=None, device="cpu")
    for name in ("low/low_0_8000.wav", "high/high_1_44100.wav"):
        wave = load_waveform(str(folder / name), 16000)[0]
        scores = {r["label"]: r["score"] for r in classify({"raw": wave, "sampling_rate": 16000})}
        assert scores == pytest.approx(recipe.predict([wave])[0]["scores"], abs=1e-4)


def test_deterministic_features_are_cached_and_train_identically(folder, tmp_path):
    """Without waveform augmentation every split's log-mel features are computed once (cached by datasets); the
    run is then step for step the one that extracts them per batch. With augmentation only evaluation caches."""
    model = save_tiny_whisper(tmp_path / "whisper")
    runs = {}
    for cache in (None, False):
        out = tmp_path / f"run-{cache}"
        config = audio_config(
            model,
            folder,
            out,
            tuning={"method": "full"},
            regularization={"augment": False},
            preprocessing={"cache_features": cache},
            training={"num_train_epochs": 2, "learning_rate": 3e-3},
        )
        recipe = AudioClassification(config)
        runs[cache] = recipe, recipe.train(), out
    cached = {s for s, r in runs[None][0].report.splits.items() if r.notes.get("cached_features") == "input_features"}
    assert cached == {"train", "validation"}
    assert not any("cached_features" in r.notes for r in runs[False][0].report.splits.values())

    def losses(out):
        return [h["loss"] for h in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in h]

    assert len(losses(runs[None][2])) >= 4
    np.testing.assert_allclose(losses(runs[None][2]), losses(runs[False][2]), rtol=1e-4)
    assert runs[None][1]["eval_loss"] == pytest.approx(runs[False][1]["eval_loss"], rel=1e-4)

    augmented = AudioClassification(audio_config(model, folder, tmp_path / "aug", augmentation={"noise_prob": 1.0}))
    splits = augmented.load_splits()
    augmented.processor = augmented.load_processor(str(model))
    train, validation = augmented.encode(splits["train"], "train"), augmented.encode(splits["validation"], "validation")
    assert "waveform" in train.column_names and "input_features" not in train.column_names
    assert set(validation.column_names) == {"labels", "input_features"}
    first = validation[0]["input_features"]
    assert isinstance(first, np.ndarray) and first.shape[1] == 100  # (mel bins, frames): 0.5 s clips, a 1 s window
    assert validation.features["input_features"] == datasets.Array2D(first.shape, "float32")  # read back as arrays


@pytest.mark.parametrize("kind", ["whisper", "ast", "wav2vec2"])
def test_cached_spectrograms_are_fixed_shape_arrays_and_waveforms_stay_lists(tmp_path, kind):
    """Spectrograms of a fixed shape are cached as `Array2D` (a batch reads back as arrays, not nested lists);
    1-D waveforms, whose length follows the clip, keep the list type `datasets` infers."""
    save = {"whisper": save_tiny_whisper, "ast": save_tiny_ast, "wav2vec2": save_tiny_wav2vec2}[kind]
    model = save(tmp_path / kind)
    recipe = AudioClassification(model=str(model), preprocessing={"max_duration": 0.5})
    recipe.processor = recipe.load_processor(str(model))
    name = recipe.processor.model_input_names[0]
    shape = np.asarray(recipe.features([np.zeros(recipe.max_samples, dtype=np.float32)], None)[name][0]).shape
    expected = None if kind == "wav2vec2" else datasets.Array2D(shape, "float32")
    assert recipe.cached_feature_type() == expected
    assert len(shape) == (1 if kind == "wav2vec2" else 2)
