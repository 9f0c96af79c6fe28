"""Turn Debian's Fashion-MNIST (idx files) into an `imagefolder`: OUT/{train,test}/<class>/<n>.png.

Takes a seeded, class-balanced sample of the official train and test splits, so a
CPU demo runs in minutes. Optionally adds truncated JPEGs to train (to see corrupt
files counted, named in data_report.json and skipped).

    apt-get install dataset-fashion-mnist
    python recipes/image/prepare_fashion_mnist.py --out data/fashion-mnist
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]


def read_idx(path: Path, header: int) -> np.ndarray:
    """The payload of a gzipped idx file (16-byte header for images, 8 for labels)."""
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header)


def load_split(source: Path, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(source / f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
    labels = read_idx(source / f"{prefix}-labels-idx1-ubyte.gz", 8)
    return images, labels


def write_split(out: Path, images: np.ndarray, labels: np.ndarray, per_class: int, rng: np.random.Generator) -> int:
    written = 0
    for class_id, name in enumerate(CLASSES):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        rows = np.flatnonzero(labels == class_id)
        for i in rng.choice(rows, size=min(per_class, len(rows)), replace=False):
            Image.fromarray(images[i]).save(folder / f"{i:05d}.png")
            written += 1
    return written


def write_corrupt(out: Path, count: int, rng: np.random.Generator) -> None:
    """Truncated JPEGs: they pass a header check but fail to decode."""
    for k in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(buffer, "JPEG")
        data = buffer.getvalue()
        (out / CLASSES[k % len(CLASSES)] / f"corrupt-{k}.jpg").write_bytes(data[: len(data) // 2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="/usr/share/datasets/fashion-mnist", help="directory of the idx .gz files")
    parser.add_argument("--out", default="data/fashion-mnist", help="output imagefolder root")
    parser.add_argument("--train-per-class", type=int, default=100, help="training images per class")
    parser.add_argument("--test-per-class", type=int, default=50, help="test images per class")
    parser.add_argument("--corrupt", type=int, default=0, help="also write this many truncated JPEGs into train")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    source = Path(args.source)
    if not (source / "train-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"{source}: no Fashion-MNIST idx files; apt-get install dataset-fashion-mnist")
    rng = np.random.default_rng(args.seed)
    out = Path(args.out)
    counts = {}
    for split, prefix, per_class in (("train", "train", args.train_per_class), ("test", "t10k", args.test_per_class)):
        images, labels = load_split(source, prefix)
        counts[split] = write_split(out / split, images, labels, per_class, rng)
    write_corrupt(out / "train", args.corrupt, rng)
    print(f"wrote {counts['train']} train and {counts['test']} test images ({len(CLASSES)} classes) to {out}")
    if args.corrupt:
        print(f"  plus {args.corrupt} corrupt JPEG(s) in {out / 'train'}")


if __name__ == "__main__":
    main()
