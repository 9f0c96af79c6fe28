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


def _llama_cpp_permute(weights, heads: int):
    """llama.cpp's layout of rotary q/k projections (transformers undoes it when it reads a GGUF)."""
    return (
        weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def save_tiny_gguf(source: Path, path: Path) -> Path:
    """The tiny Llama at ``source`` as an unquantised (F32) GGUF file, written as llama.cpp's converter does."""
    import gguf
    import numpy as np
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = AutoModelForCausalLM.from_pretrained(str(source)), AutoTokenizer.from_pretrained(str(source))
    c = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(c.num_hidden_layers)
    writer.add_context_length(c.max_position_embeddings)
    writer.add_embedding_length(c.hidden_size)
    writer.add_feed_forward_length(c.intermediate_size)
    writer.add_head_count(c.num_attention_heads)
    writer.add_head_count_kv(c.num_key_value_heads)
    writer.add_layer_norm_rms_eps(c.rms_norm_eps)
    writer.add_rope_freq_base(c.rope_parameters["rope_theta"] if getattr(c, "rope_parameters", None) else 10000.0)
    writer.add_vocab_size(c.vocab_size)
    tokens = sorted(tokenizer.get_vocab(), key=tokenizer.get_vocab().get)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if i in tokenizer.all_special_ids else 1 for i in range(len(tokens))])
    merges = json.loads((source / "tokenizer.json").read_text())["model"]["merges"]
    writer.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in merges])
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_chat_template(tokenizer.chat_template)
    state = {k: v.numpy().astype(np.float32) for k, v in model.state_dict().items()}
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    parts = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
             "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
             "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}  # fmt: skip
    for i in range(c.num_hidden_layers):
        names.update({f"model.layers.{i}.{hf}.weight": f"blk.{i}.{cpp}.weight" for hf, cpp in parts.items()})
    for key, name in names.items():
        tensor = state[key]
        if name.endswith("attn_q.weight"):
            tensor = _llama_cpp_permute(tensor, c.num_attention_heads)
        elif name.endswith("attn_k.weight"):
            tensor = _llama_cpp_permute(tensor, c.num_key_value_heads)
        writer.add_tensor(name, tensor)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
