"""Causal-LM training rows as token ids with a per-token target mask.

Three data shapes: plain ``text`` (every token is a target), ``prompt``/``completion`` pairs and
conversations (``messages`` with ``role``/``content``, or ShareGPT ``conversations`` with ``from``/``value``),
where only the completion / assistant turns are targets, each with the end-of-turn token the chat template
writes after it (the model must learn to stop). Conversations are rendered with the tokenizer's chat template
(or one from the config); the target spans are found by rendering the conversation turn by turn, and the
tokens are labelled by their character offsets in the full rendering, so the ids are exactly those
the template gives at inference time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hfft.errors import ConfigError, DataError

ROLE_NAMES = {  # ShareGPT and other spellings -> chat-template roles
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
}
MESSAGES_CANDIDATES = ("messages", "conversations", "conversation", "chat", "dialog")
PROMPT_CANDIDATES = ("prompt", "instruction", "question", "input")  # Alpaca: instruction (+ input as context)
COMPLETION_CANDIDATES = ("completion", "response", "output", "answer", "chosen")
TEXT_CANDIDATES = ("text", "content", "document", "sentence")


@dataclass
class Rendered:
    """One training row: token ids, which of them are targets, and whether the row was cut at max_length."""

    input_ids: list[int]
    targets: list[bool]
    truncated: bool


def turns_of(value: Any, where: str) -> tuple[list[dict[str, str]] | None, str | None]:
    """A conversation value as [{"role", "content"}] turns (ShareGPT ``from``/``value`` converted), or a problem.

    Problems: ``"reason: detail"`` with ``where`` (file and row) in the detail."""
    if isinstance(value, str) and value.lstrip().startswith("["):  # CSV cells hold conversations as JSON text
        try:
            value = json.loads(value)
        except ValueError as err:
            return None, f"corrupt_conversation: {where}: not valid JSON ({err})"
    if not isinstance(value, list) or not value:
        return None, f"corrupt_conversation: {where}: expected a non-empty list of turns, got {_kind(value)}"
    turns = []
    for i, turn in enumerate(value):
        if not isinstance(turn, dict):
            return None, f"corrupt_conversation: {where}: turn {i} is {_kind(turn)}, not an object with a role"
        role = turn.get("role", turn.get("from"))
        content = turn.get("content", turn.get("value"))
        if role is None:
            keys = ", ".join(k for k, v in turn.items() if v is not None)
            return None, f"corrupt_conversation: {where}: turn {i} has no role ('role' or 'from'; it has {keys})"
        if str(role).lower() not in ROLE_NAMES:
            known = ", ".join(sorted(set(ROLE_NAMES)))
            return None, f"corrupt_conversation: {where}: turn {i} has unknown role {role!r} (known: {known})"
        if not isinstance(content, str):
            return None, f"corrupt_conversation: {where}: turn {i} ({role}) has {_kind(content)} content, not text"
        turns.append({"role": ROLE_NAMES[str(role).lower()], "content": content.strip()})
    assistant = [i for i, t in enumerate(turns) if t["role"] == "assistant"]
    if not assistant:
        return None, f"corrupt_conversation: {where}: no assistant turn (nothing to learn)"
    empty = [i for i in assistant if not turns[i]["content"]]
    if empty:
        return None, f"corrupt_conversation: {where}: assistant turn {empty[0]} is empty"
    return turns, None


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


class ChatRenderer:
    """Renders rows with a tokenizer (and its chat template) into `Rendered` rows of at most ``max_length``."""

    def __init__(self, tokenizer: Any, max_length: int, use_template: bool) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ConfigError(
                f"causal-lm needs a fast (Rust) tokenizer for token offsets; {type(tokenizer).__name__} is not one. "
                "Save the checkpoint with a tokenizer.json."
            )
        self.tokenizer, self.max_length, self.use_template = tokenizer, max_length, use_template
        self.end_of_turn = self.find_end_of_turn() if use_template else None

    def template(self, turns: list[dict[str, str]], generation_prompt: bool = False) -> str:
        return self.tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=generation_prompt)

    def find_end_of_turn(self) -> str:
        """The special token the template writes right after an assistant turn's content (e.g. <|im_end|>)."""
        probe = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there"}]
        text = self.template(probe)
        after = text[text.rindex("Hello there") + len("Hello there") :]
        special = sorted(self.tokenizer.all_special_tokens, key=len, reverse=True)
        added = sorted(self.tokenizer.get_added_vocab(), key=len, reverse=True)
        for token in [t for t in special + added if t]:
            if after.lstrip().startswith(token):
                return token
        raise ConfigError(
            f"the chat template writes no end-of-turn token after an assistant turn (it writes {after!r}): a model "
            "trained on it could never learn to stop. Give a template that ends assistant turns with a special "
            "token (preprocessing.chat_template)."
        )

    @property
    def end_of_turn_id(self) -> int:
        token = self.end_of_turn or self.tokenizer.eos_token
        return self.tokenizer.convert_tokens_to_ids(token)

    def conversation(self, turns: list[dict[str, str]], where: str) -> Rendered:
        """Assistant turns (content + end-of-turn token) are targets; everything else is context."""
        text = self.template(turns)
        spans = []
        for i, turn in enumerate(turns):
            if turn["role"] != "assistant":
                continue
            before, through = self.template(turns[:i], generation_prompt=True), self.template(turns[: i + 1])
            if not (text.startswith(through) and through.startswith(before)):
                raise DataError(
                    f"{where}: the chat template does not render assistant turn {i} as a continuation of the turns "
                    "before it (it rewrites earlier turns), so its target tokens cannot be located. Give a template "
                    "that renders conversations incrementally (preprocessing.chat_template)."
                )
            end = len(through.rstrip())  # the content and its end-of-turn token, without the newline after it
            spans.append((len(before), end))
        return self._tokenize(text, spans, add_special_tokens=False)

    def prompt_completion(self, prompt: str, completion: str, where: str) -> Rendered:
        """The completion (and end-of-turn / EOS) is the target; with a template the pair is one chat exchange."""
        if self.use_template:
            return self.conversation(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}], where
            )
        eos = self.tokenizer.eos_token or ""
        start = len(prompt)
        return self._tokenize(prompt + completion + eos, [(start, len(prompt + completion + eos))], True)

    def text(self, text: str) -> list[Rendered]:
        """Plain text: every token (and a final EOS) is a target; longer texts become consecutive blocks."""
        ids = self.tokenizer(text, add_special_tokens=True)["input_ids"]
        if self.tokenizer.eos_token_id is not None and (not ids or ids[-1] != self.tokenizer.eos_token_id):
            ids = ids + [self.tokenizer.eos_token_id]
        blocks = [ids[i : i + self.max_length] for i in range(0, len(ids), self.max_length)]
        return [Rendered(block, [True] * len(block), len(blocks) > 1) for block in blocks]

    def generation_prompt(self, turns: list[dict[str, str]]) -> str:
        """The text a model continues to answer ``turns`` (the template's generation prompt after them)."""
        return self.template(turns, generation_prompt=True)

    def _tokenize(self, text: str, spans: list[tuple[int, int]], add_special_tokens: bool) -> Rendered:
        encoded = self.tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=True)
        ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
        targets = [end > start and any(a <= start < b for a, b in spans) for start, end in offsets]
        truncated = len(ids) > self.max_length
        return Rendered(ids[: self.max_length], targets[: self.max_length], truncated)
