"""Config loading: YAML, dotted overrides, unknown keys with suggestions, types, ranges."""

from __future__ import annotations

import pytest

from hfft.config import apply_overrides, load_config
from hfft.errors import ConfigError

BASE = {"task": "text-classification", "model": "m", "data": {"train": "t.csv"}}


def config(**extra):
    raw = {**BASE}
    for key, value in extra.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return raw


def test_defaults_and_task_sections():
    cfg = load_config(config())
    assert cfg.tuning.method == "lora" and cfg.tuning.lora.r == 8
    assert cfg.preprocessing.max_length == 256
    assert cfg.augmentation.token_mask_prob == pytest.approx(0.1)


def test_misspelled_top_level_key_suggests_closest():
    with pytest.raises(ConfigError, match=r"Unknown config key 'trainig'.*Did you mean 'training'\?"):
        load_config(config(trainig={"num_train_epochs": 1}))


def test_misspelled_nested_key_names_full_path():
    with pytest.raises(ConfigError, match=r"'regularization.label_smothing'.*Did you mean 'label_smoothing'"):
        load_config(config(regularization={"label_smothing": 0.1}))


def test_unknown_training_argument_suggests_field():
    with pytest.raises(ConfigError, match=r"'training.learning_rat'.*TrainingArguments.*'learning_rate'"):
        load_config(config(training={"learning_rat": 1e-3}))


def test_training_keys_owned_by_hfft_point_to_their_section():
    with pytest.raises(ConfigError, match=r"'training.weight_decay'.*'regularization.weight_decay'"):
        load_config(config(training={"weight_decay": 0.1}))


def test_wrong_type_names_key_and_expected_type():
    with pytest.raises(ConfigError, match=r"'tuning.lora.r' must be an integer, got 'eight'"):
        load_config(config(tuning={"lora": {"r": "eight"}}))
    with pytest.raises(ConfigError, match=r"'training.num_train_epochs' must be a number"):
        load_config(config(training={"num_train_epochs": "three"}))


def test_literal_choices_are_listed():
    with pytest.raises(ConfigError, match=r"'tuning.method' must be one of lora, full, freeze, qlora, got 'prefix'"):
        load_config(config(tuning={"method": "prefix"}))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"training": {"learning_rate": -1e-4}}, r"'training.learning_rate' must be > 0"),
        ({"regularization": {"dropout": 1.0}}, r"'regularization.dropout' must be in \[0, 1\)"),
        ({"regularization": {"label_smoothing": 1.5}}, r"'regularization.label_smoothing' must be in \[0, 1\)"),
        ({"data": {"validation_size": 0}}, r"'data.validation_size' must be in \(0, 1\)"),
        ({"preprocessing": {"max_length": 1}}, r"'preprocessing.max_length' must be >= 2"),
    ],
)
def test_out_of_range_values(extra, message):
    with pytest.raises(ConfigError, match=message):
        load_config(config(**extra))


def test_unknown_task_suggests():
    with pytest.raises(ConfigError, match=r"'task' must be one of .*Did you mean 'text-classification'"):
        load_config({**BASE, "task": "text-clasification"})


def test_yaml_file_overrides_and_float_strings(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("task: text-classification\nmodel: m\ndata: {train: t.csv}\ntraining: {learning_rate: 3e-5}\n")
    cfg = load_config(path, ["training.num_train_epochs=2", "tuning.method=full", "regularization.dropout=0.2"])
    # PyYAML reads 3e-5 (no dot) as a string: it must still become a float.
    assert cfg.training["learning_rate"] == pytest.approx(3e-5)
    assert cfg.training["num_train_epochs"] == 2.0
    assert cfg.tuning.method == "full" and cfg.regularization.dropout == pytest.approx(0.2)


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match="key.subkey=value"):
        apply_overrides({}, ["training.num_train_epochs"])
    with pytest.raises(ConfigError, match="'model' is not a section"):
        apply_overrides({"model": "x"}, ["model.name=y"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_yaml_is_read_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("task: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_qlora_is_for_causal_lm_only():
    with pytest.raises(ConfigError, match=r"'tuning.method: qlora' is for causal-lm; use lora for text-classification"):
        load_config(config(tuning={"method": "qlora"}))
