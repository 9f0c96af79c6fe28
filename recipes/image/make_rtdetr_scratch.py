"""Write a small RT-DETR (ResNet-18-style backbone, 2 decoder layers) with random weights as a local checkpoint.

No pretrained detector or detection backbone installs offline (see ../shared/ASSETS.md), so the offline
detection demo trains this from random initialisation: a check that the whole pipeline learns, not a
pretrained-quality detector. Where the Hub is reachable, use a real checkpoint instead (e.g.
`model: PekingU/rtdetr_r18vd`).

    python recipes/image/make_rtdetr_scratch.py --out data/rtdetr-scratch --size 96
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/rtdetr-scratch", help="checkpoint directory to write")
    parser.add_argument("--size", type=int, default=96, help="input side in pixels (the image processor's size)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from transformers import RTDetrConfig, RTDetrForObjectDetection, RTDetrImageProcessor, RTDetrResNetConfig

    out = Path(args.out)
    if (out / "model.safetensors").is_file():
        print(f"{out} exists")
        return
    torch.manual_seed(args.seed)
    backbone = RTDetrResNetConfig(embedding_size=32, hidden_sizes=[32, 64, 128, 256], depths=[2, 2, 2, 2],
                                  layer_type="basic", out_features=["stage2", "stage3", "stage4"])  # fmt: skip
    config = RTDetrConfig(
        backbone_config=backbone, use_pretrained_backbone=False, encoder_in_channels=[64, 128, 256],
        encoder_hidden_dim=128, encoder_ffn_dim=256, d_model=128, decoder_in_channels=[128, 128, 128],
        decoder_ffn_dim=256, decoder_layers=2, decoder_attention_heads=4, encoder_attention_heads=4,
        num_queries=50, num_denoising=20, num_labels=10,
    )  # fmt: skip
    model = RTDetrForObjectDetection(config)
    processor = RTDetrImageProcessor(size={"height": args.size, "width": args.size})
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    processor.save_pretrained(str(out))
    print(f"wrote {out}: RT-DETR, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, random weights")


if __name__ == "__main__":
    main()
