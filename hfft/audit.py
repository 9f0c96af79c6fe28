"""`hfft audit CONFIG_OR_RUN`: training rows whose given label is likely wrong, found by confident learning
(cleanlab) on out-of-sample predicted probabilities.

The probabilities come from either

- a recipe (CONFIG): K-fold cross-validation with the recipe's own model and settings. The cleaned,
  label-encoded training split (data.exclude applied; before any validation split; neither a configured
  data.validation nor the test split is loaded) is cut into K folds, stratified by class (multi-label: by each row's rarest class) and seeded by the
  recipe's seed. Fold i is a normal run in `<out>/fold-<i>` that trains on the other K-1 folds and validates on
  fold i (so early stopping or best-model selection, when the recipe asks for them, see fold i), then predicts
  it. A finished fold is reused and an interrupted one resumed: a rerun costs only what is missing; or
- a finished run (RUN): the run's model on its validation split, when that split was held out of data.train
  (its rows were never trained on); only those rows are audited.

cleanlab flags the rows (`cleanlab.filter.find_label_issues`, prune_by_noise_rate) and ranks them by
self-confidence, the out-of-sample probability of the given label, lowest (most likely wrong) first. The noise
per class comes from the calibrated confident joint (`cleanlab.count.estimate_joint`, given x true label): for
each given class, the estimated fraction of its rows whose true class is another. Multi-label data goes through
`cleanlab.multilabel_classification` and one-vs-rest joints per class.

Rows are *source rows* (`hfft.cleaning.SOURCE_ROW`): 0-based positions among the rows of data.train as loaded
(a CSV's header is not a row: source row r is line r + 2 of the file), counted before any row is dropped.
Written to `--out` (CONFIG: `<output_dir>/audit`; RUN: `<run>/audit`): `audit.json`, `audit.md` and
`audit_noise.png`. `hfft train CONFIG data.exclude=<out>/audit.json` trains without the flagged rows.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import json
import logging
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hfft import cleaning, plots
from hfft.cleaning import SOURCE_ROW
from hfft.errors import ConfigError, DataError

logger = logging.getLogger("hfft")

AUDIT_FILE = "audit.json"
FOLD_FILE = "fold.json"  # in each fold's run directory: its held-out rows, then their probabilities
DEFAULT_FOLDS = 5
MARKDOWN_ROWS = 100  # flagged rows listed in audit.md (audit.json lists them all)
ROW_MEANING = (
    "source rows: 0-based positions among the rows of data.train as loaded (a CSV's header is not a row: row r is "
    "line r + 2 of the file), counted before any row is dropped"
)
PIP = "pip install 'cleanlab>=2.6' (or pip install 'hfft[audit]')"


@dataclass
class Audited:
    """What cleanlab is given: audited training rows, their labels and out-of-sample probabilities."""

    recipe: Any  # a Classification recipe: label names, multi_label, thresholds, previews
    dataset: Any  # the audited rows (cleaned, label-encoded), in the order of `rows`
    rows: list[int]  # source rows
    labels: np.ndarray  # class ids [rows] or multi-hot [rows, classes]
    probabilities: np.ndarray  # [rows, classes]
    how: dict[str, Any] = field(default_factory=dict)  # how the probabilities were made (for audit.json)
    command: list[str] = field(default_factory=list)  # the recipe and its overrides, to train without the flagged rows
    output_dir: str = ""  # the recipe's training.output_dir


def require_cleanlab() -> Any:
    """The cleanlab module, or a ConfigError naming the pip command."""
    try:
        import cleanlab
    except ImportError:
        raise ConfigError(f"hfft audit needs cleanlab: {PIP}.") from None
    return cleanlab


def check_task(task: str) -> None:
    """A ConfigError unless ``task`` is a classification recipe."""
    from hfft.registry import RECIPES

    if RECIPES.get(task, ("", ""))[1] != "classification":
        classification = ", ".join(name for name, (_, kind) in RECIPES.items() if kind == "classification")
        raise ConfigError(
            f"hfft audit is for classification ({classification}): it ranks rows whose class label is likely "
            f"wrong; '{task}' is not supported."
        )


def run_audit(
    source: str | Path,
    overrides: list[str] | None = None,
    folds: int | None = None,
    epochs: float | None = None,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Audit a recipe (k-fold cross-validation) or a finished run (its validation split); write audit.json,
    audit.md and audit_noise.png; return the audit.json content."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("hfft audit trains its folds one after another in one process; start it without "
                          "accelerate launch / torchrun.")  # fmt: skip
    path = Path(source)
    if path.is_dir():
        if overrides or folds is not None or epochs is not None:
            raise ConfigError(
                f"'{source}' is a run directory: overrides, --folds and --epochs apply when auditing a recipe "
                "(k-fold cross-validation), not a finished run."
            )
        audited = audit_run(path)
        out = Path(out_dir) if out_dir else path / "audit"
    elif path.is_file():
        audited, out = cross_validate(
            str(source), list(overrides or []), DEFAULT_FOLDS if folds is None else folds, epochs, out_dir
        )
    else:
        raise ConfigError(
            f"'{source}' does not exist: give a recipe YAML (audited by k-fold cross-validation) or a finished "
            "run directory (audited on its validation split)."
        )
    result = find_issues(audited)
    write_audit(result, audited, out)
    return result


# ----------------------------------------------------------------------------- sources of probabilities


def cross_validate(
    config_path: str, overrides: list[str], folds: int, epochs: float | None, out_dir: str | Path | None
) -> tuple[Audited, Path]:
    """Out-of-sample probabilities of every cleaned training row by K-fold cross-validation of the recipe."""
    from hfft.config import load_config
    from hfft.registry import recipe_class

    user_overrides = overrides  # what a retraining uses (not the folds' budget)
    if epochs is not None:
        overrides = [*overrides, f"training.num_train_epochs={epochs:g}"]
    config = load_config(config_path, overrides)  # a bad recipe fails here, before any data is read
    check_task(config.task)
    require_cleanlab()
    if folds < 2:
        raise ConfigError(f"--folds must be at least 2, got {folds}.")
    root = Path(out_dir) if out_dir else Path(config.training.get("output_dir", f"runs/{config.task}")) / "audit"
    probe = recipe_class(config.task)(config)
    probe.use_test, probe.holdout_rows = False, []  # only train is loaded
    train = probe.cleaned_splits()["train"]
    names = probe.labels.names
    labels = probe.label_sets(train) if probe.multi_label else np.asarray(train["labels"], dtype=int)
    assignment = assign_folds(labels, folds, config.seed, probe.multi_label, names)
    rows = list(train[SOURCE_ROW])
    data = train.remove_columns(SOURCE_ROW)
    probabilities = np.zeros((len(rows), len(names)))
    fold_overrides = [*overrides, "data.max_eval_samples=null"]  # every held-out row is predicted
    for fold in range(folds):
        held = np.flatnonzero(assignment == fold)
        probabilities[held] = run_fold(
            config_path, fold_overrides, root / f"fold-{fold}", fold, folds, [rows[i] for i in held],
            data.select(held.tolist()), names,
        )  # fmt: skip
    how = {
        "audit": "cross-validation",
        "config": config_path,
        "overrides": overrides,
        "folds": folds,
        "seed": config.seed,
        "epochs": config.training.get("num_train_epochs", 3),  # hfft's default: 3
        "fold_dirs": [str(root / f"fold-{fold}") for fold in range(folds)],
        "stratified_by": "each row's rarest class" if probe.multi_label else "class",
        "probabilities": f"out-of-sample: {folds}-fold cross-validation of the recipe (seed {config.seed}); each "
        "fold a run in fold-<i> that predicts its held-out rows",
    }
    output_dir = str(config.training.get("output_dir", f"runs/{config.task}"))
    return Audited(probe, data, rows, labels, probabilities, how, [config_path, *user_overrides], output_dir), root


def assign_folds(labels: np.ndarray, folds: int, seed: int, multi_label: bool, names: list[str]) -> np.ndarray:
    """Each row's fold: rows shuffled with ``seed``, then dealt out round-robin class by class (multi-label: by
    each row's rarest class), so that every fold holds about 1/K of every class and every fold's training rows
    hold every class."""
    counts = labels.sum(0).astype(int) if multi_label else np.bincount(labels, minlength=len(names))
    smallest = int(counts.argmin())
    if folds > counts[smallest]:
        rows = "rows labelled" if multi_label else "training rows of class"
        raise ConfigError(
            f"--folds {folds} is more than the {counts[smallest]} {rows} {names[smallest]!r} (the smallest class): "
            f"each fold must train on every class. Use --folds {max(2, int(counts[smallest]))} or fewer"
            + ("" if counts[smallest] >= 2 else ", or merge or drop that class (it needs 2 rows or more)")
            + "."
        )
    if multi_label:
        rarity = np.where(labels > 0, counts[None, :], np.iinfo(np.int64).max)  # a row's rarest class: its stratum
        strata = np.where(labels.sum(1) > 0, rarity.argmin(1), -1)
    else:
        strata = labels
    order = np.random.default_rng(seed).permutation(len(labels))
    assignment = np.empty(len(labels), dtype=int)
    dealt = 0
    for stratum in np.unique(strata):
        members = order[strata[order] == stratum]
        assignment[members] = (dealt + np.arange(len(members))) % folds
        dealt += len(members)
    if multi_label:
        for fold in range(folds):
            missing = np.flatnonzero(labels[assignment != fold].sum(0) == 0)
            if len(missing):
                raise ConfigError(
                    f"with --folds {folds}, fold {fold} holds every row labelled {names[missing[0]]!r}: its training "
                    "rows would lack that class. Use fewer folds."
                )
    return assignment


def run_fold(
    config_path: str,
    overrides: list[str],
    fold_dir: Path,
    fold: int,
    folds: int,
    held_rows: list[int],
    held_data: Any,
    names: list[str],
) -> np.ndarray:
    """Train fold ``fold`` (unless finished; resumed when interrupted) and predict its held-out rows; the
    probabilities are kept in the fold's fold.json, so a rerun reuses them."""
    from hfft.config import load_config
    from hfft.outputs import is_finished_run, load_run
    from hfft.resume import train_unless_finished

    record = fold_dir / FOLD_FILE
    resolved = load_config(config_path, [*overrides, f"training.output_dir={fold_dir}"])
    recipe_text = json.dumps(resolved.to_dict(), sort_keys=True, default=str)
    recipe_hash = hashlib.sha1(recipe_text.encode("utf-8")).hexdigest()  # the fold's whole resolved recipe
    plan = {"fold": fold, "folds": folds, "held_out_rows": held_rows, "recipe_sha1": recipe_hash}
    if record.is_file():
        saved = json.loads(record.read_text(encoding="utf-8"))
        if {key: saved.get(key) for key in plan} != plan:
            raise ConfigError(
                f"'{fold_dir}' holds fold {saved.get('fold')} of another audit (other data, recipe, overrides, "
                "--epochs, --folds or seed): audit into another --out, or delete that folder."
            )
        if "probabilities" in saved and is_finished_run(fold_dir):
            logger.info("fold %d of %d already finished: reusing it", fold + 1, folds)
            return np.asarray(saved["probabilities"], dtype=np.float64)
    elif fold_dir.is_dir() and any(fold_dir.iterdir()):
        raise ConfigError(f"'{fold_dir}' exists and is not a fold of an hfft audit: choose another --out.")
    fold_dir.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(plan), encoding="utf-8")

    def prepare(recipe: Any) -> None:
        recipe.holdout_rows, recipe.use_test = held_rows, False
        logger.info("fold %d of %d: training without its %d held-out rows", fold + 1, folds, len(held_rows))

    if train_unless_finished(config_path, overrides, fold_dir, prepare):
        gc.collect()  # the fold's model and trainer, before the next fold builds its own
    trained = load_run(fold_dir)  # the saved model, so that a fresh and a reused fold predict alike
    if trained.labels.names != names:
        raise DataError(f"'{fold_dir}' learned the labels {trained.labels.names}, the training split has {names}.")
    probabilities = np.round(trained.class_probabilities(held_data), 6)
    record.write_text(json.dumps({**plan, "probabilities": probabilities.tolist()}), encoding="utf-8")
    return probabilities


