"""Sentence pairs of ids → padded, length-bucketed batches under a token budget.

The order of batches is a pure function of (seed, epoch): a stream saved as (epoch, position)
resumes at exactly the same batch. Under DDP every rank builds the same list of global batches
(the per-rank budget × world_size) and takes its own shard of each one, so N ranks together take
exactly the steps one process takes with N times the budget, without talking to each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

import numpy as np
import torch

from nmt.sampling import SubwordSampler
from nmt_runtime.batches import by_length, make_batches, pad_ids
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
    return torch.from_numpy(pad_ids(seqs))


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


class Pairs(Protocol):
    """Sentence pairs of ids by index: their lengths as arrays, the ids of a few on demand. The
    prepared dataset's memory-mapped split (nmt/dataset.py) is one; `ExamplePairs` is the other."""

    src_lengths: np.ndarray  # (pairs,) pieces, no specials
    tgt_lengths: np.ndarray  # (pairs,)

    def sentences(self, side: str, indices: Sequence[int] | np.ndarray) -> list[list[int]]: ...


class ExamplePairs:
    """Pairs held in memory as lists: for small data and for tests."""

    def __init__(self, examples: Sequence[Example]) -> None:
        self.examples = examples
        self.src_lengths = np.array([len(s) for s, _ in examples], dtype=np.int64)
        self.tgt_lengths = np.array([len(t) for _, t in examples], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.examples)

    def sentences(self, side: str, indices: Sequence[int] | np.ndarray) -> list[list[int]]:
        k = 0 if side == "src" else 1
        return [list(self.examples[int(i)][k]) for i in indices]


def within_limits(src_lengths: np.ndarray, tgt_lengths: np.ndarray, max_src: int, max_tgt: int) -> np.ndarray:
    """Which pairs training keeps: at most `max_src` source and `max_tgt` target pieces (0: no limit)."""
    keep = np.ones(len(src_lengths), dtype=bool)
    if max_src:
        keep &= src_lengths <= max_src
    if max_tgt:
        keep &= tgt_lengths <= max_tgt
    return keep


def length_filter(pairs: Pairs, max_src: int, max_tgt: int, block: int = 1 << 22) -> dict[str, int]:
    """How many pairs the length limits drop, per side (a pair too long on both counts as source),
    counted in blocks so that no array as long as the corpus is made."""
    n, kept, too_src = len(pairs.src_lengths), 0, 0
    for a in range(0, n, block):
        src = pairs.src_lengths[a : a + block]
        kept += int(within_limits(src, pairs.tgt_lengths[a : a + block], max_src, max_tgt).sum())
        too_src += int((src > max_src).sum()) if max_src else 0
    return {"kept": kept, "too_long_src": too_src, "too_long_tgt": n - kept - too_src}


def _permutation_keys(seed: int, epoch: int, rounds: int = 4) -> np.ndarray:
    rng = np.random.default_rng([seed % 2**63, epoch])
    keys = rng.integers(0, 2**63, size=(rounds, 2), dtype=np.uint64)
    keys[:, 0] |= np.uint64(1)  # odd multipliers: multiplication is a bijection mod 2^bits
    return keys


