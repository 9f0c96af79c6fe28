"""The hfft recipe for a benchmark case, at hfft's defaults or with one lever switched off (or on).

Started by run.py: `python benchmarks/hfft_run.py --spec JSON --out FILE`. `spec["levers"]` may hold
  overrides: dotted config overrides, e.g. ["training.bf16=false"]
  omp_default: import torch before hfft, so hfft cannot choose OpenMP's waiting policy
  no_cache: `datasets.disable_caching()` (preprocessing recomputed)
  pad_to_max_length: text collator pads to preprocessing.max_length (no dynamic padding)
  full_logits: no argmax `preprocess_logits_for_metrics` (whole logits gathered in evaluation)
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
        "data": {"train": data["train"], "validation": data.get("validation"), "test": data["test"]},
        "tuning": {"method": spec.get("method", "full")},
        "training": {
            "output_dir": spec["output_dir"],
            "num_train_epochs": spec["epochs"],
            "per_device_train_batch_size": spec["batch_size"],
            "per_device_eval_batch_size": spec["eval_batch_size"],
            "learning_rate": spec["learning_rate"],
        },
    }
    config["data"] = {k: v for k, v in config["data"].items() if v is not None}
    if spec["case"] == "text":
        config["preprocessing"] = {"max_length": spec["max_length"]}
    for key, value in spec.get("recipe", {}).items():  # case-specific sections (preprocessing, ...)
        config[key] = {**config.get(key, {}), **value}
    return config


def benchmark_recipe(spec: dict[str, Any], levers: dict[str, Any]) -> Any:
    from hfft.config import load_config
    from hfft.tasks import recipe_class

    config = load_config(recipe_config(spec), levers.get("overrides", []))
    base = recipe_class(config.task)

    class Measured(base):
        counter: Counter | None = None
        timer: Any = None

        def collator(self) -> Any:
            collator = super().collator()
            if levers.get("pad_to_max_length"):
                from transformers import DataCollatorWithPadding

                collator.pad = DataCollatorWithPadding(self.processor, padding="max_length", max_length=self.max_length)
            if collator is None:
                return None
            self.counter = Counter(collator)
            return self.counter

        def build_trainer(self, args: Any, encoded: dict[str, Any]) -> Any:
            trainer = super().build_trainer(args, encoded)
            self.timer = step_timer()
            trainer.add_callback(self.timer)
            if self.counter is not None:
                self.counter.watch(trainer)
            if levers.get("full_logits"):
                trainer.preprocess_logits_for_metrics = None
            self.trainer = trainer
            return trainer

    return Measured(config)


def main() -> None:
    spec, out = worker_args()
    levers = spec.get("levers", {})
    if levers.get("omp_default"):
        import torch  # noqa: F401  (before hfft: OpenMP keeps its default waiting policy)
    import hfft  # noqa: F401  (hfft's process settings happen at import, before torch loads)

    if levers.get("no_cache"):
        import datasets

        datasets.disable_caching()
    set_threads(spec.get("threads"))
    recipe = benchmark_recipe(spec, levers)
    metrics = recipe.train()
    if recipe.counter is not None:
        recipe.counter.training = False
    numbers = training_numbers(recipe.trainer, recipe.timer, recipe.counter, metrics)
    write_result(
        out,
        spec,
        **numbers,
        accuracy=metrics["test_accuracy"],
        eval_samples_per_second=metrics["test_samples_per_second"],
        wall_time_s=metrics["wall_time_s"],
        bf16=bool(recipe.trainer.args.bf16),
        sampling=str(recipe.trainer.args.train_sampling_strategy),
    )


if __name__ == "__main__":
    main()
