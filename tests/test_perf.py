"""hfft.perf and hfft.cpu_dropout: the CPU speed settings keep the computation what it was meant to be."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hfft.perf import channels_last, precomputed_lengths


def test_evaluation_runs_in_training_precision_and_cnn_layout_is_restored(tmp_path: Path) -> None:
    from transformers import ResNetConfig, ResNetForImageClassification, TrainingArguments

    from hfft.perf import Trainer

    generator = torch.Generator().manual_seed(0)  # fixed data: the bf16/fp32 gap below depends on it
    rows = [{"pixel_values": torch.randn(3, 32, 32, generator=generator), "labels": i % 3} for i in range(8)]
    batch = {"pixel_values": torch.stack([r["pixel_values"] for r in rows]), "labels": torch.arange(8) % 3}
    for use_bf16 in (True, False):
        torch.manual_seed(0)
        config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], num_labels=3)
        model = ResNetForImageClassification(config)
        args = TrainingArguments(
            str(tmp_path / str(use_bf16)), use_cpu=True, bf16=use_bf16, max_steps=1, report_to="none",
            per_device_train_batch_size=8, per_device_eval_batch_size=8,
        )  # fmt: skip
        trainer = Trainer(model=model, args=args, train_dataset=rows, eval_dataset=rows)
        assert channels_last(model)  # CNN on CPU: trains in the channels-last layout
        trainer.train()
        assert not channels_last(model)  # ... and is left in the default one, as it is saved
        model.eval()
        with torch.no_grad():
            fp32 = model(**batch).loss.item()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                bf16 = model(**batch).loss.item()
        assert abs(fp32 - bf16) > 1e-4  # the two precisions are distinguishable here
        loss = trainer.evaluate()["eval_loss"]
        assert loss == pytest.approx(bf16 if use_bf16 else fp32, abs=2e-4 if use_bf16 else 1e-5)
        assert abs(loss - (fp32 if use_bf16 else bf16)) > 1e-4
        assert not channels_last(model)


def test_precomputed_lengths_read_through_a_wrapper() -> None:
    import datasets

    data = datasets.Dataset.from_dict({"length": [3, 1, 2]})

    class Wrapper(torch.utils.data.Dataset):
        def __init__(self, dataset: datasets.Dataset) -> None:
            self.dataset = dataset

        def __len__(self) -> int:
            return len(self.dataset)

    assert precomputed_lengths(Wrapper(data), "length") == [3, 1, 2]
    assert precomputed_lengths(data, "missing") is None


@pytest.mark.parametrize("forced, expected", [("0", False), ("off", False), ("1", True)])
def test_native_bf16_detection_can_be_overridden(monkeypatch, tmp_path: Path, forced: str, expected: bool) -> None:
    """HFFT_CPU_BF16 reproduces on any CPU what hfft does on one with (1) or without (0) native bf16."""
    from hfft import TextClassification
    from hfft.perf import native_cpu_bf16

    monkeypatch.setenv("HFFT_CPU_BF16", forced)
    assert native_cpu_bf16() is expected
    if not expected:
        recipe = TextClassification(
            model="some/model", data={"train": "train.csv"}, training={"output_dir": str(tmp_path)}
        )
        args = recipe.training_arguments()
        assert args.bf16 is False and args.hfft_chose_bf16 is False


def test_drop_last_drops_training_rows_only(tiny_bert: Path, text_csvs: dict, tmp_path: Path) -> None:
    """training.dataloader_drop_last is for training batches: evaluation still sees every row (Trainer would drop
    the only, partial, evaluation batch here and return no metrics)."""
    from conftest import text_config

    from hfft import TextClassification

    config = text_config(tiny_bert, text_csvs, tmp_path / "run", training={"num_train_epochs": 1})
    config["training"].update(dataloader_drop_last=True, per_device_eval_batch_size=64, eval_strategy="no")
    metrics = TextClassification(config).train()
    report = json.loads((tmp_path / "run" / "data_report.json").read_text())
    assert metrics["eval_samples"] == report["validation"]["rows_out"] < 64 and "eval_accuracy" in metrics
    assert metrics["test_samples"] == report["test"]["rows_out"]
    train_rows = report["train"]["rows_out"]
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert state["global_step"] == train_rows // 16  # the partial training batch is dropped


def attention_backward_nodes(loss: torch.Tensor) -> set[str]:
    """Names of the autograd nodes behind ``loss`` that belong to attention kernels."""
    seen, names, todo = set(), set(), [loss.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if "Attention" in type(node).__name__ or "Softmax" in type(node).__name__:
            names.add(type(node).__name__)
        todo.extend(next_node for next_node, _ in node.next_functions)
    return names


def test_short_sequences_train_attention_in_the_math_kernel_and_the_model_is_saved_unchanged(tmp_path: Path) -> None:
    from transformers import BertConfig, BertForSequenceClassification, TrainerCallback, TrainingArguments

    from hfft.perf import MATH_ATTENTION_MAX_KEYS, Trainer, short_sequence_attention

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0,
                        num_labels=2)  # fmt: skip
    model = BertForSequenceClassification(config)
    assert model.config._attn_implementation == "sdpa"

    def backward_of(length: int, routed: bool) -> tuple[set[str], torch.Tensor, torch.Tensor]:
        ids = torch.arange(2 * length).remainder(50).view(2, length)
        mask = torch.ones_like(ids)
        mask[1, length // 2 :] = 0  # the second row is half padding
        model.zero_grad()
        with short_sequence_attention(model, routed), torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1]), output_hidden_states=True)
        nodes = attention_backward_nodes(out.loss)
        out.loss.backward()
        hidden = out.hidden_states[-1].detach().float()
        return nodes, hidden, model.bert.encoder.layer[0].attention.self.query.weight.grad.clone()

    fused, fused_hidden, fused_grad = backward_of(8, routed=False)
    math, math_hidden, math_grad = backward_of(8, routed=True)
    assert any("Flash" in n for n in fused) and not any("Flash" in n for n in math), (fused, math)
    assert any("Softmax" in n for n in math)
    # same outputs and gradients up to bf16 rounding; the padding stays masked (unmasked: hidden states ~1e-2 apart)
    torch.testing.assert_close(math_hidden, fused_hidden, atol=2e-3, rtol=0.0)
    torch.testing.assert_close(math_grad, fused_grad, atol=2e-3, rtol=0.05)
    long, _, _ = backward_of(MATH_ATTENTION_MAX_KEYS + 8, routed=True)  # longer: the fused kernel is faster there
    assert any("Flash" in n for n in long), long
    assert model.config._attn_implementation == "sdpa"  # restored after the block

    class Seen(TrainerCallback):
        implementations: list[str] = []

        def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            self.implementations.append(model.config._attn_implementation)

    rows = [{"input_ids": torch.arange(i, i + 6) % 50, "labels": i % 2} for i in range(8)]
    for use_bf16, expected in ((True, "hfft_sdpa"), (False, "sdpa")):
        Seen.implementations = []
        args = TrainingArguments(str(tmp_path / str(use_bf16)), use_cpu=True, bf16=use_bf16, max_steps=2,
                                 per_device_train_batch_size=4, report_to="none")  # fmt: skip
        Trainer(model=model, args=args, train_dataset=rows, callbacks=[Seen()]).train()
        assert Seen.implementations == [expected, expected]
        assert model.config._attn_implementation == "sdpa"
    model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert not any("attn" in key for key in saved), saved


MALLOC_PROBE = """
import json, resource, sys
import torch
from transformers import TrainerCallback, TrainingArguments
from hfft.perf import Trainer

