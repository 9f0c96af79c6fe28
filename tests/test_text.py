"""Text classification end to end: real tiny BERT, real datasets, real Trainer."""

from __future__ import annotations

import json

import datasets
import pytest
import torch
from conftest import make_sentences, text_config, write_csv

from hfft import TextClassification
from hfft.outputs import export_merged, load_run

PROBES = ["goal ball team the", "bread soup cake very", "code chip data my", "my the a"]


def logits_of(recipe, texts=PROBES):
    recipe.model.eval()
    with torch.no_grad():
        return recipe.model(**recipe.prepare_inputs(texts)).logits


@pytest.fixture(scope="module")
def full_run(tiny_bert, text_csvs, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "full"
    recipe = TextClassification(
        text_config(tiny_bert, text_csvs, out, tuning={"method": "full"}, regularization={"dropout": 0.05})
    )
    return recipe, recipe.train(), out


@pytest.fixture(scope="module")
def lora_run(tiny_bert, text_csvs, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "lora"
    cfg = text_config(
        tiny_bert, text_csvs, out, tuning={"method": "lora"}, training={"learning_rate": 0.02, "num_train_epochs": 10}
    )
    recipe = TextClassification(cfg)
    return recipe, recipe.train(), out


def test_full_training_learns_and_writes_run_directory(full_run):
    recipe, metrics, out = full_run
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert losses[-1] < losses[0] - 0.1, losses
    assert metrics["test_accuracy"] > 0.8 > metrics["test_majority_baseline"]
    results = json.loads((out / "all_results.json").read_text())
    assert results["eval_accuracy"] == pytest.approx(metrics["eval_accuracy"])
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "hfft_config.yaml",
        "run_info.json",
        "data_report.json",
        "README.md",
    ):
        assert (out / name).is_file(), name
    # safetensors only: the one pickle is Trainer's training_args.bin (written by Trainer, never loaded by hfft)
    assert [p.name for p in out.glob("*.bin")] == ["training_args.bin"]
    card = (out / "README.md").read_text()
    assert "library_name: transformers" in card and "test_accuracy" in card
    info = json.loads((out / "run_info.json").read_text())
    assert info["labels"] == ["food", "sport", "tech"] and info["versions"]["transformers"]


def test_cleaning_counts_every_dropped_row(full_run):
    _, _, out = full_run
    report = json.loads((out / "data_report.json").read_text())
    assert report["train"]["dropped"] == {"empty_text": 1, "duplicate": 1}
    assert report["train"]["rows_in"] == 122
    assert report["train"]["rows_out"] + report["train"]["notes"]["moved_to_validation"] == 120
    assert report["validation"]["rows_out"] == 12  # stratified 10% of the 120 clean rows


def test_label_mapping_and_dropout_in_model_config(full_run):
    recipe, _, out = full_run
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "food", "1": "sport", "2": "tech"}
    assert config["hidden_dropout_prob"] == pytest.approx(0.05)
    assert config["attention_probs_dropout_prob"] == pytest.approx(0.05)


def test_full_run_reloads_with_identical_logits(full_run):
    recipe, _, out = full_run
    reloaded = load_run(out)
    torch.testing.assert_close(logits_of(reloaded), logits_of(recipe))
    predictions = reloaded.predict(["goal ball team", "bread soup cake"])
    assert [p["label"] for p in predictions] == ["sport", "food"]
    assert sum(predictions[0]["scores"].values()) == pytest.approx(1.0)


def test_lora_adapter_and_head_reload_identically(lora_run, tiny_bert):
    recipe, metrics, out = lora_run
    assert (out / "adapter" / "adapter_model.safetensors").is_file() and (out / "model.safetensors").is_file()  # merged
    assert metrics["test_accuracy"] > 0.6
    reloaded = load_run(out)
    torch.testing.assert_close(logits_of(reloaded), logits_of(recipe))
    # The head is trained and saved: a fresh head on the same base gives different logits.
    fresh = TextClassification(text_config(tiny_bert, {"train": "x", "test": "y"}, out))
    fresh.labels, fresh.processor = reloaded.labels, reloaded.processor
    fresh.model = fresh.build_model(str(tiny_bert))
    assert not torch.allclose(logits_of(fresh), logits_of(reloaded), atol=1e-3)


def test_export_merges_lora_into_standalone_model(lora_run, tmp_path):
    recipe, _, out = lora_run
    merged_dir = export_merged(out, tmp_path / "merged")
    from transformers import AutoModelForSequenceClassification

    merged = AutoModelForSequenceClassification.from_pretrained(merged_dir)
    merged.eval()
    with torch.no_grad():
        merged_logits = merged(**recipe.prepare_inputs(PROBES)).logits
    torch.testing.assert_close(merged_logits, logits_of(recipe), atol=1e-5, rtol=1e-4)
    assert merged.config.id2label[0] == "food"


