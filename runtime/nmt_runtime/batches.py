"""Padded batches of ids, as numpy arrays: the cut by budget that training and evaluation share,
and the length-sorted batches that decoding runs on (nmt's and the runtime's alike)."""

from __future__ import annotations

import itertools
from typing import Iterator, Sequence

import numpy as np

from nmt_runtime.tokenizer import EOS_ID, PAD_ID


def pad_ids(seqs: Sequence[list[int]]) -> np.ndarray:
    """(len(seqs), longest) int64, PAD after each sequence."""
    lengths = np.array([len(s) for s in seqs])
    out = np.full((len(seqs), int(lengths.max())), PAD_ID, dtype=np.int64)
    # row-major: the mask's True cells, in order, are the sentences one after the other
    out[np.arange(out.shape[1]) < lengths[:, None]] = np.fromiter(
        itertools.chain.from_iterable(seqs), dtype=np.int64, count=int(lengths.sum()))
    return out


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


def by_length(src: Sequence[list[int]]) -> tuple[list[int], list[int]]:
    """The sources' lengths with EOS, and their positions sorted by that length: the order every
    decoding batch is cut in (here, and nmt.batching.eval_batches for validation)."""
    lengths = [len(s) + 1 for s in src]
    return lengths, sorted(range(len(src)), key=lambda i: lengths[i])


def source_batches(src: Sequence[list[int]], batch_size: int) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """Sources to decode, `batch_size` at a time, sorted by length: (their positions in `src`, ids
    with EOS appended (batch, src_len) int64, lengths (batch,) int64)."""
    lengths, order = by_length(src)
    for ids in make_batches(lengths, 1 << 30, batch_size, order):
        yield ids, pad_ids([src[i] + [EOS_ID] for i in ids]), np.array([lengths[i] for i in ids], dtype=np.int64)
