"""Reading audio without FFmpeg or torchcodec: soundfile decoding, soxr resampling, hfft's audiofolder loader.

`datasets` 4+ decodes its `Audio` feature with torchcodec, which needs FFmpeg's shared
libraries. hfft instead keeps audio undecoded (a path string, or `{"bytes", "path"}` from
`Audio(decode=False)`) and decodes it here with soundfile (libsndfile: WAV, FLAC, OGG, MP3, ...).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from hfft.errors import DataError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".aifc", ".au")
# Common audio files libsndfile cannot read: listed so that they are reported, not silently skipped.
OTHER_AUDIO_EXTENSIONS = (".m4a", ".mp4", ".aac", ".wma", ".webm", ".amr", ".3gp")
METADATA_FILES = ("metadata.csv", "metadata.jsonl")
SPLIT_DIRS = ("train", "validation", "valid", "val", "dev", "test")
PLAUSIBLE_RATES = (4000, 384000)  # Hz; a header outside this range is taken as corrupt metadata


class AudioDecodeError(DataError):
    """One audio file or buffer could not be decoded; ``reason`` says why in a few words."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"cannot decode audio '{name}': {reason}")
        self.name, self.reason = name, reason


def source_name(source: Any) -> str:
    """A human-readable name for an audio source (its path where there is one)."""
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    if isinstance(source, dict) and source.get("path"):
        return str(source["path"])
    return "<in-memory audio>"


