"""The hfft recipe for a benchmark case, at hfft's defaults or with one lever switched off (or on).

Started by run.py: `python benchmarks/hfft_run.py --spec JSON --out FILE`. `spec["levers"]` may hold
  overrides: dotted config overrides, e.g. ["training.bf16=false"]
  spin_1000: GOMP_SPINCOUNT=1000 (bounded OpenMP spin-waiting; hfft's default until 2026-12-02)
  no_cache: `datasets.disable_caching()` (preprocessing recomputed)
  pad_to_max_length: text collator pads to preprocessing.max_length (no dynamic padding)
  full_logits: no argmax `preprocess_logits_for_metrics` (whole logits gathered in evaluation)
  pipeline_only: no training; one epoch of the training DataLoader alone (decode, augment, collate)
  no_channels_last: convolutional networks train and evaluate in float32 but in the default (NCHW) layout
  fused_attention: SDPA's fused kernel also for short sequences in bf16 training (hfft.perf.short_sequence_attention off)
  malloc_default: glibc's malloc returns freed memory to the OS as by default (hfft.perf.keep_freed_memory off)
  feature_lists: cached audio features stored as nested lists, not a fixed-shape Array2D
  fast_dropout: dropout masks from numpy's SFC64 instead of torch's CPU generator (benchmarks/fast_dropout.py)
  freeze_embeddings, shuffle_batches: experiments (see benchmarks/README.md)
"""

from __future__ import annotations

from typing import Any

from common import Counter, set_threads, step_timer, training_numbers, worker_args, write_result


def recipe_config(spec: dict[str, Any]) -> dict[str, Any]:
    data = spec["data"]
    config = {
        "task": spec["task"],
        "model": spec["model"],
        "seed": spec["seed"],
        "overwrite": True,
        "data": {"train": data["train"], "validation": data.get("validation", data["test"]), "test": data["test"]},
        "tuning": {"method": spec.get("method", "full")},
        "training": {
            "output_dir": spec["output_dir"],
            "num_train_epochs": spec["epochs"],
            "per_device_train_batch_size": spec["batch_size"],
            "per_device_eval_batch_size": spec["eval_batch_size"],
            "learning_rate": spec["learning_rate"],
        },
    }
    if spec["case"] == "text":
        config["preprocessing"] = {"max_length": spec["max_length"]}
    elif spec["case"] == "image":
        config["preprocessing"] = {"image_size": spec["image_size"]}
    elif spec["case"] == "audio":
        config["preprocessing"] = {"max_duration": float(spec["seconds"])}
    for key, value in spec.get("recipe", {}).items():  # case-specific sections (preprocessing, ...)
        config[key] = {**config.get(key, {}), **value}
    return config


def benchmark_recipe(spec: dict[str, Any], levers: dict[str, Any]) -> Any:
    from hfft.config import load_config
    from hfft.registry import recipe_class

    config = load_config(recipe_config(spec), levers.get("overrides", []))
    base = recipe_class(config.task)

    class Measured(base):
        counter: Counter
        timer: Any

        def collator(self) -> Any:
            collator = super().collator()
            if levers.get("pad_to_max_length"):
                from transformers import DataCollatorWithPadding

                collator.pad = DataCollatorWithPadding(self.processor, padding="max_length", max_length=self.max_length)
            return collator

        def adapt_model(self, model: Any) -> None:
            super().adapt_model(model)
            if levers.get("fast_dropout"):
                from fast_dropout import use_cpu_dropout

                use_cpu_dropout(model)
            if levers.get("freeze_embeddings"):
                model.get_input_embeddings().weight.requires_grad_(False)

        def build_trainer(self, args: Any, encoded: dict[str, Any]) -> Any:
            trainer = super().build_trainer(args, encoded)
            self.timer, self.counter = step_timer(), Counter()
            trainer.add_callback(self.timer)
            self.counter.watch(trainer)
            if levers.get("full_logits"):
                trainer.preprocess_logits_for_metrics = None
            self.trainer = trainer
            return trainer

    return Measured(config)


def pipeline_only(recipe: Any) -> dict[str, Any]:
    """The data pipeline alone: Recipe.train()'s set-up, then one epoch of the training DataLoader."""
    import time

    args = recipe.training_arguments()
    splits = recipe.load_splits()
    recipe.processor = recipe.load_processor(recipe.preflight(False))
    encoded = {name: recipe.encode(ds, name) for name, ds in splits.items()}
    recipe.model = recipe.build_model(recipe.preflight(False))
    loader = recipe.build_trainer(args, encoded).get_train_dataloader()
    started, rows = time.perf_counter(), 0
    for batch in loader:
        rows += len(batch["labels"])
    seconds = time.perf_counter() - started
    return {"pipeline_samples_per_second": rows / seconds, "pipeline_seconds": round(seconds, 2), "rows": rows}


def shuffle_grouped_batches() -> None:
    """Experiment: length-grouped batches in random order (the first, longest, batch stays first)."""
    import torch
    from transformers import trainer_pt_utils

    grouped = trainer_pt_utils.get_length_grouped_indices

    def shuffled(lengths: Any, batch_size: int, mega_batch_mult: Any = None, generator: Any = None) -> list[int]:
        indices = grouped(lengths, batch_size, mega_batch_mult, generator)
        batches = [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
        order = [0] + [1 + int(i) for i in torch.randperm(len(batches) - 1, generator=generator)]
        return [i for b in order for i in batches[b]]

    trainer_pt_utils.get_length_grouped_indices = shuffled


def main() -> None:
    spec, out = worker_args()
    levers = spec.get("levers", {})
    if levers.get("spin_1000"):
        import os

        os.environ["GOMP_SPINCOUNT"] = "1000"  # read once, when torch loads
    if levers.get("no_cache"):
        import datasets

        datasets.disable_caching()
    set_threads(spec.get("threads"))
    if levers.get("no_channels_last"):  # convolutional networks keep float32 but not the channels-last layout
        import hfft.perf

        hfft.perf.Trainer._channels_last = lambda trainer: False
    if levers.get("fused_attention"):
        import contextlib

        import hfft.perf

        hfft.perf.short_sequence_attention = lambda model, enabled: contextlib.nullcontext()
    if levers.get("malloc_default"):
        import hfft.perf

        hfft.perf.keep_freed_memory = lambda: False
    if levers.get("feature_lists"):
        from hfft.modalities.audio.modality import AudioModality

        AudioModality.cached_feature_type = lambda self: None
    if levers.get("shuffle_batches"):
        shuffle_grouped_batches()
    recipe = benchmark_recipe(spec, levers)
    if levers.get("pipeline_only"):
        write_result(out, spec, **pipeline_only(recipe))
        return
    metrics = recipe.train()
    numbers = training_numbers(recipe.trainer, recipe.timer, recipe.counter, metrics)
    write_result(
        out,
        spec,
        **numbers,
        accuracy=metrics["test_accuracy"],
        eval_samples_per_second=metrics["test_samples_per_second"],
        wall_time_s=metrics["wall_time_s"],
        sampling=str(recipe.trainer.args.train_sampling_strategy),
    )


if __name__ == "__main__":
    main()
