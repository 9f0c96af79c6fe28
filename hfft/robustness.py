"""`hfft robustness`: a trained run's metrics (accuracy; multi-label mAP and micro-F1) under its modality's
corruption suite."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from hfft import corruptions, plots

logger = logging.getLogger("hfft")


def corrupt(dataset: Any, recipe: Any, name: str, severity: int, seed: int) -> Any:
    """The dataset with corruption ``name`` at ``severity`` applied to its input column (seeded per row)."""
    column = recipe.columns["input"]
    function = recipe.corruption_suite()[name]

    def apply(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        values = []
        for value, row in zip(batch[column], indices):
            rng = corruptions.row_rng(seed, name, severity, row)
            values.append(recipe.from_natural(function(recipe.to_natural(value), severity, rng)))
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
    """Evaluate ``run_dir`` on clean and corrupted data; write robustness.{json,md,png}.

    The result holds ``clean_<metric>`` and ``mean_corrupted_<metric>`` for each of the task's
    `robustness_metrics` (the first is the headline: ``metric``), and per corruption and severity the
    values of every metric (``corruptions`` for the headline metric, ``by_metric`` for all).
    """
    from hfft.outputs import load_run

    recipe = load_run(run_dir)
    suite = recipe.corruption_suite()
    names = names or list(suite)
    unknown = [n for n in names if n not in suite]
    if unknown:
        from hfft.errors import ConfigError

        raise ConfigError(f"unknown {recipe.modality} corruption(s) {unknown}; available: {', '.join(suite)}.")
    metrics = recipe.robustness_metrics
    seed = recipe.config.seed if seed is None else seed
    dataset, source = evaluation_data(recipe, data)
    if max_samples is not None and len(dataset) > max_samples:
        dataset = dataset.shuffle(seed=seed).select(range(max_samples))
    clean = recipe.evaluate_dataset(dataset)
    by_metric: dict[str, dict[str, dict[str, float]]] = {m: {} for m in metrics}
    for name in names:
        for severity in severities:
            scores = recipe.evaluate_dataset(corrupt(dataset, recipe, name, severity, seed))
            for m in metrics:
                by_metric[m].setdefault(name, {})[str(severity)] = scores[f"eval_{m}"]
            logger.info("%s severity %d: %s %.4f (clean %.4f)", name, severity, metrics[0],
                        scores[f"eval_{metrics[0]}"], clean[f"eval_{metrics[0]}"])  # fmt: skip
    result: dict[str, Any] = {
        "run": str(run_dir),
        "data": source,
        "samples": len(dataset),
        "seed": seed,
        "modality": recipe.modality,
        "metric": metrics[0],
    }
    for m in metrics:
        result[f"clean_{m}"] = clean[f"eval_{m}"]
        result[f"mean_corrupted_{m}"] = float(np.mean([v for pts in by_metric[m].values() for v in pts.values()]))
    result["corruptions"] = by_metric[metrics[0]]
    result["by_metric"] = by_metric
    out = Path(out_dir) if out_dir else Path(run_dir) / "robustness"
    out.mkdir(parents=True, exist_ok=True)
    (out / "robustness.json").write_text(json.dumps(result, indent=2))
    (out / "robustness.md").write_text(markdown_table(result, severities))
    curves = {n: [(int(s), v) for s, v in pts.items()] for n, pts in result["corruptions"].items()}
    plots.robustness(
        curves, result[f"clean_{metrics[0]}"], out / "robustness.png",
        title=f"Robustness of {Path(run_dir).name} ({source})", metric=metrics[0],
    )  # fmt: skip
    return result


def markdown_table(result: dict[str, Any], severities: tuple[int, ...]) -> str:
    """One corruption x severity table per metric."""
    by_metric = result.get("by_metric") or {result.get("metric", "accuracy"): result["corruptions"]}
    summary = "; ".join(
        f"clean {m} **{result[f'clean_{m}']:.4f}**, mean corrupted {m} **{result[f'mean_corrupted_{m}']:.4f}**"
        for m in by_metric
    )
    lines = [f"{summary} on {result['samples']} samples of `{result['data']}` (seed {result['seed']})."]
    for metric, table in by_metric.items():
        lines += ["", f"{metric} by corruption and severity:", ""]
        lines.append("| corruption | " + " | ".join(f"s{s}" for s in severities) + " | mean |")
        lines.append("|---" * (len(severities) + 2) + "|")
        for name, points in table.items():
            values = [points[str(s)] for s in severities]
            lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + f" | {np.mean(values):.3f} |")
    return "\n".join(lines) + "\n"
