"""Box formats and checks (hfft.boxes) and Pascal VOC XML folders (hfft.voc), on real files and real `datasets`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hfft.boxes import (
    check_boxes,
    cxcywh_normalized_to_xyxy,
    xywh_to_cxcywh_normalized,
    xywh_to_xyxy,
    xyxy_to_xywh,
)
from hfft.errors import DataError
from hfft.voc import is_voc_folder, load_voc_folder

# ---------------------------------------------------------------- boxes


def random_boxes(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 300, size=(n, 2))
    wh = rng.uniform(1, 200, size=(n, 2))
    return np.concatenate([xy, wh], axis=1)


def test_conversions_round_trip():
    boxes = random_boxes(50)
    xyxy = xywh_to_xyxy(boxes)
    assert np.allclose(xyxy[:, 2:], boxes[:, :2] + boxes[:, 2:])
    assert np.allclose(xyxy_to_xywh(xyxy), boxes, atol=1e-4)
    h, w = 480, 640
    norm = xywh_to_cxcywh_normalized(boxes, h, w)
    assert np.allclose(
        norm[0], [(boxes[0, 0] + boxes[0, 2] / 2) / w, (boxes[0, 1] + boxes[0, 3] / 2) / h, *boxes[0, 2:] / [w, h]]
    )
    assert np.allclose(cxcywh_normalized_to_xyxy(norm, h, w), xyxy, atol=1e-4)
    assert np.allclose(xyxy_to_xywh(cxcywh_normalized_to_xyxy(norm, h, w)), boxes, atol=1e-4)


def test_conversions_lists_and_empty():
    assert xywh_to_xyxy([[1, 2, 3, 4]]).tolist() == [[1.0, 2.0, 4.0, 6.0]]
    for fn in (xywh_to_xyxy, xyxy_to_xywh):
        assert fn([]).shape == (0, 4)
    assert xywh_to_cxcywh_normalized([], 10, 10).shape == (0, 4)
    assert cxcywh_normalized_to_xyxy(np.zeros((0, 4)), 10, 10).shape == (0, 4)
    with pytest.raises(ValueError, match="shape"):
        xywh_to_xyxy([[1, 2, 3]])
    with pytest.raises(ValueError, match="height"):
        xywh_to_cxcywh_normalized([[1, 2, 3, 4]], 0, 10)


def test_check_boxes_reasons_clipping_indices():
    boxes = [
        [10, 10, 20, 20],  # 0 kept as is
        [float("nan"), 0, 5, 5],  # 1 nan_box
        [5, 5, 0, 10],  # 2 degenerate (w = 0)
        [5, 5, 10, -1],  # 3 degenerate (h < 0)
        [200, 10, 10, 10],  # 4 outside (right of the image)
        [-20, 10, 20, 10],  # 5 outside (touches the left edge only: no overlap)
        [-5, 90, 20, 20],  # 6 partly outside: clipped to [0, 90, 15, 10]
        [99.5, 50, 10, 10],  # 7 clipped to w = 0.5 -> area 5 px², kept
        [99.9, 50, 10, 5],  # 8 clipped to area 0.5 px² -> degenerate
        [1, 1, 0.5, 0.5],  # 9 area 0.25 px² -> degenerate
        [0, 0, 100, 100],  # 10 the whole image: kept, not clipped
        [1, float("inf"), 2, 2],  # 11 nan_box (inf)
    ]
    kept, idx, reasons, clipped = check_boxes(boxes, 100, 100)
    assert idx.tolist() == [0, 6, 7, 10]
    assert reasons == [
        "nan_box",
        "degenerate_box",
        "degenerate_box",
        "outside_image",
        "outside_image",
        "degenerate_box",
        "degenerate_box",
        "nan_box",
    ]
    assert clipped == 2
    assert kept.dtype == np.float32 and kept.shape == (4, 4)
    assert np.allclose(kept, [[10, 10, 20, 20], [0, 90, 15, 10], [99.5, 50, 0.5, 10], [0, 0, 100, 100]])

    kept, idx, reasons, clipped = check_boxes(boxes, 100, 100, mode="drop")
    assert idx.tolist() == [0, 10]
    assert reasons == ["nan_box", "degenerate_box", "degenerate_box"] + ["outside_image"] * 5 + [
        "degenerate_box",
        "nan_box",
    ]
    assert clipped == 0
    assert len(reasons) + len(idx) == len(boxes)


def test_check_boxes_empty_and_bad_args():
    kept, idx, reasons, clipped = check_boxes([], 10, 10)
    assert kept.shape == (0, 4) and idx.shape == (0,) and reasons == [] and clipped == 0
    with pytest.raises(ValueError, match="mode"):
        check_boxes([[0, 0, 1, 1]], 10, 10, mode="nope")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="height"):
        check_boxes([[0, 0, 1, 1]], 0, 10)


# ---------------------------------------------------------------- VOC


def voc_xml(filename: str | None, objects: list[tuple[str, tuple]], size: tuple[int, int] | None = (32, 24)) -> str:
    parts = ["<annotation>", "<folder>images</folder>"]
    if filename is not None:
        parts.append(f"<filename>{filename}</filename>")
    if size is not None:
        parts.append(f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>")
    for name, (xmin, ymin, xmax, ymax) in objects:
        parts.append(
            f"<object><name>{name}</name><difficult>0</difficult>"
            f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
        )
    parts.append("</annotation>")
    return "\n".join(parts)


def write_png(path: Path, value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 24), (value, value, value)).save(path)


IMAGES = {
    "b": [("zebra", (1, 2, 11, 12)), ("cat", (3.5, 4, 10, 20))],
    "a": [("dog", (0, 0, 32, 24))],
    "c": [],
}


def write_flat(folder: Path) -> Path:
    for k, (stem, objects) in enumerate(IMAGES.items()):
        write_png(folder / f"{stem}.png", 50 * k)
        (folder / f"{stem}.xml").write_text(voc_xml(f"{stem}.png", objects), encoding="utf-8")
    return folder


def write_voc_layout(root: Path, splits: dict[str, list[str]]) -> Path:
    for k, (stem, objects) in enumerate(IMAGES.items()):
        write_png(root / "JPEGImages" / f"{stem}.png", 50 * k)
        (root / "Annotations").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / f"{stem}.xml").write_text(voc_xml(f"{stem}.png", objects), encoding="utf-8")
    main = root / "ImageSets" / "Main"
    main.mkdir(parents=True, exist_ok=True)
    for split, stems in splits.items():
        (main / f"{split}.txt").write_text("\n".join(stems) + "\n", encoding="utf-8")
    return root


def test_flat_folder_rows(tmp_path):
    folder = write_flat(tmp_path / "voc")
    assert is_voc_folder(folder)
    ds = load_voc_folder(folder, "data.train")
    assert list(ds) == ["train"]
    train = ds["train"]
    assert train.features["objects"]["category"].feature.names == ["cat", "dog", "zebra"]
    assert train["image"] == [str((folder / f"{s}.png").resolve()) for s in "abc"]
    assert train["image_id"] == [0, 1, 2]
    assert train["width"] == [32, 32, 32] and train["height"] == [24, 24, 24]
    objs = train["objects"]
    assert objs[0] == {"bbox": [[0.0, 0.0, 32.0, 24.0]], "category": [1]}
    assert objs[1]["category"] == [2, 0]
    assert np.allclose(objs[1]["bbox"], [[1, 2, 10, 10], [3.5, 4, 6.5, 16]])
    assert objs[2] == {"bbox": [], "category": []}


def test_not_voc(tmp_path):
    assert not is_voc_folder(tmp_path)
    assert load_voc_folder(tmp_path, "k") is None
    (tmp_path / "x.xml").write_text("<svg></svg>", encoding="utf-8")
    assert not is_voc_folder(tmp_path)
    assert not is_voc_folder(tmp_path / "x.xml")


def test_voc_layout_splits(tmp_path):
    root = write_voc_layout(tmp_path / "VOC", {"train": ["a", "c"], "val": ["b"], "trainval": ["a", "b", "c"]})
    assert is_voc_folder(root)
    ds = load_voc_folder(root, "data.train")
    assert sorted(ds) == ["train", "validation"]  # trainval ignored when train.txt exists
    assert ds["train"]["image_id"] == [0, 2] and ds["validation"]["image_id"] == [1]
    assert ds["validation"]["image"] == [str((root / "JPEGImages" / "b.png").resolve())]
    assert ds["train"].features == ds["validation"].features
    assert ds["validation"].features["objects"]["category"].feature.names == ["cat", "dog", "zebra"]
    # the Annotations folder itself also works (root found next to it)
    ds2 = load_voc_folder(root / "Annotations", "data.train")
    assert sorted(ds2) == ["train", "validation"]


def test_voc_layout_without_imagesets(tmp_path):
    root = write_voc_layout(tmp_path / "VOC", {})
    ds = load_voc_folder(root, "data.train")
    assert list(ds) == ["train"] and ds["train"].num_rows == 3


def test_split_file_unknown_id(tmp_path):
    root = write_voc_layout(tmp_path / "VOC", {"train": ["a", "nope"]})
    with pytest.raises(DataError, match=r"train\.txt'.*line 2.*'nope'"):
        load_voc_folder(root, "data.train")


def test_path_fallback(tmp_path):
    folder = tmp_path / "voc"
    image = tmp_path / "elsewhere" / "img.png"
    write_png(image)
    folder.mkdir()
    xml = voc_xml(None, [("cat", (1, 1, 5, 5))]).replace("<folder>", f"<path>{image}</path><folder>")
    (folder / "one.xml").write_text(xml, encoding="utf-8")
    ds = load_voc_folder(folder, "k")
    assert ds["train"]["image"] == [str(image.resolve())]


def test_malformed_xml(tmp_path):
    folder = write_flat(tmp_path / "voc")
    (folder / "b.xml").write_text("<annotation>\n<filename>b.png</filename>\n<object>\n</annotation>\n")
    with pytest.raises(DataError, match=r"data\.train \('.*b\.xml'\): malformed XML at line 4"):
        load_voc_folder(folder, "data.train")


def test_missing_images(tmp_path):
    folder = write_flat(tmp_path / "voc")
    for k in range(7):
        (folder / f"z{k}.xml").write_text(voc_xml(f"gone{k}.jpg", []), encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_voc_folder(folder, "data.train")
    msg = str(err.value)
    assert "7 of 10 image file(s)" in msg and "'gone0.jpg' (z0.xml)" in msg and "'gone4.jpg'" in msg
    assert "gone5" not in msg and "and 2 more" in msg


def test_missing_filename(tmp_path):
    folder = write_flat(tmp_path / "voc")
    (folder / "b.xml").write_text(voc_xml(None, []), encoding="utf-8")
    with pytest.raises(DataError, match=r"b\.xml'\): has neither <filename> nor <path>"):
        load_voc_folder(folder, "data.train")


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        (("1", "2", "x9", "4"), r"object 1 \('cat'\) has a non-numeric <xmax> 'x9'"),
        (("1", "2", "", "4"), r"object 1 \('cat'\) has no <xmax>"),
    ],
)
def test_bad_coordinates(tmp_path, box, expected):
    folder = write_flat(tmp_path / "voc")
    (folder / "b.xml").write_text(voc_xml("b.png", [("dog", (0, 0, 1, 1)), ("cat", box)]), encoding="utf-8")
    with pytest.raises(DataError, match=r"b\.xml'\): " + expected):
        load_voc_folder(folder, "data.train")


def test_missing_bndbox_and_size(tmp_path):
    folder = write_flat(tmp_path / "voc")
    (folder / "b.xml").write_text(voc_xml("b.png", [], size=None), encoding="utf-8")
    ds = load_voc_folder(folder, "k")
    assert ds["train"]["width"][1] == 0 and ds["train"]["height"][1] == 0
    xml = "<annotation><filename>b.png</filename><object><name>cat</name></object></annotation>"
    (folder / "b.xml").write_text(xml, encoding="utf-8")
    with pytest.raises(DataError, match=r"b\.xml'\): object 0 \('cat'\) has no <bndbox>"):
        load_voc_folder(folder, "k")


def deepforest_data() -> Path | None:
    spec = importlib.util.find_spec("deepforest")  # locate only: importing deepforest needs its heavy deps
    if spec is None or not spec.submodule_search_locations:
        return None
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return data if data.is_dir() else None


def test_deepforest_real_data():
    data = deepforest_data()
    if data is None:
        pytest.skip("deepforest is not installed")
    assert is_voc_folder(data)
    train = load_voc_folder(data, "data.train")["train"]
    assert train.num_rows > 0
    assert "Tree" in train.features["objects"]["category"].feature.names
    for row in train:
        assert Path(row["image"]).is_file() and row["objects"]["bbox"]
        kept, _, reasons, _ = check_boxes(row["objects"]["bbox"], row["height"], row["width"])
        assert len(kept) == len(row["objects"]["bbox"]) and not reasons
