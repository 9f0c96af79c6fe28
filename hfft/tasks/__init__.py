"""Task name -> Recipe class, imported lazily so config errors stay fast."""

from __future__ import annotations

import importlib

TASKS = {
    "text-classification": "hfft.tasks.text:TextClassification",
    "image-classification": "hfft.tasks.image:ImageClassification",
    "audio-classification": "hfft.tasks.audio:AudioClassification",
}


def recipe_class(task: str) -> type:
    """Import and return the Recipe subclass for ``task``."""
    module, _, name = TASKS[task].partition(":")
    return getattr(importlib.import_module(module), name)
