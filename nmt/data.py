"""A run's data: the prepared dataset (nmt/dataset.py) → length-filtered pairs → the batch stream,
and what a run records about them (the fingerprint its resume checks, token counts).

The trainer, the benchmark and `nmt average` take their data from here, so how a corpus becomes
batches is decided in one place. The length filter is applied here, on the lengths arrays, not
when preparing: it is a training setting, and one prepared corpus serves runs with any limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nmt.batching import BatchStream, length_filter, within_limits
from nmt.config import Config
from nmt.corpus import Corpus, load_corpus
from nmt.dataset import SIDES, Dataset, Split
from nmt.errors import NmtError
from nmt.sampling import SubwordSampler
from nmt.tokenizer import Tokenizer

FINGERPRINT_PREFIX = "prepared-v1:"  # older nmt saved a sha256 of all ids, without a prefix


@dataclass
class TrainingData:
    """The prepared training split, the length limits, and what the run logs and records."""

    split: Split
    fingerprint: str  # what the saved stream position refers to; a resume refuses another
    filtered: dict[str, int]  # {"kept", "too_long_src", "too_long_tgt"}: pairs per the length limits
    max_src_len: int
    max_tgt_len: int
    tokenizers: tuple[Tokenizer, Tokenizer]  # the prepared ids' models: what subword sampling resegments with

    def stream(self, cfg: Config, rank: int = 0, world_size: int = 1) -> BatchStream:
        """The run's batches: a pure function of (seed, epoch), this rank's shard of each."""
        tc, tk = cfg.train, cfg.tokenizer
        sampler = None
        if tk.sampling_alpha:
            sampler = SubwordSampler(*self.tokenizers, tk.sampling_alpha, tk.nbest_size, tc.seed)
        return BatchStream(self.split, tc.batch_tokens, tc.batch_size, tc.seed, rank, world_size,
                           self.max_src_len, self.max_tgt_len, sampler)

    def token_counts(self, block: int = 1 << 20) -> dict[str, torch.Tensor]:
        """How often each id occurs in the pairs that training sees: the prepared counts of all
        pairs, less the ids of the pairs over the length limits (gathered a block at a time)."""
        out = {}
        for side in SIDES:
            s = self.split.sides[side]
            counts = np.array(s.counts, dtype=np.int64)
            for a in range(0, len(self.split), block):
                src, tgt = self.split.src_lengths[a : a + block], self.split.tgt_lengths[a : a + block]
                dropped = a + np.flatnonzero(~within_limits(src, tgt, self.max_src_len, self.max_tgt_len))
                if len(dropped):
                    starts, lens = s.offsets[dropped], s.lengths[dropped].astype(np.int64)
                    # the positions of the dropped pairs' ids: each start, then +1 … +len-1
                    first = np.repeat(starts - np.cumsum(lens) + lens, lens)
                    counts -= np.bincount(s.ids[first + np.arange(int(lens.sum()))], minlength=len(counts))
            out[side] = torch.from_numpy(counts)
        return out

    def describe(self) -> str:
        f = self.filtered
        return (f"length filter: kept {f['kept']} pairs; dropped {f['too_long_src']} with source > "
                f"{self.max_src_len} pieces and {f['too_long_tgt']} with target > {self.max_tgt_len}")


def training_data(cfg: Config, dataset: Dataset, where: str = "config") -> TrainingData:
    """The training split of a prepared dataset under the config's length limits; refuse limits
    that leave nothing."""
    d = cfg.data
    split = dataset.split("train")
    filtered = length_filter(split, d.max_src_len, d.max_tgt_len)
    if not filtered["kept"]:
        raise NmtError(f"{d.train}: the length filter removed every pair; raise 'data.max_src_len' / "
                       f"'data.max_tgt_len' in {where}")
    return TrainingData(split, FINGERPRINT_PREFIX + dataset.training_fingerprint(), filtered,
                        d.max_src_len, d.max_tgt_len, dataset.tokenizers())


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
    def load(cls, cfg: Config, dataset: Dataset) -> "DevSet":
        """The ids from the prepared dev split, the references from the dev text itself."""
        split, n = dataset.split("dev"), cfg.train.dev_max_sentences
        references = dev_corpus(cfg).tgt
        if len(references) != min(n or len(split), len(split)):
            raise NmtError(f"{dataset.path}: its dev split has {len(split)} pairs but {cfg.data.dev} has "
                           f"{len(references)}; rebuild the prepared data: nmt prepare CONFIG --force")
        return cls(split.all("src", n), split.all("tgt", n), references)

    def __len__(self) -> int:
        return len(self.src_ids)
