"""PNG plots (matplotlib, headless): training curves, confusion matrix, robustness, comparison, label noise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curves(log_history: list[dict[str, Any]], path: Path, metric: str = "accuracy") -> Path:
    """Train/eval loss and the validation ``metric`` (accuracy, mAP, ...) against the optimizer step."""
    plt = _pyplot()
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h and "step" in h]
    evals = [(h["step"], h["eval_loss"], h.get(f"eval_{metric}")) for h in log_history if "eval_loss" in h]
    if train:
        loss_ax.plot(*zip(*train), label="train loss")
    if evals:
        loss_ax.plot([e[0] for e in evals], [e[1] for e in evals], "o-", label="validation loss")
        acc = [(e[0], e[2]) for e in evals if e[2] is not None]
        if acc:
            acc_ax.plot(*zip(*acc), "o-", color="tab:green", label=f"validation {metric}")
    loss_ax.set(xlabel="optimizer step", ylabel="loss", title="Loss")
    acc_ax.set(xlabel="optimizer step", ylabel=metric, title=f"Validation {metric}", ylim=(0, 1.02))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    return _save(fig, path)


def confusion_matrix(predictions: Any, references: Any, names: list[str], path: Path, title: str = "") -> Path:
    """Row-normalised confusion matrix with counts in the cells."""
    plt = _pyplot()
    k = len(names)
    counts = np.zeros((k, k), dtype=int)
    for ref, pred in zip(np.asarray(references).ravel(), np.asarray(predictions).ravel()):
        counts[int(ref), int(pred)] += 1
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.5 * k + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="fraction of true class")
    ax.set(
        xticks=range(k),
        yticks=range(k),
        xlabel="predicted label",
        ylabel="true label",
        title=title or "Confusion matrix",
    )
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_yticklabels(names)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    counts[i, j],
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if rates[i, j] > 0.5 else "black",
                )
    return _save(fig, path)


def per_class(report: dict[str, dict[str, Any]], path: Path, title: str = "") -> Path:
    """Multi-label: F1 and average precision per class (bars), with each class's positives in the labels."""
    plt = _pyplot()
    names = list(report)
    fig, ax = plt.subplots(figsize=(max(7, 0.55 * len(names) + 2), 4.5))
    x = np.arange(len(names))
    for offset, key in ((-0.2, "f1"), (0.2, "ap")):
        values = [report[n][key] if report[n][key] is not None else np.nan for n in names]
        ax.bar(x + offset, values, 0.4, label="AP" if key == "ap" else "F1")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{n} ({report[n]['support']})" for n in names], rotation=45, ha="right")
    ax.set(ylabel="score", ylim=(0, 1.02), title=title or "Per-class metrics (positives in brackets)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return _save(fig, path)


def robustness(
    curves: dict[str, list[tuple[float, float]]], clean: float, path: Path, title: str = "", metric: str = "accuracy"
) -> Path:
    """A metric against corruption severity, one line per corruption."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, points in curves.items():
        ax.plot([0, *[p[0] for p in points]], [clean, *[p[1] for p in points]], "o-", label=name)
    ax.axhline(clean, color="grey", linestyle=":", label="clean")
    ax.set(xlabel="severity (0 = clean)", ylabel=metric, title=title or "Robustness to corruptions", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def comparison(rows: list[dict[str, Any]], columns: list[str], path: Path, title: str = "") -> Path:
    """Grouped bars: one group per variant, one bar per metric column; error bars of +-1 standard deviation
    where rows carry `<column>_std` (several seeds)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(7, 1.4 * len(rows)), 5))
    width = 0.8 / max(len(columns), 1)
    x = np.arange(len(rows))
    for i, column in enumerate(columns):
        values = [r.get(column) if r.get(column) is not None else np.nan for r in rows]
        errors = [r.get(f"{column}_std", np.nan) for r in rows]
        error_bars = None if all(np.isnan(errors)) else errors
        ax.bar(x + i * width - 0.4 + width / 2, values, width, yerr=error_bars, capsize=2, label=column)
    ax.set_xticks(x)
    ax.set_xticklabels([r["variant"] for r in rows])
    ax.set(xlabel="variant", ylabel="metric / gap", title=title or "Regularisation comparison")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(len(columns), 5))
    return _save(fig, path)


def label_noise(rates: dict[str, float], rows: dict[str, int], path: Path, title: str = "", xlabel: str = "") -> Path:
    """`hfft audit`: the estimated label-noise rate per class (horizontal bars, each class's rows in its label)."""
    plt = _pyplot()
    from matplotlib.ticker import PercentFormatter

    names = list(rates)
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.4 * len(names) + 1.5)))
    y = np.arange(len(names))
    values = [rates[n] for n in names]
    ax.barh(y, values, color="tab:red", alpha=0.8)
    for i, value in enumerate(values):
        ax.text(value, i, f" {value:.1%}", va="center", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels([f"{n} ({rows[n]})" for n in names])
    ax.invert_yaxis()
    ax.set(xlabel=xlabel or "estimated noise rate", title=title or "Estimated label noise per class (rows)")
    ax.set_xlim(0, max(0.1, max(values, default=0.0) * 1.25))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _pyplot().close(fig)
    return path
