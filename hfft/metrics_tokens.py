"""Token classification metrics: entity-level precision/recall/F1 with `seqeval` (conlleval's default reading
and strict IOB2), per entity type, and word accuracy."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from hfft import tags as bio


def _report(gold: list[list[str]], predicted: list[list[str]], mode: str) -> dict[str, dict[str, float]]:
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    strict = {"mode": "strict", "scheme": IOB2} if mode == "strict" else {}
    with warnings.catch_warnings():  # seqeval warns on types without predictions; zero_division=0 scores them 0
        warnings.simplefilter("ignore")
        return classification_report(gold, predicted, output_dict=True, zero_division=0, **strict)


def entity_metrics(
    gold: list[list[str]], predicted: list[list[str]], mode: str, entities: bool = True
) -> dict[str, float]:
    """`precision`/`recall`/`f1` (micro over entities, seqeval ``mode``), `f1_default` and `f1_strict`,
    `f1_<type>` (``mode``), `accuracy` over words and `words` (how many were scored)."""
    words = sum(len(g) for g in gold)
    correct = sum(a == b for g, p in zip(gold, predicted) for a, b in zip(g, p))
    result: dict[str, float] = {"accuracy": correct / words if words else 0.0, "words": words}
    if not entities:
        return result
    reports = {m: _report(gold, predicted, m) for m in ("default", "strict")}
    micro = reports[mode].get("micro avg", {})
    result.update(
        precision=float(micro.get("precision", 0.0)),
        recall=float(micro.get("recall", 0.0)),
        f1=float(micro.get("f1-score", 0.0)),
        f1_default=float(reports["default"].get("micro avg", {}).get("f1-score", 0.0)),
        f1_strict=float(reports["strict"].get("micro avg", {}).get("f1-score", 0.0)),
        entities=int(micro.get("support", 0)),
    )
    for kind, row in reports[mode].items():
        if not kind.endswith(" avg"):
            result[f"f1_{kind}"] = float(row["f1-score"])
    return result


def entity_report(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, dict[str, dict[str, float]]]:
    """{mode: {type or "micro avg"/"macro avg": {precision, recall, f1, support}}} for both seqeval modes."""
    out = {}
    for mode in ("default", "strict"):
        out[mode] = {
            kind: {
                "precision": float(r["precision"]),
                "recall": float(r["recall"]),
                "f1": float(r["f1-score"]),
                "support": int(r["support"]),
            }  # fmt: skip
            for kind, r in _report(gold, predicted, mode).items()
            if kind != "weighted avg"
        }
    return out


def markdown_report(reports: dict[str, dict[str, Any]]) -> str:
    """Per split, a type x (precision, recall, F1, support) table in both modes."""
    lines = []
    for split, report in reports.items():
        lines += [f"## {split}", "", "| type | P | R | F1 | F1 (strict) | support |", "|---|---|---|---|---|---|"]
        for kind, row in report["default"].items():
            strict = report["strict"].get(kind, {}).get("f1", 0.0)
            lines.append(f"| {kind} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {strict:.3f} "
                         f"| {row['support']} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def type_confusion(gold: list[list[str]], predicted: list[list[str]]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Word-level entity types ("O" first, then types A-Z): names, true ids and predicted ids."""
    flat_gold = [bio.split_tag(t)[1] or "O" for row in gold for t in row]
    flat_pred = [bio.split_tag(t)[1] or "O" for row in predicted for t in row]
    names = ["O"] + sorted(set(flat_gold + flat_pred) - {"O"})
    index = {n: i for i, n in enumerate(names)}
    return names, np.asarray([index[t] for t in flat_gold]), np.asarray([index[t] for t in flat_pred])
