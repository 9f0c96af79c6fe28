"""Causal language modelling: supervised fine-tuning on conversations or prompt/completion pairs (loss on the
assistant / completion tokens and their end-of-turn token only) and plain language modelling on text.

Owns the loss mask, the rows left without targets, the stop tokens of generation, packing, perplexity, greedy
generations of held-out prompts (with exact-match / contains-answer scores) before and after training, and
generation for `predict`. Built on `transformers.Trainer` (not TRL's `SFTTrainer`): the rows are rendered and
masked by hfft's own preprocessing (hfft/chat.py), which counts and names every dropped row, works with any
chat template (TRL's assistant-only loss needs `{% generation %}` markers in the template) and packs with
plain position ids on any attention implementation that isolates them (checked on the model)."""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hfft import cleaning
from hfft.config import RecipeConfig, option
from hfft.errors import ConfigError
from hfft.hooks import find_column
from hfft.modeling import base_model
from hfft.recipe import Recipe

logger = logging.getLogger("hfft")


@dataclass
class CausalLMOptions:
    """What the model learns to write, and how held-out prompts are answered."""

    loss_on: Literal["completion", "all"] = option(
        "completion",
        "`completion`: loss on the assistant turns / completions (each with its end-of-turn token) only; `all`: "
        "on every token, prompts too. Plain text always trains on every token.",
    )
    answer_column: str | None = option(
        None,
        "Column with a short reference answer (text, or a list of texts that must all appear) for the "
        "`contains_answer` score of generations; default: the completion / last assistant turn.",
    )
    generation_rows: int = option(
        16, "Held-out rows (validation and test) answered by greedy generation, before and after training."
    )
    max_new_tokens: int = option(64, "Most tokens generated per prompt (evaluation and predict; saved as default).")
    zero_shot_baseline: bool = option(
        True, "Before training, measure the unmodified checkpoint (loss, perplexity, generations) on validation/test."
    )


