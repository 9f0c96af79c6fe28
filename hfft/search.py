"""`hfft search RECIPE --space SPACE.yaml`: hyperparameter search with Optuna over dotted recipe keys.

Every trial is one run of the recipe (its seed, data and budget) with the trial's values as overrides, in
`<out>/trial-<N>`. The objective is the recipe's primary metric on the **validation** split (trials never load
the test split). Each evaluation is reported to Optuna, whose pruner stops trials that fall behind the others.
The study lives in `<out>/search.db` (SQLite): rerunning the same command continues a killed search without
repeating finished trials; an interrupted trial is run again with the same values and resumes from its last
checkpoint. Results: `search.json`, `search.md` (trials best first) and `best.yaml`, the recipe with the best
values filled in, ready for `hfft train`. One process per search folder (a lock file guards it).

Space file::

    trials: 12            # finished (complete + pruned) trials to reach
    sampler: tpe          # tpe | random
    pruner: median        # median | none
    startup_trials: 3     # trials that run to the end before the pruner compares
    include_recipe: true  # trial 0 = the recipe's own values (when inside the space): the baseline to beat
    space:
      training.learning_rate: {low: 1.0e-5, high: 1.0e-3, log: true}   # float range (log scale)
      training.num_train_epochs: {low: 2, high: 5}                       # ints: an int range
      tuning.lora.r: {choices: [4, 8, 16]}                               # a categorical choice
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from hfft.config import apply_overrides, format_override, read_yaml
from hfft.errors import ConfigError

logger = logging.getLogger("hfft")

FORBIDDEN = ("data.", "seed", "overwrite", "training.output_dir", "task")  # would change what is measured


@dataclasses.dataclass
class Param:
    """One searched key: a float/int range (``low``..``high``, ``log``, ``step``) or ``choices``."""

    key: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    def suggest(self, trial: Any) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.key, self.choices)
        if isinstance(self.low, int) and isinstance(self.high, int) and not isinstance(self.step, float):
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, step=self.step, log=self.log)

    def contains(self, value: Any) -> bool:
        if self.choices is not None:
            return value in self.choices
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high

    def examples(self) -> list[Any]:
        return list(self.choices) if self.choices is not None else [self.low, self.high]


@dataclasses.dataclass
class SearchSpec:
    """A parsed space file (see the module docstring)."""

    params: list[Param]
    trials: int = 12
    sampler: str = "tpe"
    pruner: str = "median"
    startup_trials: int = 3
    include_recipe: bool = True


def load_space(path: str | Path) -> SearchSpec:
    """Parse and check a space file; every error names the key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"search space file {path} not found.")
    raw = read_yaml(path)  # invalid YAML or not a mapping: an error naming the file
    if not isinstance(raw.get("space"), dict) or not raw["space"]:
        raise ConfigError(f"{path}: needs a non-empty 'space:' mapping of dotted recipe keys to ranges or choices.")
    known = {f.name for f in dataclasses.fields(SearchSpec)} - {"params"} | {"space"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; allowed: {', '.join(sorted(known))}.")
    params = [_param(key, spec, path) for key, spec in raw.pop("space").items()]
    spec = SearchSpec(params=params, **raw)
    if spec.sampler not in ("tpe", "random") or spec.pruner not in ("median", "none"):
        raise ConfigError(f"{path}: sampler must be tpe|random and pruner median|none.")
    if not isinstance(spec.trials, int) or spec.trials < 1:
        raise ConfigError(f"{path}: 'trials' must be an integer >= 1, got {spec.trials!r}.")
    return spec


def _param(key: str, spec: Any, path: Path) -> Param:
    where = f"{path}: space.{key}"
    if key.startswith(FORBIDDEN):
        raise ConfigError(f"{where}: '{key}' cannot be searched (it changes the data, seed or output, not the model).")
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected {{low: .., high: ..}} or {{choices: [..]}}, got {spec!r}.")
    fields = {f.name for f in dataclasses.fields(Param)} - {"key"}
    unknown = sorted(set(spec) - fields)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: low, high, log, step, choices.")
    param = Param(key=key, **spec)
    if param.choices is not None:
        if not isinstance(param.choices, list) or not param.choices or param.low is not None:
            raise ConfigError(f"{where}: 'choices' must be a non-empty list, without low/high.")
        return param
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (param.low, param.high))
    if not numbers or not param.low < param.high:
        raise ConfigError(f"{where}: needs numbers low < high, got low={param.low!r} high={param.high!r}.")
    if param.log and param.low <= 0:
        raise ConfigError(f"{where}: log: true needs low > 0, got {param.low}.")
    return param


