"""Build an offline speech-recognition set: Asterisk's English prompts (one speaker) plus other speakers to test on.

    apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en pocketsphinx-testdata
    python recipes/audio/prepare_asterisk_asr.py --out data/asterisk-asr

Writes audiofolders with a metadata.csv (`file_name` relative to the csv, `text`):
- OUT/{train,validation,test}/: the Asterisk prompts ("Allison", 8 kHz WAV, e.g. "Please try again.")
  with their transcripts from core-sounds-en.txt.gz, kept as written (case, punctuation, digits such as
  "press 1"). Split about 80/10/10 by seed over *distinct transcripts*: prompts that say the same thing
  (e.g. "Thank you." is auth-thankyou and privacy-thankyou) land in the same split, so no test sentence is
  trained on. Skipped, and counted by reason: silence/*, descriptions of non-speech ("[ascending tones]",
  "<beep ascending>"), any row with a bracketed note inside ("at [@]", "IAX (note: does not say "2")":
  the brackets are not spoken), a transcript without a wav file, and clips over --max-seconds (Whisper
  sees 30 s at most, so a longer clip's tail would be cut while its full transcript is kept).
- OUT/pocketsphinx/: 11 clips of other speakers (16 kHz) from pocketsphinx's test data, a second test set:
  cards/*.wav + cards.transcription (5 clips, card names), librivox/*.wav + transcription (5 read
  sentences from Sense and Sensibility), goforward.raw (headerless 16-bit mono 16 kHz PCM, written as
  WAV; text "go forward ten meters": the <move> rule of goforward.gram, which pocketsphinx's own tests
  decode). Their transcripts are lower case without punctuation. Other audio there has no transcript
  and is listed as skipped.
Load each split folder on its own (data.train: OUT/train ...); OUT itself also holds pocketsphinx/.
Re-running rewrites these four folders. Nothing is downloaded; the recordings stay under their own
licences and are only copied locally.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
import re
import shutil
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

SOUNDS = Path("/usr/share/asterisk/sounds/en")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")
POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")
SPLITS = ("train", "validation", "test", "pocketsphinx")
RAW_RATE = 16000  # pocketsphinx's default -samprate; headerless little-endian int16 mono
RAW_CLIPS = {"goforward.raw": "go forward ten meters"}  # the <move> rule of goforward.gram
BRACKETS = re.compile(r"[\[\]<>()]")
WHOLLY_BRACKETED = re.compile(r"^(\[[^\]]*\]|<[^>]*>|\([^)]*\))$")


def read_asterisk(sounds: Path, transcripts: Path, max_seconds: float, skipped: dict) -> list[tuple[str, Path, str]]:
    """(name, wav, text) for every usable prompt; the others go into skipped[reason]."""
    rows, named = [], set()
    with gzip.open(transcripts, "rt", encoding="utf-8") as f:
        for line in f:
            name, sep, text = line.strip().partition(": ")
            if not sep or line.startswith(";"):
                continue
            text = text.strip()
            named.add(name)
            wav = sounds / f"{name}.wav"
            if name.startswith("silence/"):
                skipped["asterisk: silence"].append(name)
            elif WHOLLY_BRACKETED.match(text):
                skipped["asterisk: description of non-speech"].append(name)
            elif BRACKETS.search(text):
                skipped["asterisk: bracketed note inside the text"].append(name)
            elif not wav.is_file():
                skipped["asterisk: no wav file"].append(name)
            elif sf.info(wav).duration > max_seconds:
                skipped[f"asterisk: longer than {max_seconds:g} s"].append(name)
            else:
                rows.append((name, wav, text))
    for wav in sorted(sounds.rglob("*.wav")):
        if wav.relative_to(sounds).with_suffix("").as_posix() not in named:
            skipped["asterisk: wav without transcript"].append(str(wav))
    return rows


def read_pocketsphinx(root: Path, skipped: dict) -> list[tuple[str, Path, str]]:
    """(output name, source file, text) for the transcribed clips; other audio there is skipped."""
    rows = []
    for transcription, folder in (
        (root / "cards/cards.transcription", "cards"),
        (root / "librivox/transcription", "librivox"),
    ):
        for line in transcription.read_text(encoding="utf-8").splitlines():
            match = re.fullmatch(r"\s*(?:<s>)?\s*(.*?)\s*(?:</s>)?\s*\((\S+)\)\s*", line)
            if match:
                rows.append((f"{folder}-{match[2]}.wav", root / folder / f"{match[2]}.wav", match[1]))
    rows += [(Path(name).with_suffix(".wav").name, root / name, text) for name, text in RAW_CLIPS.items()]
    used = {source for _, source, _ in rows}
    for path in sorted([*root.rglob("*.wav"), *root.rglob("*.raw")]):
        if path not in used:
            skipped["pocketsphinx: no transcription"].append(str(path.relative_to(root)))
    missing = [str(source) for _, source, _ in rows if not source.is_file()]
    if missing:
        raise SystemExit(f"missing pocketsphinx clips {missing}: apt-get install pocketsphinx-testdata")
    return rows


def write_split(folder: Path, rows: list[tuple[str, Path, str]]) -> float:
    """Copy (or convert .raw) the clips into folder, write metadata.csv, return the total seconds."""
    seconds = 0.0
    folder.mkdir(parents=True)
    with open(folder / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file_name", "text"])
        for file_name, source, text in rows:
            target = folder / file_name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.suffix == ".raw":
                sf.write(target, np.fromfile(source, dtype="<i2"), RAW_RATE, subtype="PCM_16")
            else:
                shutil.copyfile(source, target)
            seconds += sf.info(target).duration
            writer.writerow([file_name, text])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="data/asterisk-asr", help="output root")
    parser.add_argument("--sounds", default=str(SOUNDS), help="Asterisk English prompts (*.wav, subfolders)")
    parser.add_argument("--transcripts", default=str(TRANSCRIPTS), help="core-sounds-en.txt.gz")
    parser.add_argument("--pocketsphinx", default=str(POCKETSPHINX), help="pocketsphinx test data")
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--test-fraction", type=float, default=0.1)
    parser.add_argument("--max-seconds", type=float, default=30.0, help="skip longer prompts (Whisper: 30 s)")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    if not Path(args.transcripts).is_file() or not Path(args.sounds).is_dir():
        raise SystemExit("no Asterisk prompts: apt-get install asterisk-core-sounds-en-wav asterisk-core-sounds-en")
    skipped: dict[str, list[str]] = defaultdict(list)
    prompts = read_asterisk(Path(args.sounds), Path(args.transcripts), args.max_seconds, skipped)
    others = read_pocketsphinx(Path(args.pocketsphinx), skipped)

    # split distinct transcripts (lower case, letters and digits only) so that repeats share a split
    groups: dict[str, list] = defaultdict(list)
    for name, wav, text in prompts:
        groups[" ".join(re.findall(r"[a-z0-9]+", text.lower()))].append((f"{name}.wav", wav, text))
    keys = sorted(groups)
    random.Random(args.seed).shuffle(keys)
    n_test, n_val = round(len(keys) * args.test_fraction), round(len(keys) * args.validation_fraction)
    chosen = {"test": keys[:n_test], "validation": keys[n_test : n_test + n_val], "train": keys[n_test + n_val :]}
    splits = {name: sorted(row for key in part for row in groups[key]) for name, part in chosen.items()}
    splits["pocketsphinx"] = others

    out = Path(args.out)
    for name in SPLITS:
        shutil.rmtree(out / name, ignore_errors=True)
    print(f"wrote {out}:")
    total = 0.0
    for name in SPLITS:
        seconds = write_split(out / name, splits[name])
        total += seconds
        print(f"  {name:12s} {len(splits[name]):4d} clips {seconds:7.1f} s")
    print(
        f"  total        {sum(map(len, splits.values())):4d} clips {total:7.1f} s ({len(keys)} distinct prompt texts)"
    )
    print(f"skipped {sum(map(len, skipped.values()))}:")
    for reason, names in sorted(skipped.items()):
        print(f"  {reason}: {len(names)} ({', '.join(names[:12])}{', ...' if len(names) > 12 else ''})")


if __name__ == "__main__":
    main()