class CausalLM(Recipe):
    """Causal language modelling (SFT on chats or prompt/completion; plain LM on text)."""

    Labels = CausalLMOptions
    default_models = {"text": "HuggingFaceTB/SmolLM2-135M-Instruct"}
    model_classes = {"text": "AutoModelForCausalLM"}
    primary_metric = "loss"
    greater_is_better = False
    train_eval_rows = 200
    lora_targets_auto = "all-linear"  # every linear layer but the output layer (peft)
    pipeline_tag = "text-generation"
    predict_batch_size = 8

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prompts: dict[str, list[dict[str, Any]]] = {}  # split -> held-out prompts to answer by generation
        self.generations: dict[str, list[dict[str, Any]]] = {}  # "eval", "test", "eval_zero_shot", ...

    @classmethod
    def check_config(cls, config: RecipeConfig) -> None:
        super().check_config(config)
        reg, labels = config.regularization, config.labels
        if reg.class_weights != "none" or reg.balanced_sampler:
            raise ConfigError("'regularization.class_weights' / 'balanced_sampler' apply to classification only.")
        if config.tuning.method == "freeze":
            raise ConfigError("'tuning.method: freeze' does not apply to causal-lm (no new head): use lora or full.")
        for key in ("generation_rows", "max_new_tokens"):
            if getattr(labels, key) < (0 if key == "generation_rows" else 1):
                raise ConfigError(f"'labels.{key}' must be >= {0 if key == 'generation_rows' else 1}.")

    # ------------------------------------------------------------------ targets

    def target_columns(self, dataset: Any, where: str) -> dict[str, str]:
        column = self.config.labels.answer_column
        return {"answer": find_column(dataset, column, (), "labels.answer_column", where)} if column else {}

    def encode_targets(self, splits: dict[str, Any], where: dict[str, str]) -> dict[str, Any]:
        return splits  # targets are token ids of the rows themselves

    def preprocess_targets(self, batch: dict[str, list], encoded: dict[str, list], split: str) -> dict[str, list]:
        everything = self.config.labels.loss_on == "all"
        return {
            "labels": [
                [t if (m or everything) else -100 for t, m in zip(ids, mask)]
                for ids, mask in zip(encoded["input_ids"], encoded["target_mask"])
            ]
        }

    def encode(self, dataset: Any, split: str) -> Any:
        """Rows whose targets were all cut off by max_length are dropped and counted (never a 0.0 loss);
        the first held-out rows are kept as prompts to answer by generation."""
        if split in ("validation", "test", "evaluate"):
            self.prompts[split] = [self.generation_prompt(row) for row in dataset.select(range(min(self.config.labels.generation_rows, len(dataset))))]  # fmt: skip
        encoded = super().encode(dataset, split)
        problems = [None if any(t != -100 for t in labels) else "targets_truncated_away: row cut at max_length "
                    "before any completion token" for labels in encoded["labels"]]  # fmt: skip
        encoded = cleaning.drop_rows(
            encoded, problems, split, self.report, cleaning.source_name(self.config.data, split)
        )
        return encoded.remove_columns([c for c in ("target_mask", "truncated") if c in encoded.column_names])

    def generation_prompt(self, row: dict[str, Any]) -> dict[str, Any]:
        """A held-out row as {"prompt": text the model continues, "reference": what it should write, "answer"}."""
        value = row[self.columns["input"]]
        if self.shape == "conversation":
            turns = value
            last = max(i for i, t in enumerate(turns) if t["role"] == "assistant")
            prompt, reference = self.renderer.generation_prompt(turns[:last]), turns[last]["content"]
        elif self.shape == "prompt-completion":
            reference = row[self.columns["completion"]].strip()
            user = [{"role": "user", "content": self.prompt_text(value, row.get(self.columns.get("context", "")))}]
            prompt = self.renderer.generation_prompt(user) if self.renderer.use_template else user[0]["content"]
        else:
            words = value.split()
            prompt, reference = (
                " ".join(words[: max(1, min(32, len(words) // 2))]),
                " ".join(words[max(1, min(32, len(words) // 2)) :]),
            )
        answer = row.get(self.columns["answer"]) if "answer" in self.columns else reference
        return {"prompt": prompt, "reference": reference, "answer": answer}

    # ------------------------------------------------------------------ model

    def head_modules(self, model: Any) -> list[str]:
        return []  # the language-model head is pretrained (often tied to the input embeddings)

    def init_head(self, model: Any) -> None:
        """Generation stops at the template's end-of-turn token as well as at EOS (saved with the model)."""
        tokenizer, generation = self.processor, base_model(model).generation_config
        stops = [tokenizer.eos_token_id, self.renderer.end_of_turn_id if self.renderer else None]
        current = generation.eos_token_id
        current = current if isinstance(current, list) else [current]
        generation.eos_token_id = list(dict.fromkeys(t for t in current + stops if t is not None))
        generation.pad_token_id = tokenizer.pad_token_id
        generation.max_new_tokens = self.config.labels.max_new_tokens
        generation.max_length = None

    def build_trainer(self, args: Any, encoded: dict[str, Any]) -> Any:
        """Packing (preprocessing.packing) only where the model keeps packed samples apart: checked here."""
        from hfft.modalities.text.chat import ChatCollator
        from hfft.packing import packing_isolated

        trainer = super().build_trainer(args, encoded)
        if self.config.preprocessing.packing:
            isolated, reason = packing_isolated(self.model)
            self.model_notes["packing"] = {"used": isolated, "reason": reason}
            if isolated:
                logger.warning("packing on: %s", reason)
                trainer.eval_data_collator = trainer.data_collator  # evaluation pads (the modality's collator)
                trainer.data_collator = ChatCollator(self.processor, packing=True)
            else:
                logger.warning("packing off, length-grouped padding instead: %s", reason)
                if "train_sampling_strategy" not in self.config.training:
                    trainer.args.train_sampling_strategy = "group_by_length"
        return trainer

    def training_defaults(self) -> dict[str, Any]:
        defaults = {"label_names": ["labels"], "per_device_train_batch_size": 8, "per_device_eval_batch_size": 8}
        if self.config.preprocessing.packing:
            # Packed batches have no padding to save, so length grouping buys no speed; its batches of similar
            # sentences cost quality (PTB, SmolLM2 LoRA, 600 sentences: validation perplexity 82.0 grouped vs
            # 77.1 random, at the same speed; benchmarks/README.md).
            defaults["train_sampling_strategy"] = "random"
        return defaults

    # ------------------------------------------------------------------ metrics

    def preprocess_logits(self, logits: Any, labels: Any) -> Any:
        """Per-token negative log-likelihood of the next-token targets (0 where masked): small to gather."""
        import torch

        logits = logits[0] if isinstance(logits, tuple) else logits
        targets = labels[:, 1:]
        nll = torch.nn.functional.cross_entropy(
            logits[:, :-1].float().transpose(1, 2), targets, ignore_index=-100, reduction="none"
        )
        return nll

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        """Perplexity = exp(mean negative log-likelihood over all target tokens of the split)."""
        import numpy as np

        nll, labels = np.asarray(eval_pred.predictions), np.asarray(eval_pred.label_ids)[:, 1:]
        width = min(nll.shape[1], labels.shape[1])
        mask = labels[:, :width] != -100
        tokens = int(mask.sum())
        mean = float(nll[:, :width][mask].sum() / max(tokens, 1))
        return {"perplexity": math.exp(min(mean, 50.0)), "target_tokens": tokens}

    def evaluate_split(self, trainer: Any, dataset: Any, prefix: str) -> dict[str, float]:
        metrics = super().evaluate_split(trainer, dataset, prefix)
        metrics.update(self.generation_metrics(trainer.model, prefix))
        return metrics

    def pretrained_metrics(self, trainer: Any, encoded: dict[str, Any]) -> dict[str, float]:
        """Loss, perplexity and generations of the checkpoint before fine-tuning (LoRA starts as the identity)."""
        if not self.config.labels.zero_shot_baseline:
            return {}
        metrics = self.evaluate_unmodified(trainer, encoded)
        for split, prefix in (("validation", "eval"), ("test", "test")):
            if split in encoded:
                metrics.update(self.generation_metrics(trainer.model, f"{prefix}_zero_shot"))
        return metrics

    @property
    def robustness_metrics(self) -> tuple[str, ...]:  # type: ignore[override]
        """`hfft robustness`: loss and perplexity; for chats and prompt/completion also how the greedy answers
        to the (corrupted) prompts hold up."""
        scores = (
            () if self.shape == "text" or not self.config.labels.generation_rows else ("contains_answer", "stop_rate")
        )
        return ("loss", "perplexity", *scores)

    def evaluate_dataset(self, dataset: Any, batch_size: int | None = None) -> dict[str, float]:
        """Loss and perplexity (`hfft evaluate`, `hfft robustness`), and the generation scores of its first
        `labels.generation_rows` rows."""
        metrics = super().evaluate_dataset(dataset, batch_size)
        return {**metrics, **self.generation_metrics(self.model, "eval", split="evaluate")}

    def generation_metrics(self, model: Any, prefix: str, split: str | None = None) -> dict[str, float]:
        """Greedy answers to the split's held-out prompts: the fraction that stop by themselves, and exact-match /
        contains-answer scores for prompt/completion and chat data; the answers are kept for the run directory."""
        split = split or {"eval": "validation", "test": "test"}[prefix.split("_")[0]]
        prompts = self.prompts.get(split) or []
        if not prompts:
            return {}
        texts = self.generate([p["prompt"] for p in prompts], model=model)
        records = [{**p, "generation": g["generated_text"], "stopped": g["stopped"]} for p, g in zip(prompts, texts)]
        self.generations[prefix] = records
        metrics = {f"{prefix}_stop_rate": sum(r["stopped"] for r in records) / len(records)}
        if self.shape != "text":
            metrics[f"{prefix}_exact_match"] = sum(normalize(r["generation"]) == normalize(r["reference"]) for r in records) / len(records)  # fmt: skip
            metrics[f"{prefix}_contains_answer"] = sum(contains(r["generation"], r["answer"]) for r in records) / len(records)  # fmt: skip
        return metrics

    # ------------------------------------------------------------------ generation

    def generate(
        self, prompts: list[str], model: Any = None, batch_size: int | None = None, streamer: Any = None
    ) -> list[dict[str, Any]]:
        """Greedy continuations of rendered prompts: {"generated_text", "stopped"} (ended with a stop token)."""
        import torch

        model = model if model is not None else self.model
        tokenizer, results = self.processor, []
        stops = set(base_model(model).generation_config.eos_token_id or [])
        side, tokenizer.padding_side = tokenizer.padding_side, "left"
        was_training = model.training
        model.eval()
        try:
            size = 1 if streamer is not None else batch_size or self.predict_batch_size
            for start in range(0, len(prompts), size):
                chunk = prompts[start : start + size]
                use_template = self.renderer.use_template if self.renderer else False
                batch = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=not use_template)
                batch = {k: v.to(model.device) for k, v in batch.items()}
                with torch.no_grad():
                    out = model.generate(
                        **batch, do_sample=False, max_new_tokens=self.config.labels.max_new_tokens,
                        eos_token_id=sorted(stops), pad_token_id=tokenizer.pad_token_id, streamer=streamer,
                    )  # fmt: skip
                for row in out[:, batch["input_ids"].shape[1] :].tolist():
                    ended = next((i for i, t in enumerate(row) if t in stops), None)
                    kept = row if ended is None else row[:ended]
                    text = tokenizer.decode(kept, skip_special_tokens=True).strip()
                    results.append({"generated_text": text, "stopped": ended is not None})
        finally:
            tokenizer.padding_side = side
            model.train(was_training)
        return results

    def render_prompt(self, value: Any) -> str:
        """A raw predict input (a user message, or a list of turns) as the text the model continues."""
        if isinstance(value, list):
            return self.renderer.generation_prompt(value)
        if self.renderer is not None and self.renderer.use_template:
            return self.renderer.generation_prompt([{"role": "user", "content": str(value)}])
        return str(value)

    def predict(self, inputs: list[Any], batch_size: int | None = None, streamer: Any = None) -> list[dict[str, Any]]:
        """Greedy answers: {"generated_text", "stopped"} per input (a user message, or a list of chat turns);
        with a transformers streamer, tokens are streamed as they are generated."""
        if self.model is None:
            raise RuntimeError("predict() needs a trained model: call train() or Recipe.from_run(run_dir).")
        return self.generate([self.render_prompt(v) for v in inputs], batch_size=batch_size, streamer=streamer)

    # ------------------------------------------------------------------ run directory

    def task_info(self) -> dict[str, Any]:
        return {
            "data_shape": self.shape,
            "chat_template_used": bool(self.renderer and self.renderer.use_template),
            "end_of_turn_token": self.renderer.end_of_turn if self.renderer else None,
        }

    def restore_task(self, info: dict[str, Any]) -> None:
        self.shape = info.get("data_shape", "text")

    def write_task_outputs(self, out: Path) -> list[str]:
        lines = [f"- data: {self.shape}; loss on {'every token' if self.shape == 'text' else self.config.labels.loss_on}"
                 f"; generation stops at {self.renderer.end_of_turn or 'EOS'}"]  # fmt: skip
        for prefix, records in self.generations.items():
            (out / f"generations_{prefix}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
            lines.append(f"- greedy generations of held-out prompts ({prefix}): `generations_{prefix}.jsonl`")
        final = self.generations.get("test") or self.generations.get("eval") or []
        if final:
            lines.append("\nExamples (held-out prompts, greedy):\n")
            for record in final[:3]:
                lines.append(f"- prompt: {_last_line(record['prompt'])!r}\n  - generated: {record['generation']!r}")
        return lines


def _last_line(prompt: str) -> str:
    lines = [line for line in prompt.splitlines() if line.strip() and not re.fullmatch(r"<\|?[\w|]+\|?>\w*", line)]
    return lines[-1] if lines else prompt


def normalize(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", str(text).lower()).split())


def contains(generation: str, answer: Any) -> bool:
    """Every answer text (one, or a list) appears in the generation (case, punctuation and spacing ignored)."""
    answers = answer if isinstance(answer, list) else [answer]
    return all(normalize(a) in normalize(generation) for a in answers if a is not None)