def audit_run(run_dir: Path) -> Audited:
    """A finished run's out-of-sample probabilities: its model on its validation split, when that split was held
    out of data.train."""
    import yaml

    from hfft.outputs import CONFIG_FILE, RUN_INFO_FILE, load_run

    if not (run_dir / CONFIG_FILE).is_file() or not (run_dir / RUN_INFO_FILE).is_file():
        raise ConfigError(
            f"'{run_dir}' is not a finished hfft run directory (no {CONFIG_FILE} / {RUN_INFO_FILE}); give a "
            "recipe YAML or a finished run."
        )
    raw = yaml.safe_load((run_dir / CONFIG_FILE).read_text(encoding="utf-8")) or {}
    info = json.loads((run_dir / RUN_INFO_FILE).read_text(encoding="utf-8"))
    check_task(info.get("task", raw.get("task")))
    hint = "Audit its recipe instead: `hfft audit CONFIG` predicts every training row by k-fold cross-validation."
    if "audit_fold" in info:
        raise ConfigError(f"'{run_dir}' is a fold of an hfft audit, not a run of the recipe. {hint}")
    validation = (raw.get("data") or {}).get("validation")
    if validation is not None:
        raise ConfigError(
            f"'{run_dir}' has no held-out predictions for its training rows: its validation split is "
            f"data.validation ('{validation}'), not rows held out of data.train. {hint}"
        )
    require_cleanlab()
    recipe = load_run(run_dir)
    recipe.use_test = False
    splits = recipe.load_splits()  # deterministic: the run's own validation split again
    rows = recipe.row_ids.get("validation")
    if rows is None:
        raise ConfigError(
            f"'{run_dir}' has no held-out predictions for its training rows: its validation split is the "
            f"source's own, not rows held out of data.train. {hint}"
        )
    dataset = splits["validation"]
    labels = recipe.label_sets(dataset) if recipe.multi_label else np.asarray(dataset["labels"], dtype=int)
    probabilities = recipe.class_probabilities(dataset)
    how = {
        "audit": "run",
        "run": str(run_dir),
        "probabilities": "out-of-sample: the run's model on its validation split, rows held out of data.train "
        "(never trained on); only those rows are audited",
    }
    return Audited(recipe, dataset, list(rows), labels, probabilities, how, [str(run_dir / CONFIG_FILE)], str(run_dir))


