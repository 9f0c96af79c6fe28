"""Builders for the speech-recognition tests, all offline: tiny random checkpoints (save_pretrained) and a speech folder.

- `save_tiny_whisper_asr`: a 1+1-layer, 32-hidden `WhisperForConditionalGeneration` with a feature extractor, a
  byte-level BPE Whisper tokenizer built from scratch (Whisper's special and timestamp tokens in the real layout) and
  a Whisper-style `generation_config.json`; English-only or multilingual.
- `save_tiny_wav2vec2_ctc`: a 2-layer, 32-hidden `Wav2Vec2ForCTC` (50 frames/s) with its feature extractor; with a
  character vocabulary also a `Wav2Vec2CTCTokenizer` and a `Wav2Vec2Processor`, without one no tokenizer at all.
- `make_speech_folder`: `train/`, `validation/` and `test/` folders of `metadata.csv` (`file_name,text`) plus WAV
  files at 8 kHz and 16 kHz, in which every letter is a tone. With AdamW at a constant lr 3e-3 and batch 8, the tiny
  CTC model gets below 0.5 WER on the training clips in 100-130 steps (5-8 s on one CPU thread; held-out WER then
  0-0.2 once train WER is ~0), the tiny Whisper in 80-100 steps (~25 s; it memorises, held-out WER stays ~1).
  Decode CTC argmax ids only over each clip's valid frames: padded frames emit garbage letters.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from audio_fixtures import TINY_WHISPER, feature_extractor_kwargs

if TYPE_CHECKING:
    from transformers import GenerationConfig, WhisperTokenizer

# --- Whisper -------------------------------------------------------------------------------------------------------

WHISPER_MERGES = [("h", "e"), ("l", "l"), ("he", "ll"), ("Ġ", "w")]  # a few merges: "hello world" -> 8 BPE tokens
WHISPER_TASKS = ("translate", "transcribe")
TIME_PRECISION = 0.02  # seconds per timestamp token: <|0.00|> ... <|30.00|>


def byte_symbols() -> list[str]:
    """GPT-2's `bytes_to_unicode` symbols in GPT-2 vocabulary order (so "Ġ", the space, is id 220 as in Whisper)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    rest = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + n) for n in range(len(rest))]


def whisper_special_tokens() -> list[str]:
    """Whisper's special tokens in vocabulary order: language ids must follow <|startoftranscript|> in the order of
    `LANGUAGES`, because the tokenizer computes a language's id as `sot_id + 1 + index`."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    return [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *(f"<|{code}|>" for code in LANGUAGES),
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nocaptions|>",  # the no-speech token: generation uses no_timestamps_token_id - 1
        "<|notimestamps|>",
    ]


def build_whisper_tokenizer() -> WhisperTokenizer:
    """A `WhisperTokenizer` from scratch: 256 byte symbols + a few merges, then the special tokens, then the 1501
    timestamp tokens (non-special, ids > <|notimestamps|>), as in the real checkpoints."""
    from tokenizers import AddedToken
    from transformers import WhisperTokenizer

    vocab = {symbol: i for i, symbol in enumerate(byte_symbols())}
    for left, right in WHISPER_MERGES:
        vocab[left + right] = len(vocab)
    tokenizer = WhisperTokenizer(
        vocab=vocab,
        merges=list(WHISPER_MERGES),
        pad_token="<|endoftext|>",
        extra_special_tokens=whisper_special_tokens(),
        model_max_length=64,
    )
    timestamps = [f"<|{i * TIME_PRECISION:.2f}|>" for i in range(1501)]
    tokenizer.add_tokens([AddedToken(t, lstrip=False, rstrip=False, normalized=False) for t in timestamps])
    tokenizer.set_prefix_tokens()  # rebuild the post-processor now that every prefix token has its id
    return tokenizer


def whisper_generation_config(tokenizer: WhisperTokenizer, multilingual: bool, max_length: int) -> GenerationConfig:
    """A generation config shaped like the real Whisper's (no suppressed tokens, no forced decoder ids)."""
    from transformers import GenerationConfig
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    ids = tokenizer.convert_tokens_to_ids
    eos = ids("<|endoftext|>")
    config = GenerationConfig(
        bos_token_id=eos,
        eos_token_id=eos,
        pad_token_id=eos,
        decoder_start_token_id=ids("<|startoftranscript|>"),
        max_length=max_length,
        begin_suppress_tokens=[ids("Ġ"), eos],
        suppress_tokens=[],
        forced_decoder_ids=None,
        alignment_heads=[[0, 0], [0, 1]],
        no_timestamps_token_id=ids("<|notimestamps|>"),
        prev_sot_token_id=ids("<|startofprev|>"),
        max_initial_timestamp_index=50,
        return_timestamps=False,
        is_multilingual=multilingual,
    )
    if multilingual:
        config.lang_to_id = {f"<|{code}|>": ids(f"<|{code}|>") for code in LANGUAGES}
        config.task_to_id = {task: ids(f"<|{task}|>") for task in WHISPER_TASKS}
    return config