def faults():  # allocate, touch and free 48 MiB four times: glibc maps and unmaps blocks this large by default
    torch.ones(12 << 20)  # (memory kept: this one grows the heap, the next four reuse it)
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(4):
        torch.ones(12 << 20)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start

class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, x, labels):
        return {"loss": torch.nn.functional.cross_entropy(self.linear(x), labels)}

def rss_mb():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20

class FreesABlock(TrainerCallback):  # a step's 256 MiB of activations, freed: kept while training runs
    def on_step_end(self, args, state, control, **kwargs):
        torch.ones(64 << 20)
        self.rss_in_training = rss_mb()

before = faults()
rows = [{"x": torch.randn(4), "labels": i % 2} for i in range(4)]
args = TrainingArguments(sys.argv[1], use_cpu=True, max_steps=1, report_to="none", per_device_train_batch_size=4)
step = FreesABlock()
Trainer(model=Tiny(), args=args, train_dataset=rows, callbacks=[step]).train()
rss_after_training = rss_mb()
print(json.dumps({"before": before, "after": faults(), "rss_in_training": step.rss_in_training,
                  "rss_after_training": rss_after_training}))
"""


@pytest.mark.parametrize("own_setting", [False, True])
def test_training_keeps_freed_memory_unless_malloc_is_configured(tmp_path: Path, own_setting: bool) -> None:
    """After hfft's Trainer.train(), freed blocks stay with the process: allocating again costs no page faults
    (glibc, Linux); what training freed is handed back when it ends (no resident memory left over for what runs
    after it). A MALLOC_* variable of the user's own wins: then nothing changes."""
    import os
    import platform
    import subprocess
    import sys

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("glibc's malloc only")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if own_setting:
        env["MALLOC_TRIM_THRESHOLD_"] = "131072"
    done = subprocess.run(
        [sys.executable, "-c", MALLOC_PROBE, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    faults = json.loads(done.stdout.strip().splitlines()[-1])
    assert faults["before"] > 4 * 10_000  # 12,288 pages per 48 MiB block
    if own_setting:
        assert faults["after"] > faults["before"] / 2
    else:
        assert faults["after"] <= faults["before"] / 4 + 100  # at most one block (heap placement), not all four
        assert faults["rss_in_training"] > 256  # the freed block was kept while training ran ...
        assert faults["rss_in_training"] - faults["rss_after_training"] > 200  # ... and handed back when it ended
