"""`hfft robustness`: accuracy of a trained run under its modality's corruption suite."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from hfft import corruptions, plots

logger = logging.getLogger("hfft")


def to_natural(kind: str, value: Any) -> Any:
    """A dataset value as the corruption functions take it (str, RGB PIL image, (mono wave, rate))."""
    if kind == "image":
        from hfft.image_io import open_image

        return open_image(value).convert("RGB")
    if kind == "audio":
        from hfft.audio_io import decode, to_mono

        samples, rate = decode(value)
        return to_mono(samples), rate
    return value


def from_natural(kind: str, value: Any) -> Any:
    """A corrupted value back into a form the recipe's input column accepts."""
    if kind == "audio":
        wave, rate = value
        return {"array": np.asarray(wave, dtype=np.float32), "sampling_rate": int(rate)}
    return value


def corrupt(dataset: Any, recipe: Any, name: str, severity: int, seed: int) -> Any:
    """The dataset with corruption ``name`` at ``severity`` applied to its input column (seeded per row)."""
    kind, column = recipe.input_kind, recipe.columns["input"]
    function = corruptions.SUITES[kind][name]

    def apply(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        values = []
        for value, row in zip(batch[column], indices):
            rng = corruptions.row_rng(seed, name, severity, row)
            values.append(from_natural(kind, function(to_natural(kind, value), severity, rng)))
        return {column: values}

    return dataset.map(
        apply,
        batched=True,
        batch_size=64,
        with_indices=True,
        load_from_cache_file=False,
        desc=f"{name} severity {severity}",
    )


def evaluation_data(recipe: Any, data: str | None) -> tuple[Any, str]:
    """The labelled raw data to perturb: ``data`` if given, else the run's test split, else validation."""
    if data is not None:
        return recipe.load_labelled(data, "robustness"), data
    splits = recipe.load_splits()  # deterministic: the same seed re-creates the run's own splits
    role = "test" if "test" in splits else "validation"
    return splits[role], role


def run_robustness(
    run_dir: str | Path,
    data: str | None = None,
    severities: tuple[int, ...] = corruptions.SEVERITIES,
    names: list[str] | None = None,
    out_dir: str | Path | None = None,
    seed: int | None = None,
    max_samples: int | None = None,
) -> dict[str, Any]:
    """Evaluate ``run_dir`` on clean and corrupted data; write robustness.{json,md,png}."""
    from hfft.outputs import load_run

    recipe = load_run(run_dir)
    suite = corruptions.SUITES[recipe.input_kind]
    names = names or list(suite)
    unknown = [n for n in names if n not in suite]
    if unknown:
        from hfft.errors import ConfigError

        raise ConfigError(f"unknown {recipe.input_kind} corruption(s) {unknown}; available: {', '.join(suite)}.")
    seed = recipe.config.seed if seed is None else seed
    dataset, source = evaluation_data(recipe, data)
    if max_samples is not None and len(dataset) > max_samples:
        dataset = dataset.shuffle(seed=seed).select(range(max_samples))
    clean = recipe.evaluate_dataset(dataset)["eval_accuracy"]
    curves: dict[str, list[tuple[float, float]]] = {}
    for name in names:
        curves[name] = []
        for severity in severities:
            accuracy = recipe.evaluate_dataset(corrupt(dataset, recipe, name, severity, seed))["eval_accuracy"]
            curves[name].append((severity, accuracy))
            logger.info("%s severity %d: accuracy %.4f (clean %.4f)", name, severity, accuracy, clean)
    mean = float(np.mean([acc for points in curves.values() for _, acc in points]))
    result = {
        "run": str(run_dir),
        "data": source,
        "samples": len(dataset),
        "seed": seed,
        "modality": recipe.input_kind,
        "clean_accuracy": clean,
        "mean_corrupted_accuracy": mean,
        "corruptions": {n: {str(s): a for s, a in pts} for n, pts in curves.items()},
    }
    out = Path(out_dir) if out_dir else Path(run_dir) / "robustness"
    out.mkdir(parents=True, exist_ok=True)
    (out / "robustness.json").write_text(json.dumps(result, indent=2))
    (out / "robustness.md").write_text(markdown_table(result, severities))
    plots.robustness(curves, clean, out / "robustness.png", title=f"Robustness of {Path(run_dir).name} ({source})")
    return result


def markdown_table(result: dict[str, Any], severities: tuple[int, ...]) -> str:
    """Corruption x severity accuracy table."""
    head = "| corruption | " + " | ".join(f"s{s}" for s in severities) + " | mean |"
    lines = [
        f"Clean accuracy **{result['clean_accuracy']:.4f}** on {result['samples']} samples of `{result['data']}`; "
        f"mean corrupted accuracy **{result['mean_corrupted_accuracy']:.4f}** (seed {result['seed']}).",
        "",
        head,
        "|---" * (len(severities) + 2) + "|",
    ]
    for name, points in result["corruptions"].items():
        values = [points[str(s)] for s in severities]
        lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {np.mean(values):.3f} |")
    return "\n".join(lines) + "\n"
