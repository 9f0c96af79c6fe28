"""Build "fashion collages" from Debian's Fashion-MNIST: a real-pixel multi-label / detection set in COCO format.

Each image is a SIZExSIZE RGB canvas (plain or textured grey background) holding 2-4 tinted
Fashion-MNIST items (optionally rescaled) at random places that overlap little; about 3% of the
images hold no item at all (all-negative rows). Items for train and validation come from the
official train split (disjoint), items for test from t10k; no item image is used twice.

    OUT/{train,val,test}/<n>.png
    OUT/annotations/instances_{train,val,test}.json   # COCO: file_name is relative to OUT

Boxes are [x, y, w, h], the exact tight box of the item's nonzero pixels as pasted; "area" is
its pixel count. Category ids are COCO-style and not contiguous (1-9, then 11) on purpose.

    apt-get install dataset-fashion-mnist
    python recipes/image/prepare_fashion_collage.py --out data/fashion-collage
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from prepare_fashion_mnist import CLASSES, load_split  # the idx reader, beside this script

CATEGORY_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11]  # COCO ids are not contiguous: 10 is skipped
SOURCE = Path("/usr/share/datasets/fashion-mnist")
FAINT = 8  # resized pixels below this are dropped, so "nonzero" == visibly pasted


def background(size: int, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
    """A float HxW grey canvas (plain, noise, stripes or checker) and whether it is dark."""
    dark = bool(rng.random() < 0.5)
    level = rng.uniform(15, 90) if dark else rng.uniform(160, 235)
    canvas = np.full((size, size), level)
    kind = rng.choice(["plain", "noise", "stripes", "checker"])
    amplitude = rng.uniform(8, 25)
    y, x = np.mgrid[0:size, 0:size]
    if kind == "noise":
        canvas += rng.normal(0, amplitude, canvas.shape)
    elif kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 16)
        canvas += amplitude * np.sign(np.sin((x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period))
    elif kind == "checker":
        period = int(rng.integers(4, 17))
        canvas += amplitude * (((x // period + y // period) % 2) * 2 - 1)
    return np.clip(canvas, 0, 255), dark


def prepare_item(item: np.ndarray, scale: float) -> np.ndarray:
    """The item rescaled, faint pixels zeroed, and cropped to the tight box of its nonzero pixels."""
    side = max(8, round(28 * scale))
    resized = np.asarray(Image.fromarray(item).resize((side, side), Image.BILINEAR))
    resized = np.where(resized >= FAINT, resized, 0)
    rows, cols = np.flatnonzero(resized.any(axis=1)), np.flatnonzero(resized.any(axis=0))
    return resized[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def overlap_ok(box: tuple[int, int, int, int], placed: list[tuple[int, int, int, int]], max_overlap: float) -> bool:
    x, y, w, h = box
    for px, py, pw, ph in placed:
        inter = max(0, min(x + w, px + pw) - max(x, px)) * max(0, min(y + h, py + ph) - max(y, py))
        if inter > max_overlap * min(w * h, pw * ph):
            return False
    return True


def paste(canvas: np.ndarray, item: np.ndarray, x: int, y: int, dark: bool, rng: np.random.Generator) -> None:
    """Alpha-blend a tinted item: bright on dark backgrounds, dark (inverted) on light ones."""
    h, w = item.shape
    value = item.astype(np.float64)
    alpha = np.clip(value / 48, 0, 1)[..., None]
    if dark:
        fg = value[..., None] * rng.uniform(0.55, 1.0, 3)
    else:
        fg = (255 - value)[..., None] * rng.uniform(0.0, 0.6, 3)
    region = canvas[y : y + h, x : x + w]
    canvas[y : y + h, x : x + w] = region * (1 - alpha) + fg * alpha


def make_split(
    name: str, count: int, images: np.ndarray, labels: np.ndarray, out: Path, args: argparse.Namespace, seed: list[int]
) -> dict:
    """Write OUT/<name>/<n>.png and return the split's COCO dict."""
    rng = np.random.default_rng(seed)
    pool = iter(rng.permutation(len(images)))
    empty = set(rng.choice(count, size=round(count * args.empty_fraction), replace=False).tolist())
    (out / name).mkdir(parents=True, exist_ok=True)
    coco: dict = {"images": [], "annotations": [], "categories": []}
    coco["categories"] = [{"id": cid, "name": c, "supercategory": "fashion"} for cid, c in zip(CATEGORY_IDS, CLASSES)]
    size = args.size
    for n in range(1, count + 1):
        grey, dark = background(size, rng)
        canvas = np.repeat(grey[..., None], 3, axis=2)
        placed: list[tuple[int, int, int, int]] = []
        wanted = 0 if n - 1 in empty else int(rng.integers(args.min_items, args.max_items + 1))
        for _ in range(wanted):
            index = next(pool, None)
            if index is None:
                raise SystemExit(f"{name}: not enough Fashion-MNIST items for {count} collages; ask for fewer")
            item = prepare_item(images[index], rng.uniform(args.min_scale, args.max_scale))
            h, w = item.shape
            if h > size or w > size:
                continue
            for _try in range(50):
                x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
                if overlap_ok((x, y, w, h), placed, args.max_overlap):
                    break
            else:
                continue  # no room left: the item is dropped (and not reused)
            paste(canvas, item, x, y, dark, rng)
            placed.append((x, y, w, h))
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": n,
                    "category_id": CATEGORY_IDS[labels[index]],
                    "bbox": [x, y, w, h],
                    "area": int(np.count_nonzero(item)),
                    "iscrowd": 0,
                }
            )
        Image.fromarray(np.clip(canvas, 0, 255).round().astype(np.uint8)).save(out / name / f"{n}.png")
        coco["images"].append({"id": n, "file_name": f"{name}/{n}.png", "width": size, "height": size})
    return coco


