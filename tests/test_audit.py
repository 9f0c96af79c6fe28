"""`hfft audit` (likely label errors: cleanlab on out-of-sample probabilities) and data.exclude."""

from __future__ import annotations

import csv
import json
import math
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import make_sentences, text_config, write_csv

from hfft import TextClassification
from hfft.audit import Audited, assign_folds, find_issues
from hfft.cli import main
from hfft.compare import parse_variant
from hfft.config import load_config
from hfft.errors import DataError
from hfft.labels import LabelSpace

FOLDS, EPOCHS = "3", "20"  # 20 epochs of 5 steps: a second or two per fold


def noisy_data(root: Path) -> tuple[dict[str, Path], list[int]]:
    """train.csv: 60 class-keyword sentences with 3 labels flipped to another class (their source rows returned),
    and an empty row at row 2 (dropped by cleaning: source rows differ from positions after cleaning); test.csv."""
    rows = make_sentences(20, seed=3)
    rng = random.Random(0)
    flipped = sorted(rng.sample(range(len(rows)), 3))
    classes = sorted({label for _, label in rows})
    for i in flipped:
        text, label = rows[i]
        rows[i] = (text, rng.choice([c for c in classes if c != label]))
    rows.insert(2, ("   ", "food"))
    root.mkdir(parents=True, exist_ok=True)
    data = {"train": write_csv(root / "train.csv", rows), "test": write_csv(root / "test.csv", make_sentences(5, 4))}
    return data, [i + (i >= 2) for i in flipped]


