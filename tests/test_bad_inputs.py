"""Bad inputs: one test per case, each asserting the message a user sees (naming the file / column / key and
what was expected). Data and config problems must surface before any model weights are loaded.

Run with `pytest -s tests/test_bad_inputs.py` to print every message.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from conftest import make_sentences, text_config, write_csv

from hfft import TextClassification
from hfft.cli import main
from hfft.config import load_config
from hfft.errors import ConfigError, DataError, HfftError, ModelError
from hfft.resume import resume_checkpoint

BASE = {"task": "text-classification", "model": "m", "data": {"train": "t.csv"}}


@contextmanager
def raises(kind: type[Exception], pattern: str):
    """pytest.raises with a regex on the message; prints the message (see it with -s)."""
    with pytest.raises(kind, match=pattern) as info:
        yield info
    print(f"\n[{kind.__name__}] {info.value}")


def config(**extra) -> dict:
    raw = {**BASE}
    for key, value in extra.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return raw


def text_recipe(model: Path, tmp_path: Path, train: Path, data: dict | None = None, **extra) -> TextClassification:
    """The small text recipe of conftest (no test split), with extra data keys and sections."""
    raw = text_config(model, {"train": train, "test": train}, tmp_path / "run", **extra)
    raw["data"].pop("test")
    raw["data"].update({k: str(v) if isinstance(v, Path) else v for k, v in (data or {}).items()})
    return TextClassification(raw)


def rows(n: int = 6, seed: int = 0) -> list[tuple[str, str]]:
    return make_sentences(n, seed=seed)


def source(key: str, path: Path) -> str:
    """How messages name a data source, as a regex: data.train ('/path/train.csv')."""
    return re.escape(f"data.{key} ('{path}')")


def copy_model(tiny_bert: Path, dest: Path) -> Path:
    return Path(shutil.copytree(tiny_bert, dest))


# ----------------------------------------------------------------------------- config


def test_unknown_top_level_key_suggests_the_closest():
    with raises(ConfigError, r"^Unknown config key 'trainig' in config\. Did you mean 'training'\?$"):
        load_config(config(trainig={"num_train_epochs": 1}))


def test_misspelled_nested_key_names_its_full_path():
    with raises(ConfigError, r"^Unknown config key 'regularization\.label_smothing'\. Did you mean 'label_smoothing'"):
        load_config(config(regularization={"label_smothing": 0.1}))


def test_unknown_training_argument_suggests_the_field():
    with raises(
        ConfigError, r"'training\.learning_rat' \(not a TrainingArguments field\)\. Did you mean 'learning_rate'"
    ):
        load_config(config(training={"learning_rat": 1e-3}))


def test_wrong_value_type_names_key_and_expected_type():
    with raises(ConfigError, r"^'tuning\.lora\.r' must be an integer, got 'eight'\.$"):
        load_config(config(tuning={"lora": {"r": "eight"}}))


def test_string_for_a_boolean_is_refused():
    with raises(ConfigError, r"^'regularization\.augment' must be true or false, got 'yes'\.$"):
        load_config(config(regularization={"augment": "yes"}))


def test_choice_outside_the_allowed_values():
    with raises(ConfigError, r"^'tuning\.method' must be one of lora, full, freeze, qlora, got 'prefix'\.$"):
        load_config(config(tuning={"method": "prefix"}))


def test_negative_learning_rate():
    with raises(ConfigError, r"^'training\.learning_rate' must be > 0, got -0\.0001\.$"):
        load_config(config(training={"learning_rate": -1e-4}))


@pytest.mark.parametrize("key", ["regularization.dropout", "tuning.lora.dropout"])
def test_dropout_of_one_or_more(key):
    section, _, name = key.rpartition(".")
    raw = config()
    node = raw
    for part in section.split("."):
        node = node.setdefault(part, {})
    node[name] = 1.0
    with raises(ConfigError, rf"^'{re.escape(key)}' must be in \[0, 1\), got 1\.0\.$"):
        load_config(raw)


def test_training_key_owned_by_an_hfft_section():
    with raises(ConfigError, r"^'training\.seed' is set through 'seed' in hfft configs; move the value there\.$"):
        load_config(config(training={"seed": 1}))


def test_yaml_with_python_tags_is_refused_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f"task: !!python/object/apply:os.system ['touch {marker}']\n")
    with raises(
        ConfigError, rf"^Config file '{re.escape(str(path))}' is not valid YAML: could not determine a constructor"
    ):
        load_config(path)
    assert not marker.exists()


# ----------------------------------------------------------------------------- data sources


def test_missing_data_path(tiny_bert, tmp_path):
    recipe = text_recipe(tiny_bert, tmp_path, tmp_path / "nope.csv")
    with raises(DataError, rf"^'data\.train': path '{re.escape(str(tmp_path / 'nope.csv'))}' does not exist\.$"):
        recipe.preflight(resume=False)


def test_hub_dataset_id_without_hub_access_says_how_to_use_a_local_copy(tiny_bert, tmp_path):
    recipe = text_recipe(tiny_bert, tmp_path, Path("stanfordnlp/imdb"))
    with raises(
        DataError,
        r"^'data\.train': 'stanfordnlp/imdb' is not a local path, and the Hugging Face Hub is offline "
        r"\(HF_HUB_OFFLINE=1\)\. Where the Hub is reachable, run `datasets\.load_dataset\('stanfordnlp/imdb'\)"
        r"\.save_to_disk\('DIR'\)`, copy DIR here and set data\.train: DIR\.$",
    ):
        recipe.preflight(resume=False)


def test_hub_model_id_without_hub_access_says_how_to_use_a_local_copy(text_csvs, tmp_path):
    recipe = text_recipe(Path("google-bert/bert-base-uncased"), tmp_path, text_csvs["train"])
    with raises(
        ModelError, r"^'model': 'google-bert/bert-base-uncased' is not a local directory.*save_pretrained\('DIR'\)"
    ):
        recipe.preflight(resume=False)


def test_unsupported_file_extension(tiny_bert, tmp_path):
    path = tmp_path / "train.xlsx"
    path.write_bytes(b"PK\x03\x04")
    with raises(DataError, r"'data\.train': '.*train\.xlsx' has extension '\.xlsx'; expected one of \.arrow, \.csv"):
        text_recipe(tiny_bert, tmp_path, path).load_splits()


def test_empty_data_directory(tiny_bert, tmp_path):
    (tmp_path / "data").mkdir()
    with raises(DataError, rf"^'data\.train': directory '{re.escape(str(tmp_path / 'data'))}' is empty\.$"):
        text_recipe(tiny_bert, tmp_path, tmp_path / "data").load_splits()


def test_malformed_csv_names_file_and_line(tiny_bert, tmp_path):
    path = tmp_path / "train.csv"
    path.write_text('text,label\n"goal ball",sport\n"soup",food,extra,fields\n')
    with raises(DataError, r"'data\.train': could not read '.*train\.csv': .*Expected 2 fields in line 3, saw 4"):
        text_recipe(tiny_bert, tmp_path, path).load_splits()


def test_non_utf8_text(tiny_bert, tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes("text,label\ncafé crème,food\nbut,sport\n".encode("latin-1"))
    with raises(DataError, r"^'data\.train': '.*train\.csv' is not valid UTF-8 text.*Re-save the file as UTF-8\.$"):
        text_recipe(tiny_bert, tmp_path, path).load_splits()


def test_data_directory_with_a_loading_script_is_refused_not_run(tiny_bert, tmp_path):
    folder, marker = tmp_path / "data", tmp_path / "pwned"
    folder.mkdir()
    write_csv(folder / "train.csv", rows())
    (folder / "data.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    with raises(DataError, r"holds a Python loading script \(data\.py\); hfft never runs code from data\."):
        text_recipe(tiny_bert, tmp_path, folder).load_splits()
    assert not marker.exists()


def test_split_that_does_not_exist(tiny_bert, tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict({"text": [r[0] for r in rows()], "label": [r[1] for r in rows()]})
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(tmp_path / "ds")
    recipe = text_recipe(tiny_bert, tmp_path, tmp_path / "ds", data={"validation_split": "holdout"})
    with raises(DataError, r"^'data\.train': split 'holdout' not found; available splits: train, test\.$"):
        recipe.load_splits()


# ----------------------------------------------------------------------------- columns and labels


def test_no_label_column(tiny_bert, tmp_path):
    path = write_csv(tmp_path / "train.csv", rows(), header=("text", "topic"))
    with raises(
        DataError,
        rf"^{source('train', path)}: no column for 'data\.label_column' found \(looked for label, labels, fine_label, category, "
        r"class, target, intent, sentiment\); columns are: text, topic\. Set data\.label_column\.$",
    ):
        text_recipe(tiny_bert, tmp_path, path).load_splits()


def test_ambiguous_label_columns(tiny_bert, tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label,category\ngoal ball,sport,a\nsoup cake,food,b\n")
    with raises(
        DataError,
        rf"^{source('train', path)}: columns label, category could each be 'data\.label_column'; set data\.label_column",
    ):
        text_recipe(tiny_bert, tmp_path, path).load_splits()


def test_text_column_that_holds_numbers(tiny_bert, tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\n1,sport\n2,food\n")
    with raises(
        DataError,
        rf"^{source('train', path)}: column 'text' holds int64 values; text classification expects strings\.$",
    ):
        text_recipe(tiny_bert, tmp_path, path).load_splits()


def test_validation_file_lacks_a_column(tiny_bert, tmp_path):
    train = write_csv(tmp_path / "train.csv", rows())
    val = write_csv(tmp_path / "val.csv", rows(), header=("text", "topic"))
    recipe = text_recipe(tiny_bert, tmp_path, train, data={"validation": str(val)})
    with raises(
        DataError,
        rf"^{source('validation', val)}: columns \['label'\] \(found in train\) are missing; it has text, topic\.$",
    ):
        recipe.load_splits()


def test_labels_in_validation_unseen_in_train(tiny_bert, tmp_path):
    train = write_csv(tmp_path / "train.csv", rows())
    val = write_csv(tmp_path / "val.csv", [("goal ball", "sport"), ("rain wind", "weather"), ("sun", "weather")])
    recipe = text_recipe(tiny_bert, tmp_path, train, data={"validation": str(val)})
    with raises(
        DataError,
        rf"^{source('validation', val)}: label column 'label' has labels never seen in training: 'weather' \(2 rows\)\. "
        r"Training labels: food, sport, tech\.$",
    ):
        recipe.load_splits()


def test_a_single_class(tiny_bert, tmp_path):
    path = write_csv(tmp_path / "train.csv", [(t, "sport") for t, _ in rows()])
    with raises(
        DataError, rf"^{source('train', path)}: label column 'label' holds a single class \(sport\); need at least 2\.$"
    ):
        text_recipe(tiny_bert, tmp_path, path).load_splits()


def test_mixed_label_types(tiny_bert, tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "label": lab}) for t, lab in [("a b", 1), ("c d", "sport")]))
    with raises(
        DataError,
        rf"^{source('train', path)}: label column 'label' mixes label types \(int: e\.g\. 1, str: e\.g\. 'sport'\); use one type",
    ):
        text_recipe(tiny_bert, tmp_path, path).load_splits()


def test_fractional_labels(tiny_bert, tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "label": lab}) for t, lab in [("a b", 0.5), ("c d", 1.5)]))
    with raises(DataError, r"label column 'label' holds non-integer numbers \(e\.g\. 0\.5\); classification needs"):
        text_recipe(tiny_bert, tmp_path, path).load_splits()


def test_split_empty_after_cleaning(tiny_bert, tmp_path):
    path = write_csv(tmp_path / "train.csv", [("  ", "sport"), ("", "food"), ("\t", "tech")])
    with raises(
        DataError, rf"^{source('train', path)}: no rows left after cleaning \(3 in; dropped empty_text: 3\)\.$"
    ):
        text_recipe(tiny_bert, tmp_path, path).load_splits()


# ----------------------------------------------------------------------------- images and audio (their recipes)


def test_corrupt_image_is_counted_and_named(tmp_path):
    pytest.importorskip("PIL")
    from image_fixtures import image_config, make_image_folder

    from hfft import ImageClassification

    folder = make_image_folder(tmp_path / "images", n_per_class=3)
    recipe = ImageClassification(image_config(tmp_path / "model", folder, tmp_path / "run"))
    recipe.config.data.max_bad_fraction = 0.2
    recipe.load_splits()
    report = recipe.report.splits["train"]
    assert report.dropped == {"corrupt_image": 1} and [Path(e).name for e in report.examples] == ["broken.jpg"]
    recipe.config.data.max_bad_fraction = 0.0
    with raises(
        DataError,
        rf"^{source('train', folder)}: 1 of 12 rows are corrupt or unreadable \(8\.3% > data\.max_bad_fraction=0\.0\); first: .*broken\.jpg\.$",
    ):
        recipe.load_splits()


@pytest.fixture(scope="module")
def audio_folder(tmp_path_factory):
    pytest.importorskip("soundfile")
    from audio_fixtures import make_audio_folder

    return make_audio_folder(tmp_path_factory.mktemp("audio") / "tones", n_per_class=4)


def audio_recipe(folder: Path, tmp_path: Path, **data):
    from hfft import AudioClassification

    config = {"task": "audio-classification", "model": str(tmp_path / "model"), "data": {"train": str(folder), **data}}
    return AudioClassification({**config, "training": {"output_dir": str(tmp_path / "run")}})


def test_corrupt_audio_is_counted_and_named(audio_folder, tmp_path):
    recipe = audio_recipe(audio_folder, tmp_path, max_bad_fraction=0.2)
    recipe.load_splits()
    report = recipe.report.splits["train"]
    assert report.dropped == {"corrupt_audio": 1}
    assert report.examples == [
        f"{audio_folder / 'low' / 'broken.wav'} (not a readable audio file (Error in WAV file. No 'data' chunk marker.))"
    ]
    with raises(
        DataError,
        rf"^{source('train', audio_folder)}: 1 of 10 rows are corrupt or unreadable \(10\.0% > data\.max_bad_fraction=0\.05\); first: .*broken\.wav",
    ):
        audio_recipe(audio_folder, tmp_path).load_splits()


def test_nan_audio_is_counted_and_named(audio_folder, tmp_path):
    import soundfile as sf

    folder = Path(shutil.copytree(audio_folder, tmp_path / "tones"))
    (folder / "low" / "broken.wav").unlink()
    sf.write(folder / "high" / "nan.wav", np.full(800, np.nan, np.float32), 8000, subtype="FLOAT")
    recipe = audio_recipe(folder, tmp_path, max_bad_fraction=0.2)
    recipe.load_splits()
    assert recipe.report.splits["train"].dropped == {"corrupt_audio": 1}
    assert recipe.report.splits["train"].examples == [f"{folder / 'high' / 'nan.wav'} (NaN or infinite samples)"]


def test_audio_at_another_sampling_rate_is_resampled_and_reported(audio_folder, tmp_path):
    from audio_fixtures import save_tiny_wav2vec2

    recipe = audio_recipe(audio_folder, tmp_path, max_bad_fraction=0.2)
    splits = recipe.load_splits()
    recipe.processor = recipe.load_processor(str(save_tiny_wav2vec2(tmp_path / "model")))
    recipe.encode(splits["train"], "train")
    notes = recipe.report.splits["train"].notes
    assert notes["sampling_rate"] == 16000 and set(notes["resampled_from"]) <= {8000, 22050, 44100}
    assert sum(notes["resampled_from"].values()) == len(splits["train"])


def test_audio_with_implausible_sampling_rate_metadata_is_counted_and_named(audio_folder, tmp_path):
    import soundfile as sf
    from audio_fixtures import tone

    folder = Path(shutil.copytree(audio_folder, tmp_path / "tones"))
    (folder / "low" / "broken.wav").unlink()
    # 8 kHz samples in a file whose header says 100 Hz: resampled, they would become 40 s of noise.
    sf.write(folder / "low" / "rate100.wav", tone(300, 8000, 0.5, np.random.default_rng(0)), 100)
    recipe = audio_recipe(folder, tmp_path, max_bad_fraction=0.5)
    recipe.load_splits()
    assert recipe.report.splits["train"].dropped == {"corrupt_audio": 1}
    assert recipe.report.splits["train"].examples == [
        f"{folder / 'low' / 'rate100.wav'} (implausible sampling rate 100 Hz in its header)"
    ]


# ----------------------------------------------------------------------------- text length, checkpoint head


def test_text_longer_than_the_model_limit_is_truncated_and_reported(tiny_bert, tmp_path, caplog):
    long = " ".join(["goal", "ball", "team"] * 30)  # 90 words; the tiny BERT takes 64 tokens
    path = write_csv(tmp_path / "train.csv", [*rows(), (long, "sport"), (long + " win", "sport")])
    recipe = text_recipe(tiny_bert, tmp_path, path, preprocessing={"max_length": 256}, data={"validation_size": 0.2})
    splits = recipe.load_splits()
    recipe.processor = recipe.load_processor(str(tiny_bert))
    with caplog.at_level(logging.WARNING, logger="hfft"):
        recipe.encode(splits["train"], "train")
        recipe.encode(splits["validation"], "validation")
    notes = {split: recipe.report.splits[split].notes for split in ("train", "validation")}
    assert sum(n["truncated"] for n in notes.values()) == 2
    assert notes["train"]["max_length"] == 64 and notes["train"]["max_length_capped_from"] == 256
    message = next(r.getMessage() for r in caplog.records if "truncated" in r.getMessage())
    print(f"\n[warning] {message}")
    assert re.fullmatch(
        r"(train|validation): 1 of \d+ texts are longer than 64 tokens and were truncated "
        r"\(the model's limit; preprocessing\.max_length is 256\)\.",
        message,
    )
    assert "truncated: 1" in recipe.report.summary()


def test_checkpoint_whose_head_size_differs_is_reported(tiny_bert, text_csvs, tmp_path, caplog):
    from transformers import AutoModelForSequenceClassification

    five = tmp_path / "five-class"
    AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=5, ignore_mismatched_sizes=True
    ).save_pretrained(five)
    shutil.copy(tiny_bert / "tokenizer.json", five)
    recipe = text_recipe(five, tmp_path, text_csvs["train"], tuning={"method": "full"})
    recipe.load_splits()
    with caplog.at_level(logging.WARNING, logger="hfft"):
        model = recipe.build_model(str(five))
    assert model.classifier.out_features == 3
    message = next(r.getMessage() for r in caplog.records if "head" in r.getMessage())
    print(f"\n[warning] {message}")
    assert message == (
        f"'model': checkpoint '{five}' has a 5-class head (classifier.weight [5, 32]); it is replaced by a new, "
        "randomly initialised 3-class head for your labels (trained from scratch)."
    )
    assert recipe.model_notes["head_reinitialised"] == {
        "checkpoint": str(five),
        "checkpoint_classes": 5,
        "classes": 3,
        "weights": ["classifier.bias", "classifier.weight"],
    }


def test_lora_target_module_not_in_the_model_fails_before_loading(tiny_bert, text_csvs, tmp_path):
    recipe = text_recipe(tiny_bert, tmp_path, text_csvs["train"], tuning={"lora": {"target_modules": ["q_proj"]}})
    with raises(
        ConfigError,
        r"^'tuning\.lora\.target_modules': \['q_proj'\] not found in BertForSequenceClassification; its linear and "
        r"convolutional layers are: dense, key, query, value\.$",
    ):
        recipe.preflight(resume=False)  # the architecture is built on the meta device: no weights are read


def test_data_errors_come_before_the_model_is_loaded(tiny_bert, tmp_path):
    path = write_csv(tmp_path / "train.csv", [(t, "sport") for t, _ in rows()])
    recipe = text_recipe(tiny_bert, tmp_path, path)
    with raises(DataError, r"holds a single class"):
        recipe.train()
    assert recipe.model is None and recipe.processor is None


# ----------------------------------------------------------------------------- checkpoints (security)


def test_checkpoint_with_only_pickled_weights_is_refused(tiny_bert, text_csvs, tmp_path):
    model = copy_model(tiny_bert, tmp_path / "pickled")
    (model / "model.safetensors").rename(model / "pytorch_model.bin")
    recipe = text_recipe(model, tmp_path, text_csvs["train"])
    with raises(
        ModelError,
        rf"^'model': '{re.escape(str(model))}' has only pytorch_model\.bin weights and no \.safetensors file\. hfft "
        r"loads safetensors only, because unpickling a file can run code\. If you trust the file, convert it once",
    ):
        recipe.preflight(resume=False)


def test_checkpoint_that_needs_trust_remote_code(tiny_bert, text_csvs, tmp_path):
    model = copy_model(tiny_bert, tmp_path / "custom")
    cfg = json.loads((model / "config.json").read_text())
    cfg.update(model_type="my-bert", auto_map={"AutoConfig": "modeling_my.MyConfig"})
    (model / "config.json").write_text(json.dumps(cfg))
    (model / "modeling_my.py").write_text(f"open({str(tmp_path / 'pwned')!r}, 'w')\n")
    with raises(
        ModelError,
        rf"^'model': '{re.escape(str(model))}' needs its own Python code to load \(config\.json has auto_map for "
        r"AutoConfig; model_type 'my-bert' is not part of transformers\)\. hfft runs no code from checkpoints unless "
        r"you set trust_remote_code: true in the recipe; do that only if you trust its source\.$",
    ):
        text_recipe(model, tmp_path, text_csvs["train"]).preflight(resume=False)
    assert not (tmp_path / "pwned").exists()
    text_recipe(model, tmp_path, text_csvs["train"], trust_remote_code=True).preflight(resume=False)  # opted in


def test_truncated_safetensors_weights(tiny_bert, text_csvs, tmp_path):
    model = copy_model(tiny_bert, tmp_path / "torn")
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    with raises(
        ModelError, rf"^'model': '{re.escape(str(weights))}' is not a readable safetensors file \(.*\); the copy"
    ):
        text_recipe(model, tmp_path, text_csvs["train"]).preflight(resume=False)


def test_lora_adapter_directory_given_as_the_model(tiny_bert, text_csvs, tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    with raises(ModelError, r"holds a LoRA adapter, not a full model\. Set model: to its base model, or merge it"):
        text_recipe(adapter, tmp_path, text_csvs["train"]).preflight(resume=False)


def test_model_type_unknown_to_transformers(tiny_bert, text_csvs, tmp_path):
    model = copy_model(tiny_bert, tmp_path / "odd")
    cfg = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**cfg, "model_type": "bert-from-the-future"}))
    with raises(
        ModelError, r"config\.json' has model_type 'bert-from-the-future', which transformers .* does not know"
    ):
        text_recipe(model, tmp_path, text_csvs["train"]).preflight(resume=False)


def test_model_directory_without_tokenizer_files(tiny_bert, text_csvs, tmp_path):
    model = tmp_path / "no-tokenizer"
    model.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_bert / name, model)
    recipe = text_recipe(model, tmp_path, text_csvs["train"])
    recipe.preflight(resume=False)
    with raises(ModelError, r"^'model': '.*no-tokenizer' has no tokenizer files \(tokenizer\.json, tokenizer_config"):
        recipe.load_processor(str(model))


# ----------------------------------------------------------------------------- output directory and resume


def test_output_dir_that_holds_a_finished_run(tiny_bert, text_csvs, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run_info.json").write_text("{}")
    (out / "all_results.json").write_text("{}")
    with raises(
        ConfigError,
        rf"^Output directory '{re.escape(str(out))}' already holds a finished run\. Choose another "
        r"training\.output_dir, or set overwrite: true to replace it\.$",
    ):
        text_recipe(tiny_bert, tmp_path, text_csvs["train"]).preflight(resume=False)
    text_recipe(tiny_bert, tmp_path, text_csvs["train"], overwrite=True).preflight(resume=False)


def test_output_dir_with_checkpoints_of_an_unfinished_run(tiny_bert, text_csvs, tmp_path):
    (tmp_path / "run" / "checkpoint-10").mkdir(parents=True)
    with raises(ConfigError, r"holds checkpoints of an unfinished run\. Resume it with `hfft train CONFIG --resume`"):
        text_recipe(tiny_bert, tmp_path, text_csvs["train"]).preflight(resume=False)


def test_output_dir_that_cannot_be_created(tiny_bert, text_csvs, tmp_path):
    (tmp_path / "file").write_text("")
    recipe = text_recipe(
        tiny_bert, tmp_path, text_csvs["train"], training={"output_dir": str(tmp_path / "file" / "run")}
    )
    with raises(
        ConfigError, r"^'training\.output_dir': cannot create '.*file/run': '.*file' is not a writable directory\.$"
    ):
        recipe.preflight(resume=False)


def test_resume_from_an_incomplete_checkpoint(tmp_path):
    checkpoint = tmp_path / "checkpoint-8"
    checkpoint.mkdir()
    (checkpoint / "model.safetensors").write_bytes(b"")
    with raises(
        ConfigError,
        rf"^Cannot resume from '{re.escape(str(checkpoint))}': no trainer_state\.json \(written last: the save was "
        r"interrupted\)\.$",
    ):
        resume_checkpoint(tmp_path, str(checkpoint))


# ----------------------------------------------------------------------------- command line


def test_cli_prints_one_paragraph_and_exits_2(tmp_path, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_text("task: text-classification\ndata: {train: nowhere.csv}\ntuning: {method: prefix}\n")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == "hfft: error: 'tuning.method' must be one of lora, full, freeze, qlora, got 'prefix'.\n"
    with pytest.raises(HfftError):
        main(["--debug", "train", str(path)])


def test_cli_predict_with_a_missing_input_file(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["predict", str(tmp_path / "run"), str(tmp_path / "inputs.txt")]) == 2
    assert capsys.readouterr().err == f"hfft: error: Input file '{tmp_path / 'inputs.txt'}' does not exist.\n"


def test_finished_run_with_only_pickled_weights_is_not_loaded(tiny_bert, text_csvs, tmp_path):
    import yaml

    from hfft.outputs import load_run

    run = tmp_path / "run"
    run.mkdir()
    (run / "hfft_config.yaml").write_text(yaml.safe_dump(text_config(tiny_bert, text_csvs, run)))
    (run / "run_info.json").write_text(json.dumps({"task": "text-classification", "labels": ["a", "b"]}))
    (run / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")  # a pickle
    with raises(ModelError, rf"^'{re.escape(str(run))}' has no model\.safetensors: the run did not finish saving"):
        load_run(run)


@pytest.mark.parametrize("failure", ["memory", "disk"])
def test_out_of_memory_or_disk_during_training_says_what_to_change(failure, tmp_path):
    """Neither can be caused for real on a CPU test machine: a stand-in trainer raises what torch / the OS raise."""
    import errno
    from types import SimpleNamespace

    import torch

    from hfft.errors import TrainingError
    from hfft.resume import run_training

    error = torch.OutOfMemoryError("CUDA out of memory") if failure == "memory" else OSError(errno.ENOSPC, "full")

    def train(resume_from_checkpoint=None):
        raise error

    trainer = SimpleNamespace(args=SimpleNamespace(per_device_train_batch_size=64, output_dir="runs/x"), train=train)
    pattern = (
        r"^Out of accelerator memory at batch size 64 per device\. Lower training\.per_device_train_batch_size"
        if failure == "memory"
        else r"^Disk full while writing to 'runs/x' \(\[Errno 28\] full\)\. Free space, or keep fewer checkpoints"
    )
    with raises(TrainingError, pattern + r".*then continue with `hfft train CONFIG --resume`\.$"):
        run_training(trainer, None)


def test_cli_message_with_line_breaks_is_one_paragraph(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("task: [unclosed\n")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hfft: error: Config file '{path}' is not valid YAML: ") and err.count("\n") == 1
    print(f"\n[stderr] {err}")
