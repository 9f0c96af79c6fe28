"""`hfft compare`: one recipe under several regularisation variants, same seed and budget.

Each variant trains in its own run directory (`<output_dir>/<variant>`), one after another; a
finished variant is reused and an interrupted one resumed, so a killed comparison can be rerun.
Then each is evaluated clean and under the corruption suite, and one table + plot is written.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hfft import plots
from hfft.errors import ConfigError

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
        return name, [f"{k}={_yaml(v)}" for k, v in VARIANTS[name].items()]
    return name, [f"{k}={_yaml(v)}" for k, v in NONE.items()] + custom.split(",")


def _yaml(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def run_variant(config_path: str, overrides: list[str], run_dir: Path) -> None:
    """Train one variant unless it already finished; resume it when it was interrupted."""
    from hfft.outputs import is_finished_run
    from hfft.recipe import Recipe

    if is_finished_run(run_dir):
        logger.info("variant %s already finished: reusing it", run_dir.name)
        return
    recipe = Recipe.from_yaml(config_path, [*overrides, f"training.output_dir={run_dir}"])
    recipe.train(resume=any(run_dir.glob("checkpoint-*")))


def run_comparison(
    config_path: str,
    variants: list[str],
    overrides: list[str] | None = None,
    out_dir: str | Path | None = None,
    severities: tuple[int, ...] = (1, 3, 5),
    max_samples: int | None = None,
) -> list[dict[str, Any]]:
    """Train every variant, evaluate it clean and corrupted, write compare.{json,md,png}."""
    from hfft.config import load_config
    from hfft.robustness import run_robustness

    overrides = list(overrides or [])
    parsed = [parse_variant(v) for v in variants]
    base = load_config(config_path, overrides)  # fail on a bad config before any training
    for _, variant_overrides in parsed:
        load_config(config_path, overrides + variant_overrides)
    root = Path(out_dir) if out_dir else Path(base.training.get("output_dir", f"runs/{base.task}")) / "compare"
    rows = []
    for name, variant_overrides in parsed:
        run_dir = root / name
        run_variant(config_path, overrides + variant_overrides, run_dir)
        results = json.loads((run_dir / "all_results.json").read_text())
        robust = run_robustness(run_dir, severities=severities, max_samples=max_samples)
        m = robust["metric"]  # accuracy; mAP for multi-label runs
        rows.append(
            {
                "variant": name,
                "overrides": variant_overrides,
                "metric": m,
                f"train_{m}": results.get(f"train_eval_{m}"),
                f"val_{m}": results.get(f"eval_{m}"),
                "generalization_gap": results.get("generalization_gap"),
                f"test_{m}": results.get(f"test_{m}"),
                **{k: v for k, v in robust.items() if k.startswith(("clean_", "mean_corrupted_"))},
                "robustness_data": robust["data"],
            }
        )
    (root / "compare.json").write_text(json.dumps(rows, indent=2))
    (root / "compare.md").write_text(markdown_table(rows, config_path, severities))
    columns = [c.format(m=rows[0]["metric"]) for c in COLUMNS] if rows else []
    plots.comparison(rows, columns, root / "compare.png", title=f"Regularisation comparison: {Path(config_path).name}")
    print(markdown_table(rows, config_path, severities))
    return rows


def markdown_table(rows: list[dict[str, Any]], config_path: str, severities: tuple[int, ...]) -> str:
    """One row per variant."""

    def cell(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else "-"

    m = rows[0]["metric"] if rows else "accuracy"
    lines = [
        f"`hfft compare {config_path}`: corrupted {m} is the mean over the modality's corruption suite "
        f"at severities {', '.join(map(str, severities))} on `{rows[0]['robustness_data'] if rows else '-'}`.",
        "",
        f"| variant | train {m} | val {m} | gap (how much better on train) | test {m} | clean {m} | mean corrupted {m} |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {cell(r[f'train_{m}'])} | {cell(r[f'val_{m}'])} | "
            f"{cell(r['generalization_gap'])} | {cell(r[f'test_{m}'])} | {cell(r[f'clean_{m}'])} | "
            f"{cell(r[f'mean_corrupted_{m}'])} |"
        )
    return "\n".join(lines) + "\n"