def write_recipe(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def audited(tiny_bert, tmp_path_factory) -> dict:
    """One 3-fold audit of the noisy data (3 short training runs)."""
    root = tmp_path_factory.mktemp("audit")
    data, flipped = noisy_data(root / "data")
    config = text_config(tiny_bert, data, root / "run", tuning={"method": "full"})
    config["regularization"] = {"augment": False, "dropout": 0.0}
    config["training"].update(eval_strategy="no", logging_steps=50, per_device_train_batch_size=8, bf16=False)
    recipe = write_recipe(root / "recipe.yaml", config)
    out = root / "audit"
    assert main(["audit", str(recipe), "--folds", FOLDS, "--epochs", EPOCHS, "--out", str(out)]) == 0
    return {"root": root, "data": data, "flipped": flipped, "recipe": recipe, "config": config, "out": out}


def test_audit_ranks_the_flipped_rows_first_and_names_their_source_rows(audited):
    result = json.loads((audited["out"] / "audit.json").read_text())
    flipped, flagged = audited["flipped"], result["flagged"]
    top = [f["row"] for f in flagged[: len(flipped)]]
    assert len(set(top) & set(flipped)) / len(flipped) >= 0.5, (top, flipped)
    assert result["audit"] == "cross-validation" and result["folds"] == 3
    assert result["audited_rows"] == 60 and result["data"]["source_rows"] == 61  # the empty row was dropped
    with open(audited["data"]["train"], encoding="utf-8") as f:
        source = list(csv.DictReader(f))
    for f in flagged:  # each flagged row is that row of the file: its text and its given label
        assert f["source"] == str(audited["data"]["train"])
        assert source[f["row"]]["label"] == f["given_label"] and f["input"] == repr(source[f["row"]]["text"])
        assert f["suggested_label"] != f["given_label"] and 0 <= f["label_quality"] < 0.5
    assert [f["label_quality"] for f in flagged] == sorted(f["label_quality"] for f in flagged)
    assert set(result["noise"]["per_class"]) == {"food", "sport", "tech"} and 0 < result["noise"]["overall"] < 0.3
    markdown = (audited["out"] / "audit.md").read_text()
    assert "| rank | row | input | given label | suggested label | label quality |" in markdown
    assert f"data.exclude={audited['out'] / 'audit.json'}" in markdown
    assert result["out_of_sample_accuracy"] > 0.8 and "-without-flagged" in result["retrain"]
    assert (audited["out"] / "audit_noise.png").stat().st_size > 1000
    fold = json.loads((audited["out"] / "fold-0" / "data_report.json").read_text())
    assert "test" not in fold and fold["validation"]["notes"]["source"] == "held-out fold of train (hfft audit)"
    held = [
        set(json.loads((audited["out"] / f"fold-{i}" / "fold.json").read_text())["held_out_rows"]) for i in range(3)
    ]
    assert set.union(*held) == set(range(61)) - {2} and sum(map(len, held)) == 60  # each row held out once


def test_audit_is_deterministic_and_a_rerun_reuses_finished_folds(audited, monkeypatch):
    out, before = audited["out"], (audited["out"] / "audit.json").read_text()
    command = ["audit", str(audited["recipe"]), "--folds", FOLDS, "--epochs", EPOCHS, "--out", str(out)]
    shutil.rmtree(out / "fold-1")  # trained again from scratch: the same probabilities
    assert main(command) == 0
    assert (out / "audit.json").read_text() == before

    def no_training(self, resume=False):
        raise AssertionError("a finished fold was trained again")

    monkeypatch.setattr(TextClassification, "train", no_training)
    assert main(command) == 0
    assert (out / "audit.json").read_text() == before


def test_train_with_exclude_drops_exactly_the_flagged_rows_then_the_run_can_be_audited(audited, capsys):
    flagged = json.loads((audited["out"] / "audit.json").read_text())["flagged"]
    run = audited["root"] / "clean-run"
    exclude = f"data.exclude={audited['out'] / 'audit.json'}"
    assert (
        main(["train", str(audited["recipe"]), exclude, f"training.output_dir={run}", "training.num_train_epochs=2"])
        == 0
    )
    train = json.loads((run / "data_report.json").read_text())["train"]
    assert train["dropped"] == {"empty_text": 1, "excluded_by_audit": len(flagged)}
    assert train["rows_in"] == 61 and train["notes"]["excluded_from"] == str(audited["out"] / "audit.json")
    capsys.readouterr()
    assert main(["audit", str(run)]) == 0  # a run: its validation split, held out of the rows it trained on
    result = json.loads((run / "audit" / "audit.json").read_text())
    assert result["audit"] == "run" and result["audited_rows"] == math.ceil(0.1 * (60 - len(flagged)))
    assert not {f["row"] for f in flagged} & {f["row"] for f in result["flagged"]}
    assert "audited training rows" in capsys.readouterr().out
    recipe = exclusion_recipe(audited, run / "audit" / "audit.json")  # also the rows its audit had excluded
    recipe.load_splits()
    assert recipe.report.splits["train"].dropped["excluded_by_audit"] == len(flagged) + result["flagged_rows"]
    assert result["retrain"].endswith(f"training.output_dir={run}-without-flagged data.exclude={run}/audit/audit.json")


def test_compare_takes_data_exclude_in_a_custom_variant(audited):
    name, overrides = parse_variant(f"without_flagged:data.exclude={audited['out'] / 'audit.json'}")
    config = load_config(audited["recipe"], overrides)
    assert name == "without_flagged" and config.data.exclude == str(audited["out"] / "audit.json")


def exclusion_recipe(audited, exclude: Path) -> TextClassification:
    config = text_config(Path(audited["config"]["model"]), audited["data"], audited["root"] / "unused")
    config["data"]["exclude"] = str(exclude)
    return TextClassification(config)


def test_exclude_accepts_row_lists(audited, tmp_path):
    for name, content in (("rows.txt", "# flagged by hand\n5\n\n17  # duplicate\n2\n"), ("rows.csv", "row,why\n5,x\n17,y\n2,z\n"),
                          ("rows.json", json.dumps({"rows": [5, 17, 2]}))):  # fmt: skip
        (tmp_path / name).write_text(content)
        recipe = exclusion_recipe(audited, tmp_path / name)
        recipe.load_splits()
        train = recipe.report.splits["train"]
        assert train.dropped == {"empty_text": 1, "excluded_by_audit": 2}, name
        assert train.notes["excluded_rows_already_dropped"] == 1  # row 2: the empty text
        assert not {5, 17} & set(recipe.row_ids["train"] + recipe.row_ids["validation"])


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.json", None, "does not exist"),
        ("bad.json", "{not json", "is not valid JSON"),
        ("odd.json", '{"hello": 1}', "neither an hfft audit audit.json"),
        ("big.json", "[3, 61, 99]", "names rows that data.train"),
        ("words.txt", "3\nseven\n", "line 2: 'seven' is not a row number"),
        ("cols.csv", "a,b\n1,2\n", "needs a 'row' column"),
        ("rows.yaml", "- 1\n", "has extension '.yaml'"),
    ],
)
def test_bad_exclude_files_are_clear_errors(audited, tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(DataError, match=message):
        exclusion_recipe(audited, tmp_path / name).load_splits()


def test_an_audit_of_other_data_cannot_exclude_rows(audited, tmp_path):
    result = json.loads((audited["out"] / "audit.json").read_text())
    for key, value, message in (("train", "other.csv", "is an audit of data.train 'other.csv'"),
                                ("source_rows", 70, "the data changed since the audit")):  # fmt: skip
        other = {**result, "data": {**result["data"], key: value}}
        (tmp_path / "audit.json").write_text(json.dumps(other))
        with pytest.raises(DataError, match=message):
            exclusion_recipe(audited, tmp_path / "audit.json").load_splits()


def test_bad_audit_inputs_are_clear_errors(audited, tmp_path, capsys, monkeypatch):
    recipe = str(audited["recipe"])
    no_validation = tmp_path / "run"
    no_validation.mkdir()
    config = {**audited["config"], "data": {**audited["config"]["data"], "validation": "val.csv"}}
    write_recipe(no_validation / "hfft_config.yaml", config)
    (no_validation / "run_info.json").write_text(json.dumps({"task": "text-classification"}))
    ner = write_recipe(tmp_path / "ner.yaml", {"task": "token-classification"})
    cases = [
        (["audit", str(tmp_path / "nope.yaml")], "'" + str(tmp_path / "nope.yaml") + "' does not exist"),
        (["audit", str(ner)], "hfft audit is for classification"),
        (["audit", recipe, "--folds", "1"], "--folds must be at least 2"),
        (["audit", recipe, "--folds", "25"], "--folds 25 is more than the 18 training rows of class 'food'"),
        (["audit", str(no_validation)], "has no held-out predictions for its training rows"),
        (["audit", str(audited["out"] / "fold-0")], "is a fold of an hfft audit"),
        (["audit", str(no_validation), "--folds", "3"], "apply when auditing a recipe"),
        (["audit", recipe, "--folds", FOLDS, "--epochs", "5", "--out", str(audited["out"])], "of another audit"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    monkeypatch.setitem(sys.modules, "cleanlab", None)  # not installed
    assert main(["audit", recipe, "--folds", "3"]) == 2
    assert "pip install 'cleanlab>=2.6'" in capsys.readouterr().err


def test_multi_label_issues_and_folds_stratified_by_the_rarest_class(tiny_bert):
    import datasets

    names = ["a", "b", "c"]
    rng = np.random.default_rng(0)
    sets = rng.random((60, 3)) < [0.5, 0.3, 0.15]
    probabilities = np.where(sets, 0.95, 0.05)
    wrong = [4, 11, 30]
    sets[wrong, 0] = ~sets[wrong, 0]  # given labels that disagree with confident predictions
    folds = assign_folds(sets.astype(np.float32), 3, 42, True, names)
    for fold in range(3):
        assert sets[folds != fold].sum(0).min() > 0  # every fold trains on every class
    config = text_config(
        tiny_bert, {"train": "x.csv", "test": "y.csv"}, Path("unused"), labels={"problem": "multi_label"}
    )
    recipe = TextClassification(config)
    recipe.columns, recipe.labels = {"input": "text", "label": "labels"}, LabelSpace(names, names)
    recipe.report.splits["train"] = type("R", (), {"rows_in": 60})()
    dataset = datasets.Dataset.from_dict({"text": [f"row {i}" for i in range(60)], "labels": sets.tolist()})
    result = find_issues(Audited(recipe, dataset, list(range(100, 160)), sets.astype(np.float32), probabilities))
    flagged = result["flagged"]
    assert {f["row"] for f in flagged[:3]} == {104, 111, 130} and result["problem"] == "multi_label"
    first = flagged[0]
    assert set(first["suggested_label"]) ^ set(first["given_label"]) == {"a"}
    assert set(result["noise"]["per_class"]["a"]) >= {"noise_rate", "spurious", "missing"}