def summary(name: str, coco: dict) -> str:
    per_image: dict[int, set[int]] = {img["id"]: set() for img in coco["images"]}
    for ann in coco["annotations"]:
        per_image[ann["image_id"]].add(ann["category_id"])
    n = len(per_image)
    mean = sum(len(s) for s in per_image.values()) / max(n, 1)
    unlabeled = sum(1 for s in per_image.values() if not s)
    return (
        f"  {name:5s}: {n} images, {len(coco['annotations'])} annotations, "
        f"{mean:.2f} labels/image, {unlabeled} images without labels"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=str(SOURCE), help="directory of the Fashion-MNIST idx .gz files")
    parser.add_argument("--out", default="data/fashion-collage", help="output root")
    parser.add_argument("--train", type=int, default=1200, help="training collages")
    parser.add_argument("--val", type=int, default=200, help="validation collages")
    parser.add_argument("--test", type=int, default=400, help="test collages")
    parser.add_argument("--size", type=int, default=96, help="canvas side in pixels")
    parser.add_argument("--min-items", type=int, default=2)
    parser.add_argument("--max-items", type=int, default=4)
    parser.add_argument("--min-scale", type=float, default=0.8, help="item scale range (1 1 keeps 28 px)")
    parser.add_argument("--max-scale", type=float, default=1.6)
    parser.add_argument("--max-overlap", type=float, default=0.1, help="max shared fraction of the smaller box")
    parser.add_argument("--empty-fraction", type=float, default=0.03, help="share of collages with no item")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    source = Path(args.source)
    if not all(
        (source / f"{p}-{k}-ubyte.gz").is_file() for p in ("train", "t10k") for k in ("images-idx3", "labels-idx1")
    ):
        print(f"{source}: no Fashion-MNIST idx files. Install them with:\n  apt-get install dataset-fashion-mnist")
        sys.exit(1)
    start = time.perf_counter()
    out = Path(args.out)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    train_images, train_labels = load_split(source, "train")
    test_images, test_labels = load_split(source, "t10k")
    # train and val draw from disjoint pools of a seeded permutation of the official train split
    order = np.random.default_rng([args.seed, 99]).permutation(len(train_images))
    pools = {"train": order[: len(order) * 5 // 6], "val": order[len(order) * 5 // 6 :]}
    lines = []
    for k, (name, count) in enumerate((("train", args.train), ("val", args.val), ("test", args.test))):
        if name == "test":
            images, labels = test_images, test_labels
        else:
            images, labels = train_images[pools[name]], train_labels[pools[name]]
        coco = make_split(name, count, images, labels, out, args, seed=[args.seed, k])
        (out / "annotations" / f"instances_{name}.json").write_text(json.dumps(coco), encoding="utf-8")
        lines.append(summary(name, coco))
    print(
        f"wrote {args.train + args.val + args.test} collages ({len(CLASSES)} categories) to {out} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
