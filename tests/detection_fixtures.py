"""Object-detection fixtures: synthetic images of coloured squares with exact boxes as COCO instances JSON
(category ids with a gap, some images without boxes), and tiny random DETR / RT-DETR checkpoints (ResNet
backbones, no timm) saved with their image processors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

COLOURS = {3: ("red", (220, 40, 40)), 7: ("blue", (40, 60, 220))}  # COCO category id -> (name, RGB)


def make_shapes(root: Path, n: int, seed: int = 0, size: int = 64, empty_every: int = 6) -> Path:
    """``n`` PNGs with 1-2 filled squares each (every ``empty_every``-th image has none) and
    ``root/instances.json`` (COCO: bbox [x, y, w, h] pixels, category ids 3 and 7)."""
    from PIL import Image

    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(n):
        pixels = np.full((size, size, 3), 200, np.uint8) + np.random.default_rng(seed * 1000 + i).integers(
            0, 20, (size, size, 3), dtype=np.uint8
        )
        count = 0 if empty_every and i % empty_every == empty_every - 1 else rng.randint(1, 2)
        for _ in range(count):
            category = rng.choice(list(COLOURS))
            side = rng.randint(size // 5, size // 2)
            x, y = rng.randint(0, size - side), rng.randint(0, size - side)
            pixels[y : y + side, x : x + side] = COLOURS[category][1]
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": category,
                                "bbox": [x, y, side, side], "area": side * side, "iscrowd": 0})  # fmt: skip
        name = f"img{i:03d}.png"
        Image.fromarray(pixels).save(root / name)
        images.append({"id": i + 1, "file_name": name, "height": size, "width": size})
    categories = [{"id": k, "name": name} for k, (name, _) in COLOURS.items()]
    path = root / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def _processor(kind: str, size: int):
    from transformers import DetrImageProcessor, RTDetrImageProcessor

    cls = DetrImageProcessor if kind == "detr" else RTDetrImageProcessor
    return cls(size={"height": size, "width": size}, do_pad=False)


def save_tiny_detr(path: Path, size: int = 64) -> Path:
    import torch
    from transformers import DetrConfig, DetrForObjectDetection, ResNetConfig

    torch.manual_seed(0)
    backbone = ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 1, 1], layer_type="basic",
                            out_features=["stage4"])  # fmt: skip
    config = DetrConfig(use_timm_backbone=False, backbone_config=backbone, use_pretrained_backbone=False,
                        num_queries=10, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                        decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_labels=2)  # fmt: skip
    return _save(DetrForObjectDetection(config), _processor("detr", size), path)


def save_tiny_rtdetr(path: Path, size: int = 64) -> Path:
    import torch
    from transformers import RTDetrConfig, RTDetrForObjectDetection, RTDetrResNetConfig

    torch.manual_seed(0)
    backbone = RTDetrResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 1, 1],
                                  layer_type="basic", out_features=["stage2", "stage3", "stage4"])  # fmt: skip
    config = RTDetrConfig(backbone_config=backbone, use_pretrained_backbone=False, encoder_in_channels=[32, 48, 64],
                          encoder_hidden_dim=32, encoder_ffn_dim=64, d_model=32, decoder_ffn_dim=64, decoder_layers=1,
                          num_queries=10, decoder_attention_heads=2, encoder_attention_heads=2, num_labels=2,
                          num_denoising=5, decoder_in_channels=[32, 32, 32])  # fmt: skip
    return _save(RTDetrForObjectDetection(config), _processor("rtdetr", size), path)


def _save(model, processor, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    processor.save_pretrained(str(path))
    return path
