"""Data quality before training: split leakage (exact and near-duplicates across train/validation/test, for text,
images and audio) and label hygiene (spelling variants of class labels, rare classes)."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import numpy as np
import pytest
from conftest import FILLER, WORDS, make_sentences, text_config, write_csv

from hfft import AudioClassification, ImageClassification, TextClassification, leakage
from hfft.config import load_config
from hfft.errors import ConfigError, DataError
from hfft.modalities.text.modality import tokenizer_lowercases


def sentence_pool(n: int = 95) -> list[tuple[str, str]]:
    """Distinct class-keyword sentences (no two equal): rows planted below are the only overlaps."""
    pool = list({text: (text, label) for text, label in make_sentences(40, seed=1)}.values())
    assert len(pool) >= n
    return pool


def leaky_csvs(root: Path, label_variants: bool = False) -> dict[str, Path]:
    """train/validation/test CSVs with planted overlaps: 4 train texts in test (upper-cased, spaces tripled), 2 in
    validation (tabs for spaces), and 1 validation text in test. ``label_variants``: 3 more train rows labelled
    'FOOD' and 2 'food ' (beside 'food')."""
    pool = sentence_pool()
    train, validation, test = pool[:60], pool[60:75], pool[75:90]
    test = test + [("  " + text.upper().replace(" ", "   ") + " ", label) for text, label in train[:4]]
    validation = validation + [(text.replace(" ", "\t"), label) for text, label in train[4:6]]
    test.append(validation[0])
    if label_variants:
        train = train + [(text, label) for (text, _), label in zip(pool[90:95], ["FOOD"] * 3 + ["food "] * 2)]
    root.mkdir(parents=True, exist_ok=True)
    splits = {"train": train, "validation": validation, "test": test}
    return {split: write_csv(root / f"{split}.csv", rows) for split, rows in splits.items()}


def data_config(model: Path, data: dict[str, Path], out: Path, labels: dict | None = None, **keys) -> dict:
    """`text_config` with more `data:` keys (and a `labels:` section)."""
    config = text_config(model, data, out, **({"labels": labels} if labels else {}))
    config["data"].update(keys)
    return config


def leaky_config(model: Path, data: dict[str, Path], out: Path, **keys) -> dict:
    config = data_config(model, data, out, validation=str(data["validation"]), **keys)
    config["training"].update(num_train_epochs=1, eval_strategy="no", save_strategy="no", logging_steps=50)
    return config


# ----------------------------------------------------------------------------- split leakage: text


def test_text_leakage_is_counted_per_pair_after_whitespace_and_case_normalisation(tiny_bert, tmp_path):
    data = leaky_csvs(tmp_path / "data")
    recipe = TextClassification(leaky_config(tiny_bert, data, tmp_path / "run"))
    splits = recipe.load_splits()
    report = recipe.report.leakage
    assert report["method"] == "text with whitespace collapsed, lower-cased (the tokenizer is uncased)"
    pairs = report["pairs"]
    assert {name: p["leaked"] for name, p in pairs.items()} == {
        "train-validation": 2,
        "train-test": 4,
        "validation-test": 1,
    }
    assert pairs["train-test"]["rows"] == len(splits["test"]) == 20 and not pairs["train-test"]["removed"]
    example = pairs["train-test"]["examples"][0]  # the row indices point at the same text in both splits
    test_text = splits["test"][example["test_row"]]["text"]
    assert " ".join(test_text.lower().split()) == splits["train"][example["train_row"]]["text"]
    notes = {role: recipe.report.splits[role].notes for role in ("validation", "test")}
    assert notes["validation"]["leaked_from_train"] == 2
    assert notes["test"]["leaked_from_train"] == 4 and notes["test"]["leaked_from_validation"] == 1
    assert "leaked_from_train" not in recipe.report.splits["train"].notes
    summary = recipe.report.summary()
    assert "train-test: 4 of 20 test rows are also in train (kept; data.drop_leaked: true removes them)" in summary
    assert "validation-test: 1 of 20 test rows are also in validation" in summary
    assert pairs["train-test"]["near_duplicates"] == 0 and not pairs["train-test"]["near_sampled"]


def test_cased_tokenizer_compares_case_sensitively(tmp_path):
    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ball"]
    cased = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=False)
    assert tokenizer_lowercases(cased) is False
    assert tokenizer_lowercases(BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})) is True
    cased.save_pretrained(tmp_path / "cased")
    data = leaky_csvs(tmp_path / "data")
    recipe = TextClassification(leaky_config(tmp_path / "cased", data, tmp_path / "run"))
    recipe.load_splits()
    report = recipe.report.leakage
    assert report["method"] == "text with whitespace collapsed, case-sensitive (the tokenizer is cased)"
    # the upper-cased copies are other inputs to a cased model; the whitespace-only copies are still found
    assert {name: p["leaked"] for name, p in report["pairs"].items()} == {
        "train-validation": 2,
        "train-test": 0,
        "validation-test": 1,
    }


def test_text_near_duplicates_are_reported_not_removed_and_sampling_is_said(tiny_bert, tmp_path, monkeypatch):
    rng = random.Random(0)
    vocabulary = [w for ws in WORDS.values() for w in ws] + FILLER
    long = [" ".join(rng.choices(vocabulary, k=30)) for _ in range(4)]
    train = [(t, "food") for t in long] + sentence_pool()[:30]
    near = long[0].rsplit(" ", 1)[0] + " zebra"  # 27 of 29 distinct word 3-grams shared: Jaccard 0.93
    far = " ".join(long[1].split()[:20] + ["zebra"] * 10)
    test = [(near, "food"), (far, "food")] + sentence_pool()[30:40]
    data = {name: write_csv(tmp_path / f"{name}.csv", rows) for name, rows in (("train", train), ("test", test))}
    config = data_config(tiny_bert, data, tmp_path / "run", drop_leaked=True)
    recipe = TextClassification(config)
    splits = recipe.load_splits()
    pair = recipe.report.leakage["pairs"]["train-test"]
    assert pair["leaked"] == 0 and pair["near_duplicates"] == 1 and len(splits["test"]) == 12  # never removed
    (example,) = pair["near_examples"]
    assert (example["test_row"], example["similarity"]) == (0, round(27 / 29, 3))
    assert splits["train"][example["train_row"]]["text"] == long[0]  # row indices of the splits as used
    assert recipe.report.splits["test"].notes["near_duplicates_of_train"] == 1
    assert "1 more nearly duplicate a train row (Jaccard similarity of word 3-gram sets >= 0.9" in (
        recipe.report.summary()
    )

    monkeypatch.setattr(leakage, "NEAR_QUERY_ROWS", 5)
    sampled = TextClassification(config)
    sampled.load_splits()
    pair = sampled.report.leakage["pairs"]["train-test"]
    assert pair["near_sampled"] and pair["near_compared"].startswith("a seeded sample of 5 of 12 test rows")
    assert "near-duplicates sampled: a seeded sample of 5 of 12 test rows" in sampled.report.summary()

    off = TextClassification(data_config(tiny_bert, data, tmp_path / "off", near_duplicate_threshold=None))
    off.load_splits()
    assert "near_duplicates" not in off.report.leakage["pairs"]["train-test"]


def test_prefix_filtered_jaccard_join_finds_what_brute_force_finds():
    rng = random.Random(3)
    words = [f"w{i}" for i in range(12)]
    references = [" ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(150)]
    queries = [" ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(60)]
    queries += [r + " w0" for r in references[:20]]  # some close ones
    for threshold in (0.5, 0.8, 1.0):
        expected = {}
        for q, text in enumerate(queries):
            a = leakage.shingles(text)
            scores = [len(a & b) / len(a | b) for b in map(leakage.shingles, references)]
            if max(scores) >= threshold:
                expected[q] = max(scores)
        found = {q: sim for q, _, sim in leakage.text_near_pairs(queries, references, threshold)}
        assert found.keys() == expected.keys() and all(found[q] == pytest.approx(expected[q]) for q in found)


# ----------------------------------------------------------------------------- split leakage: images and audio


def test_image_leakage_matches_the_same_pixels_in_another_file_and_format(tmp_path):
    from image_fixtures import COLOURS, colour_image
    from PIL import Image

    rng = np.random.default_rng(0)
    pictures = {}
    for split, n in (("train", 6), ("validation", 2), ("test", 3)):
        for name, colour in COLOURS.items():
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(n):
                pictures[split, name, i] = colour_image(colour, rng, size=32)
                Image.fromarray(pictures[split, name, i]).save(tmp_path / split / name / f"{i}.png")
    Image.fromarray(pictures["train", "red", 0]).save(tmp_path / "test" / "red" / "copy.bmp")  # same pixels, BMP
    Image.fromarray(pictures["train", "green", 1]).convert("RGBA").save(tmp_path / "test" / "green" / "renamed.png")
    brighter = np.clip(pictures["train", "blue", 2].astype(int) + 4, 0, 255).astype(np.uint8)  # near, not exact
    Image.fromarray(brighter).save(tmp_path / "test" / "blue" / "brighter.png")
    data = {
        "train": str(tmp_path / "train"),
        "validation": str(tmp_path / "validation"),
        "test": str(tmp_path / "test"),
    }
    recipe = ImageClassification({"model": "unused", "data": data})
    recipe.load_splits()
    report = recipe.report.leakage
    pairs = report["pairs"]
    assert {name: p["leaked"] for name, p in pairs.items()} == {
        "train-validation": 0,
        "train-test": 2,
        "validation-test": 0,
    }
    shown = {(Path(e["input"]).name, Path(e["train_input"]).name) for e in pairs["train-test"]["examples"]}
    assert shown == {("copy.bmp", "0.png"), ("renamed.png", "1.png")}
    (near,) = pairs["train-test"]["near_examples"]
    assert Path(near["input"]).name == "brighter.png" and near["similarity"] >= 0.9
    assert report["near_duplicate_method"] == "fraction of agreeing bits of 64-bit difference hashes"
    assert recipe.report.splits["test"].notes["leaked_from_train"] == 2


def test_audio_leakage_matches_the_same_samples_in_two_files(tmp_path):
    import soundfile as sf
    from audio_fixtures import TONES, tone

    rng = np.random.default_rng(0)
    clips = {}
    for split, n in (("train", 4), ("validation", 2), ("test", 2)):
        for label, freq in TONES.items():
            (tmp_path / split / label).mkdir(parents=True)
            for i in range(n):
                clips[split, label, i] = (tone(freq, 8000, 0.25, rng) * 32767).astype(np.int16)
                sf.write(tmp_path / split / label / f"{i}.wav", clips[split, label, i], 8000)
    sf.write(tmp_path / "test" / "low" / "again.wav", clips["train", "low", 0], 8000)
    sf.write(tmp_path / "test" / "high" / "again.flac", clips["train", "high", 3], 8000)  # another format
    data = {
        "train": str(tmp_path / "train"),
        "validation": str(tmp_path / "validation"),
        "test": str(tmp_path / "test"),
    }
    recipe = AudioClassification({"model": "unused", "data": {**data, "drop_leaked": True}})
    splits = recipe.load_splits()
    report = recipe.report
    assert {name: p["leaked"] for name, p in report.leakage["pairs"].items()} == {
        "train-validation": 0,
        "train-test": 2,
        "validation-test": 0,
    }
    assert "near_duplicates" not in report.leakage["pairs"]["train-test"]  # audio: exact duplicates only
    assert report.splits["test"].dropped == {"leaked": 2} and len(splits["test"]) == report.splits["test"].rows_out == 4
    assert sorted(Path(p).name for p in splits["test"]["audio"]) == ["0.wav", "0.wav", "1.wav", "1.wav"]


def test_word_lists_and_conversations_are_compared_as_text():
    from hfft import CausalLM, TokenClassification

    words = TokenClassification({"model": "unused", "data": {"train": "unused"}})
    words.columns = {"input": "tokens", "label": "ner_tags"}
    batch = {"tokens": [["New", "York"], ["New ", " York"], ["York", "New"]]}
    a, b, c = words.fingerprints(batch)["exact"]
    assert a == b != c
    chat = CausalLM({"model": "unused", "data": {"train": "unused"}})
    chat.columns = {"input": "messages"}
    turns = [{"role": "user", "content": "Hi  there"}, {"role": "assistant", "content": "Hello"}]
    printed = chat.fingerprints({"messages": [turns, turns[:1]]})
    assert printed["exact"][0] != printed["exact"][1] and printed["near_text"][0] == "user: Hi there assistant: Hello"


# ----------------------------------------------------------------------------- label hygiene


def label_rows(labels: dict, start: int = 0) -> list[tuple[str, str]]:
    """``labels[name]`` rows labelled ``name``, with distinct sentences from ``start`` in the pool on."""
    pool = iter(sentence_pool()[start:])
    return [(next(pool)[0], name) for name, n in labels.items() for _ in range(n)]


def test_label_spelling_variants_are_one_warning_then_merged_on_request(tiny_bert, tmp_path, caplog):
    train = label_rows({"food": 20, "FOOD": 3, "food ": 2, "sport": 20, "tech": 20})
    test = label_rows({"Food": 2, "tech": 3}, start=80)
    data = {name: write_csv(tmp_path / f"{name}.csv", rows) for name, rows in (("train", train), ("test", test))}
    config = data_config(tiny_bert, data, tmp_path / "run", validation_size=0.2)
    with caplog.at_level(logging.WARNING, logger="hfft"):
        kept = TextClassification(config)
        with pytest.raises(DataError, match="never seen in training: 'Food'"):
            kept.load_splits()  # a test-only variant cannot be evaluated unmerged
    (warning,) = [r.getMessage() for r in caplog.records if "differ only by case" in r.getMessage()]
    assert f"data.train ('{data['train']}'): 'FOOD' (3 rows), 'food ' (2 rows) -> 'food' (20 training rows)" in warning
    assert f"data.test ('{data['test']}'): 'Food' (2 rows) -> 'food' (20 training rows)" in warning
    assert warning.endswith("Set data.normalize_labels: true to merge them.")

    merged = TextClassification(data_config(tiny_bert, data, tmp_path / "run2", normalize_labels=True))
    splits = merged.load_splits()
    assert merged.labels.names == ["food", "sport", "tech"]
    notes = merged.report.splits["train"].notes
    assert notes["labels_merged"] == {"'FOOD' -> 'food'": 3, "'food ' -> 'food'": 2}
    assert merged.report.splits["test"].notes["labels_merged"] == {"'Food' -> 'food'": 2}
    food = [merged.report.splits[role].notes["class_counts"]["food"] for role in ("train", "validation", "test")]
    assert food[0] + food[1] == 25 and food[2] == 2 and len(splits["test"]) == 5


def test_multi_label_spelling_variants_are_merged_label_by_label(tiny_bert, tmp_path):
    rows = label_rows({"news;sport": 10, "News;tech": 2, "sport": 10, "tech": 8})
    test = label_rows({"news": 2, "NEWS;sport": 2}, start=80)
    data = {"train": write_csv(tmp_path / "train.csv", rows), "test": write_csv(tmp_path / "test.csv", test)}
    labels = {"problem": "multi_label", "delimiter": ";"}
    recipe = TextClassification(
        data_config(tiny_bert, data, tmp_path / "run", labels, normalize_labels=True, validation_size=0.2)
    )
    recipe.load_splits()
    assert recipe.labels.names == ["news", "sport", "tech"]
    assert recipe.report.splits["train"].notes["labels_merged"] == {"'News' -> 'news'": 2}
    assert recipe.report.splits["test"].notes["labels_merged"] == {"'NEWS' -> 'news'": 2}


def test_rare_classes_are_warned_about_with_counts_and_integer_labels_are_untouched(tiny_bert, tmp_path, caplog):
    train, validation = label_rows({0: 20, 1: 20, 2: 3}), label_rows({0: 3, 1: 3, 2: 1}, start=80)
    data = {name: write_csv(tmp_path / f"{name}.csv", rows) for name, rows in (("train", train), ("test", validation))}
    config = text_config(tiny_bert, data, tmp_path / "run")
    config["data"].update(validation=str(data["test"]), test=None)
    with caplog.at_level(logging.WARNING, logger="hfft"):
        recipe = TextClassification(config)
        recipe.load_splits()
    assert recipe.labels.names == ["0", "1", "2"] and "label_variants" not in recipe.report.splits["train"].notes
    assert recipe.report.splits["train"].notes["rare_classes"] == {"2": 3}
    assert "1 class(es) have fewer than data.min_class_rows=5 training rows: '2' (3)" in caplog.text
    config["data"]["min_class_rows"] = 0
    quiet = TextClassification(config)
    quiet.load_splits()
    assert "rare_classes" not in quiet.report.splits["train"].notes


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"drop_leaked": "yes"}, "'data.drop_leaked' must be true or false, got 'yes'."),
        ({"normalize_labels": 1}, "'data.normalize_labels' must be true or false, got 1."),
        ({"near_duplicate_threshold": 1.5}, r"'data.near_duplicate_threshold' must be in \(0, 1\] or null, got 1.5."),
        ({"near_duplicate_threshold": 0}, r"'data.near_duplicate_threshold' must be in \(0, 1\] or null, got 0.0."),
        ({"near_duplicate_threshold": "high"}, "'data.near_duplicate_threshold' must be float, got 'high'."),
        ({"min_class_rows": -1}, "'data.min_class_rows' must be >= 0, got -1."),
        ({"min_class_rows": 2.5}, "'data.min_class_rows' must be an integer, got 2.5."),
    ],
)
def test_bad_values_of_the_new_keys_are_config_errors(data, message):
    with pytest.raises(ConfigError, match=f"^{message}$"):
        load_config({"task": "text-classification", "data": data})


def test_normalize_labels_is_for_classification_tasks():
    with pytest.raises(ConfigError, match="'data.normalize_labels' applies to classification tasks"):
        load_config({"task": "token-classification", "data": {"normalize_labels": True}})


# ----------------------------------------------------------------------------- end to end: console, report, card


def test_run_reports_leakage_in_console_report_and_card_and_merges_labels(tiny_bert, tmp_path, capsys):
    data = leaky_csvs(tmp_path / "data", label_variants=True)
    out = tmp_path / "run"
    TextClassification(leaky_config(tiny_bert, data, out, normalize_labels=True)).train()
    console = capsys.readouterr().out
    assert "leakage (compared: text with whitespace collapsed, lower-cased (the tokenizer is uncased)):" in console
    assert "train-test: 4 of 20 test rows are also in train (kept; data.drop_leaked: true removes them)" in console
    assert "labels_merged: {\"'FOOD' -> 'food'\": 3, \"'food ' -> 'food'\": 2}" in console
    report = json.loads((out / "data_report.json").read_text())
    assert report["leakage"]["pairs"]["train-test"]["leaked"] == 4 and report["test"]["notes"]["leaked_from_train"] == 4
    assert report["test"]["rows_out"] == 20
    card = (out / "README.md").read_text()
    assert "- **split leakage**: 2 of 17 validation rows also in train; 4 of 20 test rows also in train; 1 of" in card
    assert "leaked_from_train: 4" in card  # the data summary block
    assert json.loads((out / "run_info.json").read_text())["labels"] == ["food", "sport", "tech"]


def test_drop_leaked_removes_them_from_validation_and_test(tiny_bert, tmp_path, capsys):
    data = leaky_csvs(tmp_path / "data")
    out = tmp_path / "run"
    metrics = TextClassification(leaky_config(tiny_bert, data, out, drop_leaked=True)).train()
    report = json.loads((out / "data_report.json").read_text())
    assert report["validation"]["dropped"] == {"leaked": 2} and report["validation"]["rows_out"] == 15
    assert report["test"]["dropped"] == {"leaked": 5} and report["test"]["rows_out"] == 15 == metrics["test_samples"]
    assert report["leakage"]["pairs"]["train-test"]["removed"]
    assert "test: 20 rows in, 15 kept; dropped: leaked: 5" in capsys.readouterr().out
    card = (out / "README.md").read_text()
    removed = "2 validation rows also in train; 4 test rows also in train; 1 test row also in validation."
    assert f"split leakage removed before evaluation (`data.drop_leaked`): {removed}" in card
    assert "**split leakage**" not in card
