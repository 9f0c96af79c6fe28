"""`hfft` command line. Heavy libraries are imported only by the commands that need them."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from hfft.errors import ConfigError, HfftError

EXAMPLES = """examples:
  hfft train recipes/text/fortunes-minilm.yaml training.num_train_epochs=1
  hfft evaluate runs/fortunes --data test.csv
  hfft predict runs/fortunes "Never trust a computer you can't throw out a window."
  hfft export runs/fortunes merged-model/
  hfft ls && hfft cp text/fortunes-minilm my-recipe.yaml
  hfft search recipes/text/fortunes-minilm.yaml --space recipes/search/fortunes-minilm.yaml
  hfft audit recipes/text/fortunes-minilm.yaml --folds 5 --epochs 1
"""


INPUT_FILES = (".txt", ".jsonl", ".csv", ".json")


def recipe_dirs() -> list[Path]:
    """Where shipped recipes live: the repository's recipes/ (source or editable install), ./recipes."""
    here = Path(__file__).resolve().parent
    candidates = [here.parent / "recipes", Path.cwd() / "recipes"]
    return list(dict.fromkeys(p for p in candidates if p.is_dir()))


def shipped_recipes() -> dict[str, Path]:
    found = {}
    for root in recipe_dirs():
        for path in sorted(root.rglob("*.yaml")):
            if path.relative_to(root).parts[0] == "search":  # search spaces (hfft search --space), not recipes
                continue
            name = str(path.relative_to(root).with_suffix(""))
            found.setdefault(name, path)
    return found


def describe_recipe(path: Path) -> str:
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.lstrip("# ").strip()
        if line.startswith("#") and text:
            return text
    return ""


def cmd_train(args: argparse.Namespace) -> int:
    if args.launch_config and not (args.num_processes and args.num_processes > 1):
        raise ConfigError("--launch-config starts several processes: give --num-processes N (2 or more) too.")
    if args.num_processes and args.num_processes > 1:
        from hfft.launch import relaunch

        return relaunch(args)
    from hfft.recipe import Recipe

    recipe = Recipe.from_yaml(args.config, args.overrides)
    metrics = recipe.train(resume=args.resume)
    _end_process_group()
    if not _is_main_process():
        _exit_without_teardown()
    shown = {
        k: v
        for k, v in metrics.items()
        if k.endswith(("accuracy", "f1", "f1_micro", "f1_macro", "map", "gap", "train_runtime", "wall_time_s", "wer"))
        or "baseline" in k
    }
    print(json.dumps(shown, indent=2))
    print(f"saved to {recipe.output_dir}")
    return 0


