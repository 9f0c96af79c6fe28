"""hfft: fine-tune Hugging Face models for text, image and audio classification from one config."""

from __future__ import annotations

from typing import Any

from hfft.perf import configure_openmp

configure_openmp()  # before torch loads: bounded OpenMP spin-waiting (hfft/perf.py)
__version__ = "0.1.0"

_LAZY = {
    "Recipe": "hfft.recipe",
    "RecipeConfig": "hfft.config",
    "load_config": "hfft.config",
    "TextClassification": "hfft.tasks.text",
    "ImageClassification": "hfft.tasks.image",
    "AudioClassification": "hfft.tasks.audio",
}
__all__ = [*_LAZY, "load_recipe"]


def load_recipe(source: Any, overrides: list[str] | None = None) -> Any:
    """A Recipe from a YAML path or a config dict (the class is chosen by its `task`)."""
    from hfft.config import load_config
    from hfft.tasks import recipe_class

    config = load_config(source, overrides)
    return recipe_class(config.task)(config)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hfft' has no attribute '{name}'")
