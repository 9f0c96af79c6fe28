"""`hfft compare`: one recipe under several regularisation variants, same seeds and budget.

Each variant trains in its own run directory (`<output_dir>/<variant>`, or `<variant>/seed-<S>` for each of
``seeds`` seeds), one after another; a finished run is reused and an interrupted one resumed, so a killed
comparison can be rerun. Then each is evaluated clean and under the corruption suite, and one table + plot
is written. With several seeds every score is a mean +- standard deviation over the seeds, and a variant's
difference from `none` is marked when it exceeds twice its standard error (sqrt(sd_a^2/n + sd_b^2/n)): a rough
~95% bar for "beyond the seed noise" with few seeds.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from hfft import plots
from hfft.config import format_override
from hfft.errors import ConfigError
from hfft.resume import train_unless_finished

logger = logging.getLogger("hfft")

NONE = {
    "regularization.dropout": 0.0,
    "regularization.weight_decay": 0.0,
    "regularization.label_smoothing": 0.0,
    "regularization.augment": False,
}
VARIANTS: dict[str, dict[str, Any]] = {
    "none": NONE,
    "dropout": {**NONE, "regularization.dropout": 0.2},
    "weight_decay": {**NONE, "regularization.weight_decay": 0.1},
    "label_smoothing": {**NONE, "regularization.label_smoothing": 0.1},
    "augment": {**NONE, "regularization.augment": True},
    "all": {
        "regularization.dropout": 0.2,
        "regularization.weight_decay": 0.1,
        "regularization.label_smoothing": 0.1,
        "regularization.augment": True,
    },
}
COLUMNS = ["train_{m}", "val_{m}", "generalization_gap", "clean_{m}", "mean_corrupted_{m}"]  # m: the run's metric


def parse_variant(spec: str) -> tuple[str, list[str]]:
    """`name` (built-in) or `name:key=value,key=value` (built on `none`)."""
    name, _, custom = spec.partition(":")
    if not custom:
        if name not in VARIANTS:
            raise ConfigError(f"unknown variant '{name}'; built-in: {', '.join(VARIANTS)}, or NAME:key=value,...")
        return name, [format_override(k, v) for k, v in VARIANTS[name].items()]
    return name, [format_override(k, v) for k, v in NONE.items()] + custom.split(",")


def run_comparison(
    config_path: str,
    variants: list[str],
    overrides: list[str] | None = None,
    out_dir: str | Path | None = None,
    severities: tuple[int, ...] = (1, 3, 5),
    max_samples: int | None = None,
    seeds: int = 1,
) -> list[dict[str, Any]]:
    """Train every variant (with ``seeds`` seeds: the config's seed, +1, ...), evaluate it clean and corrupted,
    write compare.{json,md,png}. With several seeds each row holds the mean of every score, its standard
    deviation (``<score>_std``), the per-seed values (``runs``) and, against `none`, ``beyond_noise``."""
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}.")
    from hfft.config import load_config

    overrides = list(overrides or [])
    parsed = [parse_variant(v) for v in variants]
    base = load_config(config_path, overrides)  # fail on a bad config before any training
    for _, variant_overrides in parsed:
        load_config(config_path, overrides + variant_overrides)
    root = Path(out_dir) if out_dir else Path(base.training.get("output_dir", f"runs/{base.task}")) / "compare"
    rows = []
    for name, variant_overrides in parsed:
        runs = []
        for offset in range(seeds):
            run_dir = root / name if seeds == 1 else root / name / f"seed-{base.seed + offset}"
            seeded = [f"seed={base.seed + offset}"] if seeds > 1 else []
            if not train_unless_finished(config_path, overrides + variant_overrides + seeded, run_dir):
                logger.info("variant %s already finished: reusing it", run_dir.name)
            runs.append(variant_scores(run_dir, severities, max_samples))
        rows.append({"variant": name, "overrides": variant_overrides, **aggregate(runs)})
    if seeds > 1:
        mark_beyond_noise(rows, seeds)
    (root / "compare.json").write_text(json.dumps(rows, indent=2))
    (root / "compare.md").write_text(markdown_table(rows, config_path, severities))
    columns = [c.format(m=rows[0]["metric"]) for c in COLUMNS] if rows else []
    plots.comparison(rows, columns, root / "compare.png", title=f"Regularisation comparison: {Path(config_path).name}")
    print(markdown_table(rows, config_path, severities))
    return rows


def variant_scores(run_dir: Path, severities: tuple[int, ...], max_samples: int | None) -> dict[str, Any]:
    """One finished run's scores: train/val/test metric, generalisation gap, clean and corrupted metric."""
    from hfft.robustness import run_robustness

    results = json.loads((run_dir / "all_results.json").read_text())
    robust = run_robustness(run_dir, severities=severities, max_samples=max_samples)
    m = robust["metric"]  # accuracy; mAP for multi-label runs; WER for speech recognition
    return {
        "metric": m,
        f"train_{m}": results.get(f"train_eval_{m}"),
        f"val_{m}": results.get(f"eval_{m}"),
        "generalization_gap": results.get("generalization_gap"),
        f"test_{m}": results.get(f"test_{m}"),
        **{k: v for k, v in robust.items() if k.startswith(("clean_", "mean_corrupted_"))},
        "robustness_data": robust["data"],
    }


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One run's scores as they are; several runs' as means, with `<score>_std` and the per-seed `runs`."""
    if len(runs) == 1:
        return runs[0]
    row: dict[str, Any] = {"metric": runs[0]["metric"], "robustness_data": runs[0]["robustness_data"], "runs": runs}
    for key, value in runs[0].items():
        values = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
        if isinstance(value, (int, float)) and len(values) == len(runs):
            mean = sum(values) / len(values)
            row[key] = mean
            row[f"{key}_std"] = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return row


def mark_beyond_noise(rows: list[dict[str, Any]], seeds: int) -> None:
    """Per score, whether each variant's mean differs from `none`'s by more than twice the standard error of the
    difference (``beyond_noise``: {score: difference or None})."""
    reference = next((r for r in rows if r["variant"] == "none"), None)
    if reference is None:
        return
    for row in rows:
        if row is reference:
            continue
        row["beyond_noise"] = {}
        for key in [k for k in reference if f"{k}_std" in reference and f"{k}_std" in row]:
            difference = row[key] - reference[key]
            error = math.sqrt((row[f"{key}_std"] ** 2 + reference[f"{key}_std"] ** 2) / seeds)
            row["beyond_noise"][key] = difference if abs(difference) > 2 * error else None


def markdown_table(rows: list[dict[str, Any]], config_path: str, severities: tuple[int, ...]) -> str:
    """One row per variant."""

    def cell(row: dict[str, Any], key: str) -> str:
        value = row.get(key)
        if not isinstance(value, (int, float)):
            return "-"
        text = f"{value:.4f}" + (f" ± {row[f'{key}_std']:.4f}" if f"{key}_std" in row else "")
        return text + (" *" if (row.get("beyond_noise") or {}).get(key) is not None else "")

    m = rows[0]["metric"] if rows else "accuracy"
    lines = [
        f"`hfft compare {config_path}`: corrupted {m} is the mean over the modality's corruption suite "
        f"at severities {', '.join(map(str, severities))} on `{rows[0]['robustness_data'] if rows else '-'}`.",
        "",
        f"| variant | train {m} | val {m} | gap (how much better on train) | test {m} | clean {m} | mean corrupted {m} |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        keys = [f"train_{m}", f"val_{m}", "generalization_gap", f"test_{m}", f"clean_{m}", f"mean_corrupted_{m}"]
        lines.append(f"| {r['variant']} | " + " | ".join(cell(r, k) for k in keys) + " |")
    if rows and "runs" in rows[0]:
        lines += ["", f"Mean ± standard deviation over {len(rows[0]['runs'])} seeds; * : differs from `none` by more "
                  "than twice the standard error of the difference (beyond the seed noise)."]  # fmt: skip
    return "\n".join(lines) + "\n"