def permute(positions: np.ndarray, n: int, keys: np.ndarray) -> np.ndarray:
    """A random permutation of range(n), chosen by `keys`, evaluated at `positions` only.

    Rounds of multiply-add and xor-shift are bijections on [0, 2^bits); values that land at n or
    above go round again ("cycle walking") until they fall inside, which keeps it a bijection on
    [0, n). So an epoch's shuffle of millions of pairs needs no array of millions of indices.
    """
    bits = max(1, (n - 1).bit_length())
    mask, shift = np.uint64((1 << bits) - 1), np.uint64(bits // 2 + 1)
    y = positions.astype(np.uint64)
    todo = np.arange(len(y))
    while len(todo):
        v = y[todo]
        for a, c in keys:
            v = (v * a + c) & mask
            v ^= v >> shift
        y[todo] = v
        todo = todo[v >= n]
    return y.astype(np.int64)


def cut_sorted(lengths: list[int], batch_tokens: int, batch_size: int) -> list[tuple[int, int]]:
    """`make_batches` for lengths sorted ascending, as (start, count) runs: the longest sentence
    of a batch is then its last, so a binary search finds where each batch ends."""
    out, start, n = [], 0, len(lengths)
    while start < n:
        lo, hi = 1, min(batch_size, n - start)  # the count: 1 always fits; find the largest that does
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if lengths[start + mid - 1] * mid <= batch_tokens:
                lo = mid
            else:
                hi = mid - 1
        out.append((start, lo))
        start += lo
    return out


class BatchStream:
    """The endless, deterministic, shardable stream of training batches.

    Each epoch: a random permutation of all pairs (seed, epoch) is cut into pools of ~100 global
    batches; each pool drops the pairs over the length limits, is sorted by length (bucketing, so
    little padding) and cut under the global budget (batch_tokens and batch_size are per rank,
    so × world_size); then the order of all the epoch's batches is shuffled. Only the batch table
    (pool, start, count per batch) is kept: a batch's sentences are recomputed from its pool when
    it is its turn, so memory does not grow with the corpus. Rank r takes sentences
    r, r + world_size, … of each length-sorted global batch. Where a global batch has fewer
    sentences than there are ranks (a sentence over budget, a pool's last one), a rank left
    without one gets a filler: the batch's first sentence with an infinite `norm_tokens`, so it
    runs the same collectives but adds nothing to the gradient.
    """

    POOL_BATCHES = 100

    def __init__(
        self,
        pairs: Pairs,
        batch_tokens: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        max_src_len: int = 0,  # 0: no limit
        max_tgt_len: int = 0,
        sampler: SubwordSampler | None = None,  # subword regularization: each batch's pairs resegmented
    ) -> None:
        self.pairs = pairs
        self.sampler = sampler
        self.n = len(pairs.src_lengths)
        self.batch_tokens = batch_tokens
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.max_src_len, self.max_tgt_len = max_src_len, max_tgt_len
        self.pool_size = batch_size * world_size * self.POOL_BATCHES
        self.epoch = 0  # epochs completed
        self.position = 0  # batches of the current epoch already given out
        self._plan: tuple[int, EpochPlan] | None = None
        self._pool_cache: tuple[tuple[int, int], np.ndarray, np.ndarray] | None = None

    def _pool(self, epoch: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Pool k of `epoch`: its pairs within the length limits sorted by length (stable), and
        those lengths (+1: EOS on the source, BOS/EOS on the target)."""
        if self._pool_cache is not None and self._pool_cache[0] == (epoch, k):
            return self._pool_cache[1], self._pool_cache[2]
        positions = np.arange(k * self.pool_size, min(self.n, (k + 1) * self.pool_size))
        ids = permute(positions, self.n, _permutation_keys(self.seed, epoch))
        src, tgt = self.pairs.src_lengths[ids], self.pairs.tgt_lengths[ids]
        keep = within_limits(src, tgt, self.max_src_len, self.max_tgt_len)
        ids, src, tgt = ids[keep], src[keep], tgt[keep]
        lengths = np.maximum(src, tgt).astype(np.int64) + 1
        order = np.argsort(lengths, kind="stable")
        self._pool_cache = ((epoch, k), ids[order], lengths[order])
        return ids[order], lengths[order]

    def epoch_batches(self, epoch: int) -> EpochPlan:
        """The global batches of `epoch`, a pure function of (seed, epoch, the lengths,
        batch_tokens × world_size, batch_size × world_size)."""
        if self._plan is not None and self._plan[0] == epoch:
            return self._plan[1]
        size, tokens = self.batch_size * self.world_size, self.batch_tokens * self.world_size
        pools, starts, counts = [], [], []
        for k in range(-(-self.n // self.pool_size)):
            _, lengths = self._pool(epoch, k)
            runs = cut_sorted(lengths.tolist(), tokens, size)
            pools += [k] * len(runs)
            starts += [s for s, _ in runs]
            counts += [c for _, c in runs]
        shuffle = np.random.default_rng([self.seed % 2**63, epoch, 1]).permutation(len(pools))
        plan = EpochPlan(np.array(pools, dtype=np.int64)[shuffle], np.array(starts, dtype=np.int64)[shuffle],
                         np.array(counts, dtype=np.int64)[shuffle])
        self._plan = (epoch, plan)
        return plan

    def global_batch(self, epoch: int, b: int) -> np.ndarray:
        """The pair indices of batch `b` of `epoch`, all ranks' together, sorted by length."""
        plan = self.epoch_batches(epoch)
        ids, _ = self._pool(epoch, int(plan.pools[b]))
        return ids[plan.starts[b] : plan.starts[b] + plan.counts[b]]

    def batches_per_epoch(self) -> int:
        return len(self.epoch_batches(self.epoch))

    def next_batch(self) -> tuple[Batch, bool]:
        """This rank's shard of the next global batch, and whether it is the last of its epoch."""
        epoch, b = self.epoch, self.position
        global_ids = self.global_batch(epoch, b)
        self.position += 1
        last = self.position == self.batches_per_epoch()
        if last:
            self.epoch += 1
            self.position = 0
        mine = slice(self.rank, None, self.world_size) if self.rank < len(global_ids) else slice(0, 1)
        ids = global_ids[mine].tolist()
        if self.sampler is None:
            src, tgt = self.pairs.sentences("src", ids), self.pairs.sentences("tgt", ids)
            global_tokens = int(self.pairs.tgt_lengths[global_ids].sum()) + len(global_ids)  # +1 each: EOS
        else:  # every rank resegments the whole global batch the same way, so the token count agrees
            every = global_ids.tolist()
            src_all = self.sampler.resample("src", self.pairs.sentences("src", every), epoch, b)
            tgt_all = self.sampler.resample("tgt", self.pairs.sentences("tgt", every), epoch, b)
            src, tgt = src_all[mine], tgt_all[mine]
            global_tokens = sum(len(t) for t in tgt_all) + len(tgt_all)
        batch = collate(src, tgt, ids)
        filler = self.rank >= len(global_ids)
        batch.norm_tokens = float("inf") if filler else global_tokens / self.world_size
        return batch, last

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])


@dataclass
class EpochPlan:
    """An epoch's global batches in the order they are taken: batch b is the run of `counts[b]`
    pairs from `starts[b]` of length-sorted pool `pools[b]`."""

    pools: np.ndarray  # (batches,)
    starts: np.ndarray  # (batches,)
    counts: np.ndarray  # (batches,)

    def __len__(self) -> int:
        return len(self.pools)


def eval_batches(
    src: Sequence[list[int]],
    tgt: Sequence[list[int]] | None,
    batch_size: int,
    batch_tokens: int = 1 << 30,
) -> Iterator[Batch]:
    """Batches for evaluation/translation: sorted by length for speed; `Batch.indices` gives the
    original positions so results can be put back in input order."""
    lengths, order = by_length(src)
    for ids in make_batches(lengths, batch_tokens, batch_size, order):
        yield collate(
            [src[i] for i in ids], None if tgt is None else [tgt[i] for i in ids], ids
        )