def _end_process_group() -> None:
    """Close a torchrun/accelerate process group before this process exits: left to interpreter shutdown,
    gloo's threads were seen aborting a rank (SIGABRT, "terminate called without an active exception"). The
    ranks first wait for each other: a rank that tore down its connections while rank 0 was still writing the
    run directory was seen aborting the same way (CI, once in a two-process run)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _exit_without_teardown() -> None:
    """End a finished non-main rank here (exit code 0) instead of through interpreter teardown, whose C++
    destructors aborted a rank now and then under load after its work was done and the group closed ("terminate
    called without an active exception", in a two-process test with the learning-rate range test). Rank 0 keeps
    the normal exit: its reporting integrations (`report_to`) flush at exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(0)


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def cmd_evaluate(args: argparse.Namespace) -> int:
    from hfft.outputs import load_run

    metrics = load_run(args.run_dir).evaluate(args.data)
    print(json.dumps(metrics, indent=2))
    return 0


def read_inputs(items: list[str], column: str | None) -> list[str]:
    """Literal inputs, or one file: .txt (a line each), .jsonl/.json/.csv (its input column)."""
    if len(items) == 1 and Path(items[0]).is_file() and Path(items[0]).suffix in INPUT_FILES:
        path = Path(items[0])
        if path.suffix == ".txt":
            return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        import datasets

        builder = {".jsonl": "json", ".json": "json", ".csv": "csv"}[path.suffix]
        dataset = datasets.load_dataset(builder, data_files=str(path), split="train")
        if column is None or column not in dataset.column_names:
            raise HfftError(f"'{path}': column '{column}' not found; columns are {', '.join(dataset.column_names)}.")
        return list(dataset[column])
    return items


def cmd_predict(args: argparse.Namespace) -> int:
    from hfft.outputs import load_run

    if len(args.inputs) == 1 and Path(args.inputs[0]).suffix in INPUT_FILES and not Path(args.inputs[0]).is_file():
        raise HfftError(f"Input file '{args.inputs[0]}' does not exist.")
    recipe = load_run(args.run_dir)
    if args.threshold is not None or args.draw is not None:
        if not hasattr(recipe, "draw_boxes"):
            raise HfftError(
                f"--threshold and --draw apply to object-detection runs; '{args.run_dir}' is {recipe.task}."
            )
        if args.threshold is not None:
            recipe.config.labels.score_threshold = args.threshold
    inputs = read_inputs(args.inputs, recipe.columns.get("input"))
    if recipe.task == "causal-lm" and args.output is None:  # answers streamed token by token
        from transformers import TextStreamer

        streamer = TextStreamer(recipe.processor, skip_prompt=True, skip_special_tokens=True)
        for item in inputs:
            print(f">>> {item}", flush=True)
            recipe.predict([item], streamer=streamer)
        return 0
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    for item, result in zip(inputs, recipe.predict(inputs)):
        if args.draw is not None:
            result["drawn"] = str(recipe.draw_boxes(item, result["boxes"], Path(args.draw)))
        out.write(json.dumps({"input": item if isinstance(item, str) else str(item), **result}) + "\n")
    if args.output:
        out.close()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from hfft.outputs import export_merged

    print(f"exported to {export_merged(args.run_dir, args.out_dir)}")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    recipes = shipped_recipes()
    if not recipes:
        print("no recipes found (looked in: ./recipes and the hfft source tree)")
    width = max((len(n) for n in recipes), default=0)
    for name, path in recipes.items():
        print(f"{name:<{width}}  {describe_recipe(path)}")
    return 0


def cmd_cp(args: argparse.Namespace) -> int:
    recipes = shipped_recipes()
    if args.name not in recipes:
        import difflib

        close = difflib.get_close_matches(args.name, list(recipes), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else " See `hfft ls`."
        raise HfftError(f"No shipped recipe '{args.name}'.{hint}")
    dest = Path(args.dest)
    if dest.is_dir():
        dest = dest / recipes[args.name].name
    if dest.exists():
        raise HfftError(f"'{dest}' already exists; not overwriting it.")
    shutil.copyfile(recipes[args.name], dest)
    print(f"copied {args.name} to {dest}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from hfft.config import RecipeConfig, describe, resolve_task

    recipe_cls = resolve_task(args.task)
    sections = {"labels": recipe_cls.Labels, "preprocessing": recipe_cls.Preprocessing}
    sections["augmentation"] = recipe_cls.Augmentation
    rows = [r for r in describe(RecipeConfig) if r[0].split(".")[0] not in sections]
    for name, section in sections.items():
        rows += describe(section, f"{name}.")
    for key, default, help_text in rows:
        print(f"{key} = {default}\n    {help_text}")
    print("training.* = any transformers.TrainingArguments field")
    return 0


def cmd_robustness(args: argparse.Namespace) -> int:
    from hfft.robustness import markdown_table, run_robustness

    result = run_robustness(
        args.run_dir,
        data=args.data,
        severities=tuple(args.severities),
        names=args.corruptions,
        out_dir=args.out,
        seed=args.seed,
        max_samples=args.max_samples,
    )
    print(markdown_table(result, tuple(args.severities)))
    print(f"wrote robustness.json, robustness.md, robustness.png to {args.out or Path(args.run_dir) / 'robustness'}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from hfft.compare import run_comparison

    run_comparison(
        args.config,
        args.variants,
        args.overrides,
        out_dir=args.out,
        severities=tuple(args.severities),
        max_samples=args.max_samples,
        seeds=args.seeds,
    )
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from hfft.search import run_search

    run_search(args.config, args.space, args.overrides, out_dir=args.out, trials=args.trials)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from hfft.audit import run_audit

    run_audit(args.source, args.overrides, folds=args.folds, epochs=args.epochs, out_dir=args.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hfft",
        description="Fine-tune Hugging Face models from one config.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="fine-tune from a YAML recipe")
    train.add_argument("config", help="YAML recipe (see `hfft ls`)")
    train.add_argument("overrides", nargs="*", help="dotted overrides, e.g. training.learning_rate=3e-5")
    train.add_argument("--resume", action="store_true", help="resume from the last complete checkpoint")
    train.add_argument("--num-processes", type=int, default=None, help="launch N processes (torchrun) on this machine")
    train.add_argument(
        "--max-restarts",
        type=int,
        default=0,
        help="with --num-processes: restart the processes up to N times when one dies (torchrun's elastic agent); "
        "a restarted run resumes from its last complete checkpoint by itself",
    )
    train.add_argument(
        "--launch-config",
        default=None,
        help="with --num-processes: an accelerate config (e.g. recipes/accelerate/fsdp.yaml); the processes are "
        "started by `accelerate launch --config_file FILE` instead of torchrun",
    )
    train.set_defaults(func=cmd_train)
    evaluate = sub.add_parser("evaluate", help="evaluate a finished run on labelled data")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--data", default=None, help="dataset path/id (default: the run's test or validation data)")
    evaluate.set_defaults(func=cmd_evaluate)
    predict = sub.add_parser(
        "predict", help="predict labels; writes JSONL (label, score, scores); causal-lm: streams generated answers"
    )
    predict.add_argument("run_dir")
    predict.add_argument("inputs", nargs="+", help="inputs, or one .txt/.jsonl/.csv file of them")
    predict.add_argument("--output", "-o", default=None, help="write JSONL here instead of stdout")
    predict.add_argument("--threshold", type=float, default=None, help="detection: keep boxes scoring at least this")
    predict.add_argument("--draw", default=None, metavar="DIR", help="detection: also write each image with its boxes")
    predict.set_defaults(func=cmd_predict)
    export = sub.add_parser("export", help="merge LoRA into a standalone save_pretrained model")
    export.add_argument("run_dir")
    export.add_argument("out_dir")
    export.set_defaults(func=cmd_export)
    robust = sub.add_parser("robustness", help="accuracy of a run under its modality's corruption suite")
    robust.add_argument("run_dir")
    robust.add_argument("--data", default=None, help="labelled data (default: the run's test, else validation split)")
    robust.add_argument("--severities", type=int, nargs="+", default=[1, 2, 3, 4, 5], choices=range(1, 6))
    robust.add_argument("--corruptions", nargs="+", default=None, help="subset of the suite (default: all)")
    robust.add_argument("--max-samples", type=int, default=None, help="evaluate a seeded subset of this size")
    robust.add_argument("--seed", type=int, default=None, help="corruption seed (default: the run's seed)")
    robust.add_argument("--out", default=None, help="output folder (default: RUN_DIR/robustness)")
    robust.set_defaults(func=cmd_robustness)
    compare = sub.add_parser("compare", help="train regularisation variants of a recipe and compare them")
    compare.add_argument("config")
    compare.add_argument("overrides", nargs="*", help="overrides applied to every variant")
    compare.add_argument(
        "--variants",
        nargs="+",
        default=["none", "dropout", "weight_decay", "label_smoothing", "augment", "all"],
        help="built-in names or NAME:key=value,key=value (built on 'none')",
    )
    compare.add_argument("--severities", type=int, nargs="+", default=[1, 3, 5], choices=range(1, 6))
    compare.add_argument(
        "--seeds", type=int, default=1, help="train every variant with N seeds: mean ± std, noise marks"
    )
    compare.add_argument("--max-samples", type=int, default=None, help="robustness on a seeded subset of this size")
    compare.add_argument("--out", default=None, help="output folder (default: OUTPUT_DIR/compare)")
    compare.set_defaults(func=cmd_compare)
    search = sub.add_parser(
        "search", help="hyperparameter search (Optuna) over a YAML space; objective: the validation metric"
    )
    search.add_argument("config")
    search.add_argument("overrides", nargs="*", help="overrides applied to every trial")
    search.add_argument("--space", required=True, help="YAML search space (see hfft/search.py)")
    search.add_argument("--trials", type=int, default=None, help="finished trials to reach (default: the space's)")
    search.add_argument("--out", default=None, help="output folder (default: OUTPUT_DIR/search); rerun to continue")
    search.set_defaults(func=cmd_search)
    audit = sub.add_parser(
        "audit",
        help="rank training rows whose label is likely wrong (cleanlab on out-of-sample probabilities)",
        description="Classification: out-of-sample probabilities of the training rows (a recipe: k-fold "
        "cross-validation, each fold a run in OUT/fold-<i>, reused when rerun; a finished run: its validation split "
        "held out of data.train), then cleanlab's confident learning flags and ranks likely label errors. Writes "
        "audit.json, audit.md and audit_noise.png; `hfft train CONFIG data.exclude=OUT/audit.json` trains "
        "without the flagged rows. Needs cleanlab (pip install 'hfft[audit]').",
    )
    audit.add_argument("source", metavar="CONFIG_OR_RUN", help="a recipe YAML, or a finished run directory")
    audit.add_argument("overrides", nargs="*", help="overrides for every fold (recipes only)")
    audit.add_argument(
        "--folds", type=int, default=None, help="cross-validation folds (default 5; at most the smallest class's rows)"
    )
    audit.add_argument(
        "--epochs", type=float, default=None, help="training.num_train_epochs of each fold (default: the recipe's)"
    )
    audit.add_argument("--out", default=None, help="output folder (default: OUTPUT_DIR/audit, or RUN/audit)")
    audit.set_defaults(func=cmd_audit)
    sub.add_parser("ls", help="list the shipped recipes").set_defaults(func=cmd_ls)
    cp = sub.add_parser("cp", help="copy a shipped recipe to edit it")
    cp.add_argument("name")
    cp.add_argument("dest")
    cp.set_defaults(func=cmd_cp)
    config = sub.add_parser("config", help="list every config key of a task with its default and help")
    config.add_argument("task")
    config.set_defaults(func=cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `hfft` console script and `python -m hfft`."""
    args = build_parser().parse_args(argv)
    main_rank = os.environ.get("RANK", "0") == "0"
    logging.basicConfig(level=logging.INFO if main_rank else logging.WARNING, format="[hfft] %(levelname)s %(message)s")
    try:
        return args.func(args)
    except HfftError as err:
        if args.debug:
            raise
        print(f"hfft: error: {' '.join(str(err).split())}", file=sys.stderr)  # one paragraph
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        hint = " Continue with `hfft train CONFIG --resume`." if args.command == "train" else ""
        print(f"hfft: interrupted.{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
