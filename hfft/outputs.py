"""The run directory: what a run writes next to the model, and how a finished run is loaded back."""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from hfft.errors import ConfigError, HfftError, ModelError

CONFIG_FILE = "hfft_config.yaml"
ADAPTER_DIR = "adapter"  # LoRA runs: the adapter (+ trained head) beside the merged model
RUN_INFO_FILE = "run_info.json"
DATA_REPORT_FILE = "data_report.json"
logger = logging.getLogger("hfft")
PACKAGES = ("hfft", "torch", "transformers", "datasets", "peft", "accelerate", "evaluate")


def is_finished_run(path: Path) -> bool:
    return (path / RUN_INFO_FILE).is_file() and (path / "all_results.json").is_file()


def check_output_dir(path: Path, overwrite: bool, resume: bool) -> None:
    """Refuse to clobber a finished run, or to mix a new run into old checkpoints.

    With ``overwrite`` (and no resume) the old run's checkpoints are removed, so that a later
    ``--resume`` can never pick up a checkpoint of the replaced run.
    """
    if not path.exists():
        parent = next(p for p in path.absolute().parents if p.exists())
        if not parent.is_dir() or not os.access(parent, os.W_OK):
            raise ConfigError(f"'training.output_dir': cannot create '{path}': '{parent}' is not a writable directory.")
        return
    if not os.access(path, os.W_OK):
        raise ConfigError(f"'training.output_dir': '{path}' is not writable.")
    if overwrite:
        stale = [p for p in path.glob("checkpoint-*") if p.is_dir()]
        if stale and not resume and os.environ.get("RANK", "0") == "0":
            logger.warning("overwrite: removing %d checkpoint(s) of the previous run in '%s'", len(stale), path)
            for checkpoint in stale:
                shutil.rmtree(checkpoint, ignore_errors=True)
        return
    if is_finished_run(path) and not resume:
        raise ConfigError(
            f"Output directory '{path}' already holds a finished run. Choose another "
            "training.output_dir, or set overwrite: true to replace it."
        )
    if not resume and any(path.glob("checkpoint-*")):
        raise ConfigError(
            f"Output directory '{path}' holds checkpoints of an unfinished run. Resume it with "
            "`hfft train CONFIG --resume`, or set overwrite: true to start again."
        )


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def save_model(trainer: Any, out: Path, model: Any) -> None:
    """The trained ``model`` (trainer.model, or after FSDP its gathered copy) as a `save_pretrained` directory.

    LoRA: the adapter merged into a copy of the base model is saved at the top (so `pipeline(task,
    model=RUN_DIR)` and `AutoModelFor*.from_pretrained(RUN_DIR)` load it with the run's labels, peft or
    not), and the adapter itself in ``adapter/`` (small; `load_run` rebuilds the exact trained graph from it).
    """
    import copy

    if not hasattr(model, "merge_and_unload"):
        if model is trainer.model:
            trainer.save_model(str(out))
        else:
            model.save_pretrained(str(out))
        return
    model.save_pretrained(str(out / ADAPTER_DIR))
    merged = copy.deepcopy(model).merge_and_unload()
    merged.save_pretrained(str(out))
    del merged


def write_run_files(recipe: Any, metrics: dict[str, float], model_path: str, trainer: Any) -> None:
    """Resolved config, run info (versions, labels, params), data report and model card."""
    from hfft.modeling import count_parameters

    out = recipe.output_dir
    config = recipe.config.to_dict()
    (out / CONFIG_FILE).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    info = {
        "task": recipe.task,
        "modality": recipe.modality,
        "base_model": model_path,
        "tuning": recipe.config.tuning.method,
        **recipe.task_info(),
        "columns": recipe.columns,
        "metrics": metrics,
        "versions": versions(),
        "world_size": metrics.get("world_size", 1),
        "rank_weight_fingerprints": getattr(recipe, "rank_fingerprints", None),
        **count_parameters(recipe.model),
        **recipe.model_notes,
    }
    (out / RUN_INFO_FILE).write_text(json.dumps(info, indent=2), encoding="utf-8")
    from hfft import plots

    plots.training_curves(trainer.state.log_history, out / "training_curves.png", recipe.primary_metric)
    task_lines = recipe.write_task_outputs(out)
    (out / DATA_REPORT_FILE).write_text(json.dumps(recipe.report.to_dict(), indent=2), encoding="utf-8")
    (out / "README.md").write_text(model_card(recipe, info, task_lines), encoding="utf-8")