# ----------------------------------------------------------------------------- cleanlab


def find_issues(audited: Audited) -> dict[str, Any]:
    """Flagged rows ranked most-likely-wrong first, and the estimated noise per class (the audit.json content)."""
    from cleanlab import __version__ as version
    from cleanlab.count import estimate_joint

    recipe, probabilities = audited.recipe, audited.probabilities
    names, multi = recipe.labels.names, recipe.multi_label
    if multi:
        from cleanlab.multilabel_classification import filter as multilabel_filter
        from cleanlab.multilabel_classification import rank as multilabel_rank

        given = [np.flatnonzero(row).tolist() for row in audited.labels]
        issues = multilabel_filter.find_label_issues(
            given, probabilities, return_indices_ranked_by="self_confidence", n_jobs=1
        )
        quality = multilabel_rank.get_label_quality_scores(given, probabilities)
        joint = estimate_joint(given, probabilities, multi_label=True)  # [classes, 2, 2]: given x true, 0/1
        noise = multilabel_noise(joint, audited.labels, names)
    else:
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores

        check_classes_present(audited.labels, names)
        issues = find_label_issues(audited.labels, probabilities, return_indices_ranked_by="self_confidence", n_jobs=1)
        quality = get_label_quality_scores(audited.labels, probabilities, method="self_confidence")
        joint = estimate_joint(audited.labels, probabilities)  # [classes, classes]: given x true, sums to 1
        noise = single_label_noise(joint, audited.labels, names)
    issues = [int(i) for i in issues]
    previews = input_previews(recipe, audited.dataset.select(issues)) if issues else []
    thresholds = np.broadcast_to(np.asarray(recipe.decision_thresholds), (len(names),)) if multi else None
    flagged = []
    for rank, (i, preview) in enumerate(zip(issues, previews), start=1):
        p = probabilities[i]
        if multi:
            given_label: Any = [names[c] for c in np.flatnonzero(audited.labels[i])]
            suggested: Any = [names[c] for c in np.flatnonzero(p >= thresholds)]
            extra = {"probabilities": {n: round(float(v), 4) for n, v in zip(names, p)}}
        else:
            given_label, suggested = names[audited.labels[i]], names[int(p.argmax())]
            extra = {"suggested_probability": round(float(p.max()), 4)}
        flagged.append({
            "rank": rank,
            "source": recipe.config.data.train,
            "row": audited.rows[i],
            "input": preview,
            "given_label": given_label,
            "suggested_label": suggested,
            "label_quality": round(float(quality[i]), 4),
            **extra,
        })  # fmt: skip
    dc = recipe.config.data
    accuracy = None if multi else round(float((probabilities.argmax(1) == audited.labels).mean()), 4)
    return {
        **audited.how,
        "task": recipe.task,
        "problem": "multi_label" if multi else "single_label",
        "data": {
            "train": dc.train,
            "train_split": dc.train_split,
            "source_rows": recipe.report.splits["train"].rows_in,
            "exclude": dc.exclude,
            "row": ROW_MEANING,
        },
        "labels": names,
        "audited_rows": len(audited.rows),
        "out_of_sample_accuracy": accuracy,  # of the given labels (single-label)
        "flagged_rows": len(flagged),
        "method": (
            f"cleanlab {version}: {'multilabel_classification.' if multi else ''}filter.find_label_issues "
            "(prune_by_noise_rate), ranked by self-confidence (label_quality: the out-of-sample probability of the "
            "given label" + (", aggregated over classes" if multi else "") + "; lowest first); noise from "
            "count.estimate_joint (calibrated confident joint, given x true label"
            + (", one-vs-rest per class)" if multi else ")")
        ),
        "noise": noise,
        "flagged": flagged,
    }


