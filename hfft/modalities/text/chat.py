"""Text for causal language models: plain text, prompt/completion pairs or conversations (see hfft/chat.py),
rendered with the chat template into token ids and a per-token target mask, padded or packed per batch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hfft import chat
from hfft.config import NoOptions, RecipeConfig, option
from hfft.errors import ConfigError
from hfft.hooks import find_column
from hfft.modalities.text.modality import TextModality

ROW = "__hfft_row"  # row numbers while cleaning, so that problems name the row


@dataclass
class ChatPreprocessing:
    """How rows become token ids."""

    max_length: int = option(
        1024,
        "Longest row in tokens (capped at the model's limit). Conversations and prompt/completion pairs are cut "
        "at the end (rows left with no target token are dropped and counted); plain texts are split into blocks.",
    )
    chat_template: str | None = option(
        None,
        "A Jinja chat template (the text, or a path to a .jinja file) used instead of the tokenizer's; saved "
        "with the model. Conversations need one (the tokenizer's or this).",
    )
    use_chat_template: Literal["auto", "always", "never"] = option(
        "auto",
        "prompt/completion data: render each pair as a user/assistant exchange with the chat template (`auto`: "
        "when the tokenizer has one), or concatenate prompt + completion + EOS (`never`, for base models).",
    )
    packing: bool = option(
        False,
        "Training batches as one row of concatenated samples (no padding) with position ids restarting per "
        "sample, so attention never crosses samples; checked on the model first, else length-grouped padding "
        "(the choice and the reason are logged). Evaluation always pads.",
    )


class ChatModality(TextModality):
    """Text for causal LMs: plain text, prompt/completion or conversations with the chat template."""

    input_candidates = chat.TEXT_CANDIDATES
    dedup = True
    splits_rows = True  # plain texts longer than max_length become several blocks
    Preprocessing = ChatPreprocessing
    Augmentation = NoOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shape: str = ""  # "text" | "prompt-completion" | "conversation"
        self.renderer: chat.ChatRenderer | None = None
        self._where = "data"

    @classmethod
    def check_config(cls, config: RecipeConfig) -> None:
        super(TextModality, cls).check_config(config)  # TextModality's checks read options chat data has not
        pre = config.preprocessing
        if pre.max_length < 2:
            raise ConfigError(f"'preprocessing.max_length' must be >= 2, got {pre.max_length}.")
        if pre.chat_template is not None and pre.chat_template.endswith(".jinja"):
            if not Path(pre.chat_template).is_file():
                raise ConfigError(f"'preprocessing.chat_template': file '{pre.chat_template}' does not exist.")
        elif pre.chat_template is not None and "{%" not in pre.chat_template and "{{" not in pre.chat_template:
            raise ConfigError(
                "'preprocessing.chat_template' must be a Jinja template (with {% ... %} / {{ ... }}) or a path to a "
                f".jinja file; got {pre.chat_template[:80]!r}."
            )

    @classmethod
    def corruption_suite(cls) -> dict[str, Any]:
        """The text suite applied to what the model reads, never to the targets: prompts, non-assistant turns,
        or (plain text) the text itself."""
        from hfft.modalities.text.corruptions import SUITE

        return {name: PromptCorruption(function) for name, function in SUITE.items()}

    # ------------------------------------------------------------------ columns and checks

    def input_columns(self, dataset: Any, where: str) -> dict[str, str]:
        dc, columns = self.config.data, dataset.column_names
        if dc.messages_column or (
            not dc.prompt_column and not dc.text_column and _any(columns, chat.MESSAGES_CANDIDATES)
        ):
            self.shape = "conversation"
            found = find_column(dataset, dc.messages_column, chat.MESSAGES_CANDIDATES, "data.messages_column", where)
            return {"input": found}
        if dc.prompt_column or (not dc.text_column and _any(columns, chat.PROMPT_CANDIDATES)):
            self.shape = "prompt-completion"
            if not dc.prompt_column and {"instruction", "input", "output"} <= set(columns):  # Alpaca
                return {"input": "instruction", "context": "input", "completion": dc.completion_column or "output"}
            prompt = find_column(dataset, dc.prompt_column, chat.PROMPT_CANDIDATES, "data.prompt_column", where)
            rest = [c for c in chat.COMPLETION_CANDIDATES if c != self.config.labels.answer_column]
            completion = find_column(dataset, dc.completion_column, tuple(rest), "data.completion_column", where)
            return {"input": prompt, "completion": completion}
        self.shape = "text"
        return {"input": find_column(dataset, dc.text_column, self.input_candidates, "data.text_column", where)}

    def clean(self, dataset: Any, split: str) -> Any:
        from hfft.cleaning import source_name

        self._where = source_name(self.config.data, split)  # problems name the source and the row
        return super().clean(dataset.add_column(ROW, list(range(len(dataset)))), split).remove_columns(ROW)

    def check_batch(self, batch: dict[str, list]) -> list[str | None]:
        name = self._where
        rows = batch.get(ROW) or range(len(batch[self.columns["input"]]))
        problems: list[str | None] = []
        if self.shape == "conversation":
            column = self.columns["input"]
            for i, value in enumerate(batch[column]):
                turns, problem = chat.turns_of(value, f"{name} row {rows[i]}")
                problems.append(problem)
                if turns is not None:
                    batch[column][i] = turns  # ShareGPT from/value -> role/content, contents stripped
            return problems
        for i, text in enumerate(batch[self.columns["input"]]):
            if not isinstance(text, str):
                problems.append(f"corrupt_text: {name} row {rows[i]}: {chat._kind(text)}, not text")
            elif self.shape == "text" and not text.strip():
                problems.append(f"empty_text: {name} row {rows[i]}")
            else:
                problems.append(None)
        if self.shape == "prompt-completion":
            for i, completion in enumerate(batch[self.columns["completion"]]):
                if problems[i] is None and not (isinstance(completion, str) and completion.strip()):
                    problems[i] = f"corrupt_completion: {name} row {rows[i]}: empty or not text"
        return problems

    # ------------------------------------------------------------------ tokenizer and rendering

    def load_processor(self, model_path: str) -> Any:
        tokenizer = super().load_processor(model_path)
        template = self.config.preprocessing.chat_template
        if template is not None:  # checked in check_config
            tokenizer.chat_template = (
                Path(template).read_text(encoding="utf-8") if template.endswith(".jinja") else template
            )
        use = self.config.preprocessing.use_chat_template
        has_template = bool(getattr(tokenizer, "chat_template", None))
        if not has_template and (self.shape == "conversation" or use == "always"):
            raise ConfigError(
                f"'model': the tokenizer of '{model_path}' has no chat template, and preprocessing.chat_template is "
                f"not set; {'conversations need' if self.shape == 'conversation' else 'use_chat_template: always needs'}"
                " one. Set preprocessing.chat_template to a Jinja template (text or .jinja file)."
            )
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token  # padding is masked by the attention mask and labels
        with_template = self.shape == "conversation" or (use != "never" and has_template and self.shape != "text")
        self.renderer = chat.ChatRenderer(tokenizer, self.max_length_of(tokenizer), with_template)
        return tokenizer

    def preprocess(self, batch: dict[str, list]) -> dict[str, list]:
        """Token ids, the target mask (`target_mask`), the length and whether the row was cut."""
        rows: list[chat.Rendered] = []
        inputs = batch[self.columns["input"]]
        for i, value in enumerate(inputs):
            where = f"row {batch[ROW][i]}" if ROW in batch else f"row {i}"
            if self.shape == "conversation":
                rows.append(self.renderer.conversation(value, where))
            elif self.shape == "prompt-completion":
                prompt = self.prompt_text(
                    value, batch[self.columns["context"]][i] if "context" in self.columns else None
                )
                rows.append(self.renderer.prompt_completion(prompt, batch[self.columns["completion"]][i], where))
            else:
                rows.extend(self.renderer.text(value))
        out = {
            "input_ids": [r.input_ids for r in rows],
            "attention_mask": [[1] * len(r.input_ids) for r in rows],
            "target_mask": [r.targets for r in rows],
            "length": [len(r.input_ids) for r in rows],
            "truncated": [r.truncated for r in rows],
        }
        if self.shape != "text":  # one row each: what the task needs from the raw row rides along
            out.update({key: batch[column] for key, column in self.columns.items() if key == "answer"})
        return out

    @staticmethod
    def prompt_text(prompt: str, context: str | None) -> str:
        """A prompt with its optional context (Alpaca's `input`) after a blank line."""
        return f"{prompt.strip()}\n\n{context.strip()}" if isinstance(context, str) and context.strip() else prompt

    def preprocessing_notes(self, encoded: Any) -> dict[str, Any]:
        lengths = np.asarray(encoded["length"])
        cut = int(np.sum(encoded["truncated"]))
        notes = {"data_shape": self.shape, "max_length": self.max_length, "median_tokens": float(np.median(lengths))}
        notes["split_into_blocks" if self.shape == "text" else "truncated"] = cut
        if self.renderer is not None and self.renderer.use_template:
            notes["chat_template"] = "config" if self.config.preprocessing.chat_template else "tokenizer"
        return notes

    def has_train_transform(self) -> bool:
        return False

    def collator(self) -> Any:
        return ChatCollator(self.processor, packing=False)

    def prepare_inputs(self, inputs: list[Any]) -> dict[str, Any]:
        raise NotImplementedError("causal-lm predicts by generation (see CausalLM.predict)")


def _any(columns: list[str], candidates: tuple[str, ...]) -> bool:
    return any(c in columns for c in candidates)


class PromptCorruption:
    """A text corruption applied to what the model reads: a string itself, or every non-assistant turn's content
    of a conversation."""

    def __init__(self, function: Any) -> None:
        self.function = function
        self.__doc__ = function.__doc__

    def __call__(self, value: Any, severity: int, rng: Any) -> Any:
        if isinstance(value, str):
            return self.function(value, severity, rng)
        turns = []
        for turn in value:
            role = turn.get("role", turn.get("from"))
            key = "content" if "content" in turn else "value"
            reads = chat.ROLE_NAMES.get(str(role).lower()) != "assistant"
            turns.append({**turn, key: self.function(turn[key], severity, rng) if reads else turn[key]})
        return turns


class ChatCollator:
    """Right-padded batches with `labels` padded by -100, or (``packing``) one row of the batch's samples
    concatenated, with position ids restarting at each sample and the first label of each sample masked; both
    without a key/value cache."""

    def __init__(self, tokenizer: Any, packing: bool) -> None:
        self.tokenizer, self.packing = tokenizer, packing

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        if self.packing:
            ids = [t for f in features for t in f["input_ids"]]
            positions = [p for f in features for p in range(len(f["input_ids"]))]
            labels = [t for f in features for t in [-100] + list(f["labels"][1:])]
            return {
                "input_ids": torch.tensor([ids]),
                "position_ids": torch.tensor([positions]),
                "labels": torch.tensor([labels]),
                # with a cache (use_cache defaults to the config's True) transformers ignores the restarting
                # position ids and lets packed samples attend to each other
                "use_cache": False,
            }
        longest = max(len(f["input_ids"]) for f in features)
        pad = self.tokenizer.pad_token_id
        batch = {
            "input_ids": torch.tensor(
                [list(f["input_ids"]) + [pad] * (longest - len(f["input_ids"])) for f in features]
            ),
            "attention_mask": torch.tensor(
                [[1] * len(f["input_ids"]) + [0] * (longest - len(f["input_ids"])) for f in features]
            ),
        }
        batch["use_cache"] = False  # nothing is generated from a training or evaluation batch: no cache to build
        if "labels" in features[0]:
            batch["labels"] = torch.tensor(
                [list(f["labels"]) + [-100] * (longest - len(f["labels"])) for f in features]
            )
        return batch
