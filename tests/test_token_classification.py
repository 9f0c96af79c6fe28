"""Token classification: alignment on three tokenizer families, windows that lose no word, gold logits -> F1 1,
seqeval modes, LoRA/full runs that reload identically and load in `transformers.pipeline`, bad inputs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import kill_at_first_checkpoint, resume_killed, with_sections
from ner_fixtures import (
    long_sentence,
    make_ner,
    save_tiny_bert,
    save_tiny_roberta,
    save_tiny_xlmr,
    write_conll,
    write_jsonl,
)

from hfft import TokenClassification, tags
from hfft.errors import ConfigError, DataError, ModelError
from hfft.metrics_tokens import entity_metrics
from hfft.outputs import load_run

SAVERS = {"bert": save_tiny_bert, "roberta": save_tiny_roberta, "xlmr": save_tiny_xlmr}
TEXT = "yesterday Anna Schmidt flew to New York for work ."


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ner-models")
    return {name: save(root / name) for name, save in SAVERS.items()}


@pytest.fixture(scope="module")
def ner_data(tmp_path_factory) -> dict[str, Path]:
    """CoNLL train/dev/test; dev also holds two sentences of 300 and 600 words (several windows each)."""
    root = tmp_path_factory.mktemp("ner-data")
    rows = make_ner(400)
    return {
        "train": write_conll(root / "train.conll", rows[:300]),
        "validation": write_conll(root / "dev.conll", rows[300:350] + [long_sentence(300), long_sentence(600, seed=2)]),
        "test": write_conll(root / "test.conll", rows[350:], sep=" "),
    }


def ner_config(model: Path, data: dict[str, Path], out: Path, **extra) -> dict:
    config = {
        "task": "token-classification",
        "model": str(model),
        "data": {role: str(path) for role, path in data.items()},
        "preprocessing": {"max_length": 32, "stride": 8},
        "training": {
            "output_dir": str(out),
            "num_train_epochs": 4,
            "per_device_train_batch_size": 16,
            "learning_rate": 5e-3,
            "use_cpu": True,
            "save_strategy": "no",
            "eval_strategy": "epoch",
            "report_to": "none",
        },  # fmt: skip
    }
    return with_sections(config, extra)


def prepared(config: dict) -> tuple[TokenClassification, dict]:
    """A recipe with its splits loaded and encoded (no model)."""
    recipe = TokenClassification(config)
    splits = recipe.load_splits()
    recipe.processor = recipe.load_processor(config["model"])
    return recipe, {role: recipe.encode(ds, role) for role, ds in splits.items()}


def conll_sentences(path: Path) -> list[tuple[list[str], list[str]]]:
    from hfft.conll import load_conll

    ds = load_conll(path, "test")["train"]
    return list(zip(ds["tokens"], ds["ner_tags"]))


# ----------------------------------------------------------------------------- alignment and windows


@pytest.mark.parametrize("family", ["bert", "roberta", "xlmr"])
def test_each_word_is_labelled_once_at_its_first_sub_token(checkpoints, ner_data, tmp_path, family):
    recipe, encoded = prepared(ner_config(checkpoints[family], ner_data, tmp_path / "run"))
    if family == "roberta":
        assert recipe.processor.add_prefix_space  # byte-level BPE needs it for pre-split words
    validation = encoded["validation"]
    gold = conll_sentences(ner_data["validation"])
    assert recipe.report.splits["validation"].notes["sentences_in_windows"] >= 2
    assert max(validation["length"]) <= 32
    seen: dict[int, list[int]] = {}
    sentence = -1
    for row in validation:
        sentence += row["first"] == 0
        words, first = row["tokens"], row["first"]
        for position, (label, word) in enumerate(zip(row["labels"], row["word_ids"])):
            if label == -100:
                continue
            assert row["word_ids"][position - 1] != word  # the word's first sub-token
            piece = recipe.processor([words[word]], is_split_into_words=True, add_special_tokens=False)["input_ids"]
            assert row["input_ids"][position] == piece[0]
            assert recipe.label_names[label] == gold[sentence][1][first + word]
            seen.setdefault(sentence, []).append(first + word)
    assert len(seen) == len(gold)
    for s, (words, _) in enumerate(gold):
        assert seen[s] == list(range(len(words))), f"sentence {s}: every word exactly once, in order"


def test_windows_never_cut_an_entity_and_partition_the_words(checkpoints, ner_data, tmp_path):
    recipe, _ = prepared(ner_config(checkpoints["bert"], ner_data, tmp_path / "run"))
    words, sentence_tags = long_sentence(600, seed=2)
    counts = recipe.word_token_counts([words])[0]
    windows = recipe.windows(counts, tags.starts_chunk(sentence_tags))
    assert len(windows) > 10
    owned = [w for _, _, lo, hi in windows for w in range(lo, hi)]
    assert owned == list(range(len(words)))
    for first, end, lo, hi in windows:
        assert first <= lo <= hi <= end and sum(counts[first:end]) <= recipe.capacity
        assert not sentence_tags[lo].startswith("I-")  # an ownership cut falls before an entity or an O


def test_label_all_subtokens_labels_continuations_in_train_only(checkpoints, ner_data, tmp_path):
    recipe, encoded = prepared(ner_config(checkpoints["bert"], ner_data, tmp_path / "run",
                                          labels={"label_all_subtokens": True}))  # fmt: skip
    names = recipe.label_names

    def continuation_labels(dataset):
        out = []
        for row in dataset:
            for position in range(1, len(row["word_ids"])):
                word = row["word_ids"][position]
                if word >= 0 and word == row["word_ids"][position - 1]:
                    out.append(row["labels"][position])
        return out

    train = continuation_labels(encoded["train"])
    assert train and all(label != -100 and not names[label].startswith("B-") for label in train)
    assert set(continuation_labels(encoded["validation"])) == {-100}


# ----------------------------------------------------------------------------- metrics


class GoldModel:
    """Logits that predict each position's label (and a wrong tag where the label is -100)."""

    def __new__(cls, num_labels: int):
        import torch
        from transformers.modeling_outputs import TokenClassifierOutput

        class Gold(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.anchor = torch.nn.Parameter(torch.zeros(1))

            def forward(self, input_ids=None, labels=None, **kwargs):
                wrong = torch.full_like(input_ids, num_labels - 1)
                target = torch.where(labels >= 0, labels, wrong)
                logits = torch.nn.functional.one_hot(target, num_labels).float() * 10 + self.anchor
                return TokenClassifierOutput(loss=self.anchor.sum(), logits=logits)

        return Gold()


def test_gold_logits_score_f1_one_on_long_sentences_through_the_trainer(checkpoints, ner_data, tmp_path):
    from seqeval.metrics.sequence_labeling import get_entities

    recipe = TokenClassification(ner_config(checkpoints["bert"], ner_data, tmp_path / "run"))
    splits = recipe.load_splits()
    recipe.processor = recipe.load_processor(str(checkpoints["bert"]))
    recipe.model = GoldModel(len(recipe.label_names))
    metrics = recipe.evaluate_dataset(splits["validation"], batch_size=4)
    gold = conll_sentences(ner_data["validation"])
    assert metrics["eval_words"] == sum(len(w) for w, _ in gold)  # no word lost in the 300/600-word sentences
    assert metrics["eval_entities"] == sum(len(get_entities(t)) for _, t in gold)
    for key in ("eval_f1", "eval_f1_strict", "eval_f1_default", "eval_accuracy", "eval_f1_PER"):
        assert metrics[key] == 1.0, key


def test_seqeval_strict_and_default_modes_are_both_reported():
    gold = [["B-PER", "I-PER", "O"], ["B-LOC", "O"]]
    predicted = [["I-PER", "I-PER", "O"], ["B-LOC", "O"]]  # the PER entity begins with I-: valid only by default
    default = entity_metrics(gold, predicted, "default")
    strict = entity_metrics(gold, predicted, "strict")
    assert default["f1"] == 1.0 and strict["f1"] == pytest.approx(2 / 3)
    assert default["f1_strict"] == strict["f1_strict"] == pytest.approx(2 / 3)
    assert strict["f1_default"] == 1.0 and default["accuracy"] == pytest.approx(4 / 5)


# ----------------------------------------------------------------------------- training runs


@pytest.fixture(scope="module")
def lora_run(checkpoints, ner_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ner-lora") / "run"
    # LoRA on every linear layer: the tiny model's weights are random, so adapting attention alone learns slowly
    lora = {"r": 8, "alpha": 16, "target_modules": ["query", "key", "value", "dense"]}
    config = ner_config(checkpoints["bert"], ner_data, out, tuning={"method": "lora", "lora": lora},
                        training={"learning_rate": 2e-2, "num_train_epochs": 12})  # fmt: skip
    recipe = TokenClassification(config)
    return recipe, recipe.train(), out


def test_lora_run_learns_entities_and_writes_its_reports(lora_run, ner_data):
    recipe, metrics, out = lora_run
    assert metrics["test_f1"] > 0.6 and metrics["eval_f1"] > 0.4, metrics  # all-O baseline: 0
    assert metrics["test_majority_baseline_accuracy"] < metrics["test_accuracy"]
    assert {"f1_PER", "f1_LOC", "f1_ORG"} <= {k[len("test_") :] for k in metrics if k.startswith("test_f1_")}
    report = json.loads((out / "entity_report.json").read_text())
    assert set(report["test"]) == {"default", "strict"} and report["test"]["default"]["PER"]["support"] > 0
    assert (out / "entity_confusion.png").is_file() and "entity_report.md" in (out / "README.md").read_text()
    assert (out / "adapter" / "adapter_config.json").is_file()
    info = json.loads((out / "run_info.json").read_text())
    assert info["labels"][0] == "O" and "B-PER" in info["labels"]


def test_lora_run_reloads_with_identical_predictions_and_whole_word_spans(lora_run):
    recipe, _, out = lora_run
    texts = [TEXT, "Kofi joined Red Cross last spring .", ""]
    before = recipe.predict(texts)
    after = load_run(out).predict(texts)
    assert [r["tags"] for r in before] == [r["tags"] for r in after]
    for mine, theirs in zip(before, after):
        assert [(e["type"], e["start"], e["end"]) for e in mine["entities"]] == [
            (e["type"], e["start"], e["end"]) for e in theirs["entities"]
        ]
        assert [e["score"] for e in mine["entities"]] == pytest.approx(
            [e["score"] for e in theirs["entities"]], abs=2e-4
        )
    entities = before[0]["entities"]
    assert {(e["type"], e["text"]) for e in entities} >= {("PER", "Anna Schmidt")}
    for e in entities:
        assert TEXT[e["start"] : e["end"]] == e["text"] and 0 < e["score"] <= 1
    assert before[2] == {"entities": [], "words": [], "tags": []}


@pytest.mark.parametrize("run", ["lora", "full-roberta"])
def test_run_directory_loads_in_a_token_classification_pipeline(run, lora_run, checkpoints, ner_data, tmp_path):
    from transformers import pipeline

    if run == "lora":
        recipe, _, out = lora_run
    else:
        out = tmp_path / "full"
        recipe = TokenClassification(ner_config(checkpoints["roberta"], ner_data, out, tuning={"method": "full"},
                                                training={"num_train_epochs": 6}))  # fmt: skip
        recipe.train()
    ours = recipe.predict([TEXT])[0]["entities"]
    found = pipeline("token-classification", model=str(out), aggregation_strategy="first")(TEXT)
    words = set(TEXT.split())
    for entity in found:  # whole words, never sub-word fragments
        assert set(TEXT[entity["start"] : entity["end"]].split()) <= words
    assert [(e["entity_group"], e["start"], e["end"]) for e in found] == [
        (e["type"], e["start"], e["end"]) for e in ours
    ]
    for theirs, mine in zip(found, ours):
        assert float(theirs["score"]) == pytest.approx(mine["score"], abs=1e-3)


def test_freeze_trains_only_the_classifier(checkpoints, ner_data, tmp_path):
    recipe = TokenClassification(ner_config(checkpoints["bert"], ner_data, tmp_path / "run", tuning={"method": "freeze"},
                                            training={"num_train_epochs": 1}))  # fmt: skip
    recipe.train()
    trainable = {name.split(".")[0] for name, p in recipe.model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier"}


def test_robustness_corrupts_words_and_keeps_tags_aligned(lora_run, tmp_path):
    from hfft.robustness import run_robustness

    _, metrics, out = lora_run
    result = run_robustness(out, severities=(1, 5), out_dir=tmp_path / "robust", max_samples=40)
    assert result["metric"] == "f1" and set(result["corruptions"]) == {"char_typos", "casing", "word_dropout"}
    assert result["by_metric"]["accuracy"]["casing"]["1"] <= 1.0
    assert result["corruptions"]["char_typos"]["5"] < result["clean_f1"]
    assert (tmp_path / "robust" / "robustness.md").is_file()


# ----------------------------------------------------------------------------- data formats


def test_jsonl_spans_and_bioes_conll_folder_are_read(checkpoints, tmp_path):
    rows = make_ner(120, seed=3)
    spans = []
    for words, row_tags in rows:
        text = " ".join(words)
        starts = np.cumsum([0] + [len(w) + 1 for w in words])
        entities = [{"start": int(starts[a]), "end": int(starts[b - 1] + len(words[b - 1])), "label": kind}
                    for a, b, kind in tags.entity_spans(row_tags)]  # fmt: skip
        spans.append({"text": text, "entities": entities})
    (tmp_path / "spans.jsonl").write_text("".join(json.dumps(r) + "\n" for r in spans))
    recipe = TokenClassification(ner_config(checkpoints["bert"], {"train": tmp_path / "spans.jsonl"}, tmp_path / "a"))
    train = recipe.load_splits()["train"]
    assert [recipe.label_names[i] for i in train[0]["labels"]] in [t for _, t in rows]

    folder = tmp_path / "bioes"
    folder.mkdir()
    for name, part in (("train", rows[:80]), ("dev", rows[80:100]), ("test", rows[100:])):
        bioes = []
        for words, row_tags in part:
            out = list(row_tags)
            for a, b, kind in tags.entity_spans(row_tags):
                out[a:b] = [f"S-{kind}"] if b - a == 1 else [f"B-{kind}"] + [f"I-{kind}"] * (b - a - 2) + [f"E-{kind}"]
            bioes.append((words, out))
        write_conll(folder / f"{name}.conll", bioes)
    recipe = TokenClassification(ner_config(checkpoints["bert"], {"train": folder}, tmp_path / "b"))
    splits = recipe.load_splits()
    assert set(splits) == {"train", "validation", "test"}
    assert recipe.report.splits["train"].notes["tag_scheme"] == "BIOES (converted to IOB2)"
    assert all(name == "O" or name[:2] in ("B-", "I-") for name in recipe.label_names)


def test_invalid_tag_sequences_are_counted_repaired_or_refused(checkpoints, ner_data, tmp_path):
    rows = make_ner(60, seed=4) + [(["Anna", "went", "Paris"], ["O", "O", "I-LOC"])]
    write_conll(tmp_path / "bad.conll", rows)
    data = {"train": tmp_path / "bad.conll"}
    recipe = TokenClassification(ner_config(checkpoints["bert"], data, tmp_path / "a"))
    train = recipe.load_splits()["train"]
    assert recipe.report.splits["train"].notes["invalid_tag_sequences"] == {"rows": 1, "tags": 1}
    assert all(not tags.invalid_positions([recipe.label_names[i] for i in row]) for row in train["labels"])
    with pytest.raises(DataError, match=r"bad.conll.*I- tag that continues no entity.*row 60"):
        TokenClassification(
            ner_config(checkpoints["bert"], data, tmp_path / "b", labels={"invalid_tags": "error"})
        ).load_splits()


# ----------------------------------------------------------------------------- bad inputs


def test_words_and_tags_of_different_lengths_name_file_and_row(checkpoints, tmp_path):
    rows = make_ner(30)
    rows[7] = (rows[7][0], rows[7][1][:-1])
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"train.jsonl.*row 7 has \d+ words but \d+ tags in 'ner_tags'"):
        TokenClassification(ner_config(checkpoints["bert"], {"train": path}, tmp_path / "run")).train()
    assert not (tmp_path / "run").exists()


def test_unknown_tag_in_validation_names_file_row_and_tag(checkpoints, tmp_path):
    rows = make_ner(40)
    dev = make_ner(10, seed=5)
    dev[3] = (dev[3][0], ["B-MISC"] + dev[3][1][1:])
    data = {
        "train": write_conll(tmp_path / "train.conll", rows),
        "validation": write_conll(tmp_path / "dev.conll", dev),
    }
    with pytest.raises(DataError, match=r"dev.conll.*row 3 .*tag 'B-MISC', which train does not have"):
        TokenClassification(ner_config(checkpoints["bert"], data, tmp_path / "run")).train()


def test_empty_sentences_are_counted_and_string_columns_refused(checkpoints, tmp_path):
    rows = make_ner(40) + [([], [])] * 3
    recipe = TokenClassification(ner_config(checkpoints["bert"], {"train": write_jsonl(tmp_path / "t.jsonl", rows)},
                                            tmp_path / "run"))  # fmt: skip
    recipe.load_splits()
    assert recipe.report.splits["train"].dropped["empty_sentence"] == 3
    (tmp_path / "s.jsonl").write_text(
        "".join(json.dumps({"tokens": " ".join(w), "ner_tags": t}) + "\n" for w, t in rows)
    )
    with pytest.raises(DataError, match="s.jsonl.*'tokens' holds .*list of words"):
        TokenClassification(ner_config(checkpoints["bert"], {"train": tmp_path / "s.jsonl"}, tmp_path / "r2")).train()


def test_integer_tags_need_names(checkpoints, tmp_path):
    rows = make_ner(40)
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    ids = [(w, [names.index(t) for t in ts]) for w, ts in rows]
    path = write_jsonl(tmp_path / "ids.jsonl", ids)
    with pytest.raises(DataError, match="ids.jsonl.*labels.names"):
        TokenClassification(ner_config(checkpoints["bert"], {"train": path}, tmp_path / "a")).train()
    recipe = TokenClassification(
        ner_config(checkpoints["bert"], {"train": path}, tmp_path / "b", labels={"names": names})
    )
    train = recipe.load_splits()["train"]
    assert [recipe.label_names[i] for i in train[0]["labels"]] in [t for _, t in rows]


def test_slow_tokenizer_and_class_weights_are_refused(checkpoints, ner_data, tmp_path):
    from transformers import AutoTokenizer

    slow = tmp_path / "slow"
    slow.mkdir()
    shutil.copy(checkpoints["bert"] / "config.json", slow)
    shutil.copy(checkpoints["bert"] / "model.safetensors", slow)
    vocab = AutoTokenizer.from_pretrained(checkpoints["bert"]).get_vocab()
    (slow / "vocab.txt").write_text("\n".join(sorted(vocab, key=vocab.get)))
    (slow / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizerLegacy"}))
    with pytest.raises(ModelError, match="slow.*fast tokenizer"):
        TokenClassification(ner_config(slow, ner_data, tmp_path / "run")).train()
    with pytest.raises(ConfigError, match="class_weights"):
        TokenClassification(ner_config(slow, ner_data, tmp_path / "r", regularization={"class_weights": "balanced"}))


# ----------------------------------------------------------------------------- processes


HFFT = str(Path(sys.executable).parent / "hfft")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def test_killed_run_resumes_to_the_uninterrupted_metrics(checkpoints, ner_data, tmp_path):
    """Dropout, mention replacement, re-casing and sub-token masking on: every RNG must be restored."""
    settings = {"save_strategy": "steps", "save_steps": 6, "save_total_limit": 2, "num_train_epochs": 5,
                "eval_strategy": "no"}  # fmt: skip
    extra = {"regularization": {"dropout": 0.05}, "tuning": {"method": "full"},
             "augmentation": {"token_mask_prob": 0.1, "case_change_prob": 0.3, "mention_replace_prob": 0.5}}  # fmt: skip
    out = tmp_path / "killed"
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(yaml.safe_dump(ner_config(checkpoints["bert"], ner_data, out, training=settings, **extra)))
    killer = kill_at_first_checkpoint([HFFT, "train", recipe_file], out, ENV)
    reference = TokenClassification(
        ner_config(checkpoints["bert"], ner_data, tmp_path / "reference", training=settings, **extra)
    ).train()
    metrics = resume_killed(killer, [HFFT, "train", recipe_file], out, ENV)
    assert reference["test_f1"] > 0.5
    for key in ("test_f1", "test_accuracy", "test_loss", "eval_loss", "train_eval_f1"):
        assert metrics[key] == pytest.approx(reference[key], rel=1e-4, abs=1e-5), key


def test_two_processes_evaluate_every_word_once(checkpoints, ner_data, tmp_path):
    common = {"tuning": {"method": "full"}, "training": {"num_train_epochs": 3}}
    one = ner_config(checkpoints["bert"], ner_data, tmp_path / "one", **common)
    two = ner_config(checkpoints["bert"], ner_data, tmp_path / "two", **common)
    two["training"]["per_device_train_batch_size"] = 8  # same global batch: 2 x 8
    for config, extra in ((one, []), (two, ["--num-processes", "2"])):
        path = tmp_path / f"{Path(config['training']['output_dir']).name}.yaml"
        path.write_text(yaml.safe_dump(config))
        env = {**ENV, "OMP_NUM_THREADS": "1"}
        done = subprocess.run([HFFT, "train", path, *extra], env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    first, second = (json.loads((tmp_path / n / "all_results.json").read_text()) for n in ("one", "two"))
    assert second["world_size"] == 2
    words = sum(len(w) for w, _ in conll_sentences(ner_data["validation"]))
    assert first["eval_words"] == second["eval_words"] == words  # windows gathered once, none repeated
    assert first["test_f1"] > 0.8 and second["test_f1"] > 0.8  # both learn (data order differs under DDP)


def test_cli_predicts_spans_and_evaluates_conll(lora_run, ner_data, tmp_path):
    _, metrics, out = lora_run
    done = subprocess.run([HFFT, "predict", out, TEXT], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["input"] == TEXT and {"type", "text", "start", "end", "score"} <= set(result["entities"][0])
    done = subprocess.run([HFFT, "evaluate", out, "--data", ner_data["test"]], env=ENV, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    evaluated = json.loads(done.stdout[done.stdout.index("{") :])
    assert evaluated["eval_f1"] == pytest.approx(metrics["test_f1"], abs=1e-6)


def test_hub_style_dataset_with_classlabel_tags(checkpoints, tmp_path):
    """A saved `datasets` dataset as the Hub's conll2003/wnut_17 ship: `tokens` + `ner_tags` of ClassLabel ids,
    with a `pos_tags` column beside (the tag column is named to choose)."""
    import datasets

    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]
    tag_list = getattr(datasets, "List", datasets.Sequence)
    features = datasets.Features({"tokens": tag_list(datasets.Value("string")),
                                  "ner_tags": tag_list(datasets.ClassLabel(names=names)),
                                  "pos_tags": tag_list(datasets.Value("int32"))})  # fmt: skip

    def split(rows):
        return datasets.Dataset.from_dict(
            {"tokens": [w for w, _ in rows], "ner_tags": [[names.index(t) for t in ts] for _, ts in rows],
             "pos_tags": [[0] * len(w) for w, _ in rows]}, features=features)  # fmt: skip

    rows = make_ner(80, seed=6)
    datasets.DatasetDict({"train": split(rows[:60]), "validation": split(rows[60:])}).save_to_disk(tmp_path / "hub")
    with pytest.raises(DataError, match="ner_tags, pos_tags could each be 'data.label_column'"):
        TokenClassification(ner_config(checkpoints["bert"], {"train": tmp_path / "hub"}, tmp_path / "a")).load_splits()
    config = ner_config(checkpoints["bert"], {"train": tmp_path / "hub"}, tmp_path / "b")
    config["data"]["label_column"] = "ner_tags"
    recipe = TokenClassification(config)
    splits = recipe.load_splits()
    assert recipe.label_names == names and len(splits["validation"]) == 20
    assert [names[i] for i in splits["validation"][0]["labels"]] == rows[60][1]
