"""The two axes and the recipes built from them, found by name and imported lazily (config errors stay fast).

A *modality* (`hfft/modalities/<name>/`) reads, checks, augments and corrupts inputs; a *task*
(`hfft/tasks/<name>.py`) owns targets, head, loss, metrics and outputs. A recipe name in a config
(`task: image-classification`) is one pair. Adding a modality or a task is one module plus one line here.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

MODALITIES = {
    "text": "hfft.modalities.text.modality:TextModality",
    "image": "hfft.modalities.image.modality:ImageModality",
    "audio": "hfft.modalities.audio.modality:AudioModality",
    "words": "hfft.modalities.text.words:WordsModality",  # text split into words (token-level tasks)
    "boxes": "hfft.modalities.image.boxes:BoxesModality",  # images with object boxes (detection)
    "chat": "hfft.modalities.text.chat:ChatModality",  # text, prompt/completion or conversations (causal LM)
}
TASKS = {
    "classification": "hfft.tasks.classification:Classification",
    "speech-recognition": "hfft.tasks.speech_recognition:SpeechRecognition",
    "token-classification": "hfft.tasks.token_classification:TokenClassification",
    "object-detection": "hfft.tasks.object_detection:ObjectDetection",
    "causal-lm": "hfft.tasks.causal_lm:CausalLM",
}
RECIPES = {  # the `task:` names of configs -> (modality, task)
    "text-classification": ("text", "classification"),
    "image-classification": ("image", "classification"),
    "audio-classification": ("audio", "classification"),
    "speech-recognition": ("audio", "speech-recognition"),
    "token-classification": ("words", "token-classification"),
    "object-detection": ("boxes", "object-detection"),
    "causal-lm": ("chat", "causal-lm"),
}


def _load(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def modality_class(name: str) -> type:
    """The modality mixin registered as ``name``."""
    return _load(MODALITIES[name])


def task_class(name: str) -> type:
    """The task mixin registered as ``name``."""
    return _load(TASKS[name])


@functools.cache
def recipe_class(name: str) -> type:
    """The Recipe class for a config's ``task:`` name: its modality and task mixins over `Recipe`.

    ``recipe_class("image-classification")`` is `ImageClassification(ImageModality, Classification, Recipe)`.
    """
    modality, task = RECIPES[name]
    modality_cls, task_cls = modality_class(modality), task_class(task)
    class_name = "".join(part.title() for part in name.split("-"))  # "image-classification" -> ImageClassification
    recipe = type(class_name, (modality_cls, task_cls), {"task": name, "__doc__": _doc(modality_cls, task_cls)})
    recipe.__module__ = "hfft"
    return recipe


def _doc(modality_cls: type, task_cls: type) -> str:
    first = [(cls.__doc__ or "").strip().splitlines()[0] for cls in (task_cls, modality_cls)]
    return f"{first[0]} {first[1]}"
