"""Object detection: box round trip through the processor, perfect predictions -> mAP 1 through the Trainer,
zero-box images, an overfitting tiny RT-DETR, LoRA reload, pipeline loading, resume, bad inputs."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import kill_at_first_checkpoint, resume_killed, with_sections
from detection_fixtures import make_shapes, save_tiny_detr, save_tiny_rtdetr

from hfft import ObjectDetection
from hfft.boxes import cxcywh_normalized_to_xyxy, xywh_to_xyxy
from hfft.errors import DataError
from hfft.outputs import load_run

HFFT = str(Path(sys.executable).parent / "hfft")
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("det-models")
    return {"detr": save_tiny_detr(root / "detr"), "rtdetr": save_tiny_rtdetr(root / "rtdetr")}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("det-data")
    return {"train": make_shapes(root / "train", 30, seed=0), "validation": make_shapes(root / "val", 12, seed=1)}


def det_config(model: Path, data: dict[str, Path], out: Path, **extra) -> dict:
    config = {
        "task": "object-detection",
        "model": str(model),
        "data": {role: str(path) for role, path in data.items()},
        "tuning": {"method": "full"},
        "training": {
            "output_dir": str(out),
            "num_train_epochs": 1,
            "per_device_train_batch_size": 8,
            "learning_rate": 3e-3,
            "use_cpu": True,
            "save_strategy": "no",
            "report_to": "none",
        },  # fmt: skip
    }
    return with_sections(config, extra)


def prepared(config: dict) -> tuple[ObjectDetection, dict]:
    recipe = ObjectDetection(config)
    splits = recipe.load_splits()
    recipe.processor = recipe.load_processor(config["model"])
    return recipe, {role: recipe.encode(ds, role) for role, ds in splits.items()}


def test_boxes_survive_the_processor_round_trip(models, tmp_path):
    """COCO xywh pixels -> the processor's normalised cxcywh targets on a resized, non-square image -> pixels."""
    from PIL import Image

    root = tmp_path / "odd"
    root.mkdir()
    Image.new("RGB", (70, 50), (90, 90, 90)).save(root / "a.png")
    boxes = [[3.0, 4.0, 20.0, 15.0], [40.0, 10.5, 29.0, 39.5]]
    coco = {"images": [{"id": 1, "file_name": "a.png", "height": 50, "width": 70}],
            "annotations": [{"id": i + 1, "image_id": 1, "category_id": 5, "bbox": b, "area": b[2] * b[3], "iscrowd": 0}
                            for i, b in enumerate(boxes)],
            "categories": [{"id": 5, "name": "thing"}]}  # fmt: skip
    (root / "instances.json").write_text(json.dumps(coco))
    data = {"train": root / "instances.json", "validation": root / "instances.json"}
    recipe, encoded = prepared(det_config(models["detr"], data, tmp_path / "run"))
    target = recipe.with_eval_transform(encoded["train"])[0]["labels"]
    assert tuple(target["size"].tolist()) == (64, 64) and tuple(target["orig_size"].tolist()) == (50, 70)
    back = cxcywh_normalized_to_xyxy(target["boxes"].numpy(), 50, 70)
    assert np.abs(back - xywh_to_xyxy(np.asarray(boxes))).max() < 1.0
    assert target["class_labels"].tolist() == [0, 0] and recipe.class_names == ["thing"]


