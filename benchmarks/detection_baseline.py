"""Baseline (B) for object detection: the plain `run_object_detection.py`-style Trainer script a careful user writes.

No hfft. COCO instances files read by hand (category ids made contiguous in id order, names kept), the same seeded
subsets hfft draws (`shuffle(seed).select(range(n))` of the images in file order: --train-samples is hfft's
data.max_train_samples, --eval-samples its data.max_eval_samples), the model directory's own image processor
(`AutoImageProcessor`, as shipped: fixed size, no padding), images decoded and processed per batch
(`with_transform`, as the example does; no augmentation: hfft's side turns its own off for this comparison), a
collate that stacks `pixel_values` and passes `labels` as the list of per-image targets, the best thread count
(benchmarks/baseline_b.py), `--bf16` for bf16 autocast (what a careful user on a CPU with native bf16 sets; hfft
itself keeps this convolution-heavy RT-DETR in float32, channels-last, on CPU). After training, COCO mAP with
pycocotools on the test subset, against the test file's own boxes: the detections of `Trainer.predict` (logits and
boxes, the processor's post-processing at threshold 0, every kept box). Writes OUT/all_results.json as
`hfft train` does, so benchmarks/detection.py reads both the same way:

    python benchmarks/detection_baseline.py --model DIR --train instances_train.json --test instances_test.json \
        --images DIR --out DIR [--train-samples N] [--eval-samples N] [--bf16]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from baseline_b import best_threads


def read_coco(path: str, images: str) -> tuple[dict[str, list], list[int], list[str]]:
    """One row per image (file order): path, image id, size and its boxes; the COCO category ids in id order (row
    k of the model's classes is category ids[k]) and their names."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    categories = sorted(data["categories"], key=lambda c: c["id"])
    ids, names = [c["id"] for c in categories], [c["name"] for c in categories]
    contiguous = {cid: k for k, cid in enumerate(ids)}
    boxes: dict[int, list] = {image["id"]: [] for image in data["images"]}
    for ann in data["annotations"]:
        boxes[ann["image_id"]].append(ann)
    rows: dict[str, list] = {"path": [], "image_id": [], "objects": []}
    for image in data["images"]:
        anns = boxes[image["id"]]
        rows["path"].append(str(Path(images) / image["file_name"]))
        rows["image_id"].append(image["id"])
        rows["objects"].append({
            "bbox": [[float(v) for v in a["bbox"]] for a in anns],
            "category": [contiguous[a["category_id"]] for a in anns],
            "area": [float(a.get("area", a["bbox"][2] * a["bbox"][3])) for a in anns],
        })  # fmt: skip
    return rows, ids, names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("--model", "--train", "--test", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument("--images", help="folder the file_name entries are relative to (default: the JSON's parent's)")
    parser.add_argument("--train-samples", type=int, help="a seeded subset of this many train images (default: all)")
    parser.add_argument("--eval-samples", type=int, help="a seeded subset of this many test images (default: all)")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--eval-batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bf16", action="store_true", help="(B+bf16): bf16 autocast, as on a CPU with native bf16")
    args = parser.parse_args()

    import datasets
    import numpy as np
    import torch
    from PIL import Image
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForObjectDetection, Trainer, TrainingArguments

    images = args.images or str(Path(args.train).resolve().parent.parent)
    splits, classes = {}, {}
    for name, path, limit in (("train", args.train, args.train_samples), ("test", args.test, args.eval_samples)):
        rows, ids, names = read_coco(path, images)
        classes[name] = (ids, names)
        dataset = datasets.Dataset.from_dict(rows)
        if limit is not None and limit < len(dataset):  # what run_*.py's max_train_samples does (and hfft)
            dataset = dataset.shuffle(seed=args.seed).select(range(limit))
        splits[name] = dataset
    if classes["test"] != classes["train"]:
        raise SystemExit(f"{args.test} has other categories than {args.train}")
    category_ids, names = classes["train"]
    test_ids = list(splits["test"]["image_id"])
    processor = AutoImageProcessor.from_pretrained(args.model)

    def transform(batch: dict[str, list]) -> Any:
        """Decode, then the processor's resize and normalisation with the boxes as its (COCO) annotations."""
        pictures = [np.asarray(Image.open(path).convert("RGB")) for path in batch["path"]]
        annotations = [
            {"image_id": image_id, "annotations": [
                {"image_id": image_id, "category_id": c, "bbox": b, "area": a, "iscrowd": 0}
                for b, c, a in zip(objects["bbox"], objects["category"], objects["area"])]}
            for image_id, objects in zip(batch["image_id"], batch["objects"])
        ]  # fmt: skip
        encoded = processor(images=pictures, annotations=annotations, return_tensors="pt")
        encoded.pop("pixel_mask", None)
        return encoded

    def test_transform(batch: dict[str, list]) -> Any:
        """Pixels only: mAP is computed against the test file itself."""
        pictures = [np.asarray(Image.open(path).convert("RGB")) for path in batch["path"]]
        return {"pixel_values": processor(images=pictures, return_tensors="pt")["pixel_values"]}

    def collate(rows: list[dict[str, Any]]) -> dict[str, Any]:
        batch = {"pixel_values": torch.stack([row["pixel_values"] for row in rows])}
        if "labels" in rows[0]:
            batch["labels"] = [row["labels"] for row in rows]
        return batch

    train = splits["train"].with_transform(transform)
    test = splits["test"].with_transform(test_transform)
    config = AutoConfig.from_pretrained(
        args.model, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
    )
    model = AutoModelForObjectDetection.from_pretrained(args.model, config=config, ignore_mismatched_sizes=True)
    trial = best_threads(model, collate([train[i] for i in range(min(args.batch_size, len(train)))]))
    training_args = TrainingArguments(
        output_dir=args.out,
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        seed=args.seed,
        bf16=args.bf16,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=25,
        report_to="none",
        use_cpu=True,
        remove_unused_columns=False,  # the transform needs path, image_id and objects
    )
    trainer = Trainer(model=model, args=training_args, train_dataset=train, data_collator=collate)
    metrics = dict(trainer.train().metrics)

    # Test: logits and boxes (no labels given, so the model's first two outputs), the processor's post-processing
    # to xyxy boxes in the image's pixels, COCO mAP by pycocotools against the test file's boxes.
    output = trainer.predict(test, metric_key_prefix="test")
    logits, boxes = (torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in output.predictions[:2])
    assert boxes.shape[-1] == 4, f"expected the model's second output to be boxes, got {tuple(boxes.shape)}"
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(args.test)
    sizes = torch.tensor([[truth.imgs[i]["height"], truth.imgs[i]["width"]] for i in test_ids])
    found = processor.post_process_object_detection(
        SimpleNamespace(logits=logits, pred_boxes=boxes), threshold=0.0, target_sizes=sizes
    )
    detections = []
    for image_id, result in zip(test_ids, found):
        for (x1, y1, x2, y2), score, label in zip(result["boxes"].tolist(), result["scores"].tolist(),
                                                   result["labels"].tolist()):  # fmt: skip
            detections.append({"image_id": image_id, "category_id": category_ids[label],
                               "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})  # fmt: skip
    scores = dict.fromkeys(("map", "map_50", "map_75"), 0.0)
    if detections:
        with contextlib.redirect_stdout(io.StringIO()):
            evaluator = COCOeval(truth, truth.loadRes(detections), iouType="bbox")
            evaluator.params.imgIds = test_ids
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        scores = {"map": evaluator.stats[0], "map_50": evaluator.stats[1], "map_75": evaluator.stats[2]}
    metrics.update(output.metrics, **{f"test_{k}": float(v) for k, v in scores.items()}, thread_trial_s=trial)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "all_results.json").write_text(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
