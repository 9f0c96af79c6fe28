"""Causal-LM fine-tuning: loss masks of every data shape (also packed), packing isolation, rows left without
targets, stopping at the end-of-turn token, adapter reload/merge, pipeline loading, resume, bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import kill_at_first_checkpoint, resume_killed
from lm_fixtures import CHATML, chat_rows, colour_pairs, lm_config, save_tiny_llama, write_jsonl

from hfft.errors import ConfigError, DataError, ModelError
from hfft.registry import recipe_class

END = "<|im_end|>"


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("llama") / "model")


@pytest.fixture(scope="module")
def pairs() -> list[tuple[str, str]]:
    return colour_pairs(48)


def encoded_train(config: dict):
    """What `train()` feeds the Trainer (cleaned, rendered, labelled), and the recipe."""
    recipe = recipe_class("causal-lm")(config)
    splits = recipe.load_splits()
    recipe.processor = recipe.load_processor(config["model"])
    return recipe, recipe.encode(splits["train"], "train")


def target_text(tokenizer, ids, labels) -> str:
    return tokenizer.decode([t for t, label in zip(ids, labels) if label != -100])


def shaped_rows(shape: str, pairs):
    if shape in ("messages", "sharegpt"):
        return chat_rows(pairs, sharegpt=shape == "sharegpt")
    if shape.startswith("prompt"):
        return [{"prompt": q, "completion": a} for q, a in pairs]
    return [{"text": f"{q} {a}"} for q, a in pairs]


@pytest.mark.parametrize("packing", [False, True])
@pytest.mark.parametrize("shape", ["messages", "sharegpt", "prompt-completion", "prompt-plain", "text"])
def test_targets_are_exactly_the_completion_and_end_of_turn(tiny_llama, pairs, tmp_path, shape, packing):
    from hfft.modalities.text.chat import ChatCollator

    train = write_jsonl(tmp_path / "train.jsonl", shaped_rows(shape, pairs))
    use = "never" if shape == "prompt-plain" else "auto"
    config = lm_config(tiny_llama, train, tmp_path / "run", preprocessing={"use_chat_template": use})
    recipe, encoded = encoded_train(config)
    tokenizer = recipe.processor
    rows = [encoded[i] for i in range(4)]
    expected = {}  # the text of each row's targets, from the raw pair
    by_question = dict(pairs)
    for row in rows:
        text = tokenizer.decode(row["input_ids"])
        question = next(q for q in by_question if q in text)
        expected[question] = {
            "text": text,  # plain text: every token (the first has no predecessor; it is never a target)
            "prompt-plain": by_question[question] + END,  # completion + EOS
        }.get(shape, by_question[question] + END)  # chat: assistant content + end-of-turn
    batch = ChatCollator(tokenizer, packing=packing)(rows)
    if packing:
        assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch
        starts = [i for i, p in enumerate(batch["position_ids"][0].tolist()) if p == 0]
        segments = list(zip(starts, starts[1:] + [batch["input_ids"].shape[1]]))
        per_row = [(batch["input_ids"][0, a:b].tolist(), batch["labels"][0, a:b].tolist()) for a, b in segments]
    else:
        per_row = list(zip(batch["input_ids"].tolist(), batch["labels"].tolist()))
    assert len(per_row) == len(rows)
    for (ids, labels), row in zip(per_row, rows):
        got = target_text(tokenizer, ids, labels)
        want = expected[next(q for q in by_question if q in tokenizer.decode(row["input_ids"]))]
        if shape == "text":
            want = tokenizer.decode(row["input_ids"][1:])  # the first token is never predicted (shifted labels)
            got = target_text(tokenizer, ids[1:], labels[1:])
        assert got == want
    assert recipe.report.splits["train"].notes["data_shape"] == {"messages": "conversation", "sharegpt": "conversation",
                                                                 "text": "text"}.get(shape, "prompt-completion")  # fmt: skip


def test_multi_turn_trains_every_assistant_turn_and_nothing_else(tiny_llama, tmp_path):
    turns = [
        {"role": "system", "content": "you are a colour bot"},
        {"role": "user", "content": "what colour is the sky?"},
        {"role": "assistant", "content": "blue."},
        {"role": "user", "content": "and the grass?"},
        {"role": "assistant", "content": "green."},
    ]
    train = write_jsonl(tmp_path / "train.jsonl", [{"messages": turns}] + chat_rows(colour_pairs(20)))
    validation = write_jsonl(tmp_path / "validation.jsonl", chat_rows(colour_pairs(4)))
    recipe, encoded = encoded_train(
        lm_config(tiny_llama, train, tmp_path / "run", data={"validation": str(validation)})
    )
    row = next(r for r in encoded if "and the grass?" in recipe.processor.decode(r["input_ids"]))
    assert target_text(recipe.processor, row["input_ids"], row["labels"]) == f"blue.{END}green.{END}"


def test_packed_loss_equals_unpadded_loss(tiny_llama, pairs, tmp_path):
    """Samples packed into one row (position ids restarting) give the loss of the same samples padded."""
    import torch
    from transformers import AutoModelForCausalLM

    from hfft.modalities.text.chat import ChatCollator
    from hfft.packing import packing_isolated

    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(pairs))
    recipe, encoded = encoded_train(lm_config(tiny_llama, train, tmp_path / "run"))
    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama)).eval()
    assert packing_isolated(model)[0]
    rows = [encoded[i] for i in range(6)]
    with torch.no_grad():  # the batches exactly as the Trainer passes them to the model
        losses = {
            packing: model(**ChatCollator(recipe.processor, packing)(rows)).loss.item() for packing in (False, True)
        }
        one_by_one = [model(**ChatCollator(recipe.processor, False)([r])) for r in rows]
    counts = [sum(label != -100 for label in r["labels"][1:]) for r in rows]
    mean = sum(out.loss.item() * n for out, n in zip(one_by_one, counts)) / sum(counts)
    assert abs(losses[True] - losses[False]) < 1e-4
    assert abs(losses[True] - mean) < 1e-4


def test_packed_training_draws_random_batches_not_length_groups(tiny_llama, pairs, tmp_path):
    """Packing leaves no padding for length grouping to save, and grouped batches cost quality (benchmarks/README.md):
    packed runs sample at random, padded ones group by length; a recipe's own choice wins."""
    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(pairs))
    for packing, extra, expected in ((True, {}, "random"), (False, {}, "group_by_length"),
                                     (True, {"train_sampling_strategy": "group_by_length"}, "group_by_length")):  # fmt: skip
        config = lm_config(tiny_llama, train, tmp_path / "run", preprocessing={"packing": packing}, training=extra)
        assert recipe_class("causal-lm")(config).training_arguments().train_sampling_strategy == expected


