"""Corruption suites, `hfft robustness` on text/image/audio runs, `hfft compare`, and the run plots."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import numpy as np
import pytest
from audio_fixtures import make_audio_folder, save_tiny_wav2vec2
from conftest import text_config
from image_fixtures import colour_image, image_config, make_image_folder, save_tiny_vit

from hfft import corruptions
from hfft.compare import parse_variant, run_comparison
from hfft.modalities.text.corruptions import char_typos
from hfft.robustness import run_robustness

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "Premature optimization is the root of all evil",
    "bread soup and cake taste very good today",
] * 10


def assert_valid_png(path: Path, min_size: tuple[int, int] = (400, 300)) -> None:
    from PIL import Image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1], image.size


def mean_over_rows(function, values, distance, severity):
    return np.mean(
        [distance(v, function(v, severity, corruptions.row_rng(0, "t", severity, i))) for i, v in enumerate(values)]
    )


@pytest.mark.parametrize("name", list(corruptions.SUITES["text"]))
def test_text_corruptions_grow_with_severity(name):
    function = corruptions.SUITES["text"][name]

    def change(a, b):
        return 1 - difflib.SequenceMatcher(None, a, b).ratio()

    strengths = [mean_over_rows(function, SENTENCES, change, s) for s in corruptions.SEVERITIES]
    assert all(isinstance(function(t, 3, np.random.default_rng(0)), str) for t in SENTENCES)
    assert strengths[0] > 0 and np.all(np.diff(strengths) > 0), strengths


@pytest.mark.parametrize("name", list(corruptions.SUITES["image"]))
def test_image_corruptions_keep_shape_and_grow_with_severity(name):
    from PIL import Image

    rng = np.random.default_rng(0)
    images = [Image.fromarray(colour_image((200, 30, 30), rng, size=48)).convert("L") for _ in range(6)]
    function = corruptions.SUITES["image"][name]
    out = function(images[0], 2, np.random.default_rng(1))
    assert out.size == images[0].size and out.mode == "RGB"

    def mse(a, b):
        return float(np.mean((np.asarray(a.convert("RGB"), float) - np.asarray(b, float)) ** 2))

    strengths = [mean_over_rows(function, images, mse, s) for s in corruptions.SEVERITIES]
    assert strengths[0] > 0 and np.all(np.diff(strengths) > 0), strengths


@pytest.mark.parametrize("name", list(corruptions.SUITES["audio"]))
def test_audio_corruptions_keep_length_and_grow_with_severity(name):
    rate = 16000
    t = np.arange(rate) / rate
    waves = [
        (0.3 * np.sin(2 * np.pi * f * t) + 0.1 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
        for f in (300, 500, 700)
    ]
    function = corruptions.SUITES["audio"][name]
    out, out_rate = function((waves[0], rate), 2, np.random.default_rng(1))
    assert out.shape == waves[0].shape and out.dtype == np.float32 and out_rate == rate

    def change(wave, corrupted):
        return float(np.mean((corrupted[0] - wave) ** 2))

    strengths = [
        mean_over_rows(lambda w, s, r: function((w, rate), s, r), waves, change, s) for s in corruptions.SEVERITIES
    ]
    assert strengths[0] > 0 and np.all(np.diff(strengths) > 0), strengths


def test_corruptions_are_seeded():
    text = SENTENCES[0]
    assert char_typos(text, 4, corruptions.row_rng(7, "char_typos", 4, 3)) == char_typos(
        text, 4, corruptions.row_rng(7, "char_typos", 4, 3)
    )
    outputs = {char_typos(text, 4, corruptions.row_rng(seed, "char_typos", 4, 3)) for seed in range(5)}
    assert len(outputs) > 1


@pytest.fixture(scope="module")
def text_run(tiny_bert, text_csvs, tmp_path_factory):
    from hfft import TextClassification

    out = tmp_path_factory.mktemp("rob") / "text"
    TextClassification(text_config(tiny_bert, text_csvs, out, tuning={"method": "full"})).train()
    return out


def test_training_run_writes_plots_linked_in_card(text_run):
    for name in ("training_curves.png", "confusion_matrix.png"):
        assert_valid_png(text_run / name)
        assert f"]({name})" in (text_run / "README.md").read_text()


def check_robustness(run: Path, suite: str, severities: tuple[int, ...]) -> dict:
    first = run_robustness(run, severities=severities)
    again = run_robustness(run, severities=severities, out_dir=run / "again")
    assert first["corruptions"] == again["corruptions"]  # seeded: the same numbers twice
    assert set(first["corruptions"]) == set(corruptions.SUITES[suite])
    values = [v for points in first["corruptions"].values() for v in points.values()]
    assert all(0.0 <= v <= 1.0 for v in values) and 0.0 <= first["clean_accuracy"] <= 1.0
    out = run / "robustness"
    assert json.loads((out / "robustness.json").read_text())["modality"] == suite
    assert "| corruption |" in (out / "robustness.md").read_text()
    assert_valid_png(out / "robustness.png")
    return first


def test_robustness_text(text_run):
    result = check_robustness(text_run, "text", (1, 5))
    assert result["data"] == "test" and result["samples"] == 30
    assert result["clean_accuracy"] == pytest.approx(1.0)
    # Dropping 45% of the words hurts a keyword classifier more than dropping 5%.
    assert result["corruptions"]["word_dropout"]["5"] <= result["corruptions"]["word_dropout"]["1"]


def test_robustness_image(tmp_path):
    from hfft import ImageClassification

    folder = make_image_folder(tmp_path / "images", n_per_class=8)
    model = save_tiny_vit(tmp_path / "vit")
    ImageClassification(
        image_config(model, folder, tmp_path / "run", tuning={"method": "full"}, training={"num_train_epochs": 1})
    ).train()
    result = check_robustness(tmp_path / "run", "image", (1, 3))
    assert result["data"] == "validation"


def test_robustness_audio(tmp_path):
    from hfft import AudioClassification

    folder = make_audio_folder(tmp_path / "audio", n_per_class=6)
    model = save_tiny_wav2vec2(tmp_path / "w2v")
    config = {
        "task": "audio-classification",
        "model": str(model),
        "data": {"train": str(folder), "max_bad_fraction": 0.2},
        "preprocessing": {"max_duration": 0.5},
        "tuning": {"method": "full"},
        "training": {
            "output_dir": str(tmp_path / "run"),
            "num_train_epochs": 1,
            "use_cpu": True,
            "save_strategy": "no",
            "eval_strategy": "no",
            "per_device_train_batch_size": 8,
        },
    }
    AudioClassification(config).train()
    check_robustness(tmp_path / "run", "audio", (1, 4))


def test_parse_variants():
    name, overrides = parse_variant("all")
    assert name == "all" and "regularization.label_smoothing=0.1" in overrides
    name, overrides = parse_variant("wd3:regularization.weight_decay=0.3")
    assert name == "wd3" and overrides[-1] == "regularization.weight_decay=0.3"
    assert "regularization.dropout=0.0" in overrides  # custom variants start from 'none'
    from hfft.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown variant 'dropuot'"):
        parse_variant("dropuot")


def test_compare_writes_table_and_plot_and_reuses_finished_variants(tiny_bert, text_csvs, tmp_path):
    import yaml

    recipe = tmp_path / "recipe.yaml"
    config = text_config(
        tiny_bert, text_csvs, tmp_path / "base", tuning={"method": "full"}, training={"num_train_epochs": 2}
    )
    recipe.write_text(yaml.safe_dump(config))
    rows = run_comparison(str(recipe), ["none", "all"], out_dir=tmp_path / "cmp", severities=(2,))
    assert [r["variant"] for r in rows] == ["none", "all"]
    for row in rows:
        assert row["generalization_gap"] == pytest.approx(row["train_accuracy"] - row["val_accuracy"])
        assert 0.0 <= row["mean_corrupted_accuracy"] <= 1.0
    none_config = yaml.safe_load((tmp_path / "cmp" / "none" / "hfft_config.yaml").read_text())
    assert none_config["regularization"]["label_smoothing"] == 0.0 and none_config["regularization"]["augment"] is False
    all_config = yaml.safe_load((tmp_path / "cmp" / "all" / "hfft_config.yaml").read_text())
    assert all_config["regularization"]["dropout"] == 0.2 and all_config["seed"] == none_config["seed"]
    assert "| none |" in (tmp_path / "cmp" / "compare.md").read_text()
    assert_valid_png(tmp_path / "cmp" / "compare.png")
    # A rerun (e.g. after an interruption) reuses finished variants instead of training them again.
    stamp = (tmp_path / "cmp" / "none" / "model.safetensors").stat().st_mtime_ns
    again = run_comparison(str(recipe), ["none"], out_dir=tmp_path / "cmp", severities=(2,))
    assert (tmp_path / "cmp" / "none" / "model.safetensors").stat().st_mtime_ns == stamp
    assert again[0]["val_accuracy"] == rows[0]["val_accuracy"]


def test_compare_with_seeds_reports_mean_std_and_noise(tiny_bert, text_csvs, tmp_path):
    import yaml

    recipe = tmp_path / "recipe.yaml"
    config = text_config(
        tiny_bert, text_csvs, tmp_path / "base", tuning={"method": "full"}, training={"num_train_epochs": 1}
    )
    recipe.write_text(yaml.safe_dump(config))
    rows = run_comparison(str(recipe), ["none", "label_smoothing"], out_dir=tmp_path / "cmp", severities=(2,), seeds=2)
    none, smoothing = rows
    assert len(none["runs"]) == len(smoothing["runs"]) == 2
    values = [r["val_accuracy"] for r in none["runs"]]
    assert none["val_accuracy"] == pytest.approx(sum(values) / 2)
    assert none["val_accuracy_std"] == pytest.approx(abs(values[0] - values[1]) / 2**0.5)
    assert set(smoothing["beyond_noise"]) >= {"val_accuracy", "clean_accuracy"}
    seeds = {
        yaml.safe_load((tmp_path / "cmp" / "none" / f"seed-{s}" / "hfft_config.yaml").read_text())["seed"]
        for s in (42, 43)
    }
    assert seeds == {42, 43}
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert "±" in table and "over 2 seeds" in table