def get_dotted(raw: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        if not isinstance(raw, dict) or part not in raw:
            return None
        raw = raw[part]
    return raw


def run_search(
    config_path: str,
    space_path: str,
    overrides: list[str] | None = None,
    out_dir: str | Path | None = None,
    trials: int | None = None,
) -> dict[str, Any]:
    """Run (or continue) the search; returns the best trial's summary. Writes search.{db,json,md} and best.yaml."""
    import optuna

    from hfft.config import load_config
    from hfft.registry import recipe_class

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError(
            "hfft search runs its trials one after another in one process; start it without "
            "accelerate launch / torchrun."
        )
    overrides = list(overrides or [])
    spec = load_space(space_path)
    spec.trials = trials or spec.trials
    base = load_config(config_path, overrides)  # a bad recipe or value fails here, before any training
    for param in spec.params:
        for value in param.examples():
            try:
                load_config(config_path, [*overrides, format_override(param.key, value)])
            except ConfigError as err:
                raise ConfigError(
                    f"{space_path}: space.{param.key} = {value!r} is not a valid recipe value: {err}"
                ) from None
    probe = recipe_class(base.task)(base)  # metric and direction may depend on the config (e.g. multi-label)
    metric = f"eval_{probe.primary_metric}"
    root = Path(out_dir) if out_dir else Path(base.training.get("output_dir", f"runs/{base.task}")) / "search"
    root.mkdir(parents=True, exist_ok=True)
    lock = open(root / ".lock", "w")  # noqa: SIM115 - held for the whole search
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise ConfigError(f"{root} is used by another running hfft search.") from None

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (
        optuna.samplers.TPESampler(seed=base.seed, n_startup_trials=spec.startup_trials)
        if spec.sampler == "tpe"
        else optuna.samplers.RandomSampler(seed=base.seed)
    )
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=spec.startup_trials)
        if spec.pruner == "median"
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        study_name="hfft",
        storage=f"sqlite:///{(root / 'search.db').resolve()}",
        load_if_exists=True,
        direction="maximize" if probe.greater_is_better else "minimize",
        sampler=sampler,
        pruner=pruner,
    )
    retry_interrupted(study)
    if spec.include_recipe and not study.trials:
        raw = apply_overrides(read_yaml(config_path), overrides)
        baseline = {p.key: get_dotted(raw, p.key) for p in spec.params if p.contains(get_dotted(raw, p.key))}
        if baseline:
            study.enqueue_trial(baseline, user_attrs={"recipe_values": True})

    def objective(trial: Any) -> float:
        return run_trial(trial, config_path, overrides, spec, root, metric)

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    remaining = spec.trials - len(study.get_trials(deepcopy=False, states=done))
    if remaining > 0:
        logger.info("hfft search: %d trial(s) to run in %s (objective: validation %s)", remaining, root, metric)
        study.optimize(objective, n_trials=remaining)
    summary = write_results(study, root, metric, config_path, overrides, spec)
    lock.close()
    return summary


def retry_interrupted(study: Any) -> None:
    """Trials left RUNNING by a killed search (or FAILed by an interrupt) are queued again with the same values;
    the new trial resumes the old one's run directory from its last checkpoint."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("resumes") for t in trials}
    for trial in trials:
        if trial.state == TrialState.RUNNING:
            study.tell(trial.number, state=TrialState.FAIL)
        elif trial.state != TrialState.FAIL or trial.number in retried:
            continue
        logger.warning("hfft search: trial %d was interrupted; running it again from its checkpoint", trial.number)
        run_dir = trial.user_attrs.get("run_dir")
        study.enqueue_trial(
            trial.params, user_attrs={"resumes": trial.number, **({"run_dir": run_dir} if run_dir else {})}
        )


def run_trial(trial: Any, config_path: str, overrides: list[str], spec: SearchSpec, root: Path, metric: str) -> float:
    """One training run with the trial's values; its validation metric."""
    import optuna

    from hfft.resume import train_unless_finished

    values = {p.key: p.suggest(trial) for p in spec.params}
    run_dir = Path(trial.user_attrs.get("run_dir") or root / f"trial-{trial.number}")
    trial.set_user_attr("run_dir", str(run_dir))

    def prepare(recipe: Any) -> None:
        recipe.use_test = False  # the objective is validation; the test split stays unseen by the search
        recipe.callbacks.append(PruningCallback(trial, metric))
        logger.info("hfft search: trial %d: %s", trial.number, values)

    # a finished run_dir: killed after the run finished but before Optuna heard of it
    try:
        train_unless_finished(config_path, [*overrides, *(format_override(k, v) for k, v in values.items())],
                              run_dir, prepare)  # fmt: skip
    except optuna.TrialPruned:
        shutil.rmtree(run_dir, ignore_errors=True)  # a pruned trial is never resumed
        raise
    for checkpoint in run_dir.glob("checkpoint-*"):  # the final model stays in run_dir
        shutil.rmtree(checkpoint)
    value = json.loads((run_dir / "all_results.json").read_text())[metric]
    if not math.isfinite(value):
        raise ConfigError(f"trial {trial.number}: {metric} is {value} (diverged?) with {values}")
    return value