def test_rows_whose_targets_are_cut_away_are_dropped_and_counted(tiny_llama, pairs, tmp_path):
    long_prompt = "what colour is " + "the red and blue " * 40 + "sky?"
    rows = chat_rows(pairs) + chat_rows([(long_prompt, "blue.")])
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    validation = write_jsonl(tmp_path / "validation.jsonl", chat_rows(colour_pairs(4, seed=7)))
    config = lm_config(tiny_llama, train, tmp_path / "run", preprocessing={"max_length": 64},
                       data={"validation": str(validation)})  # fmt: skip
    recipe, encoded = encoded_train(config)
    report = recipe.report.splits["train"]
    assert report.dropped.get("targets_truncated_away") == 1
    assert report.notes["truncated"] == 1
    assert all(any(label != -100 for label in labels) for labels in encoded["labels"])


@pytest.fixture(scope="module")
def lora_run(tiny_llama, tmp_path_factory) -> tuple[Path, dict]:
    """A short LoRA run on prompt/completion pairs that the tiny model learns, answers and stops after."""
    root = tmp_path_factory.mktemp("lora-run")
    pairs = colour_pairs(400, seed=1)
    train = write_jsonl(root / "train.jsonl", [{"prompt": f"{p} ({i % 50})", "completion": c} for i, (p, c) in enumerate(pairs)])  # fmt: skip
    test = write_jsonl(root / "test.jsonl", [{"prompt": f"{p} ({i})", "completion": c} for i, (p, c) in enumerate(colour_pairs(8, seed=9), start=60)])  # fmt: skip
    out = root / "run"
    config = lm_config(tiny_llama, train, out, data={"test": str(test)}, labels={"generation_rows": 8, "max_new_tokens": 24},
                       tuning={"lora": {"r": 16, "alpha": 32, "dropout": 0.0}},
                       training={"num_train_epochs": 12, "learning_rate": 2e-2, "per_device_train_batch_size": 16})  # fmt: skip
    return out, recipe_class("causal-lm")(config).train()


