"""Pascal VOC XML folders (one ``<annotation>`` file per image) as object-detection datasets.

Accepted layouts: XML files and images side by side in one folder, or the VOC layout
``Annotations/*.xml`` + ``JPEGImages/`` (+ optional ``ImageSets/Main/{train,val,trainval,test}.txt``).
Rows mirror `hfft.coco`: ``image`` (absolute path), ``objects`` (``bbox`` COCO ``[x, y, w, h]`` pixels with
x = xmin, y = ymin, w = xmax - xmin, h = ymax - ymin, i.e. the given corners taken as-is, no 1-based shift;
``category`` ClassLabel indices over the sorted ``<object><name>`` values), ``width``/``height`` (``<size>``,
0 when absent) and ``image_id`` (index of the XML in the sorted list of all XML files of the folder).
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from hfft.errors import DataError

logger = logging.getLogger("hfft")

MAX_MISSING_SHOWN = 5
SNIFF_FILES = 3
SPLIT_FILES = {"train": "train", "val": "validation", "test": "test"}


def _xml_dir(path: Path) -> Path | None:
    """The folder holding the XML files: ``path`` itself, else ``path/Annotations``."""
    for cand in (path, path / "Annotations"):
        if cand.is_dir() and any(cand.glob("*.xml")):
            return cand
    return None


def _root_tag(path: Path) -> str | None:
    """Tag of the XML root element (read from the start of the file only), None when unreadable."""
    try:
        for _, elem in ET.iterparse(path, events=("start",)):
            return elem.tag
    except (ET.ParseError, OSError):
        return None
    return None


def is_voc_folder(path: Path) -> bool:
    """True when ``path`` is a folder whose (or whose ``Annotations/``) first XML files have an ``<annotation>`` root."""
    path = Path(path)
    if not path.is_dir():
        return False
    xml_dir = _xml_dir(path)
    if xml_dir is None:
        return False
    tags = [_root_tag(p) for p in sorted(xml_dir.glob("*.xml"))[:SNIFF_FILES]]
    return "annotation" in tags and all(t in ("annotation", None) for t in tags)


def _voc_root(path: Path, xml_dir: Path) -> Path:
    """The VOC root (holding JPEGImages/, ImageSets/); ``path`` unless it is the ``Annotations`` folder itself."""
    if xml_dir == path and path.name == "Annotations" and (path.parent / "JPEGImages").is_dir():
        return path.parent
    return path


def _text(elem: ET.Element, tag: str) -> str | None:
    child = elem.find(tag)
    if child is None or child.text is None or not child.text.strip():
        return None
    return child.text.strip()


def _number(elem: ET.Element, tag: str, what: str, where: str) -> float:
    value = _text(elem, tag)
    if value is None:
        raise DataError(f"{where}: {what} has no <{tag}>; expected a number.")
    try:
        return float(value)
    except ValueError:
        raise DataError(f"{where}: {what} has a non-numeric <{tag}> {value!r}; expected a number.") from None


def _size(root: ET.Element, tag: str, where: str) -> int:
    size = root.find("size")
    if size is None or _text(size, tag) is None:
        return 0
    return int(_number(size, tag, "<size>", where))


def _parse(xml_path: Path, where: str) -> dict[str, Any]:
    """One annotation file -> file name candidates, boxes, names and size (no image lookup yet)."""
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as err:
        line = err.position[0] if err.position else "?"
        raise DataError(f"{where}: malformed XML at line {line} ({err}).") from None
    except OSError as err:
        raise DataError(f"{where}: cannot read the file ({err}).") from None
    if root.tag != "annotation":
        raise DataError(f"{where}: root element is <{root.tag}>; expected a Pascal VOC <annotation>.")
    filename, image_path = _text(root, "filename"), _text(root, "path")
    if filename is None and image_path is None:
        raise DataError(f"{where}: has neither <filename> nor <path>; expected the image file name.")
    boxes: list[list[float]] = []
    names: list[str] = []
    for i, obj in enumerate(root.findall("object")):
        what = f"object {i}"
        name = _text(obj, "name")
        if name is None:
            raise DataError(f"{where}: {what} has no <name>; expected the class name.")
        box = obj.find("bndbox")
        if box is None:
            raise DataError(f"{where}: {what} ({name!r}) has no <bndbox>; expected xmin, ymin, xmax, ymax.")
        xmin, ymin, xmax, ymax = (
            _number(box, t, f"{what} ({name!r})", where) for t in ("xmin", "ymin", "xmax", "ymax")
        )
        boxes.append([xmin, ymin, xmax - xmin, ymax - ymin])
        names.append(name)
    return {
        "filename": filename,
        "path": image_path,
        "boxes": boxes,
        "names": names,
        "width": _size(root, "width", where),
        "height": _size(root, "height", where),
    }


def _find_image(parsed: dict[str, Any], xml_path: Path, voc_root: Path) -> Path | None:
    """First existing candidate: next to the XML, in ``JPEGImages/``, in the VOC root, then ``<path>``."""
    cands: list[Path] = []
    if parsed["filename"]:
        name = parsed["filename"]
        cands += [xml_path.parent / name, voc_root / "JPEGImages" / name, voc_root / name]
    if parsed["path"]:
        p = Path(parsed["path"]).expanduser()
        cands += [p] if p.is_absolute() else [xml_path.parent / p, voc_root / p]
        cands.append(voc_root / "JPEGImages" / p.name)
    return next((c for c in cands if c.is_file()), None)


def _read_split(path: Path, known: set[str]) -> list[str]:
    """Image ids (XML stems) listed in an ImageSets/Main split file; every id must have an XML."""
    ids: list[str] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if parts[0] not in known:
            raise DataError(
                f"'{path}': line {n} lists image id {parts[0]!r}, but there is no Annotations/{parts[0]}.xml."
            )
        ids.append(parts[0])
    return ids


def _splits(voc_root: Path, stems: list[str]) -> dict[str, list[int]]:
    """Split name -> row indices; ``train`` only (all rows) without ImageSets/Main.

    ``trainval.txt`` becomes ``train`` only when there is no ``train.txt`` (so rows are not duplicated).
    """
    main = voc_root / "ImageSets" / "Main"
    files = {stem: main / f"{stem}.txt" for stem in ("train", "val", "trainval", "test")}
    present = {k: f for k, f in files.items() if f.is_file()}
    if not present:
        return {"train": list(range(len(stems)))}
    if "train" not in present and "trainval" in present:
        present["train"] = present.pop("trainval")
    present.pop("trainval", None)
    index = {s: i for i, s in enumerate(stems)}
    out: dict[str, list[int]] = {}
    for stem, split in SPLIT_FILES.items():
        if stem not in present:
            continue
        wanted = set(_read_split(present[stem], set(index)))
        if not wanted:
            logger.warning("'%s' lists no images; split %r skipped", present[stem], split)
            continue
        out[split] = sorted(index[s] for s in wanted)
    if not out:
        raise DataError(f"'{main}': the split files list no images.")
    return out


def load_voc_folder(path: Path, key: str) -> Any:
    """A Pascal VOC folder -> ``DatasetDict`` (splits from ``ImageSets/Main`` when present, else ``train``).

    Returns None when ``path`` is not a VOC folder. ``key`` is the config key named in errors. Raises
    `DataError` (naming the XML file) before anything is built when an XML is malformed, lacks a file name or
    has a bad box, or when image files are missing (all XMLs are checked; the first few missing are named).
    """
    path = Path(path).expanduser()
    if not is_voc_folder(path):
        return None
    import datasets

    xml_dir = _xml_dir(path)
    assert xml_dir is not None
    voc_root = _voc_root(path, xml_dir)
    xml_files = sorted(xml_dir.glob("*.xml"), key=lambda p: p.name)

    parsed: list[dict[str, Any]] = []
    missing: list[str] = []
    n_missing = 0
    for xml_path in xml_files:
        where = f"{key} ('{xml_path}')"
        item = _parse(xml_path, where)
        found = _find_image(item, xml_path, voc_root)
        if found is None:
            n_missing += 1
            if len(missing) < MAX_MISSING_SHOWN:
                missing.append(f"{item['filename'] or item['path']!r} ({xml_path.name})")
            continue
        item["image"] = str(found.resolve())
        parsed.append(item)
    if n_missing:
        more = f" and {n_missing - len(missing)} more" if n_missing > len(missing) else ""
        raise DataError(
            f"{key} ('{path}'): {n_missing} of {len(xml_files)} image file(s) named by the XML files not found: "
            f"{'; '.join(missing)}{more}. Looked next to each XML, in '{voc_root / 'JPEGImages'}' and at <path>."
        )

    names = sorted({n for item in parsed for n in item["names"]})
    class_id = {n: k for k, n in enumerate(names)}
    list_type = getattr(datasets, "List", None) or datasets.Sequence
    class_label = datasets.ClassLabel(names=names)
    features = datasets.Features(
        {
            "image": datasets.Value("string"),
            "objects": {
                "bbox": list_type(list_type(datasets.Value("float32"), length=4)),
                "category": list_type(class_label),
            },
            "width": datasets.Value("int64"),
            "height": datasets.Value("int64"),
            "image_id": datasets.Value("int64"),
        }
    )
    splits = _splits(voc_root, [p.stem for p in xml_files])
    out = {}
    for split, rows in splits.items():
        items = [parsed[i] for i in rows]
        columns = {
            "image": [it["image"] for it in items],
            "objects": [{"bbox": it["boxes"], "category": [class_id[n] for n in it["names"]]} for it in items],
            "width": [it["width"] for it in items],
            "height": [it["height"] for it in items],
            "image_id": rows,
        }
        out[split] = datasets.Dataset.from_dict(columns, features=features)
    logger.info(
        "%s: Pascal VOC folder with %d annotation files, %d objects, %d classes (%s); splits: %s",
        key,
        len(parsed),
        sum(len(it["names"]) for it in parsed),
        len(names),
        ", ".join(names[:10]) + (", ..." if len(names) > 10 else ""),
        ", ".join(f"{s}={len(r)}" for s, r in splits.items()),
    )
    return datasets.DatasetDict(out)
