"""Token-classification fixtures: synthetic NER sentences (learnable in a few steps) written as CoNLL/JSONL,
and tiny random checkpoints of three tokenizer families (WordPiece BERT, byte-level BPE RoBERTa,
sentencepiece-style Unigram XLM-R), built offline with `tokenizers` and saved with save_pretrained."""

from __future__ import annotations

import json
import random
from pathlib import Path

ENTITIES = {
    "PER": [["Anna", "Schmidt"], ["Marco"], ["Lee", "Wong", "Jr"], ["Fatima"], ["Olga", "Petrova"], ["Kofi"]],
    "LOC": [["Paris"], ["New", "York"], ["Lagos"], ["Rio", "de", "Janeiro"], ["Oslo"], ["Kyoto"]],
    "ORG": [["Acme", "Corp"], ["Unicef"], ["Red", "Cross"], ["Siemens"], ["Mozilla", "Foundation"]],
}
FRAMES = [
    "yesterday {PER} flew to {LOC} for work .",
    "{PER} joined {ORG} last spring .",
    "the office of {ORG} in {LOC} is closed .",
    "we met {PER} near {LOC} today .",
    "{ORG} hired {PER} again .",
    "nothing happened in the morning .",
]


def make_ner(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """``n`` sentences (words, IOB2 tags) from frames with entity slots."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words, tags = [], []
        for part in rng.choice(FRAMES).split():
            if part.startswith("{"):
                kind = part[1:-1]
                mention = rng.choice(ENTITIES[kind])
                words += mention
                tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(mention) - 1)
            else:
                words.append(part)
                tags.append("O")
        rows.append((words, tags))
    return rows


def long_sentence(words: int, seed: int = 1) -> tuple[list[str], list[str]]:
    """One sentence of about ``words`` words: many frames joined (entities all along it)."""
    out_words, out_tags = [], []
    for w, t in make_ner(words, seed):
        out_words += w
        out_tags += t
        if len(out_words) >= words:
            break
    return out_words, out_tags


def write_conll(path: Path, rows: list[tuple[list[str], list[str]]], sep: str = "\t") -> Path:
    lines = ["-DOCSTART-\tO", ""]
    for words, tags in rows:
        lines += [f"{w}{sep}{t}" for w, t in zip(words, tags)] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_jsonl(
    path: Path, rows: list[tuple[list[str], list[str]]], keys: tuple[str, str] = ("tokens", "ner_tags")
) -> Path:
    path.write_text("".join(json.dumps({keys[0]: w, keys[1]: t}) + "\n" for w, t in rows), encoding="utf-8")
    return path


def corpus() -> list[str]:
    words = {w for ws, _ in make_ner(200) for w in ws}
    return sorted(words) + ["unseen", "wordpiece", "tokenizer", "Zanzibar", "tweets"]


def _config(kind: str, vocab_size: int, **ids: int):
    """A tiny config of ``kind``; seeds torch so that the model built from it is the same in every session."""
    import torch
    from transformers import BertConfig, RobertaConfig, XLMRobertaConfig

    torch.manual_seed(0)

    cls = {"bert": BertConfig, "roberta": RobertaConfig, "xlmr": XLMRobertaConfig}[kind]
    return cls(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=64, max_position_embeddings=130, **ids)  # fmt: skip


def save_tiny_bert(path: Path) -> Path:
    """WordPiece: whole words for half the corpus, the rest split into ## pieces (multi-sub-token words)."""
    from transformers import BertForMaskedLM, BertTokenizerFast

    pieces = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    for i, word in enumerate(corpus()):
        if i % 2 == 0 or len(word) < 4:
            pieces.append(word)
        else:
            pieces += [word[:2], f"##{word[2:4]}", f"##{word[4:]}" if word[4:] else f"##{word[2:4]}"]
    pieces += [c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,"] + [
        f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"
    ]
    vocab = {p: i for i, p in enumerate(dict.fromkeys(pieces))}
    tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=False, model_max_length=128)
    return _save(BertForMaskedLM(_config("bert", len(vocab))), tokenizer, path)


def save_tiny_roberta(path: Path) -> Path:
    """Byte-level BPE (needs add_prefix_space=True for pre-split words)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaForMaskedLM, RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(corpus())] * 5, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])  # fmt: skip
    (path / "bpe").mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(path / "bpe"))
    vocab = json.loads((path / "bpe/vocab.json").read_text())
    merges = [tuple(line.split()) for line in (path / "bpe/merges.txt").read_text().splitlines()[1:] if line]
    tokenizer = RobertaTokenizerFast(vocab=vocab, merges=merges, model_max_length=128)
    config = _config("roberta", tokenizer.vocab_size + 5, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    return _save(RobertaForMaskedLM(config), tokenizer, path)


def save_tiny_xlmr(path: Path) -> Path:
    """Sentencepiece-style Unigram with the ▁ metaspace (XLM-R's tokenizer family)."""
    from tokenizers import SentencePieceUnigramTokenizer
    from transformers import PreTrainedTokenizerFast, XLMRobertaForMaskedLM

    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator([" ".join(corpus())] * 5, vocab_size=200, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
                           unk_token="<unk>")  # fmt: skip
    from tokenizers.processors import TemplateProcessing

    sp.post_processor = TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                           special_tokens=[("<s>", 0), ("</s>", 2)])  # fmt: skip
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=sp, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                        pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>",
                                        model_max_length=128)  # fmt: skip
    config = _config("xlmr", len(tokenizer), pad_token_id=1, bos_token_id=0, eos_token_id=2)
    return _save(XLMRobertaForMaskedLM(config), tokenizer, path)


def _save(model, tokenizer, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path
