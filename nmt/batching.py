"""Sentence pairs of ids → padded, length-bucketed batches under a token budget.

The order of batches is a pure function of (seed, epoch): a stream saved as (epoch, position)
resumes at exactly the same batch. Under DDP every rank builds the same list of global batches
(the per-rank budget × world_size) and takes its own shard of each one, so N ranks together take
exactly the steps one process takes with N times the budget, without talking to each other.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from nmt.tokenizer import BOS_ID, EOS_ID, PAD_ID

Example = tuple[list[int], list[int]]  # (source ids, target ids), no specials


@dataclass
class Batch:
    src: torch.Tensor  # (batch, src_len) source ids + EOS, padded with PAD_ID
    src_lengths: torch.Tensor  # (batch,) real lengths, EOS included
    tgt_in: torch.Tensor | None  # (batch, tgt_len) BOS + target ids, padded
    tgt_out: torch.Tensor | None  # (batch, tgt_len) target ids + EOS, padded
    indices: list[int]  # positions of these examples in the dataset
    # what the summed loss is divided by before backward: this batch's target tokens, or under
    # DDP the global batch's target tokens / world_size, because DDP averages the ranks' gradients;
    # inf for a filler (see BatchStream), whose loss then adds nothing
    norm_tokens: float | None = None

    @property
    def is_filler(self) -> bool:
        return self.norm_tokens == float("inf")

    @property
    def src_mask(self) -> torch.Tensor:
        return self.src != PAD_ID  # (batch, src_len) True on real tokens

    @property
    def tgt_mask(self) -> torch.Tensor:
        assert self.tgt_out is not None
        return self.tgt_out != PAD_ID  # (batch, tgt_len)

    @property
    def n_src_tokens(self) -> int:
        return int(self.src_lengths.sum())

    @property
    def n_tgt_tokens(self) -> int:
        return int(self.tgt_mask.sum()) if self.tgt_out is not None else 0

    def __len__(self) -> int:
        return self.src.size(0)

    def to(self, device: torch.device) -> "Batch":
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return Batch(move(self.src), self.src_lengths, move(self.tgt_in), move(self.tgt_out), self.indices,
                     self.norm_tokens)


def _pad(seqs: Sequence[list[int]]) -> torch.Tensor:
    out = torch.full((len(seqs), max(len(s) for s in seqs)), PAD_ID, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def collate(
    src: Sequence[list[int]], tgt: Sequence[list[int]] | None, indices: list[int]
) -> Batch:
    """Build a padded batch; the source gets EOS, the target BOS (input) and EOS (output)."""
    src_eos = [s + [EOS_ID] for s in src]
    lengths = torch.tensor([len(s) for s in src_eos], dtype=torch.long)
    if tgt is None:
        return Batch(_pad(src_eos), lengths, None, None, indices)
    return Batch(
        _pad(src_eos),
        lengths,
        _pad([[BOS_ID] + t for t in tgt]),
        _pad([t + [EOS_ID] for t in tgt]),
        indices,
    )


def make_batches(
    lengths: Sequence[int], batch_tokens: int, batch_size: int, order: Sequence[int]
) -> list[list[int]]:
    """Cut `order` (indices, already in the wanted order) into batches under the budgets.

    A batch holds at most `batch_size` sentences and at most `batch_tokens` padded tokens
    (sentences × the longest length in the batch). A single sentence over budget still gets a
    batch of its own.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        n = lengths[i]
        if current and (
            len(current) + 1 > batch_size or max(longest, n) * (len(current) + 1) > batch_tokens
        ):
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, n)
    if current:
        batches.append(current)
    return batches


class BatchStream:
    """The endless, deterministic, shardable stream of training batches.

    Each epoch: shuffle all pairs with (seed, epoch), sort pools of ~100 batches by length
    (bucketing, so little padding), cut them under the global budget (batch_tokens and batch_size
    are per rank, so × world_size), and shuffle the batch order. Rank r takes sentences
    r, r + world_size, … of each length-sorted global batch. Where a global batch has fewer
    sentences than there are ranks (a sentence over budget, a pool's last one), a rank left
    without one gets a filler: the batch's first sentence with an infinite `norm_tokens`, so it
    runs the same collectives but adds nothing to the gradient.
    """

    POOL_BATCHES = 100

    def __init__(
        self,
        examples: Sequence[Example],
        batch_tokens: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.examples = examples
        # +1: EOS on the source, BOS/EOS on the target
        self.lengths = [max(len(s), len(t)) + 1 for s, t in examples]
        self.batch_tokens = batch_tokens
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0  # epochs completed
        self.position = 0  # batches of the current epoch already given out
        self._cache: tuple[int, list[list[int]]] | None = None

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The global batches of `epoch` (example indices, sorted by length), a pure function of
        (seed, epoch, batch_tokens × world_size, batch_size × world_size)."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = random.Random(self.seed * 1_000_003 + epoch)
        order = list(range(len(self.examples)))
        rng.shuffle(order)
        size, tokens = self.batch_size * self.world_size, self.batch_tokens * self.world_size
        pool = size * self.POOL_BATCHES
        batches: list[list[int]] = []
        for start in range(0, len(order), pool):
            chunk = sorted(order[start : start + pool], key=lambda i: self.lengths[i])
            batches.extend(make_batches(self.lengths, tokens, size, chunk))
        rng.shuffle(batches)
        self._cache = (epoch, batches)
        return batches

    def batches_per_epoch(self) -> int:
        return len(self.epoch_batches(self.epoch))

    def next_batch(self) -> tuple[Batch, bool]:
        """This rank's shard of the next global batch, and whether it is the last of its epoch."""
        batches = self.epoch_batches(self.epoch)
        global_ids = batches[self.position]
        self.position += 1
        last = self.position == len(batches)
        if last:
            self.epoch += 1
            self.position = 0
        ids = global_ids[self.rank :: self.world_size] or global_ids[:1]
        src = [self.examples[i][0] for i in ids]
        tgt = [self.examples[i][1] for i in ids]
        batch = collate(src, tgt, ids)
        global_tokens = sum(len(self.examples[i][1]) + 1 for i in global_ids)  # +1: EOS
        filler = self.rank >= len(global_ids)
        batch.norm_tokens = float("inf") if filler else global_tokens / self.world_size
        return batch, last

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


def eval_batches(
    src: Sequence[list[int]],
    tgt: Sequence[list[int]] | None,
    batch_size: int,
    batch_tokens: int = 1 << 30,
) -> Iterator[Batch]:
    """Batches for evaluation/translation: sorted by length for speed; `Batch.indices` gives the
    original positions so results can be put back in input order."""
    lengths = [len(s) + 1 for s in src]
    order = sorted(range(len(src)), key=lambda i: lengths[i])
    for ids in make_batches(lengths, batch_tokens, batch_size, order):
        yield collate(
            [src[i] for i in ids], None if tgt is None else [tgt[i] for i in ids], ids
        )