def test_lora_run_stops_reloads_merges_and_loads_in_pipeline(tiny_llama, lora_run, tmp_path):
    """A short LoRA run learns the answers and to stop; the run directory, its adapter and an export agree."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, pipeline

    from hfft.outputs import export_merged, load_run

    out, metrics = lora_run
    assert metrics["test_zero_shot_stop_rate"] < 0.5
    assert metrics["test_stop_rate"] >= 0.75, json.dumps(metrics, indent=1)
    assert metrics["test_exact_match"] >= 0.5
    assert metrics["test_perplexity"] < metrics["test_zero_shot_perplexity"] / 4
    generation = json.loads((out / "generation_config.json").read_text())
    end_id = json.loads((out / "tokenizer.json").read_text())["added_tokens"][2]["id"]
    assert end_id in generation["eos_token_id"]
    records = [json.loads(line) for line in (out / "generations_test.jsonl").read_text().splitlines()]
    assert len(records) == 8 and sum(r["stopped"] for r in records) == round(8 * metrics["test_stop_rate"])
    card = (out / "README.md").read_text()
    assert "pipeline_tag: text-generation" in card and "generated:" in card

    run = load_run(out)
    prompts = ["what colour is the sky? (70)", "what colour is the coal? (71)"]
    answers = [r["generated_text"] for r in run.predict(prompts)]
    assert answers == ["the sky is blue.", "the coal is black."]
    rendered = [run.render_prompt(p) for p in prompts]
    tokenizer = run.processor
    tokenizer.padding_side = "left"
    batch = tokenizer(rendered, return_tensors="pt", padding=True, add_special_tokens=False)

    def greedy(model) -> list[list[int]]:
        with torch.no_grad():
            ids = model.generate(**batch, do_sample=False, max_new_tokens=12, pad_token_id=tokenizer.pad_token_id)
        return ids[:, batch["input_ids"].shape[1] :].tolist()

    adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(tiny_llama)), str(out / "adapter"))
    merged = AutoModelForCausalLM.from_pretrained(str(out))
    assert greedy(adapter.eval()) == greedy(adapter.merge_and_unload().eval()) == greedy(merged.eval())

    run_dir_pipeline = pipeline("text-generation", model=str(out))  # the LoRA run directory itself (merged at the top)
    assert (
        run_dir_pipeline([{"role": "user", "content": prompts[0]}], do_sample=False)[0]["generated_text"][-1][
            "content"
        ].strip()
        == answers[0]
    )

    export = export_merged(out, tmp_path / "export")
    assert (export / "chat_template.jinja").is_file() or "chat_template" in (
        export / "tokenizer_config.json"
    ).read_text()
    generator = pipeline("text-generation", model=str(export))
    chat = generator([{"role": "user", "content": prompts[0]}], do_sample=False)
    reply = chat[0]["generated_text"][-1]
    assert reply["role"] == "assistant" and reply["content"].strip() == answers[0]


def test_resume_after_sigkill(tiny_llama, pairs, tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(colour_pairs(200, seed=3)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    configs = {}
    for name in ("killed", "reference"):
        config = lm_config(tiny_llama, train, tmp_path / name, labels={"zero_shot_baseline": False, "generation_rows": 2},
                           training={"save_strategy": "steps", "save_steps": 2, "eval_strategy": "no",
                                     "num_train_epochs": 2, "per_device_train_batch_size": 4})  # fmt: skip
        configs[name] = tmp_path / f"{name}.yaml"
        configs[name].write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "hfft", "train", str(configs["killed"])]
    killer = kill_at_first_checkpoint(command, tmp_path / "killed", env)
    reference = subprocess.run([sys.executable, "-m", "hfft", "train", str(configs["reference"])], env=env,
                               capture_output=True, text=True, timeout=300)  # fmt: skip
    assert reference.returncode == 0, reference.stderr[-3000:]
    resumed = resume_killed(killer, command, tmp_path / "killed", env)
    expected = json.loads((tmp_path / "reference" / "all_results.json").read_text())
    assert resumed["test_loss" if "test_loss" in expected else "eval_loss"] == pytest.approx(
        expected["test_loss" if "test_loss" in expected else "eval_loss"], rel=1e-4
    )


# ---------------------------------------------------------------------- bad inputs


def test_missing_role_names_the_file_and_row(tiny_llama, pairs, tmp_path):
    rows = chat_rows(pairs[:10])
    rows[3] = {"messages": [{"content": "what colour is the sky?"}, {"role": "assistant", "content": "blue."}]}
    train = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=r"bad\.jsonl.*row 3.*turn 0 has no role"):
        recipe_class("causal-lm")(lm_config(tiny_llama, train, tmp_path / "run")).train()
    assert not (tmp_path / "run").exists()  # failed before anything was written


def test_empty_assistant_turn_names_the_row(tiny_llama, pairs, tmp_path):
    rows = chat_rows(pairs[:10])
    rows[7]["messages"][1]["content"] = "   "
    train = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=r"row 7: assistant turn 1 is empty"):
        recipe_class("causal-lm")(lm_config(tiny_llama, train, tmp_path / "run")).train()


def test_conversations_without_a_chat_template_fail_early(tmp_path, pairs):
    model = save_tiny_llama(tmp_path / "no-template", template=None)
    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(pairs))
    with pytest.raises(ConfigError, match=r"no chat template.*preprocessing\.chat_template"):
        recipe_class("causal-lm")(lm_config(model, train, tmp_path / "run")).train()
    # given in the config instead, it is used and saved with the model
    recipe, encoded = encoded_train(lm_config(model, train, tmp_path / "run", preprocessing={"chat_template": CHATML}))
    assert END in recipe.processor.decode(encoded[0]["input_ids"])


def test_template_without_end_of_turn_token_is_refused(tiny_llama, pairs, tmp_path):
    plain = "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(pairs))
    with pytest.raises(ConfigError, match="no end-of-turn token"):
        encoded_train(lm_config(tiny_llama, train, tmp_path / "run", preprocessing={"chat_template": plain}))


def test_unreadable_gguf_is_named(tmp_path, pairs, monkeypatch):
    monkeypatch.setenv("HFFT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "gguf").mkdir()
    (tmp_path / "gguf" / "model.Q4_0.gguf").write_bytes(b"not a gguf file at all")
    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(pairs))
    with pytest.raises(ModelError, match=r"model\.Q4_0\.gguf' is not a readable GGUF file"):
        recipe_class("causal-lm")(lm_config(tmp_path / "gguf", train, tmp_path / "run")).train()


def test_qlora_without_gpu_is_a_clear_error(tiny_llama, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="qlora"):
        recipe_class("causal-lm")(
            lm_config(tiny_llama, tmp_path / "x.jsonl", tmp_path / "run", tuning={"method": "qlora"})
        )


def test_robustness_corrupts_prompts_not_targets(lora_run, tmp_path):
    from hfft.modalities.text.chat import PromptCorruption
    from hfft.robustness import run_robustness

    turns = [{"role": "user", "content": "what colour is the sky?"}, {"role": "assistant", "content": "blue."}]
    import numpy as np

    corrupt = PromptCorruption(lambda text, severity, rng: text.upper())
    assert corrupt(turns, 3, np.random.default_rng(0)) == [
        {"role": "user", "content": "WHAT COLOUR IS THE SKY?"},
        turns[1],
    ]
    out, _ = lora_run
    result = run_robustness(out, severities=(1, 5), names=["char_typos"], out_dir=tmp_path / "robust")
    assert result["metric"] == "loss" and set(result["by_metric"]) == {
        "loss",
        "perplexity",
        "contains_answer",
        "stop_rate",
    }
    assert 0.0 <= result["clean_contains_answer"] <= 1.0
    # typos in the prompt make the answers harder to predict: the loss rises with severity
    assert result["corruptions"]["char_typos"]["5"] > result["clean_loss"]
    assert (tmp_path / "robust" / "robustness.md").is_file()


def test_cli_predict_streams_the_answer(lora_run):
    out, _ = lora_run
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    shown = subprocess.run([sys.executable, "-m", "hfft", "predict", str(out), "what colour is the sky? (70)"],
                           env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert ">>> what colour is the sky? (70)" in shown.stdout and "the sky is blue." in shown.stdout


def test_two_processes_with_packing(tiny_llama, tmp_path):
    """torchrun, 2 gloo processes, packed batches: equal weights on both ranks, every evaluation token once."""
    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(colour_pairs(120, seed=5)))
    validation = write_jsonl(tmp_path / "validation.jsonl", chat_rows(colour_pairs(9, seed=6)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    runs = {}
    for name, processes in (("one", 1), ("two", 2)):
        config = lm_config(tiny_llama, train, tmp_path / name, data={"validation": str(validation)},
                           preprocessing={"packing": True}, labels={"generation_rows": 2},
                           training={"per_device_train_batch_size": 8 // processes, "per_device_eval_batch_size": 2})  # fmt: skip
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        done = subprocess.run([sys.executable, "-m", "hfft", "train", str(path), "--num-processes", str(processes)],
                              env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        runs[name] = (json.loads((tmp_path / name / "all_results.json").read_text()),
                      json.loads((tmp_path / name / "run_info.json").read_text()))  # fmt: skip
    (one, _), (two, info) = runs["one"], runs["two"]
    assert info["world_size"] == 2 and info["packing"]["used"]
    assert info["rank_weight_fingerprints"][0] == info["rank_weight_fingerprints"][1]
    assert two["eval_target_tokens"] == one["eval_target_tokens"]  # 9 rows over 2 ranks x 2: none counted twice
    assert two["eval_perplexity"] == pytest.approx(one["eval_perplexity"], rel=0.05)


def test_gguf_is_dequantised_once_and_trains(tiny_llama, pairs, tmp_path, monkeypatch, caplog):
    """A GGUF file (as llama.cpp writes it) becomes a cached safetensors checkpoint with the same logits,
    tokenizer and chat template; the second use loads the cache without converting again."""
    import torch
    from lm_fixtures import save_tiny_gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from hfft.modeling import check_model_source

    monkeypatch.setenv("HFFT_CACHE", str(tmp_path / "cache"))
    (tmp_path / "gguf").mkdir()
    file = save_tiny_gguf(tiny_llama, tmp_path / "gguf" / "tiny.F32.gguf")
    with caplog.at_level("WARNING", logger="hfft"):
        converted = check_model_source(str(tmp_path / "gguf"))  # the directory holding one .gguf file
    assert "dequantising GGUF" in caplog.text and str(tmp_path / "cache") in converted
    caplog.clear()
    with caplog.at_level("WARNING", logger="hfft"):
        assert check_model_source(str(file)) == converted
    assert "dequantising" not in caplog.text
    ids = torch.tensor([[5, 17, 42, 99, 7]])
    original, loaded = (AutoModelForCausalLM.from_pretrained(p) for p in (str(tiny_llama), converted))
    assert torch.allclose(original(ids).logits, loaded(ids).logits, atol=1e-5)
    tokenizer = AutoTokenizer.from_pretrained(converted)
    assert tokenizer.chat_template == CHATML and tokenizer.eos_token == END
    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(pairs))
    config = lm_config(file, train, tmp_path / "run", labels={"zero_shot_baseline": False, "generation_rows": 0},
                       training={"num_train_epochs": 1})  # fmt: skip
    metrics = recipe_class("causal-lm")(config).train()
    assert metrics["eval_perplexity"] > 0
    assert json.loads((tmp_path / "run" / "run_info.json").read_text())["base_model"] == converted


def test_csv_conversations_as_json_text_and_duplicates_kept_on_request(tiny_llama, tmp_path):
    import csv

    pairs = colour_pairs(30, seed=4)
    path = tmp_path / "train.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["messages"])
        for row in chat_rows(pairs):
            writer.writerow([json.dumps(row["messages"])])
    recipe, encoded = encoded_train(lm_config(tiny_llama, path, tmp_path / "run", data={"drop_duplicates": False}))
    report = recipe.report.splits
    assert "duplicate" not in report["train"].dropped
    assert report["train"].rows_out + report["validation"].rows_out == 30
    row = encoded[0]
    assert target_text(recipe.processor, row["input_ids"], row["labels"]).endswith(f".{END}")


def test_chat_template_option_is_checked_at_load_time(tiny_llama, tmp_path):
    for value, message in (("templates/chatml.jinja", "does not exist"), ("chatml", "must be a Jinja template")):
        with pytest.raises(ConfigError, match=message):
            recipe_class("causal-lm")(lm_config(tiny_llama, tmp_path / "x.jsonl", tmp_path / "run",
                                                preprocessing={"chat_template": value}))  # fmt: skip


def test_alpaca_instruction_input_output(tiny_llama, tmp_path):
    rows = [{"instruction": q, "input": "answer briefly." if i % 2 else "", "output": a}
            for i, (q, a) in enumerate(colour_pairs(30, seed=8))]  # fmt: skip
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    recipe, encoded = encoded_train(lm_config(tiny_llama, train, tmp_path / "run"))
    assert recipe.columns == {"input": "instruction", "context": "input", "completion": "output"}
    texts = [recipe.processor.decode(r["input_ids"]) for r in encoded]
    with_context = next(t for t in texts if "answer briefly." in t)
    assert "?\n\nanswer briefly.<|im_end|>" in with_context
    row = encoded[0]
    assert target_text(recipe.processor, row["input_ids"], row["labels"]).endswith(f".{END}")


def test_label_smoothing_and_full_fine_tuning(tiny_llama, pairs, tmp_path):
    """regularization.label_smoothing goes through Trainer's causal-LM label smoother (labels shifted); full FT."""
    train = write_jsonl(tmp_path / "train.jsonl", chat_rows(pairs))
    config = lm_config(tiny_llama, train, tmp_path / "run", regularization={"label_smoothing": 0.1},
                       tuning={"method": "full"}, labels={"generation_rows": 0})  # fmt: skip
    metrics = recipe_class("causal-lm")(config).train()
    assert metrics["eval_perplexity"] < metrics["eval_zero_shot_perplexity"] / 2
    from transformers import pipeline

    chat = pipeline("text-generation", model=str(tmp_path / "run"))  # the full fine-tuning run directory
    reply = chat([{"role": "user", "content": pairs[0][0]}], do_sample=False, max_new_tokens=8)
    assert reply[0]["generated_text"][-1]["role"] == "assistant"
    assert not (tmp_path / "run" / "adapter").exists()
