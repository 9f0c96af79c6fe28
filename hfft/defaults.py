"""The learning rate hfft uses when a recipe sets none: by architecture family, tuning method and task.

A transformer default (5e-5) leaves a BatchNorm CNN fully fine-tuned far from where it could be, and LoRA or a
frozen backbone needs ~10x larger steps than full fine-tuning. The values were measured on minimal recipes
(task, model, data, epochs: `benchmarks/learning_rates.py`, results in `benchmarks/results/*-learning-rates.md`)
and on the demos; the README's "Defaults" table says which run set each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Convolutional nets with BatchNorm (pretrained with SGD/RMSProp at large rates): they fine-tune well at ~1e-3
# with AdamW. ConvNeXt (LayerNorm, AdamW-pretrained) behaves like a transformer and is not listed.
BATCHNORM_CNNS = frozenset({"efficientnet", "resnet", "mobilenet_v1", "mobilenet_v2", "regnet", "bit"})

# (family, tuning method) -> (learning rate, how it was chosen)
BY_FAMILY: dict[tuple[str, str], tuple[float, str]] = {
    ("cnn", "full"): (1e-3, "EfficientNet-Lite0 on Fashion-MNIST: best of 5e-5..3e-3 on validation"),
    ("cnn", "lora"): (1e-3, "as transformers; classification: see BY_TASK"),
    ("cnn", "freeze"): (1e-3, "the head alone trains"),
    ("transformer", "full"): (1e-4, "between the best on validation for MiniLM (5e-5) and the Whisper encoder (2e-4)"),
    ("transformer", "lora"): (1e-3, "WNUT-16 NER, Asterisk ASR and SmolLM2 demos"),
    ("transformer", "freeze"): (1e-3, "the head alone trains"),
    ("transformer", "qlora"): (2e-4, "the QLoRA paper's rate for small models (no GPU here to measure)"),
}
# Tasks that want another rate than their family's: (task, method) -> (rate, source). ("freeze" is not
# head-only for speech recognition and detection: Whisper's whole decoder / all but a detector's backbone train.)
CLASSIFICATION_LORA = (3e-3, "best of 3e-4..3e-3 for EfficientNet-Lite0, MiniLM and the Whisper encoder")
BY_TASK: dict[tuple[str, str], tuple[float, str]] = {
    ("image-classification", "lora"): CLASSIFICATION_LORA,
    ("text-classification", "lora"): CLASSIFICATION_LORA,
    ("audio-classification", "lora"): CLASSIFICATION_LORA,
    ("speech-recognition", "full"): (2e-5, "Whisper tiny.en on Asterisk prompts (recipes/audio/asterisk-*)"),
    ("speech-recognition", "freeze"): (2e-5, "as full: the whole decoder trains"),
    ("object-detection", "freeze"): (1e-4, "as full: all but the backbone trains (not measured offline)"),
}


@dataclass
class LearningRateChoice:
    """The learning rate a run uses and why (printed at start, saved in run_info.json)."""

    value: float | str  # "auto" until the range test has run
    source: str


def architecture_family(model_config: Any) -> str:
    """ "cnn" for BatchNorm convolutional nets, "transformer" for everything else."""
    return "cnn" if getattr(model_config, "model_type", None) in BATCHNORM_CNNS else "transformer"


def default_learning_rate(model_config: Any, method: str, task: str) -> LearningRateChoice:
    """hfft's learning rate for this model, tuning method and task."""
    if (task, method) in BY_TASK:
        value, source = BY_TASK[(task, method)]
        return LearningRateChoice(value, f"default for {task} + {method}: {source}")
    family = architecture_family(model_config)
    value, source = BY_FAMILY.get((family, method), BY_FAMILY[("transformer", method)])
    kind = getattr(model_config, "model_type", "?")
    return LearningRateChoice(value, f"default for {family} ({kind}) + {method}: {source}")
