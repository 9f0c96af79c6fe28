"""COCO instances files (``instances_*.json`` + an image folder) as multi-label image datasets.

One row per entry of ``images`` (in file order): ``image`` (absolute path), ``labels`` (the sorted,
de-duplicated categories of the image's annotations; images without annotations are kept with ``[]``),
``objects`` (``bbox`` [x, y, w, h] and ``category`` per annotation, for object detection) and ``image_id``.
COCO category ids need not be contiguous: they are mapped to 0..K-1 in id order.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hfft.errors import DataError

logger = logging.getLogger("hfft")

COCO_KEYS = ("images", "annotations", "categories")
MAX_MISSING_SHOWN = 5


def is_coco_file(path: Path) -> bool:
    """True when ``path`` is a .json file whose top-level object has "images", "annotations" and "categories"."""
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096).lstrip()
            if not head.startswith("{"):  # a list or JSON lines: not COCO, and no need to parse it all
                return False
            f.seek(0)
            data = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and all(k in data for k in COCO_KEYS)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read(path: Path, where: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DataError(f"{where}: file does not exist.") from None
    except (UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{where}: not valid JSON ({err}).") from None
    if not isinstance(data, dict):
        raise DataError(
            f"{where}: expected a COCO object with {', '.join(map(repr, COCO_KEYS))}; "
            f"found a JSON {type(data).__name__}."
        )
    missing = [k for k in COCO_KEYS if k not in data]
    if missing:
        raise DataError(f"{where}: not a COCO instances file: missing key(s) {', '.join(map(repr, missing))}.")
    for k in COCO_KEYS:
        if not isinstance(data[k], list):
            raise DataError(f"{where}: {k!r} must be a list, not a JSON {type(data[k]).__name__}.")
    return data


def _categories(rows: list[Any], where: str) -> tuple[list[str], dict[int, int]]:
    """Category names in id order, and COCO id -> contiguous id."""
    by_id: dict[int, str] = {}
    for i, cat in enumerate(rows):
        if not isinstance(cat, dict) or not _is_int(cat.get("id")):
            raise DataError(f"{where}: row {i} of 'categories' has no integer 'id': {cat!r}.")
        name = cat.get("name")
        if not isinstance(name, str) or not name.strip():
            raise DataError(f"{where}: category id {cat['id']} (row {i} of 'categories') has no name.")
        if cat["id"] in by_id:
            raise DataError(f"{where}: category id {cat['id']} (row {i} of 'categories') is duplicated.")
        by_id[cat["id"]] = name
    if not by_id:
        raise DataError(f"{where}: 'categories' is empty.")
    seen: dict[str, int] = {}
    for cid in sorted(by_id):
        name = by_id[cid]
        if name in seen:
            raise DataError(
                f"{where}: category name {name!r} is used by ids {seen[name]} and {cid}; "
                "names must be unique (labels would be ambiguous)."
            )
        seen[name] = cid
    ids = sorted(by_id)
    return [by_id[c] for c in ids], {c: k for k, c in enumerate(ids)}


def _image_paths(rows: list[Any], roots: list[Path], where: str) -> tuple[list[int], list[str]]:
    """Image ids and absolute paths; every file must exist under one of ``roots``."""
    ids: list[int] = []
    paths: list[str] = []
    first_row: dict[int, int] = {}
    missing: list[str] = []
    n_missing = 0
    for i, img in enumerate(rows):
        if not isinstance(img, dict) or not _is_int(img.get("id")):
            raise DataError(f"{where}: row {i} of 'images' has no integer 'id': {img!r}.")
        iid, name = img["id"], img.get("file_name")
        if iid in first_row:
            raise DataError(f"{where}: image id {iid} is duplicated (rows {first_row[iid]} and {i} of 'images').")
        first_row[iid] = i
        if not isinstance(name, str) or not name:
            raise DataError(f"{where}: image id {iid} (row {i} of 'images') has no 'file_name'.")
        found = next((root / name for root in roots if (root / name).is_file()), None)
        if found is None:
            n_missing += 1
            if len(missing) < MAX_MISSING_SHOWN:
                missing.append(f"{name!r} (image id {iid}, row {i})")
            continue
        ids.append(iid)
        paths.append(str(found.resolve()))
    if n_missing:
        more = f" and {n_missing - len(missing)} more" if n_missing > len(missing) else ""
        tried = ", ".join(f"'{r}'" for r in roots)
        raise DataError(
            f"{where}: {n_missing} of {len(rows)} image file(s) not found: {'; '.join(missing)}{more}. "
            f"Roots tried: {tried}. Set data.image_root to the folder that file_name is relative to."
        )
    return ids, paths


def _bbox(ann: dict[str, Any], label: str, where: str) -> list[float]:
    box = ann.get("bbox")
    if not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box):
        raise DataError(f"{where}: {label} has no valid 'bbox' [x, y, width, height]: {box!r}.")
    return [float(v) for v in box]


def load_coco(path: str | Path, key: str, image_root: str | None = None) -> Any:
    """A COCO instances_*.json + image folder -> ``DatasetDict({"train": Dataset})`` with one row per image.

    ``file_name`` is resolved against ``image_root`` alone when given; otherwise against the JSON's folder,
    then the JSON folder's parent (first root where the file exists). ``key`` is the config key named in
    errors. Raises `DataError` before anything is built when the file is malformed or an image is missing.
    """
    import datasets

    path = Path(path)
    where = f"{key} ('{path}')"
    data = _read(path, where)
    names, contiguous = _categories(data["categories"], where)
    json_dir = path.resolve().parent
    roots = [Path(image_root).expanduser()] if image_root else [json_dir, json_dir.parent]
    image_ids, paths = _image_paths(data["images"], roots, where)

    row_of = {iid: k for k, iid in enumerate(image_ids)}
    labels: list[set[int]] = [set() for _ in image_ids]
    boxes: list[list[list[float]]] = [[] for _ in image_ids]
    cats: list[list[int]] = [[] for _ in image_ids]
    known = ", ".join(str(c) for c in sorted(contiguous))
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise DataError(f"{where}: row {i} of 'annotations' is not an object: {ann!r}.")
        label = f"annotation id {ann['id']} (row {i} of 'annotations')" if "id" in ann else f"row {i} of 'annotations'"
        iid, cid = ann.get("image_id"), ann.get("category_id")
        if not _is_int(iid) or iid not in row_of:
            raise DataError(f"{where}: {label} refers to image_id {iid!r}, which is not in 'images'.")
        if not _is_int(cid) or cid not in contiguous:
            raise DataError(
                f"{where}: {label} refers to category_id {cid!r}, which is not in 'categories' (ids: {known})."
            )
        k, c = row_of[iid], contiguous[cid]
        boxes[k].append(_bbox(ann, label, where))
        cats[k].append(c)
        labels[k].add(c)

    empty = sum(1 for s in labels if not s)
    logger.info(
        "%s: COCO file with %d images, %d annotations, %d categories, %d images without annotations",
        where,
        len(image_ids),
        len(data["annotations"]),
        len(names),
        empty,
    )
    list_type = getattr(datasets, "List", None) or datasets.Sequence
    class_label = datasets.ClassLabel(names=names)
    features = datasets.Features(
        {
            "image": datasets.Value("string"),
            "labels": list_type(class_label),
            "objects": {
                "bbox": list_type(list_type(datasets.Value("float32"), length=4)),
                "category": list_type(class_label),
            },
            "image_id": datasets.Value("int64"),
        }
    )
    columns = {
        "image": paths,
        "labels": [sorted(s) for s in labels],
        "objects": [{"bbox": b, "category": c} for b, c in zip(boxes, cats)],
        "image_id": image_ids,
    }
    return datasets.DatasetDict({"train": datasets.Dataset.from_dict(columns, features=features)})
