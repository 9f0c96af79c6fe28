"""Causal-LM fixtures: a tiny random Llama with a byte-level BPE tokenizer and a ChatML chat template (the
template family of SmolLM2 and Qwen), built offline, and small chat / prompt-completion / text datasets."""

from __future__ import annotations

import json
import random
from pathlib import Path

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
COLOURS = ["red", "blue", "green", "yellow", "black", "white", "purple", "orange"]
THINGS = ["sky", "grass", "sun", "night", "snow", "violet", "carrot", "coal"]


def corpus() -> list[str]:
    words = (
        COLOURS + THINGS + "what colour is the a an it of and user assistant system hello name who are you i am".split()
    )
    return [" ".join(words), "The quick brown fox jumps over the lazy dog. 0123456789 ,.?!'"]


def save_tiny_llama(path: Path, template: str | None = CHATML, max_length: int = 256) -> Path:
    """A 2-layer Llama (hidden 32) with a 300-token byte-level BPE and ``template`` as its chat template. Its weights
    are drawn wide (std 0.3): with the default 0.02 the tied, frozen embeddings bound every logit near 0 and LoRA
    could not learn confident next tokens. The config's pad id is not the end-of-turn id: nn.Embedding zeroes the
    padding row, which (tied to the output) would fix the end-of-turn logit at 0 in a random model."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus() * 5, vocab_size=300, min_frequency=1, special_tokens=SPECIALS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|im_end|>", bos_token="<|im_start|>",
        unk_token="<|endoftext|>", model_max_length=max_length,
    )  # fmt: skip
    if template is not None:
        tokenizer.chat_template = template
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=max_length, tie_word_embeddings=True, initializer_range=0.3,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.unk_token_id,
    )  # fmt: skip
    import torch

    torch.manual_seed(0)
    path.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def colour_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(question, answer) pairs a tiny model learns in a few steps: 'what colour is the sky' -> 'blue'."""
    rng = random.Random(seed)
    answers = dict(zip(THINGS, ["blue", "green", "yellow", "black", "white", "purple", "orange", "black"]))
    openers = ["", "hello, ", "tell me: ", "quick one: ", "please, ", "hey, ", "i wonder, ", "so, "]
    rows = []
    for _ in range(n):
        thing = rng.choice(THINGS)
        rows.append((f"{rng.choice(openers)}what colour is the {thing}?", f"the {thing} is {answers[thing]}."))
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def chat_rows(pairs: list[tuple[str, str]], sharegpt: bool = False) -> list[dict]:
    if sharegpt:
        return [{"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]} for q, a in pairs]
    return [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in pairs]


def lm_config(model: Path, train: Path, out: Path, **extra) -> dict:
    """A fast causal-lm config over the tiny model (LoRA, few epochs, high learning rate)."""
    config = {
        "task": "causal-lm",
        "model": str(model),
        "seed": 0,
        "data": {"train": str(train)},
        "labels": {"generation_rows": 4, "max_new_tokens": 12},
        "training": {
            "output_dir": str(out), "num_train_epochs": 2, "per_device_train_batch_size": 8,
            "learning_rate": 5e-3, "logging_steps": 5, "bf16": False,
        },
    }  # fmt: skip
    from conftest import with_sections

    return with_sections(config, extra)
