"""COCO instances files -> multi-label image datasets (hfft.coco), on real files and real `datasets`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from hfft.coco import is_coco_file, load_coco
from hfft.errors import DataError

CATEGORIES = [{"id": 5, "name": "cat"}, {"id": 1, "name": "bird"}, {"id": 90, "name": "dog"}, {"id": 3, "name": "cow"}]
# contiguous ids in COCO-id order: bird(1)=0, cow(3)=1, cat(5)=2, dog(90)=3


def write_png(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (value, value, value)).save(path)


def ann(aid: int, image_id: int, category_id: int, box: tuple[float, ...] = (1, 2, 3, 4)) -> dict:
    return {"id": aid, "image_id": image_id, "category_id": category_id, "bbox": list(box), "area": 12, "iscrowd": 0}


def coco_dict(file_names: list[str]) -> dict:
    images = [{"id": 10 + i, "file_name": name, "width": 8, "height": 8} for i, name in enumerate(file_names)]
    annotations = [
        ann(1, 10, 5, (0, 0, 4, 4)),
        ann(2, 10, 5, (2, 2, 5, 5)),  # the same category twice on image 10
        ann(3, 11, 1),
        ann(4, 11, 90, (1.5, 2.5, 3.25, 4.0)),
        ann(5, 11, 3),
        # image 12: no annotations
    ]
    return {"images": images, "annotations": annotations, "categories": [dict(c) for c in CATEGORIES]}


def write_coco(tmp_path: Path, data: dict | None = None, images_in: str = "images") -> Path:
    """COCO layout: tmp/annotations/instances_train.json, files under tmp/<images_in>/."""
    names = ["a.png", "b.png", "c.png"]
    for k, name in enumerate(names):
        write_png(tmp_path / images_in / name, 60 * k)
    data = data if data is not None else coco_dict(names)
    path = tmp_path / "annotations" / "instances_train.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_rows_labels_objects(tmp_path, caplog):
    path = write_coco(tmp_path)
    with caplog.at_level(logging.INFO, logger="hfft"):
        ds = load_coco(path, "data.train", image_root=str(tmp_path / "images"))
    assert list(ds) == ["train"]
    train = ds["train"]
    assert train.features["labels"].feature.names == ["bird", "cow", "cat", "dog"]
    assert train["image_id"] == [10, 11, 12]
    assert train["image"] == [str((tmp_path / "images" / n).resolve()) for n in ("a.png", "b.png", "c.png")]
    assert all(Path(p).is_absolute() for p in train["image"])
    assert train["labels"] == [[2], [0, 1, 3], []]  # repeated category once; sorted; empty image kept
    objects = train["objects"]
    assert objects[0]["category"] == [2, 2]
    assert objects[0]["bbox"] == [[0, 0, 4, 4], [2, 2, 5, 5]]
    assert objects[1]["category"] == [0, 3, 1]
    assert objects[1]["bbox"][1] == pytest.approx([1.5, 2.5, 3.25, 4.0])
    assert objects[2] == {"bbox": [], "category": []}
    assert "3 images, 5 annotations, 4 categories, 1 images without annotations" in caplog.text


def test_resolves_against_json_folder_then_parent(tmp_path):
    # next to the JSON
    beside = write_coco(tmp_path / "beside", images_in="annotations")
    assert load_coco(beside, "data.train")["train"]["image"][0] == str((beside.parent / "a.png").resolve())
    # relative to the JSON folder's parent, with a sub-folder in file_name
    parent = tmp_path / "parent"
    path = write_coco(parent, coco_dict(["train/a.png", "train/b.png", "train/c.png"]), images_in=".")
    for name in ("a.png", "b.png", "c.png"):
        write_png(parent / "train" / name)
    assert load_coco(str(path), "data.train")["train"]["image"][2] == str((parent / "train" / "c.png").resolve())


def test_image_root_is_the_only_root_when_given(tmp_path):
    path = write_coco(tmp_path, images_in="annotations")  # files beside the JSON ...
    with pytest.raises(DataError) as err:
        load_coco(path, "data.train", image_root=str(tmp_path / "elsewhere"))  # ... but not under image_root
    assert "elsewhere" in str(err.value)


def test_missing_images_named_with_roots(tmp_path):
    names = [f"img{i}.png" for i in range(8)]
    path = write_coco(tmp_path, coco_dict(names))  # only a/b/c.png exist, under images/
    with pytest.raises(DataError) as err:
        load_coco(path, "data.train")
    msg = str(err.value)
    assert "data.train" in msg and "instances_train.json" in msg
    assert "8 of 8 image file(s) not found" in msg
    assert "'img0.png' (image id 10, row 0)" in msg and "and 3 more" in msg and "img7.png" not in msg
    assert str(path.parent.resolve()) in msg and str(tmp_path.resolve()) in msg


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (
            lambda d: d["annotations"].append(ann(17, 10, 99)),
            ["annotation id 17 (row 5 of 'annotations')", "category_id 99", "ids: 1, 3, 5, 90"],
        ),
        (
            lambda d: d["annotations"].append(ann(18, 777, 1)),
            ["annotation id 18 (row 5 of 'annotations')", "image_id 777", "not in 'images'"],
        ),
        (
            lambda d: d["annotations"].append({"image_id": 10, "category_id": 1, "bbox": [1, 2]}),
            ["row 5 of 'annotations'", "bbox"],
        ),
        (
            lambda d: d["images"].append({"id": 11, "file_name": "a.png"}),
            ["image id 11 is duplicated", "rows 1 and 3 of 'images'"],
        ),
        (lambda d: d["images"].append({"file_name": "a.png"}), ["row 3 of 'images'", "'id'"]),
        (lambda d: d["categories"].append({"id": 7, "name": "cat"}), ["category name 'cat'", "ids 5 and 7"]),
        (lambda d: d["categories"].append({"id": 7}), ["category id 7 (row 4 of 'categories') has no name"]),
        (lambda d: d["categories"].append({"id": 1, "name": "other"}), ["category id 1 (row 4 of 'categories')"]),
        (lambda d: d.pop("categories"), ["missing key(s) 'categories'"]),
        (lambda d: d.update(annotations={}), ["'annotations' must be a list"]),
    ],
)
def test_errors_name_file_and_row(tmp_path, mutate, expected):
    data = coco_dict(["a.png", "b.png", "c.png"])
    mutate(data)
    path = write_coco(tmp_path, data)
    with pytest.raises(DataError) as err:
        load_coco(path, "data.train", image_root=str(tmp_path / "images"))
    msg = str(err.value)
    assert msg.startswith(f"data.train ('{path}'): ")
    for part in expected:
        assert part in msg


@pytest.mark.parametrize("text, expected", [("{not json", "not valid JSON"), ("[1, 2]", "found a JSON list")])
def test_not_a_coco_object(tmp_path, text, expected):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(DataError, match=expected) as err:
        load_coco(path, "data.validation")
    assert "data.validation" in str(err.value) and "x.json" in str(err.value)


def test_is_coco_file(tmp_path):
    coco = write_coco(tmp_path)
    assert is_coco_file(coco)
    lines = tmp_path / "rows.json"
    lines.write_text('{"image": "a.png", "label": "cat"}\n{"image": "b.png", "label": "dog"}\n')
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps([{"images": [], "annotations": [], "categories": []}]))
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"images": [], "annotations": []}))
    other_suffix = tmp_path / "coco.jsonl"
    other_suffix.write_text(coco.read_text())
    for path in (lines, listed, partial, other_suffix, tmp_path / "missing.json", tmp_path):
        assert not is_coco_file(path), path