def PruningCallback(trial: Any, metric: str) -> Any:  # noqa: N802 - builds a TrainerCallback lazily
    """Reports each validation evaluation to Optuna and stops the trial when the pruner says so."""
    import optuna
    from transformers import TrainerCallback

    class _Pruning(TrainerCallback):
        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kw):
            if metrics and metric in metrics:
                trial.report(metrics[metric], step=state.global_step)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"{metric}={metrics[metric]:.4f} at step {state.global_step}")

    return _Pruning()


def write_results(
    study: Any, root: Path, metric: str, config_path: str, overrides: list[str], spec: SearchSpec
) -> dict[str, Any]:
    """search.json, search.md and best.yaml (the recipe with the best values)."""
    from optuna.trial import TrialState

    rows = []
    for t in study.get_trials(deepcopy=False):
        last = max(t.intermediate_values) if t.intermediate_values else None
        value = t.value if t.state == TrialState.COMPLETE else t.intermediate_values.get(last) if last else None
        rows.append({"trial": t.number, "state": t.state.name.lower(), metric: value, "params": t.params,
                     "last_step": last, "recipe_values": bool(t.user_attrs.get("recipe_values")),
                     "run_dir": t.user_attrs.get("run_dir")})  # fmt: skip
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    if not complete:
        raise ConfigError(f"hfft search: no trial in {root} completed; see search.json.")
    best = study.best_trial
    summary = {"metric": metric, "direction": study.direction.name.lower(), "best_trial": best.number,
               "best_value": best.value, "best_params": best.params, "trials": rows}  # fmt: skip
    baseline = next((r for r in rows if r["recipe_values"] and r["state"] == "complete"), None)
    if baseline:
        summary["recipe_values_value"] = baseline[metric]
    summary["noise"] = validation_noise(best.value, best.user_attrs.get("run_dir"))
    (root / "search.json").write_text(json.dumps(summary, indent=2))
    best_path = root / "best.yaml"
    best_values = [format_override(k, v) for k, v in best.params.items()]
    raw = apply_overrides(read_yaml(config_path), [*overrides, *best_values, f"training.output_dir={root / 'best'}"])
    header = (
        f"# Best of {len(complete)} completed trials of `hfft search {config_path}` "
        f"(trial {best.number}: validation {metric} {best.value:.4f}).\n"
        f"# Searched: {', '.join(p.key for p in spec.params)}. Run: hfft train {best_path}\n"
    )
    best_path.write_text(header + yaml.safe_dump(raw, sort_keys=False))
    (root / "search.md").write_text(markdown(summary, spec, best_path))
    print(markdown(summary, spec, best_path))
    return summary


def validation_noise(value: float, run_dir: str | None) -> float | None:
    """Twice the binomial standard error of a rate (accuracy-like metric in [0, 1]) measured on the run's
    validation rows: best-trial margins below it are within the noise of the validation split."""
    report = Path(run_dir or "") / "data_report.json"
    if not (0.0 <= value <= 1.0) or not report.is_file():
        return None
    rows = json.loads(report.read_text()).get("validation", {}).get("rows_out")
    return 2 * math.sqrt(value * (1 - value) / rows) if rows else None


def markdown(summary: dict[str, Any], spec: SearchSpec, best_path: Path) -> str:
    metric, keys = summary["metric"], [p.key for p in spec.params]
    reverse = summary["direction"] == "maximize"
    rows = sorted(summary["trials"], key=lambda r: (r[metric] is None, -(r[metric] or 0) if reverse else r[metric]))
    lines = [
        f"`hfft search`: objective validation `{metric}` ({summary['direction']}); best trial {summary['best_trial']}"
        f" = {summary['best_value']:.4f}, written to `{best_path}`.",
        "",
        f"| trial | state | {metric} | " + " | ".join(keys) + " |",
        "|---" * (3 + len(keys)) + "|",
    ]
    if summary.get("noise"):
        lines[1:1] = [
            "",
            f"Noise: twice the standard error of {summary['best_value']:.4f} on this validation split is "
            f"{summary['noise']:.4f}; trials closer than that to the best are not told apart by the data (a larger "
            "validation split or several seeds per configuration would).",
        ]
    for r in rows:
        value = f"{r[metric]:.4f}" if r[metric] is not None else "-"
        if r["state"] == "pruned":
            value += f" (step {r['last_step']})"
        name = f"{r['trial']}{' (recipe)' if r['recipe_values'] else ''}"
        cells = [f"{r['params'].get(k):.3g}" if isinstance(r["params"].get(k), float) else str(r["params"].get(k, "-"))
                 for k in keys]  # fmt: skip
        lines.append(f"| {name} | {r['state']} | {value} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