def check_classes_present(labels: np.ndarray, names: list[str]) -> None:
    """cleanlab needs every class among the audited rows' given labels."""
    absent = [names[c] for c in np.flatnonzero(np.bincount(labels, minlength=len(names)) == 0)]
    if absent:
        raise DataError(
            f"the audited rows hold no row labelled {', '.join(map(repr, absent))}; confident learning needs "
            "every class among them. Audit the recipe (k-fold over all training rows) instead."
        )


def single_label_noise(joint: np.ndarray, labels: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Per given class: rows, the estimated fraction whose true class is another (off-diagonal of the joint's
    row), that many rows, and the likeliest true classes."""
    counts = np.bincount(labels, minlength=len(names))
    per_class = {}
    for c, name in enumerate(names):
        total = joint[c].sum()
        rate = float(1.0 - joint[c, c] / total) if total > 0 else 0.0
        truths = {names[t]: float(joint[c, t] / total) for t in np.argsort(-joint[c]) if t != c and total > 0}
        per_class[name] = {
            "rows": int(counts[c]),
            "noise_rate": round(rate, 4),
            "estimated_wrong_rows": round(rate * counts[c], 1),
            "likely_true_labels": {t: round(v, 4) for t, v in truths.items() if v >= 0.005},
        }
    return {"overall": round(float(1.0 - np.trace(joint) / joint.sum()), 4), "per_class": per_class}


def multilabel_noise(joint: np.ndarray, labels: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Per class (one-vs-rest): the estimated fraction of rows whose membership of it is wrong, split into given
    but absent (spurious) and missing but present."""
    counts = labels.sum(0).astype(int)
    per_class = {}
    for c, name in enumerate(names):
        j = joint[c] / max(joint[c].sum(), 1e-12)  # [given 0/1, true 0/1]
        rate = float(j[0, 1] + j[1, 0])
        per_class[name] = {
            "rows": int(counts[c]),
            "noise_rate": round(rate, 4),
            "estimated_wrong_rows": round(rate * len(labels), 1),
            "spurious": round(float(j[1, 0] / j[1].sum()) if j[1].sum() > 0 else 0.0, 4),
            "missing": round(float(j[0, 1] / j[0].sum()) if j[0].sum() > 0 else 0.0, 4),
        }
    overall = float(np.mean([v["noise_rate"] for v in per_class.values()]))
    return {"overall": round(overall, 4), "per_class": per_class}


def input_previews(recipe: Any, dataset: Any) -> list[str]:
    """A short text or file name per row (the modality's leakage previews); empty strings when it has none."""
    from hfft.leakage import fingerprint_split

    if recipe.fingerprint_method() is None:
        return [""] * len(dataset)
    return fingerprint_split(dataset, recipe.fingerprints).previews


# ----------------------------------------------------------------------------- outputs


def write_audit(result: dict[str, Any], audited: Audited, out: Path) -> None:
    """audit.json, audit.md and audit_noise.png in ``out``; a short summary on the console."""
    out.mkdir(parents=True, exist_ok=True)
    exclude = f"data.exclude={out / AUDIT_FILE}"
    recipe = [a for a in audited.command if not a.startswith(("training.output_dir=", "data.exclude="))]
    without = f"training.output_dir={audited.output_dir.rstrip('/')}-without-flagged"
    result["retrain"] = shlex.join(["hfft", "train", *recipe, without, exclude])
    result["compare"] = shlex.join(
        ["hfft", "compare", *audited.command, "--variants", "none", f"without_flagged:{exclude}"]
    )
    accuracy = result.get("out_of_sample_accuracy")
    majority = float(np.bincount(audited.labels).max() / len(audited.labels)) if accuracy is not None else 0.0
    if accuracy is not None and accuracy <= majority:
        logger.warning(
            "the out-of-sample predictions agree with %.1f%% of the given labels, no more than always predicting "
            "the most frequent class (%.1f%%): the model is too weak for the audit to tell wrong labels from hard "
            "rows. Train longer (hfft audit --epochs) or check the recipe.",
            100 * accuracy,
            100 * majority,
        )
    (out / AUDIT_FILE).write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    (out / "audit.md").write_text(markdown(result), encoding="utf-8")
    per_class = result["noise"]["per_class"]
    wrong = "rows of the class" if result["problem"] == "single_label" else "rows (membership of the class)"
    plots.label_noise(
        {name: entry["noise_rate"] for name, entry in per_class.items()},
        {name: entry["rows"] for name, entry in per_class.items()},
        out / "audit_noise.png",
        title=f"Estimated label noise per {'given ' if result['problem'] == 'single_label' else ''}class",
        xlabel=f"estimated fraction of {wrong} labelled wrong",
    )
    lines = markdown(result, rows=10).splitlines()
    print("\n".join(line for line in lines if not line.startswith("# ")))
    print(f"wrote {AUDIT_FILE}, audit.md, audit_noise.png to {out}")


def _cell(value: Any) -> str:
    text = ", ".join(value) if isinstance(value, list) else str(value)
    return (text or "-").replace("|", "\\|").replace("\n", " ")


def markdown(result: dict[str, Any], rows: int = MARKDOWN_ROWS) -> str:
    """The audit as Markdown: how, noise per class, the flagged rows (first ``rows``), how to retrain."""
    source = result.get("config") or result.get("run")
    data = result["data"]
    if result["audit"] == "cross-validation":
        how = (
            f"{result['folds']}-fold cross-validation of the recipe (folds stratified by {result['stratified_by']}, "
            f"seed {result['seed']}, {result['epochs']:g} epochs per fold; runs in `fold-0` ... "
            f"`fold-{result['folds'] - 1}`)"
        )
    else:
        how = "the run's model on its validation split (rows held out of data.train; only those are audited)"
    lines = [
        f"# Label audit of `{source}`",
        "",
        f"Out-of-sample probabilities: {how}. {result['method']}.",
        "",
        f"**{result['flagged_rows']} of {result['audited_rows']}** audited training rows of `{data['train']}` are "
        f"likely label errors. Rows are {ROW_MEANING}.",
        "",
        f"Estimated label noise: {result['noise']['overall']:.1%} overall."
        + (
            f" The out-of-sample predictions agree with {result['out_of_sample_accuracy']:.1%} of the given labels "
            "(when that is low, the model is weak and flags correct rows too: train longer)."
            if result.get("out_of_sample_accuracy") is not None
            else ""
        ),
        "",
    ]
    if result["problem"] == "single_label":
        lines += ["| given label | rows | estimated noise | estimated wrong rows | likely true labels |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for name, e in result["noise"]["per_class"].items():
            truths = ", ".join(f"{t} {v:.1%}" for t, v in e["likely_true_labels"].items()) or "-"
            lines.append(f"| {_cell(name)} | {e['rows']} | {e['noise_rate']:.1%} | {e['estimated_wrong_rows']} | "
                         f"{_cell(truths)} |")  # fmt: skip
    else:
        lines += ["| class | rows with it | membership wrong | spurious (given, absent) | missing (present, not given) |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for name, e in result["noise"]["per_class"].items():
            lines.append(f"| {_cell(name)} | {e['rows']} | {e['noise_rate']:.1%} | {e['spurious']:.1%} | "
                         f"{e['missing']:.1%} |")  # fmt: skip
    flagged = result["flagged"]
    if flagged:
        lines += ["", "Flagged rows, most likely wrong first:", "",
                  "| rank | row | input | given label | suggested label | label quality |", "|---|---|---|---|---|---|"]  # fmt: skip
        for f in flagged[:rows]:
            lines.append(f"| {f['rank']} | {f['row']} | {_cell(f['input'])} | {_cell(f['given_label'])} | "
                         f"{_cell(f['suggested_label'])} | {f['label_quality']:.4f} |")  # fmt: skip
        if len(flagged) > rows:
            lines.append(f"\n... and {len(flagged) - rows} more in `{AUDIT_FILE}`.")
    lines += [
        "",
        f"Train without the flagged rows: `{result['retrain']}`",
        "",
        f"Compare with and without them (regularisation off in both): `{result['compare']}`",
    ]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- data.exclude


def read_excluded_rows(spec: str, data_config: Any, source_rows: int, seen: tuple[str, ...] = ()) -> frozenset[int]:
    """The source rows data.exclude names: an `hfft audit` audit.json (its flagged rows, and the rows its audit had
    already excluded with data.exclude; it must be an audit of this data.train, with as many rows), a .txt (one
    row per line; blank lines and # comments skipped), a .csv (a `row` column, or a single column) or a .json list
    (or {"rows": [...]}). Rows must be in 0..``source_rows``-1."""
    path, key = Path(spec), "'data.exclude'"
    earlier: frozenset[int] = frozenset()
    if not path.is_file():
        raise DataError(f"{key}: '{spec}' does not exist (an hfft audit audit.json, or a .txt/.csv/.json of rows).")
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    if suffix == ".json":
        try:
            content = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{key}: '{spec}' is not valid JSON: {err}.") from None
        if isinstance(content, dict) and isinstance(content.get("flagged"), list):
            check_audit_source(content, spec, data_config, source_rows)
            values = [item.get("row") if isinstance(item, dict) else None for item in content["flagged"]]
            before = (content.get("data") or {}).get("exclude")
            if before is not None and str(Path(before).resolve()) not in seen:  # an audit of an audited recipe
                earlier = read_excluded_rows(before, data_config, source_rows, (*seen, str(path.resolve())))
        elif isinstance(content, dict) and isinstance(content.get("rows"), list):
            values = content["rows"]
        elif isinstance(content, list):
            values = content
        else:
            raise DataError(
                f"{key}: '{spec}' is neither an hfft audit audit.json (a 'flagged' list) nor a list of rows "
                '(e.g. [3, 17] or {"rows": [3, 17]}).'
            )
    elif suffix == ".txt":
        lines = [(n, line.split("#")[0].strip()) for n, line in enumerate(text.splitlines(), start=1)]
        values = [_integer(value, f"{key}: '{spec}' line {n}") for n, value in lines if value]
    elif suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        fields = reader.fieldnames or []
        column = "row" if "row" in fields else fields[0] if len(fields) == 1 else None
        if column is None:
            raise DataError(f"{key}: '{spec}' needs a 'row' column (or a single column); it has {', '.join(fields)}.")
        values = [_integer(r[column], f"{key}: '{spec}' line {n}") for n, r in enumerate(reader, start=2)]
    else:
        raise DataError(f"{key}: '{spec}' has extension '{suffix}'; expected .json (an audit.json), .txt or .csv.")
    rows = [_integer(v, f"{key}: '{spec}'") for v in values]
    outside = sorted({r for r in rows if not 0 <= r < source_rows})
    if outside:
        raise DataError(
            f"{key}: '{spec}' names rows that data.train ('{data_config.train}') does not have: "
            f"{', '.join(map(str, outside[:10]))}{' ...' if len(outside) > 10 else ''} (it has {source_rows} rows, "
            f"0-{source_rows - 1})."
        )
    return frozenset(rows) | earlier


def _integer(value: Any, where: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise DataError(f"{where}: {value!r} is not a row number (a 0-based source row of data.train).")


def check_audit_source(audit: dict[str, Any], spec: str, data_config: Any, source_rows: int) -> None:
    """An audit.json must be of this data.train (same file or id and split, same number of rows)."""
    data = audit.get("data") if isinstance(audit.get("data"), dict) else {}
    audited = data.get("train")
    if audited is not None and not _same_source(audited, data_config.train):
        raise DataError(
            f"'data.exclude': '{spec}' is an audit of data.train '{audited}', but this recipe trains on "
            f"'{data_config.train}': its row numbers would name other rows."
        )
    split = data.get("train_split")
    if split is not None and split != data_config.train_split:
        raise DataError(
            f"'data.exclude': '{spec}' audited the '{split}' split of data.train; this recipe trains on "
            f"'{data_config.train_split}'."
        )
    if data.get("source_rows") is not None and data["source_rows"] != source_rows:
        raise DataError(
            f"'data.exclude': '{spec}' audited {data['source_rows']} rows of '{audited}', which now has "
            f"{source_rows}: the data changed since the audit. Audit it again."
        )


def _same_source(a: str, b: str | None) -> bool:
    if b is None:
        return False
    if Path(a).exists() and Path(b).exists():
        return Path(a).resolve() == Path(b).resolve()
    return a == b


def exclude_rows(recipe: Any, train: Any) -> Any:
    """Drop the training rows that data.exclude lists (an `hfft audit` audit.json or a list of source rows),
    counted as ``excluded_by_audit``; rows it names that cleaning had already dropped are noted."""
    entry = recipe.report.splits["train"]
    excluded = read_excluded_rows(recipe.config.data.exclude, recipe.config.data, entry.rows_in)
    present = list(train[cleaning.SOURCE_ROW])
    problems = ["excluded_by_audit" if row in excluded else None for row in present]
    entry.notes["excluded_from"] = recipe.config.data.exclude
    gone = len(excluded) - sum(p is not None for p in problems)
    if gone:
        entry.notes["excluded_rows_already_dropped"] = gone
    return cleaning.drop_rows(
        train, problems, "train", recipe.report, cleaning.source_name(recipe.config.data, "train")
    )


def split_holdout(recipe: Any, train: Any) -> tuple[Any, Any]:
    """hfft audit: the rows of `holdout_rows` (source rows) as the validation split, the others as train."""
    held = set(recipe.holdout_rows or [])
    rows = list(train[cleaning.SOURCE_ROW])
    chosen = [i for i, row in enumerate(rows) if row in held]
    if len(chosen) != len(held):
        raise DataError(
            f"{len(held) - len(chosen)} of the {len(held)} held-out rows of this cross-validation fold are not in "
            "the cleaned training split: data.train changed since the folds were made. Audit into a new --out."
        )
    chosen_set = set(chosen)
    kept = [i for i in range(len(rows)) if i not in chosen_set]
    train_report = recipe.report.splits["train"]
    train_report.rows_out = len(kept)
    train_report.notes["moved_to_validation"] = len(chosen)
    recipe.report.splits["validation"] = cleaning.SplitReport(
        rows_in=len(chosen), rows_out=len(chosen), notes={"source": "held-out fold of train (hfft audit)"}
    )
    recipe.model_notes["audit_fold"] = {"held_out_rows": len(chosen), "training_rows": len(kept)}
    return train.select(kept), train.select(chosen)
