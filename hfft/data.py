"""Loading datasets from the Hub, local directories or data files, and choosing splits."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Any

from hfft.errors import DataError

FILE_BUILDERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".txt": "text",
}
VALIDATION_NAMES = ("validation", "valid", "val", "dev")
# Directory loaders hfft implements itself, by a recipe's `folder_builder` name: "module:function",
# called as function(path, key) -> DatasetDict, or None when the directory is not of that kind.
FOLDER_LOADERS = {
    "audiofolder": "hfft.modalities.audio.io:load_audio_folder",
    "conll": "hfft.conll:load_conll_folder",
    "boxes": "hfft.voc:load_voc_folder",  # Pascal VOC XML; other folders: datasets' imagefolder (metadata.jsonl)
}
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def hub_offline() -> bool:
    """True when the Hugging Face Hub must not be contacted."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def looks_like_hub_id(spec: str) -> bool:
    """`user/name` or `name`, with no file extension and not an explicit path."""
    return bool(HUB_ID.match(spec)) and not spec.startswith(".") and Path(spec).suffix.lower() not in FILE_BUILDERS


def check_source(spec: str, key: str) -> None:
    """Fail early, before any model is loaded, if a data source cannot be found."""
    if Path(spec).exists():
        return
    if not looks_like_hub_id(spec):
        raise DataError(f"'{key}': path '{spec}' does not exist.")
    if hub_offline():
        raise DataError(
            f"'{key}': '{spec}' is not a local path, and the Hugging Face Hub is offline (HF_HUB_OFFLINE=1). "
            f"Where the Hub is reachable, run `datasets.load_dataset('{spec}').save_to_disk('DIR')`, copy DIR "
            f"here and set {key}: DIR."
        )


def load_source(
    spec: str,
    key: str,
    *,
    subset: str | None = None,
    folder_builder: str | None = None,
    image_root: str | None = None,
) -> Any:
    """Load one data source into a `datasets.DatasetDict`.

    ``spec`` is a data file, a directory (a `save_to_disk` dataset, a folder of class
    subfolders for ``folder_builder`` such as imagefolder/audiofolder, or data files),
    a COCO instances JSON (image tasks; images under ``image_root``) or a Hub dataset id.
    """
    import datasets

    check_source(spec, key)
    path = Path(spec)
    try:
        if folder_builder in ("imagefolder", "boxes") and path.is_file() and path.suffix.lower() == ".json":
            from hfft.coco import is_coco_file, load_coco

            if is_coco_file(path):
                return load_coco(path, key, image_root)
        if folder_builder == "conll" and path.is_file():
            from hfft.conll import is_conll_file, load_conll

            if is_conll_file(path):
                return load_conll(path, key)
        if path.is_file():
            suffix = path.suffix.lower()
            if suffix not in FILE_BUILDERS:
                raise DataError(
                    f"'{key}': '{spec}' has extension '{suffix}'; expected one of "
                    f"{', '.join(sorted(FILE_BUILDERS))} or a directory."
                )
            options = {"delimiter": "\t"} if suffix == ".tsv" else {}
            loaded = datasets.load_dataset(FILE_BUILDERS[suffix], data_files={"train": str(path)}, **options)
        elif path.is_dir():
            loaded = _load_directory(path, key, folder_builder)
        else:
            loaded = datasets.load_dataset(spec, subset)
    except DataError:
        raise
    except UnicodeDecodeError as err:
        raise DataError(
            f"'{key}': '{spec}' is not valid UTF-8 text ({err.reason} at byte {err.start}). Re-save the file as UTF-8."
        ) from None
    except (FileNotFoundError, ValueError) as err:
        raise DataError(f"'{key}': could not load '{spec}': {err}") from None
    except MemoryError:
        raise
    except Exception as err:  # datasets wraps parser errors (bad UTF-8, malformed CSV/JSON) in its own types
        cause = err.__cause__ or err.__context__
        if isinstance(cause, UnicodeDecodeError) or "utf-8" in str(err).lower():
            raise DataError(f"'{key}': '{spec}' is not valid UTF-8 text. Re-save the file as UTF-8.") from err
        detail = " ".join(str(cause or err).split()) or type(cause or err).__name__
        if not path.exists():  # a Hub id, and the Hub could not be reached
            raise DataError(
                f"'{key}': could not load '{spec}' from the Hugging Face Hub ({type(cause or err).__name__}: {detail}). "
                f"Without Hub access, run `datasets.load_dataset('{spec}').save_to_disk('DIR')` where the Hub is "
                f"reachable, copy DIR here and set {key}: DIR (HF_HUB_OFFLINE=1 makes this fail at once)."
            ) from err
        raise DataError(f"'{key}': could not read '{spec}': {detail}. Check that the file is well-formed.") from err
    if isinstance(loaded, datasets.Dataset):
        loaded = datasets.DatasetDict({"train": loaded})
    return loaded


def _load_directory(path: Path, key: str, folder_builder: str | None) -> Any:
    import datasets

    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return datasets.load_from_disk(str(path))
    files = [p for p in path.iterdir() if not p.name.startswith(".")]
    if not files:
        raise DataError(f"'{key}': directory '{path}' is empty.")
    if folder_builder in FOLDER_LOADERS:
        module, _, name = FOLDER_LOADERS[folder_builder].partition(":")
        loaded = getattr(importlib.import_module(module), name)(path, key)
        if loaded is not None:
            return loaded
    elif folder_builder and any(p.is_dir() for p in files):
        return datasets.load_dataset(folder_builder, data_dir=str(path))
    scripts = sorted(p.name for p in files if p.suffix == ".py")
    if scripts:
        raise DataError(
            f"'{key}': directory '{path}' holds a Python loading script ({', '.join(scripts)}); hfft never runs "
            "code from data. Point it at the data files (csv, json, parquet, ...) or a save_to_disk directory."
        )
    return datasets.load_dataset(str(path))


def pick_split(splits: Any, wanted: str | None, names: tuple[str, ...], key: str) -> Any:
    """The split named ``wanted`` (must exist), else the first of ``names`` present, else None."""
    if wanted is not None:
        if wanted not in splits:
            raise DataError(f"'{key}': split '{wanted}' not found; available splits: {', '.join(splits)}.")
        return splits[wanted]
    for name in names:
        if name in splits:
            return splits[name]
    return None


def only_split(splits: Any, key: str, spec: str) -> Any:
    """A source given for one role (validation/test): its single split, or its matching one."""
    if len(splits) == 1:
        return next(iter(splits.values()))
    raise DataError(
        f"'{key}': '{spec}' has several splits ({', '.join(splits)}); point at one file or directory per split."
    )
