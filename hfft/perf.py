"""Speed defaults: CPU threads, native bf16, length-grouped batches without a scan,
channels-last CNNs on CPU, evaluation in the training precision, the faster attention kernel for short
sequences in CPU bf16 training, malloc keeping freed memory for the next training step.

Measured on 2 CPU cores (benchmarks/README.md): bf16 autocast on a CPU with AVX512-BF16 or AMX runs
MiniLM's training step ~2x faster than float32 (evaluation ~2.7x); grouping texts of similar length
cuts the padded tokens of short texts ~2x; channels-last trains EfficientNet-Lite0 ~1.6x faster;
torch's unfused attention trains the Whisper tiny encoder's 50-frame windows in bf16 ~1.2x faster than the
fused kernel SDPA picks; keeping freed memory removes ~12,000 page faults per Whisper step (hfft's audio
benchmark trains ~1.09x faster).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from pathlib import Path
from typing import Any

# OpenMP's waiting is left to libgomp (it spins, and throttles itself when threads outnumber CPUs): bounding
# the spin (GOMP_SPINCOUNT=1000, hfft's default until 2026-12-02) saves ~1.7x when another process keeps a core
# busy, but cost 11-22% of training speed on an idle machine in hfft's benchmark (benchmarks/README.md);
# set GOMP_SPINCOUNT=1000 yourself on a shared machine.

# torch's fused CPU attention kernel (what SDPA picks on CPU) has a slow bf16 backward for short sequences:
# forward + backward of one attention call is 1.5-5.6x slower than torch's unfused math kernel up to 160 keys,
# even at 192 and faster beyond (torch 2.13, head sizes 32/64, 6-12 heads, causal or not; forward alone
# the fused kernel wins at any length). benchmarks/README.md "Attention kernel for short sequences".
MATH_ATTENTION_MAX_KEYS = 160
SHORT_SEQUENCE_ATTENTION = "hfft_sdpa"
# glibc's malloc hands freed blocks above its adaptive mmap threshold (128 KiB-32 MiB), and free memory at the
# heap top above its trim threshold, back to the OS; each training step then page-faults (and zeroes) them
# back in: ~12,000 faults per Whisper-tiny step, ~15-25% of it. Kept instead (as CPU training guides set up
# jemalloc/tcmalloc: no decay), freed memory is reused; peak RSS +1-4% in hfft's benchmark (fragmentation).
MALLOC_MMAP_THRESHOLD = 1 << 30  # blocks of 1 GiB and more are still mapped and unmapped on their own
MALLOC_TRIM_THRESHOLD = 1 << 30
MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def usable_cores() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup v2 CPU quota (containers)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def set_cpu_threads() -> None:
    """No more torch threads than usable cores (torch counts the host's cores, not the container's quota);
    OMP_NUM_THREADS, when set, wins."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ and torch.get_num_threads() > usable_cores():
        torch.set_num_threads(usable_cores())


def _glibc() -> Any:
    """glibc's C library (ctypes), or None off glibc."""
    import ctypes
    import platform

    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep memory freed during training for reuse instead of returning it to the OS (`mallopt`
    M_MMAP_THRESHOLD / M_TRIM_THRESHOLD, see ``MALLOC_TRIM_THRESHOLD``). Process-wide and not undone (glibc cannot
    go back to its adaptive thresholds); hfft's Trainer hands the memory back when training ends. Skipped off
    glibc and when one of glibc's ``MALLOC_*_`` variables is set (that setting wins). Returns whether it applied."""
    libc = None if any(name in os.environ for name in MALLOC_ENV) else _glibc()
    if libc is None:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(
        libc.mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD) and libc.mallopt(m_trim_threshold, MALLOC_TRIM_THRESHOLD)
    )


def release_freed_memory() -> bool:
    """Hand memory that is free in malloc's heaps back to the OS (glibc `malloc_trim`), e.g. what training freed
    but `keep_freed_memory` kept, so that what runs after training (test evaluation, saving, plots) does not add
    its own peak on top of training's. Returns whether glibc was there to ask."""
    import gc

    libc = _glibc()
    if libc is None:
        return False
    gc.collect()  # tensors held only by reference cycles (e.g. a finished step's frames) free their memory first
    libc.malloc_trim(0)
    return True


def native_cpu_bf16() -> bool:
    """True when the CPU multiplies bf16 natively (AVX512-BF16 or AMX): bf16 autocast then beats float32.
    ``HFFT_CPU_BF16=0`` (or ``1``) overrides the detection, e.g. to measure or reproduce on a bf16-capable CPU
    what hfft does on one without (benchmarks/run.py --cpu-bf16 off)."""
    import torch

    forced = os.environ.get("HFFT_CPU_BF16", "").strip().lower()
    if forced in ("0", "false", "no", "off"):
        return False
    if forced in ("1", "true", "yes", "on"):
        return True

    try:
        capability = torch._C._cpu._get_cpu_capability()
    except (AttributeError, RuntimeError):
        return False
    return bool(capability.get("avx512_bf16") or capability.get("amx_bf16"))


