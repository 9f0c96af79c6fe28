"""Using a trained recipe: reload a run, predict on raw inputs, evaluate on labelled data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hfft import data, outputs
from hfft.errors import DataError


class InferenceMixin:
    """`from_run`, `predict`, `evaluate` and `evaluate_dataset` for every Recipe."""

    predict_batch_size: int = 32  # inputs per forward pass in `predict`

    @classmethod
    def from_run(cls, run_dir: str | Path) -> Any:
        """Load a finished run directory (full model or LoRA adapter) for evaluate/predict/export."""
        return outputs.load_run(run_dir)

    def predict(self, inputs: list[Any], batch_size: int | None = None) -> list[dict[str, Any]]:
        """Predictions for raw inputs (texts, image paths/PIL images, audio paths/arrays), one dict per input
        as the task formats them (classification: label, score and scores; multi-label: labels and scores);
        ``batch_size`` None: the task's `predict_batch_size`."""
        if self.model is None:
            raise RuntimeError("predict() needs a trained model: call train() or Recipe.from_run(run_dir).")
        self.model.eval()
        size, results = batch_size or self.predict_batch_size, []
        for start in range(0, len(inputs), size):
            try:
                results.extend(self.predict_batch(list(inputs[start : start + size])))
            except FileNotFoundError as err:
                raise DataError(f"predict: input file '{err.filename}' does not exist.") from None
        return results

    def predict_batch(self, inputs: list[Any]) -> list[dict[str, Any]]:
        """One batch of raw inputs: the modality's `prepare_inputs`, the model, the task's `format_predictions`."""
        import torch

        batch = self.prepare_inputs(inputs)
        with torch.no_grad():
            return self.format_predictions(self.model(**batch).logits)

    def evaluate(self, data_spec: str | None = None, batch_size: int | None = None) -> dict[str, float]:
        """Metrics of the trained model on a dataset (default: the configured test, else validation)."""
        spec = data_spec or self.config.data.test or self.config.data.validation
        if spec is None:
            raise DataError("evaluate() needs data: pass a dataset path (no test/validation in the config).")
        return self.evaluate_dataset(self.load_labelled(spec, "evaluate"), batch_size)

    def evaluate_dataset(self, dataset: Any, batch_size: int | None = None) -> dict[str, float]:
        """Metrics on a cleaned, label-encoded raw dataset (as `load_labelled` or `load_splits` return);
        ``batch_size`` None: the run's evaluation batch size."""
        trainer = self._evaluation_trainer(batch_size, metrics=True)
        return trainer.evaluate(self.with_eval_transform(self.encode(dataset, "evaluate")))

    def predict_outputs(self, dataset: Any, batch_size: int | None = None) -> Any:
        """The model's raw outputs (e.g. logits) for every row of a cleaned, label-encoded raw dataset, in the
        dataset's order (as a numpy array)."""
        import numpy as np

        trainer = self._evaluation_trainer(batch_size, metrics=False)
        output = trainer.predict(self.with_eval_transform(self.encode(dataset, "predict")))
        predictions = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        return np.asarray(predictions)

    def _evaluation_trainer(self, batch_size: int | None, metrics: bool) -> Any:
        """A Trainer that evaluates as the run did. ``metrics`` False: no metrics, raw outputs, and rows in the
        dataset's order (not length-sorted)."""
        import transformers

        from hfft import perf
        from hfft.training_args import training_defaults

        trained = {**training_defaults(self.config, self), **self.config.training}  # as the run trained
        settings = {
            **self.training_defaults(),  # e.g. generation-based evaluation
            "output_dir": str(self.output_dir / "evaluate"),
            "per_device_eval_batch_size": batch_size or trained["per_device_eval_batch_size"],
            "report_to": "none",
            "remove_unused_columns": False,
            "use_cpu": self._use_cpu(),
            # the run's precision and batch order (length-sorted batches pad alike): the same metrics again
            "bf16": bool(trained.get("bf16")),
            "fp16": bool(trained.get("fp16")),
        }
        if metrics:
            settings.update({k: trained[k] for k in ("train_sampling_strategy", "length_column_name") if k in trained})
        args = getattr(transformers, self.training_arguments_class)(**settings)
        args.hfft_chose_bf16 = settings["bf16"] and "bf16" not in self.config.training  # see hfft.perf
        return getattr(perf, self.trainer_class)(
            model=self.model,
            args=args,
            data_collator=self.collator(),
            compute_metrics=self.compute_metrics if metrics else None,
            preprocess_logits_for_metrics=self.preprocess_logits if metrics else None,
        )

    def load_labelled(self, spec: str, role: str) -> Any:
        """A new labelled dataset, cleaned and mapped onto this run's label space."""
        dc = self.config.data
        loaded = data.load_source(
            spec, f"data.{role}", subset=dc.subset, folder_builder=self.folder_builder, image_root=dc.image_root
        )
        dataset = data.only_split(loaded, f"data.{role}", spec) if len(loaded) == 1 else loaded[next(iter(loaded))]
        dataset = self.convert_source(dataset, spec)
        self.columns = self.find_columns(dataset, spec)
        dataset = self.clean(dataset.select_columns(list(dict.fromkeys(self.columns.values()))), role)
        return self.encode_targets({role: dataset}, {role: spec})[role]

    @staticmethod
    def _use_cpu() -> bool:
        from hfft.training_args import has_accelerator

        return not has_accelerator()
