"""hfft: fine-tune Hugging Face models on text, image and audio from one config (modality x task recipes)."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {"Recipe": "hfft.recipe", "RecipeConfig": "hfft.config", "load_config": "hfft.config"}
# Recipe classes composed from the registry (hfft/registry.py): a modality mixin x a task mixin.
_RECIPES = {
    "TextClassification": "text-classification",
    "ImageClassification": "image-classification",
    "AudioClassification": "audio-classification",
    "SpeechRecognition": "speech-recognition",
    "TokenClassification": "token-classification",
    "ObjectDetection": "object-detection",
    "CausalLM": "causal-lm",
}
__all__ = [*_LAZY, *_RECIPES, "load_recipe"]


def load_recipe(source: Any, overrides: list[str] | None = None) -> Any:
    """A Recipe from a YAML path or a config dict (the class is chosen by its `task`)."""
    from hfft.config import load_config
    from hfft.registry import recipe_class

    config = load_config(source, overrides)
    return recipe_class(config.task)(config)


def __getattr__(name: str) -> Any:
    if name in _RECIPES:
        from hfft.registry import recipe_class

        return recipe_class(_RECIPES[name])
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hfft' has no attribute '{name}'")