def test_freeze_trains_only_the_head(tiny_bert, text_csvs, tmp_path):
    from transformers import AutoModelForSequenceClassification

    recipe = TextClassification(
        text_config(
            tiny_bert, text_csvs, tmp_path / "freeze", tuning={"method": "freeze"}, training={"num_train_epochs": 1}
        )
    )
    recipe.train()
    base = AutoModelForSequenceClassification.from_pretrained(tiny_bert).state_dict()
    trained = recipe.model.state_dict()
    torch.testing.assert_close(
        trained["bert.encoder.layer.0.attention.self.query.weight"],
        base["bert.encoder.layer.0.attention.self.query.weight"],
    )
    trainable = {n for n, p in recipe.model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier.weight", "classifier.bias"}
    from transformers import set_seed

    set_seed(recipe.config.seed)  # the same seed re-creates the head as it was before training
    initial_head = recipe.build_model(str(tiny_bert)).classifier.weight
    assert not torch.allclose(trained["classifier.weight"], initial_head)


def test_integer_labels_and_evaluate_on_new_data(tiny_bert, tmp_path):
    ids = {"food": 0, "sport": 1, "tech": 2}
    rows = [(t, ids[label]) for t, label in make_sentences(20, seed=3)]
    train = write_csv(tmp_path / "train.csv", rows, header=("sentence", "target"))
    test = write_csv(tmp_path / "test.csv", rows[:15], header=("sentence", "target"))
    recipe = TextClassification(
        text_config(
            tiny_bert,
            {"train": train, "test": test},
            tmp_path / "run",
            tuning={"method": "full"},
            training={"num_train_epochs": 1},
        )
    )
    recipe.train()
    assert recipe.labels.names == ["0", "1", "2"] and recipe.columns == {"input": "sentence", "label": "target"}
    metrics = load_run(tmp_path / "run").evaluate(str(test))
    assert 0.0 <= metrics["eval_accuracy"] <= 1.0 and "eval_f1" in metrics


def test_classlabel_dataset_saved_to_disk(tiny_bert, tmp_path):
    rows = make_sentences(15, seed=4)
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["food", "sport", "tech", "unused"])}
    )
    ds = datasets.Dataset.from_dict({"text": [r[0] for r in rows], "label": [r[1] for r in rows]}, features=features)
    datasets.DatasetDict({"train": ds, "test": ds.select(range(10))}).save_to_disk(tmp_path / "ds")
    recipe = TextClassification(
        text_config(
            tiny_bert,
            {"train": tmp_path / "ds", "test": tmp_path / "ds"},
            tmp_path / "run",
            training={"num_train_epochs": 1},
        )
    )
    recipe.config.data.test = None  # the DatasetDict's own test split is used
    splits = recipe.load_splits()
    assert recipe.labels.names == ["food", "sport", "tech", "unused"]
    assert set(splits) == {"train", "validation", "test"} and len(splits["test"]) == 10


def test_every_dropped_row_is_counted_including_subsampling(tiny_bert, text_csvs, tmp_path):
    """No silent loss: rows in = rows kept + dropped (by reason) + moved to validation, for every split."""
    config = text_config(tiny_bert, text_csvs, tmp_path / "run")
    config["data"].update(max_train_samples=50, max_eval_samples=5)
    recipe = TextClassification(config)
    splits = recipe.load_splits()
    report = recipe.report.splits
    assert report["train"].dropped == {"empty_text": 1, "duplicate": 1, "subsampled": 58}
    assert report["validation"].dropped == {"subsampled": 7} and report["test"].dropped == {"subsampled": 25}
    for name, split in report.items():
        moved = split.notes.get("moved_to_validation", 0)
        assert split.rows_in == split.rows_out + sum(split.dropped.values()) + moved, name
        assert split.rows_out == len(splits[name]), name
    assert "subsampled: 58" in recipe.report.summary()  # printed before training, saved in data_report.json


def test_lora_run_directory_loads_in_pipeline_and_automodel(lora_run):
    from transformers import AutoModelForSequenceClassification, pipeline

    recipe, _, out = lora_run
    model = AutoModelForSequenceClassification.from_pretrained(out)  # merged LoRA, the run's labels
    assert model.config.id2label == recipe.labels.id2label
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            model(**recipe.prepare_inputs(PROBES)).logits, logits_of(recipe), atol=1e-5, rtol=1e-4
        )
    results = pipeline("text-classification", model=str(out), top_k=None, device="cpu")(PROBES)
    for result, expected in zip(results, recipe.predict(PROBES)):
        assert {r["label"]: r["score"] for r in result} == pytest.approx(expected["scores"], abs=1e-5)