def save_tiny_whisper_asr(path: Path, multilingual: bool = False) -> Path:
    """A 1+1-layer, 32-hidden Whisper seq2seq model (16 mel bins, 30 s positions, 64 target positions) with a
    `WhisperProcessor` (feature extractor + from-scratch tokenizer) and a Whisper-style generation config.

    Ids: <|endoftext|> 260 (eos = pad = bos), <|startoftranscript|> 261 (decoder start), <|en|> 262, <|de|> 264,
    <|fr|> 268, <|translate|> 362, <|transcribe|> 363, <|notimestamps|> 367, timestamps from 368; vocab_size 1869.
    """
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration, WhisperProcessor

    tokenizer = build_whisper_tokenizer()
    eos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    torch.manual_seed(0)
    config = WhisperConfig(
        **TINY_WHISPER,
        vocab_size=len(tokenizer),
        max_source_positions=1500,
        max_target_positions=64,
        pad_token_id=eos,
        bos_token_id=eos,
        eos_token_id=eos,
        decoder_start_token_id=tokenizer.convert_tokens_to_ids("<|startoftranscript|>"),
        begin_suppress_tokens=None,  # only in generation_config.json (the config default (220, 50256) fits no vocab here)
        suppress_tokens=None,
    )
    model = WhisperForConditionalGeneration(config)
    with torch.no_grad():  # damp the (tied) timestamp-token rows, or the random model emits timestamps and
        # generate() restarts on every one (5 new tokens asked, 75 returned)
        model.get_output_embeddings().weight[tokenizer.convert_tokens_to_ids("<|notimestamps|>") + 1 :] *= 0.01
    model.generation_config = whisper_generation_config(tokenizer, multilingual, config.max_target_positions)
    model.save_pretrained(path)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=16), tokenizer=tokenizer).save_pretrained(
        path
    )
    return path


# --- wav2vec2 CTC --------------------------------------------------------------------------------------------------

CTC_SPECIALS = ("[PAD]", "[UNK]", "|")  # [PAD] (id 0) doubles as the CTC blank; "|" is the word delimiter


def ctc_vocab(chars: list[str]) -> dict[str, int]:
    """`{"[PAD]": 0, "[UNK]": 1, "|": 2, <chars in order>...}`; a space in `chars` is the word delimiter "|"."""
    tokens = list(CTC_SPECIALS) + [c for c in dict.fromkeys(chars) if c not in CTC_SPECIALS and c != " "]
    return {token: i for i, token in enumerate(tokens)}


