"""Builders for the image tests: tiny random checkpoints (save_pretrained) and an imagefolder made with PIL."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from conftest import with_sections

COLOURS = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
SIZE = 32


def colour_image(colour: tuple[int, int, int], rng: np.random.Generator, size: int = 24) -> np.ndarray:
    """A noisy image of one dominant colour with a random darker square (learnable in a few steps)."""
    image = np.clip(np.array(colour) + rng.normal(0, 25, (size, size, 3)), 0, 255)
    y, x = rng.integers(0, size // 2, 2)
    image[y : y + size // 3, x : x + size // 3] *= 0.5
    return image.astype(np.uint8)


def make_image_folder(root: Path, n_per_class: int = 14, seed: int = 0) -> Path:
    """`root/<colour>/*.png` plus one grayscale PNG, one RGBA PNG and one truncated (corrupt) JPEG."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            Image.fromarray(colour_image(colour, rng)).save(root / name / f"{i}.png")
    gray = Image.fromarray(colour_image(COLOURS["green"], rng)).convert("L")
    gray.save(root / "green" / "gray.png")
    rgba = Image.fromarray(colour_image(COLOURS["red"], rng)).convert("RGBA")
    rgba.putalpha(200)
    rgba.save(root / "red" / "rgba.png")
    buffer = io.BytesIO()
    Image.fromarray(colour_image(COLOURS["blue"], rng, size=64)).save(buffer, "JPEG")
    (root / "blue" / "broken.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return root


def save_tiny_vit(path: Path) -> Path:
    """A 2-layer, 32-hidden ViT for 32 px images, with a ViT image processor."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=SIZE,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    ViTForImageClassification(config).save_pretrained(path)
    ViTImageProcessor(size={"height": SIZE, "width": SIZE}, image_mean=[0.5] * 3, image_std=[0.5] * 3).save_pretrained(
        path
    )
    return path


def save_tiny_resnet(path: Path) -> Path:
    """A 2-stage ResNet (batch norm, convolutions only) with ResNet-50's processor type (ConvNeXt, crop_pct)."""
    import torch
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    ResNetForImageClassification(config).save_pretrained(path)
    ConvNextImageProcessor(size={"shortest_edge": SIZE}, crop_pct=0.875).save_pretrained(path)
    return path


def image_config(model: Path, train: Path, out: Path, **extra: dict) -> dict:
    """A small, fast image recipe as a dict."""
    config = {
        "task": "image-classification",
        "model": str(model),
        "data": {"train": str(train), "validation_size": 0.2},
        "augmentation": {"rotation_degrees": 5.0},
        "training": {
            "output_dir": str(out),
            "num_train_epochs": 3,
            "per_device_train_batch_size": 8,
            "per_device_eval_batch_size": 32,
            "learning_rate": 5e-3,
            "logging_steps": 1,
            "use_cpu": True,
            "save_strategy": "no",
            "eval_strategy": "no",
            "dataloader_num_workers": 0,
        },
    }
    return with_sections(config, extra)