def convolutional(model: Any) -> bool:
    """True when most weights sit in convolutions rather than linear layers (CNNs, not transformers)."""
    import torch

    conv = linear = 0
    for module in model.modules():
        count = sum(p.numel() for p in module.parameters(recurse=False))
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            conv += count
        elif isinstance(module, torch.nn.Linear):
            linear += count
    return conv > linear


def channels_last(model: Any) -> bool:
    """True when the model's 4-d (2-d convolution) weights are in the channels-last layout."""
    import torch

    weights = [p for p in model.parameters() if p.dim() == 4 and p.shape[2] * p.shape[3] > 1]  # 1x1: either
    return bool(weights) and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)


def float32_for_cnns(model: Any, args: Any) -> None:
    """Convolutional networks on CPU train in float32 when bf16 was hfft's choice: they run in the
    channels-last layout (see `Trainer`), where bf16 is ~1.5x slower than float32."""
    if getattr(args, "use_cpu", False) and getattr(args, "hfft_chose_bf16", False) and convolutional(model):
        args.bf16, args.mixed_precision = False, "no"


def register_short_sequence_attention() -> None:
    """Register transformers' SDPA attention as ``SHORT_SEQUENCE_ATTENTION``, routed to torch's math kernel while
    gradients are on for bf16 CPU attention over at most ``MATH_ATTENTION_MAX_KEYS`` keys; otherwise plain SDPA.
    Its masks are SDPA's (without a registered mask function transformers would pass no padding mask at all)."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    def attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> Any:
        if (
            torch.is_grad_enabled()
            and query.dtype == torch.bfloat16
            and query.device.type == "cpu"
            and key.shape[-2] <= MATH_ATTENTION_MAX_KEYS
        ):
            with sdpa_kernel([SDPBackend.MATH]):
                return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register(SHORT_SEQUENCE_ATTENTION, attention)
    AttentionMaskInterface.register(SHORT_SEQUENCE_ATTENTION, sdpa_mask)


@contextlib.contextmanager
def short_sequence_attention(model: Any, enabled: bool) -> Any:
    """While the block runs, a transformers model on SDPA attention uses ``SHORT_SEQUENCE_ATTENTION`` (when
    ``enabled``: bf16 training on CPU); then SDPA again. Not saved: `config.json` does not record it."""
    from transformers import PreTrainedModel

    pretrained = next((m for m in model.modules() if isinstance(m, PreTrainedModel)), None)
    if not enabled or pretrained is None or pretrained.config._attn_implementation != "sdpa":
        yield
        return
    logger = logging.getLogger("hfft")
    register_short_sequence_attention()
    try:
        pretrained.set_attn_implementation(SHORT_SEQUENCE_ATTENTION)
    except (ValueError, KeyError, NotImplementedError) as err:  # models outside transformers' AttentionInterface
        logger.info(
            "attention: SDPA's own kernel choice (%s takes no custom attention: %s)", type(pretrained).__name__, err
        )
        yield
        return
    logger.info(
        "attention: torch's math kernel for bf16 training over at most %d keys (faster on CPU)", MATH_ATTENTION_MAX_KEYS
    )
    try:
        yield
    finally:
        pretrained.set_attn_implementation("sdpa")


def precomputed_lengths(dataset: Any, column: str) -> list[int] | None:
    """The length column of a `datasets.Dataset`, also when wrapped (e.g. by seeded augmentation)."""
    inner = getattr(dataset, "dataset", dataset)
    if len(inner) != len(dataset) or column not in (getattr(inner, "column_names", None) or ()):
        return None
    return list(inner[column])


def __getattr__(name: str) -> Any:
    if name in ("Trainer", "Seq2SeqTrainer"):  # built on first use: importing transformers costs seconds
        globals()[name] = trainer = _trainer_class(name)
        return trainer
    raise AttributeError(f"module 'hfft.perf' has no attribute '{name}'")


def _trainer_class(base_name: str) -> type:
    """hfft's Trainer over `transformers.<base_name>` (Trainer, or Seq2SeqTrainer for generation)."""
    import torch
    import transformers
    from accelerate.utils import extract_model_from_parallel
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from hfft.resume import epoch_callback

    class SeededPerEpoch:
        """Sampler mixin: draws from a generator seeded by (seed + epoch), like accelerate's default seedable
        sampler, so the order is the same after a resume and on every rank."""

        seed: int = 0
        epoch: int = 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __iter__(self) -> Any:
            self.generator = torch.Generator().manual_seed(self.seed + self.epoch)
            return super().__iter__()

    class SeededLengthGroupedSampler(SeededPerEpoch, LengthGroupedSampler):
        """Length-grouped batches; exactly the default order when all lengths are equal."""

        def __init__(self, batch_size: int, lengths: list[int], seed: int) -> None:
            super().__init__(batch_size, lengths=lengths)
            self.seed = seed

    class SeededWeightedSampler(SeededPerEpoch, torch.utils.data.WeightedRandomSampler):
        """Rows drawn with replacement in proportion to ``weights`` (e.g. class-balanced)."""

        def __init__(self, weights: list[float], seed: int) -> None:
            super().__init__(weights, num_samples=len(weights), replacement=True)
            self.seed = seed

    class Trainer(getattr(transformers, base_name)):
        """`transformers.Trainer` (or `Seq2SeqTrainer`) that, with `group_by_length`, (1) reads the precomputed length column also
        through a dataset wrapper, instead of scanning (and transforming) every row at start-up, and (2)
        evaluates longest rows first (least padding; as with transformers' own grouping, predictions are
        not in dataset order); (3) leaves the model without accelerate's mixed-precision forward wrapper
        after training, so the trained model in memory computes what the saved one does reloaded, while
        evaluation keeps the training precision. (4) On CPU, convolutional networks train and evaluate in
        the channels-last layout (oneDNN's fast one: EfficientNet-Lite0 trains ~1.5x faster), in float32
        unless bf16 was asked for (`float32_for_cnns`). (5) With `sample_weights` set (a list, one per training
        row), training rows are drawn by a seeded weighted sampler (e.g. class-balanced)."""

        sample_weights: list[float] | None = None
        eval_data_collator: Any = None  # (8) evaluation batches collated by this one when set (e.g. padded, not packed)
        head_learning_rate: float | None = None  # (6) the newly initialised head's parameters learn at this rate

        def create_optimizer(self, model: Any = None) -> Any:
            optimizer = super().create_optimizer(model)
            if self.head_learning_rate is None or getattr(optimizer, "hfft_head_group", False):
                return optimizer
            from hfft.modeling import is_head_parameter

            head = {id(p) for n, p in (model or self.model).named_parameters() if is_head_parameter(n)}
            groups = []
            for group in optimizer.param_groups:
                params = group["params"]
                groups.append({**group, "params": [p for p in params if id(p) not in head]})
                groups.append({**group, "params": [p for p in params if id(p) in head], "lr": self.head_learning_rate})
            optimizer.param_groups.clear()
            for group in groups:
                if group["params"]:
                    optimizer.add_param_group(group)
            optimizer.hfft_head_group = True
            return optimizer

        def __init__(self, model: Any = None, args: Any = None, **kwargs: Any) -> None:
            if model is not None and args is not None:
                float32_for_cnns(model, args)
            super().__init__(model=model, args=args, **kwargs)
            self.seeded_sampler: SeededPerEpoch | None = None
            self.add_callback(epoch_callback(self._set_sampler_epoch))
            if self.is_fsdp_enabled:
                from hfft.distributed import fit_for_fsdp

                fit_for_fsdp(self)
            if self.model is not None and self._channels_last():
                self.model.to(memory_format=torch.channels_last)

        def create_accelerator_and_postprocess(self) -> None:
            """(10) FSDP on CPU processes shards for real (FSDP2 over gloo) instead of accelerate's silent DDP."""
            from hfft.distributed import fsdp_on_cpu

            super().create_accelerator_and_postprocess()
            if fsdp_on_cpu(self):
                self.is_fsdp_enabled = True

        def _set_sampler_epoch(self, epoch: int) -> None:
            """Tell hfft's seeded train sampler the epoch. Trainer's own `set_epoch` does not reach it under DDP
            after a mid-epoch resume (accelerate's skip wrapper adds a level the call does not descend), and the
            resumed epoch would then be drawn in epoch 0's order."""
            if self.seeded_sampler is not None:
                self.seeded_sampler.set_epoch(epoch)

        def _channels_last(self) -> bool:
            """Whether the model runs in the channels-last layout while training and evaluating (not under FSDP,
            which shards only contiguous parameters)."""
            return bool(self.args.use_cpu) and convolutional(self.model) and not self.is_fsdp_enabled

        def release_evaluated_model(self) -> None:
            """(9) Undo accelerate's evaluation-time preparation of the model (an evaluation before `train()`, e.g.
            a zero-shot baseline, marks it prepared, and accelerate then would not wrap it in DDP for training:
            every rank would train alone, ending with different weights)."""
            model = extract_model_from_parallel(self.model, keep_fp32_wrapper=False)  # removes the autocast forward
            if getattr(model, "_is_accelerate_prepared", False):
                del model._is_accelerate_prepared
            self.accelerator._models = [m for m in self.accelerator._models if m is not model]
            self.model_wrapped = self.model

        def get_eval_dataloader(self, eval_dataset: Any = None) -> Any:
            with self._eval_collator():
                return super().get_eval_dataloader(eval_dataset)

        def get_test_dataloader(self, test_dataset: Any) -> Any:
            with self._eval_collator():
                return super().get_test_dataloader(test_dataset)

        @contextlib.contextmanager
        def _eval_collator(self) -> Any:
            """Evaluation batches: the evaluation collator, and every row (`dataloader_drop_last` is for training;
            Trainer would also drop the last evaluation batch, or the only one, and with it the metrics)."""
            training_collator, drop_last = self.data_collator, self.args.dataloader_drop_last
            self.data_collator = self.eval_data_collator or training_collator
            self.args.dataloader_drop_last = False
            try:
                yield
            finally:
                self.data_collator, self.args.dataloader_drop_last = training_collator, drop_last

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            dataset = self.train_dataset if train_dataset is None else train_dataset
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            if self.sample_weights is not None and dataset is not None and len(self.sample_weights) == len(dataset):
                self.seeded_sampler = SeededWeightedSampler(self.sample_weights, seed)
                return self.seeded_sampler
            if self.args.train_sampling_strategy == "group_by_length" and dataset is not None:
                lengths = precomputed_lengths(dataset, self.args.length_column_name)
                if lengths is not None:
                    # grouped by the global batch: every process count sees the same rows in each optimizer step
                    batch = self.args.train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
                    self.seeded_sampler = SeededLengthGroupedSampler(batch, lengths, seed)
                    return self.seeded_sampler
            return super()._get_train_sampler(train_dataset)

        def _get_eval_sampler(self, eval_dataset: Any) -> Any:
            if self.args.train_sampling_strategy == "group_by_length" and eval_dataset is not None:
                lengths = precomputed_lengths(eval_dataset, self.args.length_column_name)
                if lengths is not None:
                    return sorted(range(len(lengths)), key=lengths.__getitem__, reverse=True)
            return super()._get_eval_sampler(eval_dataset)

        def train(self, *args: Any, **kwargs: Any) -> Any:
            """(11) bf16 training on CPU runs short sequences' attention in torch's math kernel
            (`short_sequence_attention`); (12) malloc keeps freed memory for the next step (`keep_freed_memory`) and
            hands it back when training ends (`release_freed_memory`: evaluation, saving and plots after training
            then do not add their peak on top of training's)."""
            # not under torch.compile: its graph then would hold a Python-level kernel switch
            cpu_bf16 = self.args.bf16 and self.args.device.type == "cpu" and not self.args.torch_compile
            if keep_freed_memory():
                logging.getLogger("hfft").info("memory: malloc keeps freed memory for reuse (no page faults per step)")
            try:
                with short_sequence_attention(self.model, cpu_bf16):
                    return super().train(*args, **kwargs)
            finally:  # the model as it will be reloaded: no autocast wrapper, default memory layout
                extract_model_from_parallel(self.model, keep_fp32_wrapper=False)
                self._default_layout()
                release_freed_memory()

        def evaluation_loop(self, *args: Any, **kwargs: Any) -> Any:
            """Evaluation in the channels-last layout too (see `_channels_last`), then back to the default one.
            (7) Predictions are gathered across processes with `gather_for_metrics` also under Seq2SeqTrainer
            (which switches to plain `gather`, keeping the samples repeated to even out the last batch)."""
            # One process: nothing to gather, and gather_for_metrics would cut every tensor of the last batch to
            # the batch's sample count, also tensors of per-sample targets such as a detection image's boxes.
            single = self.accelerator.num_processes == 1
            self.gather_function = (lambda tensors: tensors) if single else self.accelerator.gather_for_metrics
            with contextlib.ExitStack() as stack:
                if self._channels_last() and not channels_last(self.model):
                    self.model.to(memory_format=torch.channels_last)
                    stack.callback(self._default_layout)
                return super().evaluation_loop(*args, **kwargs)

        def prediction_step(self, *args: Any, **kwargs: Any) -> Any:
            """In the precision training ran in (mixed-precision autocast, as Trainer's wrapped model
            evaluates during training; `train` unwraps it). Only the model: not the data pipeline."""
            if not (self.args.bf16 or self.args.fp16):
                return super().prediction_step(*args, **kwargs)
            with self.accelerator.autocast():
                return super().prediction_step(*args, **kwargs)

        def _default_layout(self) -> None:
            if self._channels_last():
                self.model.to(memory_format=torch.contiguous_format)

    Trainer.__name__ = Trainer.__qualname__ = base_name
    return Trainer