def save_tiny_wav2vec2_ctc(path: Path, vocab: list[str] | None = None) -> Path:
    """A 2-layer, 32-hidden `Wav2Vec2ForCTC` (3 conv layers, 320x downsampling) with its feature extractor.

    Without `vocab` no tokenizer is saved (the vocabulary has to be built from the data); with one (characters) also
    a `Wav2Vec2CTCTokenizer` over `ctc_vocab(vocab)` and a `Wav2Vec2Processor`, with vocab_size and pad_token_id of
    the config matching it.
    """
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    token_ids = ctc_vocab(vocab) if vocab is not None else None
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        vocab_size=len(token_ids) if token_ids else 32,
        pad_token_id=0,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_feat_extract_layers=3,
        conv_dim=(16, 16, 16),
        conv_stride=(5, 8, 8),  # 320x downsampling: 50 frames/s like the real wav2vec2 (40x was ~5x slower to train)
        conv_kernel=(10, 8, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        initializer_range=0.1,  # a larger init shortens CTC's all-blank plateau (~200 -> ~100 steps)
        mask_time_prob=0.0,
        hidden_dropout=0.0,  # no dropout/layerdrop: attention dropout alone made a CPU training step ~5x slower
        activation_dropout=0.0,
        attention_dropout=0.0,
        final_dropout=0.0,
        layerdrop=0.0,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
    )
    Wav2Vec2ForCTC(config).save_pretrained(path)
    feature_extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True, **feature_extractor_kwargs())
    if token_ids is None:
        feature_extractor.save_pretrained(path)
        return path
    path.mkdir(parents=True, exist_ok=True)
    vocab_file = path / "vocab.json"
    vocab_file.write_text(json.dumps(token_ids, ensure_ascii=False), encoding="utf-8")
    tokenizer = Wav2Vec2CTCTokenizer(  # no <s>/</s>: they would be added tokens, making len(tokenizer) > vocab_size
        str(vocab_file), unk_token="[UNK]", pad_token="[PAD]", word_delimiter_token="|", bos_token=None, eos_token=None
    )
    Wav2Vec2Processor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(path)
    return path


# --- synthetic speech ----------------------------------------------------------------------------------------------

LETTER_TONES = {"a": 700.0, "b": 1300.0, "c": 2100.0, "d": 3100.0}  # letter -> tone (Hz), all below 4 kHz Nyquist
SPEECH_RATES = (16000, 8000)
LETTER_SECONDS = (0.15, 0.2)  # each letter lasts 150-200 ms
LETTER_GAP = (0.04, 0.06)  # silence between the letters of a word (so "aa" is two tones)
WORD_GAP = (0.2, 0.3)  # silence between words
NOISE_STD = 0.001  # white noise over the whole clip (0.01 roughly doubled the steps a CTC model needs)
AMPLITUDE = (0.3, 0.8)  # tone amplitude range


def random_transcript(rng: np.random.Generator) -> str:
    """1-3 words of 1-3 random letters (a quarter of the letter pairs are doubles: "aa", "dbb")."""
    letters = list(LETTER_TONES)
    return " ".join("".join(rng.choice(letters, rng.integers(1, 4))) for _ in range(rng.integers(1, 4)))


def synthesize(text: str, rate: int, rng: np.random.Generator) -> np.ndarray:
    """One tone per letter (random amplitude and phase, 5 ms fades), silences between letters and words, noise."""

    def silence(bounds: tuple[float, float]) -> np.ndarray:
        return np.zeros(int(rate * rng.uniform(*bounds)), dtype=np.float32)

    pieces = [silence((0.05, 0.15))]
    for w, word in enumerate(text.split()):
        if w:
            pieces.append(silence(WORD_GAP))
        for i, letter in enumerate(word):
            if i:
                pieces.append(silence(LETTER_GAP))
            t = np.arange(int(rate * rng.uniform(*LETTER_SECONDS))) / rate
            wave = rng.uniform(*AMPLITUDE) * np.sin(2 * np.pi * LETTER_TONES[letter] * t + rng.uniform(0, 2 * np.pi))
            fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.005)
            pieces.append((wave * fade).astype(np.float32))
    pieces.append(silence((0.05, 0.15)))
    audio = np.concatenate(pieces)
    return (audio + rng.normal(0, NOISE_STD, len(audio))).astype(np.float32)


def make_speech_folder(root: Path, n_train: int = 24, seed: int = 0) -> Path:
    """`root/{train,validation,test}/metadata.csv` (`file_name,text`, file names relative to that folder) and WAV
    files alternating 16 kHz and 8 kHz; validation and test hold n_train // 3 clips each (at least 4)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    n_eval = max(4, n_train // 3)
    for split, n in (("train", n_train), ("validation", n_eval), ("test", n_eval)):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(n):
            text = "aa b" if split == "train" and i == 0 else random_transcript(rng)  # always one double letter
            rate = SPEECH_RATES[i % 2]
            name = f"{split}_{i:03d}_{rate // 1000}k.wav"
            sf.write(folder / name, synthesize(text, rate, rng), rate)
            rows.append((name, text))
        with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(("file_name", "text"))
            writer.writerows(rows)
    return root