class GoldDetector:
    """DETR-style outputs that predict each image's ground truth (optionally shifted by a fraction of the box)."""

    def __new__(cls, num_labels: int, shift: float = 0.0):
        import torch
        from transformers.models.detr.modeling_detr import DetrObjectDetectionOutput

        class Gold(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.anchor = torch.nn.Parameter(torch.zeros(1))

            def forward(self, pixel_values=None, labels=None, **kwargs):
                queries = 10
                logits = torch.full((len(labels), queries, num_labels + 1), -10.0)
                logits[:, :, -1] = 10.0  # no object
                boxes = torch.full((len(labels), queries, 4), 0.5)
                for i, target in enumerate(labels):
                    n = len(target["class_labels"])
                    logits[i, :n, -1] = -10.0
                    logits[i, torch.arange(n), target["class_labels"]] = 10.0
                    moved = target["boxes"].clone()
                    moved[:, 0] += shift * moved[:, 2]
                    boxes[i, :n] = moved
                return DetrObjectDetectionOutput(loss=self.anchor.sum(), logits=logits + self.anchor, pred_boxes=boxes)

        return Gold()


@pytest.mark.parametrize(("shift", "expected"), [(0.0, 1.0), (0.3, None)])
def test_ground_truth_as_predictions_scores_map_one_through_the_trainer(models, shapes, tmp_path, shift, expected):
    recipe = ObjectDetection(det_config(models["detr"], shapes, tmp_path / "run"))
    splits = recipe.load_splits()
    recipe.processor = recipe.load_processor(str(models["detr"]))
    recipe.model = GoldDetector(len(recipe.class_names), shift)
    metrics = recipe.evaluate_dataset(splits["validation"], batch_size=4)  # 3 batches, accumulated
    boxes = sum(len(o["category"]) for o in splits["validation"]["objects"])
    assert metrics["eval_images"] == 12 and metrics["eval_boxes"] == boxes
    if expected is not None:
        for key in ("eval_map", "eval_map_50", "eval_map_75", "eval_ap_red", "eval_ap_blue"):
            assert metrics[key] == pytest.approx(1.0), key
    else:  # boxes moved by 30% of their width: half-right at IoU 0.5, wrong at 0.75
        assert metrics["eval_map_50"] == pytest.approx(1.0) and metrics["eval_map_75"] == 0.0
        assert metrics["eval_map"] < 0.5


@pytest.fixture(scope="module")
def overfit(models, tmp_path_factory):
    """A tiny RT-DETR trained on 4 images and evaluated on the same 4: it must learn them."""
    root = tmp_path_factory.mktemp("overfit")
    data = make_shapes(root / "four", 4, seed=0, empty_every=0)
    config = det_config(
        models["rtdetr"],
        {"train": data, "validation": data},
        root / "run",
        regularization={"augment": False},
        training={
            "num_train_epochs": 100,
            "per_device_train_batch_size": 4,
            "warmup_steps": 0,
            "learning_rate": 3e-3,
            "eval_strategy": "no",
            "logging_steps": 25,
            "bf16": False,
        },
    )  # fmt: skip  (float32; the trajectory still follows the thread count's summation order: at lr 3e-3 the
    # four images are learned with 1 and 2 threads, mAP@50 0.92 / 0.55; at 2e-3 only with 2, 0.12 with 1)
    recipe = ObjectDetection(config)
    return recipe, recipe.train(), root / "run"


def test_a_tiny_detector_overfits_four_images(overfit):
    _, metrics, out = overfit
    assert metrics["eval_untrained_map_50"] < 0.2
    assert metrics["eval_map_50"] > metrics["eval_untrained_map_50"] + 0.3, metrics
    per_class = json.loads((out / "per_class_ap.json").read_text())
    assert set(per_class["eval"]) == {"ap_red", "ap_blue"}


def test_run_loads_in_an_object_detection_pipeline_and_predicts_boxes(overfit):
    from transformers import pipeline

    recipe, _, out = overfit
    image = str(out.parent / "four" / "img000.png")
    found = pipeline("object-detection", model=str(out), threshold=0.0)(image)
    assert found and {"score", "label", "box"} <= set(found[0]) and found[0]["label"] in ("red", "blue")
    ours = load_run(out)
    ours.config.labels.score_threshold = 0.0
    boxes = ours.predict([image])[0]["boxes"]
    assert boxes and boxes[0]["label"] in ("red", "blue") and len(boxes[0]["box"]) == 4
    best = max(found, key=lambda d: d["score"])
    assert best["label"] == boxes[0]["label"] and float(best["score"]) == pytest.approx(boxes[0]["score"], abs=1e-3)


def test_zero_box_images_and_lora_reload_with_identical_boxes(models, shapes, tmp_path):
    out = tmp_path / "lora"
    config = det_config(models["detr"], shapes, out, tuning={"method": "lora"}, labels={"score_threshold": 0.0})
    recipe = ObjectDetection(config)
    metrics = recipe.train()
    report = json.loads((out / "data_report.json").read_text())
    assert (
        report["train"]["notes"]["images_without_boxes"] == 5
        and report["validation"]["notes"]["images_without_boxes"] == 2
    )
    assert (out / "adapter" / "adapter_config.json").is_file() and "eval_map" in metrics
    image = str(Path(shapes["validation"]).parent / "img000.png")
    assert recipe.predict([image]) == load_run(out).predict([image])
    saved = yaml.safe_load((out / "hfft_config.yaml").read_text())
    assert saved["tuning"]["method"] == "lora"


def test_freeze_keeps_the_backbone_and_trains_the_rest(models, shapes, tmp_path):
    recipe = ObjectDetection(det_config(models["detr"], shapes, tmp_path / "run", tuning={"method": "freeze"}))
    recipe.train()
    trainable = {n for n, p in recipe.model.named_parameters() if p.requires_grad}
    assert trainable and not any(".backbone." in n for n in trainable)
    assert any("class_labels_classifier" in n for n in trainable) and any("decoder" in n for n in trainable)


def test_killed_run_resumes_to_the_uninterrupted_metrics(models, shapes, tmp_path):
    settings = {
        "save_strategy": "steps",
        "save_steps": 3,
        "save_total_limit": 2,
        "num_train_epochs": 3,
        "eval_strategy": "no",
    }
    out = tmp_path / "killed"
    recipe_file = tmp_path / "recipe.yaml"
    extra = {"labels": {"untrained_baseline": False}, "regularization": {"augment": False}}
    recipe_file.write_text(yaml.safe_dump(det_config(models["detr"], shapes, out, training=settings, **extra)))
    killer = kill_at_first_checkpoint([HFFT, "train", recipe_file], out, ENV)
    # The uninterrupted reference runs as the same command (float32 results depend on the process's thread setup,
    # and DETR's matching turns last-bit differences into visibly different losses).
    reference_file = tmp_path / "reference.yaml"
    reference_file.write_text(
        yaml.safe_dump(det_config(models["detr"], shapes, tmp_path / "reference", training=settings, **extra))
    )
    import subprocess

    done = subprocess.run([HFFT, "train", reference_file], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    reference = json.loads((tmp_path / "reference" / "all_results.json").read_text())
    metrics = resume_killed(killer, [HFFT, "train", recipe_file], out, ENV)
    # Not bit-exact as for the other tasks: DETR resumed from a checkpoint ends ~0.1-0.3% off in loss (float32, same
    # thread setup; also when resumed in-process from a copied checkpoint at an epoch boundary). Not yet explained.
    assert metrics["eval_loss"] == pytest.approx(reference["eval_loss"], rel=5e-3)
    assert metrics["train_eval_loss"] == pytest.approx(reference["train_eval_loss"], rel=5e-3)


def test_bad_boxes_are_clipped_or_dropped_and_counted(models, tmp_path):
    path = make_shapes(tmp_path / "d", 20, seed=3, empty_every=0)
    coco = json.loads(path.read_text())
    coco["annotations"] += [
        {"id": 900, "image_id": 1, "category_id": 3, "bbox": [50, 50, 30, 30], "area": 900, "iscrowd": 0},  # clipped
        {"id": 901, "image_id": 2, "category_id": 3, "bbox": [10, 10, 0, 5], "area": 0, "iscrowd": 0},  # degenerate
        {"id": 902, "image_id": 3, "category_id": 7, "bbox": [200, 200, 5, 5], "area": 25, "iscrowd": 0},  # outside
    ]
    path.write_text(json.dumps(coco))
    recipe = ObjectDetection(det_config(models["detr"], {"train": path}, tmp_path / "run"))
    recipe.load_splits()
    notes = recipe.report.splits["train"].notes  # boxes are checked before validation is split off
    assert notes["boxes_dropped"] == {"degenerate_box": 1, "outside_image": 1}
    assert notes["boxes_clipped"] == 1
    assert sorted(Path(e.split(" ")[0]).name for e in notes["box_problems"]) == [
        "img000.png",
        "img001.png",
        "img002.png",
    ]


def test_missing_image_unknown_category_and_malformed_files_are_named(models, shapes, tmp_path):
    root = tmp_path / "bad"
    shutil.copytree(Path(shapes["validation"]).parent, root)
    coco = json.loads((root / "instances.json").read_text())
    coco["images"].append({"id": 99, "file_name": "nope.png", "height": 64, "width": 64})
    (root / "instances.json").write_text(json.dumps(coco))
    with pytest.raises(DataError, match="nope.png"):
        ObjectDetection(det_config(models["detr"], {"train": root / "instances.json"}, tmp_path / "a")).train()
    (root / "broken.json").write_text('{"images": [')
    with pytest.raises(DataError, match="broken.json"):
        ObjectDetection(det_config(models["detr"], {"train": root / "broken.json"}, tmp_path / "b")).train()
    other = make_shapes(tmp_path / "other", 4, seed=9, empty_every=0)
    coco = json.loads(other.read_text())
    coco["categories"].append({"id": 11, "name": "green"})
    coco["annotations"][0]["category_id"] = 11
    other.write_text(json.dumps(coco))
    with pytest.raises(DataError, match=r"instances.json.*img000.png.*category 'green', which train does not have"):
        ObjectDetection(
            det_config(models["detr"], {"train": shapes["train"], "validation": other}, tmp_path / "c")
        ).train()
    assert not (tmp_path / "c").exists()


def test_every_box_of_the_last_batch_is_scored(models, tmp_path):
    """Images with more boxes than the last batch has images (gather_for_metrics would cut them)."""
    path = make_shapes(tmp_path / "many", 3, seed=5, empty_every=0)
    coco = json.loads(path.read_text())
    coco["annotations"] = [
        {"id": 10 * i + k + 1, "image_id": i + 1, "category_id": 3 if k % 2 else 7, "bbox": [2 + 10 * k, 5, 8, 8],
         "area": 64, "iscrowd": 0}
        for i in range(3) for k in range(6)
    ]  # fmt: skip
    path.write_text(json.dumps(coco))
    recipe = ObjectDetection(det_config(models["detr"], {"train": path, "validation": path}, tmp_path / "run"))
    splits = recipe.load_splits()
    recipe.processor = recipe.load_processor(str(models["detr"]))
    recipe.model = GoldDetector(len(recipe.class_names))
    metrics = recipe.evaluate_dataset(splits["validation"], batch_size=2)
    assert metrics["eval_boxes"] == 18 and metrics["eval_map"] == pytest.approx(1.0)
