"""Build an offline spoken-digit audiofolder: synthetic speech to train on, real human recordings to test on.

    apt-get install espeak-ng asterisk-core-sounds-en-wav
    python recipes/audio/prepare_spoken_digits.py --out data/spoken_digits

Writes OUT/{train,validation,test}/<digit word>/*.wav:
- train: espeak-ng speaking "zero" ... "nine" with random accents, voice variants, speeds and
  pitches, saved at mixed sampling rates (8 / 16 / 22.05 / 44.1 kHz, some stereo) so that hfft's
  resampling is exercised, plus one corrupt and one silent file (see data_report.json after training);
- validation: the same words from voice variants never used in train (new "speakers");
- test: the real human recordings of the digits in Asterisk's English prompts
  (/usr/share/asterisk/sounds/en/digits/0.wav ..., 8 kHz, one speaker), never trained on.
Nothing is downloaded; the recordings stay under their own licence and are only copied locally.
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd"]
TRAIN_VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "klatt", "klatt2", "Alex", "Annie", "edward"]
HELD_OUT_VARIANTS = ["m6", "m7", "f4", "f5", "klatt3", "Andy", "belinda", "john"]
RATES = [8000, 16000, 22050, 44100]


def speak(word: str, voice: str, speed: int, pitch: int) -> tuple[np.ndarray, int]:
    """One word from espeak-ng as (float32 samples, rate)."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
        check=True,
        capture_output=True,
    ).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return samples, rate


def write_synthetic(root: Path, variants: list[str], per_word: int, rng: random.Random, bad_files: bool) -> int:
    count = 0
    for word in WORDS:
        (root / word).mkdir(parents=True, exist_ok=True)
        for i in range(per_word):
            accent, variant = rng.choice(ACCENTS), rng.choice(variants)
            voice = f"{accent}+{variant}" if variant else accent
            samples, rate = speak(word, voice, rng.randint(110, 210), rng.randint(15, 85))
            target = RATES[count % len(RATES)]
            samples = soxr.resample(samples, rate, target).astype(np.float32) * rng.uniform(0.3, 1.0)
            if count % 9 == 4:
                samples = np.stack([samples, samples * 0.8], axis=1)  # stereo
            sf.write(root / word / f"{word}_{i:03d}_{target // 1000}k.wav", samples, target)
            count += 1
    if bad_files:
        (root / "three" / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(20))
        sf.write(root / "five" / "silent.wav", np.zeros(8000, np.float32), 16000)
    return count


def copy_real(source: Path, root: Path) -> int:
    count = 0
    for digit, word in enumerate(WORDS):
        path = source / f"{digit}.wav"
        if path.is_file():
            (root / word).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, root / word / f"{source.parent.name}_{digit}.wav")
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="data/spoken_digits", help="output audiofolder")
    parser.add_argument("--train-per-word", type=int, default=40)
    parser.add_argument("--validation-per-word", type=int, default=10)
    parser.add_argument("--real", default="/usr/share/asterisk/sounds/en/digits", help="real recordings (0.wav ...)")
    parser.add_argument("--no-bad-files", action="store_true", help="skip the demo corrupt/silent files")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed: apt-get install espeak-ng")
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    rng = random.Random(args.seed)
    n_train = write_synthetic(out / "train", TRAIN_VARIANTS, args.train_per_word, rng, not args.no_bad_files)
    n_val = write_synthetic(out / "validation", HELD_OUT_VARIANTS, args.validation_per_word, rng, False)
    n_test = copy_real(Path(args.real), out / "test")
    if n_test == 0:
        raise SystemExit(f"no recordings under {args.real}: apt-get install asterisk-core-sounds-en-wav")
    print(f"wrote {out}: train {n_train} synthetic (+2 bad files), validation {n_val} synthetic, test {n_test} real")


if __name__ == "__main__":
    main()
