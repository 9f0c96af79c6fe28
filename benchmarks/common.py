"""Shared pieces of the benchmark workers: the run spec, measuring callbacks, results, data preparation.

Each worker (baseline_a.py, baseline_b.py, hfft_run.py) is started by run.py as its own process with
`--spec JSON --out FILE`, trains once and writes one JSON result. Only the standard library and numpy
are imported at module level, so run.py stays light.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FORTUNES = Path("/usr/share/games/fortunes")
TEXT_CATEGORIES = ["computers", "food", "love", "politics", "science", "sports", "work", "art"]
STARTED = time.time()


def worker_args() -> tuple[dict[str, Any], Path]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spec", required=True, help="the run spec as JSON")
    parser.add_argument("--out", required=True, help="where to write the result JSON")
    args = parser.parse_args()
    return json.loads(args.spec), Path(args.out)


def set_threads(threads: int | None) -> None:
    """torch intra-op threads (None: torch's default, one per core)."""
    import torch

    if threads:
        torch.set_num_threads(threads)


def write_result(out: Path, spec: dict[str, Any], **metrics: Any) -> None:
    import torch

    result = {
        "case": spec["case"],
        "variant": spec["variant"],
        "threads": torch.get_num_threads(),
        "openmp_waiting": {k: os.environ.get(k, "default") for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")},
        "self_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None,
        "process_wall_s": round(time.time() - STARTED, 2),
        **metrics,
    }
    out.write_text(json.dumps(result, indent=1))


# ----------------------------------------------------------------------------- measuring inside Trainer


class Counter:
    """Counts the (padded) shape and real tokens of every batch the trainer trains on (wraps `training_step`)."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int, list[int]]] = []
        self.rows: list[int] = []  # sample count of every fixed-shape classification batch (images, audio windows)

    def watch(self, trainer: Any) -> None:
        training_step = trainer.training_step

        def counted(model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            mask = inputs.get("attention_mask")
            if mask is not None:
                self.batches.append((int(mask.shape[0]), int(mask.shape[1]), mask.sum(dim=1).tolist()))
            elif getattr(inputs.get("labels"), "ndim", None) == 1:
                self.rows.append(len(inputs["labels"]))
            return training_step(model, inputs, *args, **kwargs)

        trainer.training_step = counted


def step_timer() -> Any:
    """A TrainerCallback summing the time of optimizer steps (forward, backward, optimizer; no data, no eval)."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.total, self.steps, self.started, self.train_begin, self.first_step = 0.0, 0, None, None, None
            self.durations: list[float] = []

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.train_begin = time.time()

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.started is not None:
                self.durations.append(time.perf_counter() - self.started)
                self.total += self.durations[-1]
                self.steps += 1
            if self.first_step is None:
                self.first_step = time.time()

    return StepTimer()


def encoder_flops(config: Any, batches: list[tuple[int, int, list[int]]]) -> dict[str, float]:
    """Training FLOPs (3 x forward) of a BERT-style encoder, counted per layer.

    Forward per token and layer: 2 x (4 h^2 + 2 h i) for the linear layers, 4 x L x h for the
    attention scores and weighted sum (L = sequence length). Embedding look-ups cost no FLOPs.
    `model` counts real tokens only (the useful work); `hardware` counts padded batches as run.
    """
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    linear = 2 * (4 * h * h + 2 * h * i)
    model = hardware = 0.0
    for rows, width, lengths in batches:
        model += sum(layers * (n * linear + 4 * n * n * h) for n in lengths)
        hardware += rows * layers * (width * linear + 4 * width * width * h)
    params = layers * (4 * h * h + 2 * h * i)
    real = sum(sum(lengths) for _, _, lengths in batches)
    padded = sum(rows * width for rows, width, _ in batches)
    return {
        "model_flops": 3 * model,
        "hardware_flops": 3 * hardware,
        "real_tokens": real,
        "padded_tokens": padded,
        "nonembedding_params": params,
    }


def training_numbers(trainer: Any, timer: Any, counter: Counter | None, train_metrics: dict[str, Any]) -> dict:
    """What every worker reports about its training loop."""
    out = {
        "train_samples_per_second": train_metrics["train_samples_per_second"],
        "train_runtime": train_metrics["train_runtime"],
        "train_steps": timer.steps,
        "step_time_s": round(timer.total, 3),
        "median_step_ms": round(1000 * statistics.median(timer.durations), 1) if timer.durations else None,
        "first_step_ms": round(1000 * timer.durations[0], 1) if timer.durations else None,
        "startup_s": round(timer.train_begin - STARTED, 2),  # imports, data, preprocessing, model
        "first_step_s": round(timer.first_step - STARTED, 2),  # ... and the first optimizer step
        "bf16": bool(trainer.args.bf16),
    }
    model = getattr(trainer.model, "base_model", trainer.model)
    config = getattr(model, "config", None)
    if counter is not None and counter.batches and hasattr(config, "intermediate_size"):
        out.update(encoder_flops(config, counter.batches))
        out["total_params"] = sum(p.numel() for p in trainer.model.parameters())
    elif counter is not None and counter.rows and not counter.batches:
        step = counted_step(trainer)
        if step:
            out["model_flops"] = sum(counter.rows) * step.pop("flops_per_sample")
            dtype = "bfloat16" if trainer.args.bf16 else "float32"
            out["matmul_floor_ms"] = round(1000 * matmul_floor_s(step["step_matmuls"], dtype), 1)
            out.update(step)
    return out


def best_matmul_s(a_shape: list[int], b_shape: list[int], dtype_name: str, tries: int = 5) -> float:
    """Best-of-`tries` seconds of one torch matmul of random matrices of these shapes (after one warm-up call),
    at this process's threads and OpenMP settings."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(a_shape, dtype=dtype), torch.randn(b_shape, dtype=dtype)
    torch.matmul(a, b)
    best = float("inf")
    for _ in range(tries):
        started = time.perf_counter()
        torch.matmul(a, b)
        best = min(best, time.perf_counter() - started)
    return best


def matmul_floor_s(matmuls: list[list[Any]], dtype_name: str) -> float:
    """Seconds the given matrix multiplications (`counted_step`'s `step_matmuls`: [a shape, b shape, count]) take alone
    in this process, each shape timed by `best_matmul_s`: a training step with these matmuls can be no faster."""
    return sum(count * best_matmul_s(a_shape, b_shape, dtype_name) for a_shape, b_shape, count in matmuls)


def counted_step(trainer: Any) -> dict[str, Any] | None:
    """One training step of a fixed-shape model (images, audio windows) counted: forward + backward of the first
    training batch on the meta device (a copy of the model's architecture with the same frozen layers: no memory,
    no effect on the measured run). Returns its FLOPs per sample as torch's FlopCounterMode counts them and the
    shapes of its matrix multiplications (`matmul_floor_s` times them: the step's matmul floor). None for a model that
    cannot be rebuilt from its config (e.g. a LoRA-wrapped one) and for grouped convolutions, where the counter's
    backward formula is far off (EfficientNet-Lite0 at 64 px: 82 GFLOP backward for 2 GFLOP forward, torch 2.13)."""
    import collections

    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    model = trainer.model
    if any(getattr(module, "groups", 1) > 1 for module in model.modules()):
        return None
    try:
        with torch.device("meta"):
            shadow = type(model)(model.config)
    except Exception:  # noqa: BLE001 - only a number in a report is lost
        return None
    trainable = {name: p.requires_grad for name, p in model.named_parameters()}
    for name, p in shadow.named_parameters():
        p.requires_grad_(trainable.get(name, False))
    aten = torch.ops.aten
    with_bias = {aten.addmm.default, aten.baddbmm.default}
    matmuls = with_bias | {aten.mm.default, aten.bmm.default}

    class MatmulShapes(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.shapes: collections.Counter = collections.Counter()

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            if func in matmuls:
                a, b = args[1:3] if func in with_bias else args[:2]
                self.shapes[(tuple(a.shape), tuple(b.shape))] += 1
            return func(*args, **(kwargs or {}))

    batch = next(iter(trainer.get_train_dataloader()))
    batch = {k: v.to("meta") if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    shadow.train()
    with FlopCounterMode(display=False) as flops, MatmulShapes() as shapes:
        shadow(**batch).loss.backward()
    rows = len(batch["labels"])
    return {
        "flops_per_sample": flops.get_total_flops() / rows,
        "step_rows": rows,
        "step_matmuls": [[list(a), list(b), n] for (a, b), n in sorted(shapes.shapes.items())],
    }


def accuracy_metrics(eval_pred: Any) -> dict[str, float]:
    """`compute_metrics` for the baselines (numpy only: no `evaluate`, which needs the Hub)."""
    import numpy as np

    predictions, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(predictions, tuple):
        predictions = predictions[0]
    predictions = np.asarray(predictions)
    if predictions.ndim > 1:
        predictions = predictions.argmax(-1)
    return {"accuracy": float((predictions == labels).mean())}


# ----------------------------------------------------------------------------- data


def read_fortunes(path: Path) -> list[str]:
    text = re.sub(r".\x08", "", path.read_bytes().decode("utf-8", errors="replace"))
    quotes = [" ".join(chunk.split()) for chunk in re.split(r"^%$", text, flags=re.M)]
    return [q for q in quotes if q]


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def prepare_text(out: Path, model: str, train_rows: int, max_tokens: int = 62, per_class: int = 450) -> dict:
    """Short fortune quotes (<= max_tokens tokens, so max_length 64 truncates nothing) in 8 categories.

    Seeded; capped per class; `train_rows` for train, 200 for validation, the rest (~380) for test.
    """
    from transformers import AutoTokenizer

    files = {split: out / f"{split}.csv" for split in ("train", "validation", "test")}
    marker = out / "rows.txt"
    if marker.is_file() and all(f.is_file() for f in files.values()):
        return {k: str(v) for k, v in files.items()}
    tokenizer = AutoTokenizer.from_pretrained(model)
    rng = random.Random(42)
    rows = []
    for category in TEXT_CATEGORIES:
        quotes = sorted(set(read_fortunes(FORTUNES / category)))
        lengths = [len(ids) for ids in tokenizer(quotes)["input_ids"]]
        short = [q for q, n in zip(quotes, lengths) if n <= max_tokens]
        rng.shuffle(short)
        rows += [(q, category) for q in short[:per_class]]
    rng.shuffle(rows)
    if len(rows) < train_rows + 300:
        raise SystemExit(f"only {len(rows)} short quotes; lower --text-rows")
    parts = {
        "train": rows[:train_rows],
        "validation": rows[train_rows : train_rows + 200],
        "test": rows[train_rows + 200 :],
    }
    for split, part in parts.items():
        write_csv(files[split], part)
    marker.write_text("\n".join(f"{k}: {len(v)}" for k, v in parts.items()))
    return {k: str(v) for k, v in files.items()}


TINY_WORDS = {
    "sport": ["ball", "goal", "team", "match", "score", "coach", "race", "win"],
    "food": ["bread", "soup", "cake", "apple", "salt", "cook", "bake", "taste"],
    "tech": ["code", "chip", "data", "disk", "robot", "screen", "byte", "app"],
}
TINY_FILLER = ["the", "a", "is", "very", "today", "and", "my", "of"]


def prepare_tiny_text(out: Path, rows: int) -> dict:
    """Keyword sentences of varying length for the smoke test (a word-level tiny BERT knows these words)."""
    rng = random.Random(0)
    data = []
    for _ in range(rows + 60):
        label = rng.choice(sorted(TINY_WORDS))
        tokens = rng.sample(TINY_WORDS[label], 2) + [rng.choice(TINY_FILLER) for _ in range(rng.randint(1, 12))]
        rng.shuffle(tokens)
        data.append((" ".join(tokens), label))
    parts = {"train": data[:rows], "validation": data[rows : rows + 30], "test": data[rows + 30 :]}
    for split, part in parts.items():
        write_csv(out / f"{split}.csv", part)
    return {split: str(out / f"{split}.csv") for split in parts}


def run_script(script: str, *args: str) -> None:
    """A data-preparation script; when it fails, its own output (the reason) is shown, not a bare exit code."""
    done = subprocess.run([sys.executable, str(ROOT / script), *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        output = (done.stdout + done.stderr).strip()[-4000:]
        raise SystemExit(f"{script} {' '.join(args)} failed (exit {done.returncode}):\n{output}")


def prepare_image(out: Path, per_class: int, test_per_class: int) -> dict:
    """Fashion-MNIST as an imagefolder (recipes/image/prepare_fashion_mnist.py): train/ and test/."""
    marker = out / "done.txt"
    if not marker.is_file():
        args = ["--out", str(out), "--train-per-class", str(per_class), "--test-per-class", str(test_per_class)]
        run_script("recipes/image/prepare_fashion_mnist.py", *args)
        marker.write_text("done")
    return {"train": str(out / "train"), "test": str(out / "test")}


def prepare_audio(out: Path, per_word: int, test_per_word: int) -> dict:
    """Spoken digits (recipes/audio/prepare_spoken_digits.py): espeak-ng words; the held-out-voice
    `validation/` folder is the test set here (its `test/` has only 10 real recordings)."""
    marker = out / "done.txt"
    if not marker.is_file():
        args = ["--out", str(out), "--train-per-word", str(per_word), "--validation-per-word", str(test_per_word)]
        run_script("recipes/audio/prepare_spoken_digits.py", *args, "--no-bad-files")
        marker.write_text("done")
    return {"train": str(out / "train"), "test": str(out / "validation")}


def folder_rows(root: str, suffixes: tuple[str, ...]) -> dict[str, list]:
    """{"path": [...], "label": [...]} of a class-subfolder tree."""
    files = sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in suffixes)
    return {"path": [str(p) for p in files], "label": [p.parent.name for p in files]}


def load_clip(path: str, rate: int, samples: int) -> Any:
    """A plain script's audio loading: soundfile decode, mono, soxr resample, centre crop / zero pad."""
    import numpy as np
    import soundfile
    import soxr

    wave, source_rate = soundfile.read(path, dtype="float32", always_2d=True)
    wave = wave.mean(axis=1)
    if source_rate != rate:
        wave = soxr.resample(wave, source_rate, rate).astype(np.float32)
    if len(wave) > samples:
        start = (len(wave) - samples) // 2
        wave = wave[start : start + samples]
    return np.pad(wave, (0, samples - len(wave)))


def whisper_extractor(model: str, seconds: int) -> Any:
    """Whisper's feature extractor for `seconds`-long inputs (the encoder is shortened to match)."""
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor.from_pretrained(model)
    extractor.chunk_length, extractor.n_samples = seconds, seconds * extractor.sampling_rate
    extractor.nb_max_frames = extractor.n_samples // extractor.hop_length
    return extractor


def text_csvs(spec: dict[str, Any]) -> tuple[Any, Any, dict[str, int]]:
    """The baselines' text data: train/test CSVs, their tokenizer and label ids (sorted class names)."""
    import datasets
    from transformers import AutoTokenizer

    raw = datasets.load_dataset("csv", data_files={"train": spec["data"]["train"], "test": spec["data"]["test"]})
    names = sorted(set(raw["train"]["label"]))
    return raw, AutoTokenizer.from_pretrained(spec["model"]), {name: i for i, name in enumerate(names)}


def image_folders(spec: dict[str, Any]) -> tuple[Any, Any, dict[str, int]]:
    """The baselines' image data: train/test imagefolders, the checkpoint's processor and the size to resize to."""
    import datasets
    from transformers import AutoImageProcessor

    raw = datasets.DatasetDict(
        {
            split: datasets.load_dataset("imagefolder", data_dir=spec["data"][split])["train"]
            for split in ("train", "test")
        }
    )
    processor = AutoImageProcessor.from_pretrained(spec["model"])
    return raw, processor, {"height": spec["image_size"], "width": spec["image_size"]}


def classifier(auto_class: str, spec: dict[str, Any], names: list[str], **config: Any) -> Any:
    """The pretrained checkpoint with a new head for `names` (AutoModelFor... named by `auto_class`)."""
    import transformers

    return getattr(transformers, auto_class).from_pretrained(
        spec["model"], num_labels=len(names), id2label=dict(enumerate(names)), ignore_mismatched_sizes=True, **config
    )


def whisper_classifier(spec: dict[str, Any], names: list[str], extractor: Any) -> Any:
    """Whisper's encoder + head, shortened to the extractor's clip length, convolutional front end frozen
    (as run_audio_classification's freeze_feature_encoder)."""
    # Whisper's positions are sinusoids: ignore_mismatched_sizes re-creates them for the shorter input
    model = classifier(
        "AutoModelForAudioClassification", spec, names, max_source_positions=extractor.nb_max_frames // 2
    )
    for conv in (model.encoder.conv1, model.encoder.conv2):
        conv.requires_grad_(False)
    return model


def training_arguments(spec: dict[str, Any]) -> Any:
    """The baselines' TrainingArguments: evaluation after training only, no checkpoints."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=spec["output_dir"],
        num_train_epochs=spec["epochs"],
        per_device_train_batch_size=spec["batch_size"],
        per_device_eval_batch_size=spec["eval_batch_size"],
        learning_rate=spec["learning_rate"],
        seed=spec["seed"],
        eval_strategy="no",
        save_strategy="no",
        logging_steps=10,
        report_to="none",
        use_cpu=True,
        remove_unused_columns=False,
        bf16=bool(spec.get("bf16")),  # (B+bf16): the careful user on a CPU with native bf16 turns it on
    )


def train_and_test(spec: dict[str, Any], model: Any, train: Any, test: Any, collator: Any, **extra: Any) -> dict:
    """Trainer.train then evaluate on the test split; what every baseline reports."""
    from transformers import Trainer

    counter, timer = Counter(), step_timer()
    trainer = Trainer(
        model=model,
        args=training_arguments(spec),
        train_dataset=train,
        data_collator=collator,
        compute_metrics=accuracy_metrics,
        callbacks=[timer],
        **extra,
    )
    counter.watch(trainer)
    numbers = training_numbers(trainer, timer, counter, trainer.train().metrics)
    metrics = trainer.evaluate(test)
    return dict(numbers, accuracy=metrics["eval_accuracy"], eval_samples_per_second=metrics["eval_samples_per_second"])
