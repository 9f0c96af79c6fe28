"""Builders for the audio tests: tiny random checkpoints (save_pretrained) and an audiofolder written with soundfile."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TONES = {"low": 300.0, "high": 2500.0}  # class -> tone frequency (Hz): learnable in a few steps
RATES = (8000, 44100)


def tone(freq: float, rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """A tone with random phase, amplitude and onset, plus a little noise."""
    t = np.arange(int(rate * seconds)) / rate
    wave = rng.uniform(0.2, 0.8) * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi))
    wave[: int(rng.uniform(0, 0.2) * len(wave))] = 0.0
    return (wave + rng.normal(0, 0.01, len(wave))).astype(np.float32)


def make_audio_folder(root: Path, n_per_class: int = 16, seconds: float = 0.5, seed: int = 0) -> Path:
    """`root/<class>/*.wav` at 8 kHz and 44.1 kHz (alternating), plus one stereo FLAC and one corrupt WAV."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    for label, freq in TONES.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            rate = RATES[i % 2]
            sf.write(root / label / f"{label}_{i}_{rate}.wav", tone(freq, rate, seconds, rng), rate)
    stereo = np.stack([tone(TONES["high"], 22050, seconds, rng)] * 2, axis=1)
    sf.write(root / "high" / "stereo.flac", stereo, 22050)
    (root / "low" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(100))
    return root


def feature_extractor_kwargs() -> dict:
    return {"feature_size": 1, "sampling_rate": 16000, "padding_value": 0.0, "do_normalize": True}


def save_tiny_wav2vec2(path: Path) -> Path:
    """A 2-layer, 32-hidden wav2vec2 classifier (2 conv layers, 40x downsampling) with its feature extractor."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    torch.manual_seed(0)
    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_feat_extract_layers=2,
        conv_dim=(16, 16),
        conv_stride=(5, 8),
        conv_kernel=(10, 8),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        classifier_proj_size=16,
        mask_time_prob=0.0,
    )
    Wav2Vec2ForSequenceClassification(config).save_pretrained(path)
    Wav2Vec2FeatureExtractor(return_attention_mask=True, **feature_extractor_kwargs()).save_pretrained(path)
    return path


# A 1+1-layer, 32-hidden Whisper over 16 mel bins (classification and speech-recognition tests). The larger init
# lets it learn within a few steps (with 0.02, 200 steps at lr 3e-3 left the speech-recognition train WER at ~0.9).
TINY_WHISPER = {
    "d_model": 32,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 64,
    "decoder_ffn_dim": 64,
    "num_mel_bins": 16,
    "init_std": 0.2,
}


def save_tiny_whisper(path: Path) -> Path:
    """A 1-layer, 32-hidden Whisper encoder classifier (16 mel bins, 30 s positions) with its feature extractor."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForAudioClassification

    torch.manual_seed(0)
    config = WhisperConfig(**TINY_WHISPER, classifier_proj_size=16)
    WhisperForAudioClassification(config).save_pretrained(path)
    WhisperFeatureExtractor(feature_size=16).save_pretrained(path)
    return path


def save_tiny_ast(path: Path) -> Path:
    """A 1-layer, 32-hidden Audio Spectrogram Transformer over 64 frames x 16 mel bins, with its feature extractor."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTForAudioClassification

    torch.manual_seed(0)
    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_mel_bins=16,
        max_length=64,
        patch_size=8,
        frequency_stride=8,
        time_stride=8,
    )
    ASTForAudioClassification(config).save_pretrained(path)
    ASTFeatureExtractor(num_mel_bins=16, max_length=64).save_pretrained(path)
    return path