def model_card(recipe: Any, info: dict[str, Any], task_lines: list[str]) -> str:
    """A Hugging Face model card: YAML metadata, then data (with any leakage between the splits), method,
    regularisation and metrics."""
    from hfft.leakage import card_lines

    config = recipe.config
    library = "transformers"  # LoRA runs are saved merged (the adapter is in adapter/)
    header = yaml.safe_dump(
        {
            "library_name": library,
            "base_model": info["base_model"],
            "pipeline_tag": recipe.pipeline_tag or recipe.task,
            "tags": ["hfft", recipe.task, config.tuning.method],
        },
        sort_keys=False,
    )
    metric_rows = "\n".join(
        f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in sorted(info["metrics"].items())
    )
    reg = config.regularization
    plots = sorted(p.name for p in recipe.output_dir.glob("*.png"))
    adapter_note = (
        f"; the LoRA adapter (+ head) is in `{ADAPTER_DIR}/`, merged into the weights at the top level"
        if (recipe.output_dir / ADAPTER_DIR).is_dir()
        else ""
    )
    return f"""---
{header}---

# {recipe.output_dir.name}

Fine-tuned with [hfft](https://pypi.org/project/hfft/) for **{recipe.task}** from `{config.model or info["base_model"]}`.

## Data
- train: `{config.data.train}`; validation: `{config.data.validation or "split from train / source"}`; test: `{config.data.test or "-"}`
- columns: {", ".join(f"{k} = `{v}`" for k, v in info["columns"].items())}
{chr(10).join(task_lines + card_lines(recipe.report.leakage))}

```
{recipe.report.summary()}
```

## Method
- tuning: **{config.tuning.method}** ({info["trainable_parameters"]:,} of {info["total_parameters"]:,} parameters trained){adapter_note}
- regularisation: dropout {reg.dropout if reg.dropout is not None else "checkpoint default"}, weight decay {reg.weight_decay}, label smoothing {reg.label_smoothing}, class weights {reg.class_weights}, balanced sampler {"on" if reg.balanced_sampler else "off"}, augmentation {"on" if reg.augment else "off"}
- seed {config.seed}; full configuration in `{CONFIG_FILE}`, versions in `{RUN_INFO_FILE}`

## Metrics
| metric | value |
|---|---|
{metric_rows}
{"".join(f"{chr(10)}![{p}]({p})" for p in plots)}

## Use
```
hfft predict {recipe.output_dir} INPUTS
```
```python
from transformers import pipeline
pipeline("{recipe.pipeline_tag or recipe.task}", model="{recipe.output_dir}")
```
"""


def load_run(run_dir: str | Path) -> Any:
    """Rebuild the recipe, labels, processor and trained model of a finished run.

    LoRA runs load the adapter onto the base model (the exact trained graph); runs saved before the
    merged layout, with the adapter at the top, load the same way.
    """
    import transformers

    from hfft.config import load_config
    from hfft.registry import recipe_class

    run = Path(run_dir)
    if not (run / CONFIG_FILE).is_file() or not (run / RUN_INFO_FILE).is_file():
        raise HfftError(f"'{run}' is not a finished hfft run directory (no {CONFIG_FILE} / {RUN_INFO_FILE}).")
    adapter = next((d for d in (run / ADAPTER_DIR, run) if (d / "adapter_config.json").is_file()), None)
    weights = ["adapter_model.safetensors"] if adapter else ["model.safetensors", "model.safetensors.index.json"]
    if not any(((adapter or run) / name).is_file() for name in weights):  # never fall back to pickled .bin weights
        raise ModelError(f"'{run}' has no {weights[0]}: the run did not finish saving, or its weights were removed.")
    raw = yaml.safe_load((run / CONFIG_FILE).read_text(encoding="utf-8"))
    info = json.loads((run / RUN_INFO_FILE).read_text(encoding="utf-8"))
    raw["training"] = {**raw.get("training", {}), "output_dir": str(run)}
    recipe = recipe_class(info["task"])(load_config(raw))
    recipe.restore_task(info)
    recipe.columns = info["columns"]
    recipe.processor = recipe.load_processor(str(run))
    recipe.load_target_processor(str(run))
    if adapter is not None:
        from peft import PeftModel

        from hfft.modeling import check_model_source

        check_model_source(info["base_model"])  # the adapter needs its base model where training found it
        recipe.model = PeftModel.from_pretrained(recipe.load_base_model(info["base_model"]), str(adapter))
    else:
        recipe.model = getattr(transformers, recipe.model_class_name).from_pretrained(
            str(run), use_safetensors=True, trust_remote_code=recipe.config.trust_remote_code
        )
    # the task's settings that are not weights: e.g. generation settings (also over an adapter's base model)
    # or a CTC model's evaluation hook; classification has nothing to restore
    recipe.init_head(recipe.model)
    recipe.model.eval()
    return recipe


def export_merged(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write a standalone `save_pretrained` model (LoRA merged into the base) with its processor."""
    recipe = load_run(run_dir)
    model = recipe.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    out = Path(out_dir)
    model.save_pretrained(str(out))
    for processor in (recipe.processor, getattr(recipe, "tokenizer", None)):  # speech recognition: both
        if processor is not None:
            processor.save_pretrained(str(out))
    for name in (CONFIG_FILE, RUN_INFO_FILE, "README.md"):
        if (Path(run_dir) / name).is_file():
            (out / name).write_bytes((Path(run_dir) / name).read_bytes())
    info = json.loads((out / RUN_INFO_FILE).read_text())
    info["exported_from"] = str(run_dir)
    info["tuning"] = f"{info['tuning']} (merged)"
    (out / RUN_INFO_FILE).write_text(json.dumps(info, indent=2))
    return out
