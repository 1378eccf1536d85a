"""A run's data: corpus files → sentencepiece models → encoded, length-filtered pairs → the batch
stream, and what a run records about them (the fingerprint its resume checks, token counts).

The trainer, the benchmark and `nmt average` take their data from here, so how a corpus becomes
batches is decided in one place. Special ids and the word marker are the tokenizer's.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import torch

from nmt.batching import BatchStream, Example
from nmt.config import Config
from nmt.corpus import Corpus, load_corpus
from nmt.errors import NmtError
from nmt.tokenizer import Tokenizer, train_tokenizer


def train_tokenizers(cfg: Config, train: Corpus, where: str = "config") -> tuple[Tokenizer, Tokenizer]:
    """The run's sentencepiece models (one joint model twice, or one per side), in memory."""
    tk = cfg.tokenizer
    common: dict[str, Any] = dict(
        model_type=tk.type,
        character_coverage=tk.character_coverage,
        max_sentences=tk.max_sentences,
        hard_vocab_limit=tk.hard_vocab_limit,
        seed=cfg.train.seed,
    )
    if tk.joint:
        tok = train_tokenizer(train.src + train.tgt, tk.src_vocab_size,
                              vocab_key=f"{where}: key 'tokenizer.src_vocab_size'", **common)
        return tok, tok
    return (
        train_tokenizer(train.src, tk.src_vocab_size, vocab_key=f"{where}: key 'tokenizer.src_vocab_size'", **common),
        train_tokenizer(train.tgt, tk.tgt_vocab_size, vocab_key=f"{where}: key 'tokenizer.tgt_vocab_size'", **common),
    )


def encode_pairs(
    corpus: Corpus, src_tok: Tokenizer, tgt_tok: Tokenizer, max_src: int, max_tgt: int
) -> tuple[list[Example], dict[str, int]]:
    """Tokenize a corpus and drop pairs over the length limits; return the drop counts."""
    src_ids, tgt_ids = src_tok.encode_batch(corpus.src), tgt_tok.encode_batch(corpus.tgt)
    examples, too_long_src, too_long_tgt = [], 0, 0
    for s, t in zip(src_ids, tgt_ids):
        if len(s) > max_src:
            too_long_src += 1
        elif len(t) > max_tgt:
            too_long_tgt += 1
        else:
            examples.append((s, t))
    return examples, {"too_long_src": too_long_src, "too_long_tgt": too_long_tgt}


def data_fingerprint(examples: list[Example]) -> str:
    """sha256 of the training pairs' ids in corpus order: what the saved stream position (epoch,
    batch) refers to, so a resumed run can refuse training data that changed since the save."""
    return hashlib.sha256(json.dumps(examples, separators=(",", ":")).encode()).hexdigest()


def count_tokens(examples: list[Example], src_vocab: int, tgt_vocab: int) -> dict[str, torch.Tensor]:
    """How often each id occurs in the training pairs: {"src": (src_vocab,), "tgt": (tgt_vocab,)}."""
    src = torch.tensor([i for s, _ in examples for i in s], dtype=torch.long)
    tgt = torch.tensor([i for _, t in examples for i in t], dtype=torch.long)
    return {"src": torch.bincount(src, minlength=src_vocab), "tgt": torch.bincount(tgt, minlength=tgt_vocab)}


@dataclass
class TrainingData:
    """The encoded training pairs and what the run logs and records about them."""

    examples: list[Example]
    fingerprint: str  # see data_fingerprint
    dropped: dict[str, int]  # pairs over the length limits, per side

    def stream(self, cfg: Config, rank: int = 0, world_size: int = 1) -> BatchStream:
        """The run's batches: a pure function of (seed, epoch), this rank's shard of each."""
        tc = cfg.train
        return BatchStream(self.examples, tc.batch_tokens, tc.batch_size, tc.seed, rank, world_size)

    def token_counts(self, src_tok: Tokenizer, tgt_tok: Tokenizer) -> dict[str, torch.Tensor]:
        return count_tokens(self.examples, len(src_tok), len(tgt_tok))

    def describe(self, cfg: Config) -> str:
        d = cfg.data
        return (f"length filter: kept {len(self.examples)} pairs; dropped {self.dropped['too_long_src']} with "
                f"source > {d.max_src_len} pieces and {self.dropped['too_long_tgt']} with target > {d.max_tgt_len}")


def training_data(cfg: Config, train: Corpus, src_tok: Tokenizer, tgt_tok: Tokenizer,
                  where: str = "config") -> TrainingData:
    """Encode and length-filter the training corpus; refuse a filter that leaves nothing."""
    d = cfg.data
    examples, dropped = encode_pairs(train, src_tok, tgt_tok, d.max_src_len, d.max_tgt_len)
    if not examples:
        raise NmtError(f"{d.train}: the length filter removed every pair; raise 'data.max_src_len' / "
                       f"'data.max_tgt_len' in {where}")
    return TrainingData(examples, data_fingerprint(examples), dropped)


def dev_corpus(cfg: Config) -> Corpus:
    """The dev pairs that validation scores: the first `train.dev_max_sentences` (0: all)."""
    dev = load_corpus(cfg.data.dev, cfg.data, "dev")
    n = cfg.train.dev_max_sentences
    return Corpus(dev.src[:n], dev.tgt[:n], "dev") if n else dev


@dataclass
class DevSet:
    """The dev pairs as ids (for the loss and for decoding) and the reference texts (for BLEU)."""

    src_ids: list[list[int]]
    tgt_ids: list[list[int]]
    references: list[str]

    @classmethod
    def load(cls, cfg: Config, src_tok: Tokenizer, tgt_tok: Tokenizer) -> "DevSet":
        dev = dev_corpus(cfg)
        return cls(src_tok.encode_batch(dev.src), tgt_tok.encode_batch(dev.tgt), dev.tgt)

    def __len__(self) -> int:
        return len(self.src_ids)