def decode(source: Any, sampling_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Samples as float32 ``[frames, channels]`` and their rate.

    ``source`` is a path, a `datasets` audio dict (``{"bytes", "path"}`` or ``{"array",
    "sampling_rate"}``), an ``(array, rate)`` pair, or an array already at ``sampling_rate``.
    """
    import soundfile as sf

    if isinstance(source, tuple) and len(source) == 2:
        return _as_2d(source[0]), int(source[1])
    if isinstance(source, dict) and source.get("array") is not None:
        return _as_2d(source["array"]), int(source["sampling_rate"])
    if isinstance(source, (np.ndarray, list)):
        if sampling_rate is None:
            raise DataError("a raw audio array needs its sampling rate: pass (array, rate) or a dict.")
        return _as_2d(source), sampling_rate
    name = source_name(source)
    if isinstance(source, dict) and source.get("bytes"):
        target: Any = io.BytesIO(source["bytes"])
    elif isinstance(source, (dict, str, os.PathLike)):
        target = name
        if not Path(name).is_file():
            raise AudioDecodeError(name, "file not found")
    else:
        raise DataError(f"cannot read audio from a {type(source).__name__}; expected a path, dict or array.")
    try:
        samples, rate = sf.read(target, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError) as err:
        raise AudioDecodeError(name, _decode_failure(name, err)) from None
    return samples, int(rate)


def duration(source: Any) -> float | None:
    """Seconds of audio in ``source``, from the file header where possible (no decoding); None if unreadable."""
    import soundfile as sf

    if isinstance(source, dict) and source.get("array") is not None:
        return len(source["array"]) / int(source["sampling_rate"])
    try:
        if isinstance(source, dict) and source.get("bytes"):
            info = sf.info(io.BytesIO(source["bytes"]))
        else:
            info = sf.info(source_name(source))
        return info.frames / info.samplerate
    except Exception:  # unreadable clips are cleaning's business
        return None


def _as_2d(array: Any) -> np.ndarray:
    samples = np.asarray(array, dtype=np.float32)
    return samples[:, None] if samples.ndim == 1 else samples


def _decode_failure(name: str, err: Exception) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in OTHER_AUDIO_EXTENSIONS:
        return (
            f"'{suffix}' files need FFmpeg, which hfft does not use; soundfile reads WAV, FLAC, OGG/Opus, MP3 and "
            f"AIFF. Convert them, e.g. `ffmpeg -i x{suffix} x.flac`"
        )
    return f"not a readable audio file ({str(err).split(': ')[-1] or type(err).__name__})"


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average the channels of ``[frames, channels]`` samples."""
    return samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Resample a mono waveform with soxr (scipy's polyphase filter if soxr is missing)."""
    if rate == target or len(wave) == 0:
        return wave.astype(np.float32, copy=False)
    try:
        import soxr

        return soxr.resample(wave, rate, target, quality="HQ").astype(np.float32, copy=False)
    except ImportError:
        pass
    try:
        from scipy.signal import resample_poly
    except ImportError:
        raise DataError(f"audio at {rate} Hz must be resampled to {target} Hz: `pip install soxr`.") from None
    g = math.gcd(rate, target)
    return resample_poly(wave, target // g, rate // g).astype(np.float32)


def load_waveform(source: Any, sampling_rate: int) -> tuple[np.ndarray, int, int]:
    """Mono float32 waveform at ``sampling_rate``, with the source's own rate and channel count."""
    samples, rate = decode(source, sampling_rate)
    return resample(to_mono(samples), rate, sampling_rate), rate, samples.shape[1]


def problem(source: Any, silence_db: float, max_seconds: float | None = None) -> str | None:
    """None if the audio is usable, else a drop reason for the data report ("reason: name (detail)");
    clips longer than ``max_seconds`` (when given) are `too_long`."""
    name = source_name(source)
    try:
        samples, rate = decode(source)
    except AudioDecodeError as err:
        return f"corrupt_audio: {name} ({err.reason})"
    except DataError as err:
        return f"corrupt_audio: {name} ({err})"
    if not PLAUSIBLE_RATES[0] <= rate <= PLAUSIBLE_RATES[1]:
        return f"corrupt_audio: {name} (implausible sampling rate {rate} Hz in its header)"
    if samples.size == 0:
        return f"empty_audio: {name}"
    if not np.isfinite(samples).all():
        return f"corrupt_audio: {name} (NaN or infinite samples)"
    peak = float(np.abs(samples).max())
    if peak <= 10 ** (silence_db / 20):
        level = f"{20 * math.log10(peak):.0f} dBFS" if peak > 0 else "all zeros"
        return f"silent_audio: {name} (peak {level})"
    if max_seconds is not None and samples.shape[0] > max_seconds * rate:
        return f"too_long: {name} ({samples.shape[0] / rate:.1f} s > {max_seconds:g} s, preprocessing.max_duration)"
    return None


def undecoded(dataset: Any, column: str) -> Any:
    """Cast a `datasets.Audio` column to ``decode=False`` (bytes/path dicts) so no torchcodec is needed."""
    import datasets

    feature = dataset.features.get(column)
    if isinstance(feature, datasets.Audio) and feature.decode:
        return dataset.cast_column(column, datasets.Audio(decode=False))
    return dataset


# ----------------------------------------------------------------------------- folders


def load_audio_folder(path: Path, key: str) -> Any:
    """hfft's `audiofolder` loader: a `DatasetDict` with an ``audio`` path column and a ``label`` column.

    Layouts: ``DIR/<class>/*.wav``; ``DIR/{train,validation,test}/<class>/*.wav``; or a
    ``metadata.csv``/``metadata.jsonl`` (``file_name`` + label columns) in DIR or each split
    folder. Returns None when DIR holds neither audio files nor metadata (then it is read as data files).
    """
    import datasets

    subdirs = [p for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    splits = [p for p in subdirs if p.name.lower() in SPLIT_DIRS]
    roots = {p.name: p for p in splits} if splits and len(splits) == len(subdirs) else {"train": path}
    if not any(_has_metadata(root) or next(_audio_files(root), None) for root in roots.values()):
        return None
    return datasets.DatasetDict(
        {name: datasets.Dataset.from_dict(_folder_columns(root, key)) for name, root in roots.items()}
    )


def _has_metadata(root: Path) -> bool:
    return any((root / name).is_file() for name in METADATA_FILES)


def _audio_files(root: Path) -> Any:
    extensions = AUDIO_EXTENSIONS + OTHER_AUDIO_EXTENSIONS
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and Path(name).suffix.lower() in extensions:
                yield Path(current) / name


def _folder_columns(root: Path, key: str) -> dict[str, list]:
    for name in METADATA_FILES:
        if (root / name).is_file():
            return _metadata_columns(root / name, key)
    files = list(_audio_files(root))
    if not files:
        raise DataError(f"'{key}': no audio files ({', '.join(AUDIO_EXTENSIONS)}) under '{root}'.")
    loose = [f for f in files if f.parent == root]
    if loose:
        raise DataError(
            f"'{key}': '{root}' has audio files outside class subfolders (e.g. {loose[0].name}). Put each class "
            "in its own subfolder, or add a metadata.csv with `file_name` and `label` columns."
        )
    return {"audio": [str(f) for f in files], "label": [f.parent.name for f in files]}


def _metadata_columns(meta: Path, key: str) -> dict[str, list]:
    text = meta.read_text(encoding="utf-8")
    if meta.suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not rows or "file_name" not in rows[0]:
        raise DataError(f"'{key}': '{meta}' needs a `file_name` column (paths relative to its folder) and a label.")
    columns: dict[str, list] = {"audio": [str(meta.parent / row["file_name"]) for row in rows]}
    for name in rows[0]:
        if name not in ("file_name", "audio"):
            columns[name] = [row.get(name) for row in rows]
    return columns
