"""Tests for nmt/batching.py: padding, token-budget batches, the deterministic shardable stream."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nmt.batching import BatchStream, ExamplePairs, collate, cut_sorted, eval_batches, length_filter, make_batches, permute
from nmt.tokenizer import BOS_ID, EOS_ID, PAD_ID


def random_examples(n: int, seed: int = 0, max_len: int = 12) -> list[tuple[list[int], list[int]]]:
    rng = random.Random(seed)
    return [
        ([rng.randrange(4, 50) for _ in range(rng.randint(1, max_len))],
         [rng.randrange(4, 50) for _ in range(rng.randint(1, max_len))])
        for _ in range(n)
    ]


def take(stream: BatchStream, n: int) -> list[list[int]]:
    return [stream.next_batch()[0].indices for _ in range(n)]


def one_epoch(stream: BatchStream) -> list[list[int]]:
    out, last = [], False
    while not last:
        batch, last = stream.next_batch()
        out.append(batch.indices)
    return out


# ----------------------------------------------------------------------------- collate

SRC = [[5, 6, 7], [8]]
TGT = [[9], [10, 11, 12, 13]]


def test_collate_appends_eos_to_the_source_and_pads_with_zero():
    b = collate(SRC, TGT, [0, 1])
    assert b.src.tolist() == [[5, 6, 7, EOS_ID], [8, EOS_ID, PAD_ID, PAD_ID]]
    assert PAD_ID == 0


def test_collate_source_lengths_count_the_eos():
    assert collate(SRC, TGT, [0, 1]).src_lengths.tolist() == [4, 2]


def test_collate_target_input_starts_with_bos():
    b = collate(SRC, TGT, [0, 1])
    assert b.tgt_in.tolist() == [[BOS_ID, 9, 0, 0, 0], [BOS_ID, 10, 11, 12, 13]]


def test_collate_target_output_ends_with_eos():
    b = collate(SRC, TGT, [0, 1])
    assert b.tgt_out.tolist() == [[9, EOS_ID, 0, 0, 0], [10, 11, 12, 13, EOS_ID]]


def test_collate_masks_are_true_exactly_on_real_tokens():
    b = collate(SRC, TGT, [0, 1])
    assert b.src_mask.tolist() == [[True] * 4, [True, True, False, False]]
    assert b.tgt_mask.tolist() == [[True, True, False, False, False], [True] * 5]
    assert b.n_src_tokens == 6 and b.n_tgt_tokens == 7


def test_collate_without_target_has_no_target_tensors():
    b = collate(SRC, None, [3, 4])
    assert b.tgt_in is None and b.tgt_out is None
    assert b.n_tgt_tokens == 0
    assert b.indices == [3, 4] and len(b) == 2


def test_collate_uses_long_tensors():
    b = collate(SRC, TGT, [0, 1])
    assert b.src.dtype == b.tgt_in.dtype == b.tgt_out.dtype == b.src_lengths.dtype == torch.long


# ----------------------------------------------------------------------------- make_batches


def test_make_batches_respects_batch_size():
    batches = make_batches([3] * 10, batch_tokens=10_000, batch_size=4, order=list(range(10)))
    assert [len(b) for b in batches] == [4, 4, 2]


def test_make_batches_respects_the_token_budget():
    lengths = [2, 3, 5, 5, 6, 9, 9, 10]
    batches = make_batches(lengths, batch_tokens=20, batch_size=100, order=list(range(8)))
    for b in batches:
        assert len(b) * max(lengths[i] for i in b) <= 20
    assert batches == [[0, 1, 2, 3], [4, 5], [6, 7]]


def test_make_batches_gives_an_over_budget_sentence_its_own_batch():
    batches = make_batches([2, 50, 2], batch_tokens=10, batch_size=100, order=[0, 1, 2])
    assert batches == [[0], [1], [2]]


def test_make_batches_keeps_the_given_order():
    order = [4, 2, 0, 3, 1]
    batches = make_batches([1] * 5, batch_tokens=100, batch_size=2, order=order)
    assert [i for b in batches for i in b] == order


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=60),
    batch_tokens=st.integers(1, 200),
    batch_size=st.integers(1, 20),
)
def test_make_batches_property_budgets_hold_and_nothing_is_lost(lengths, batch_tokens, batch_size):
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = make_batches(lengths, batch_tokens, batch_size, order)
    assert [i for b in batches for i in b] == order
    for b in batches:
        assert 1 <= len(b) <= batch_size
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= batch_tokens


def test_eval_batches_cover_every_sentence_once_and_keep_positions():
    src = [[5] * n for n in (3, 1, 7, 2, 2, 9)]
    seen = []
    for b in eval_batches(src, None, batch_size=2):
        for row, i in enumerate(b.indices):
            assert b.src[row, : len(src[i])].tolist() == src[i]
        seen += b.indices
    assert sorted(seen) == list(range(len(src)))


# ----------------------------------------------------------------------------- BatchStream

EXAMPLES = random_examples(300, seed=1)


def make_stream(seed: int = 7, rank: int = 0, world_size: int = 1, examples=EXAMPLES, **limits) -> BatchStream:
    return BatchStream(ExamplePairs(examples), batch_tokens=60, batch_size=8, seed=seed, rank=rank,
                       world_size=world_size, **limits)


def epoch_indices(stream: BatchStream, epoch: int) -> list[list[int]]:
    return [stream.global_batch(epoch, b).tolist() for b in range(len(stream.epoch_batches(epoch)))]


def test_stream_covers_every_example_exactly_once_per_epoch():
    stream = make_stream()
    for _ in range(2):
        indices = [i for b in one_epoch(stream) for i in b]
        assert sorted(indices) == list(range(len(EXAMPLES)))


def test_stream_covers_every_example_when_there_are_several_pools():
    examples = random_examples(2000, seed=2, max_len=4)
    stream = BatchStream(ExamplePairs(examples), batch_tokens=1000, batch_size=4, seed=0)  # pools of 400
    indices = [i for b in one_epoch(stream) for i in b]
    assert sorted(indices) == list(range(len(examples)))


def test_stream_batches_respect_the_budgets():
    stream = make_stream()
    for ids in one_epoch(stream):
        longest = max(max(len(EXAMPLES[i][0]), len(EXAMPLES[i][1])) + 1 for i in ids)
        assert len(ids) <= 8
        assert len(ids) == 1 or len(ids) * longest <= 60


def test_stream_batch_tensors_hold_the_examples_of_its_indices():
    stream = make_stream()
    batch, _ = stream.next_batch()
    for row, i in enumerate(batch.indices):
        src, tgt = EXAMPLES[i]
        assert batch.src[row, : len(src) + 1].tolist() == src + [EOS_ID]
        assert batch.tgt_out[row, : len(tgt) + 1].tolist() == tgt + [EOS_ID]


def test_stream_is_deterministic_for_a_seed():
    assert take(make_stream(seed=3), 60) == take(make_stream(seed=3), 60)


def test_stream_differs_between_seeds():
    assert take(make_stream(seed=3), 20) != take(make_stream(seed=4), 20)


def test_stream_order_differs_between_epochs():
    stream = make_stream()
    assert one_epoch(stream) != one_epoch(stream)


def test_stream_marks_the_last_batch_of_an_epoch_and_counts_epochs():
    stream = make_stream()
    n = stream.batches_per_epoch()
    flags = [stream.next_batch()[1] for _ in range(n)]
    assert flags == [False] * (n - 1) + [True]
    assert stream.state_dict() == {"epoch": 1, "position": 0}


@pytest.mark.parametrize("consumed", [0, 5, 41, 60])  # 41 batches is past the first epoch
def test_stream_restored_from_state_dict_gives_the_same_next_batches(consumed):
    original = make_stream()
    take(original, consumed)
    state = dict(original.state_dict())
    restored = make_stream()
    restored.load_state_dict(state)
    assert take(restored, 30) == take(original, 30)


def test_stream_batches_are_pure_function_of_seed_and_epoch():
    a = make_stream()
    take(a, 100)
    assert epoch_indices(a, 0) == epoch_indices(make_stream(), 0)


def half_budget_stream(rank: int, examples=EXAMPLES) -> BatchStream:
    """A rank of two whose per-rank budget is half of make_stream's: the same global batch."""
    return BatchStream(ExamplePairs(examples), batch_tokens=30, batch_size=4, seed=7, rank=rank, world_size=2)


def test_two_ranks_with_half_the_budget_split_the_single_process_batches():
    single, r0, r1 = make_stream(), half_budget_stream(0), half_budget_stream(1)
    for _ in range(single.batches_per_epoch() + 5):  # into the second epoch
        whole, _ = single.next_batch()
        (a, _), (b, _) = r0.next_batch(), r1.next_batch()
        if b.is_filler:  # a one-sentence batch: rank 0 has it, rank 1 a copy that weighs nothing
            assert a.indices == b.indices == whole.indices
        else:
            assert not set(a.indices) & set(b.indices)
            assert sorted(a.indices + b.indices) == sorted(whole.indices)
            assert b.norm_tokens == whole.n_tgt_tokens / 2
        assert a.norm_tokens == whole.n_tgt_tokens / 2


def test_single_process_divides_the_loss_by_its_own_target_tokens():
    batch, _ = make_stream().next_batch()
    assert batch.norm_tokens == batch.n_tgt_tokens


def test_a_rank_left_without_a_sentence_gets_a_filler_that_weighs_nothing():
    examples = [([5] * 90, [6] * 90)]  # one sentence, two ranks
    a, _ = BatchStream(ExamplePairs(examples), batch_tokens=10, batch_size=4, seed=0, rank=0, world_size=2).next_batch()
    b, _ = BatchStream(ExamplePairs(examples), batch_tokens=10, batch_size=4, seed=0, rank=1, world_size=2).next_batch()
    assert not a.is_filler and a.norm_tokens == 91 / 2
    assert b.is_filler and b.indices == [0]


# ----------------------------------------------------------------------------- pieces of the stream


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 5000), seed=st.integers(0, 10**9), epoch=st.integers(0, 50))
def test_permute_is_a_permutation_of_range_n(n, seed, epoch):
    from nmt.batching import _permutation_keys

    out = permute(np.arange(n), n, _permutation_keys(seed, epoch))
    assert sorted(out.tolist()) == list(range(n))


def test_permute_of_a_slice_is_the_slice_of_the_whole_permutation():
    from nmt.batching import _permutation_keys

    keys = _permutation_keys(3, 1)
    whole = permute(np.arange(1000), 1000, keys)
    assert permute(np.arange(300, 450), 1000, keys).tolist() == whole[300:450].tolist()


@settings(max_examples=200, deadline=None)
@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=60), tokens=st.integers(1, 200),
       size=st.integers(1, 12))
def test_cut_sorted_cuts_as_make_batches_does(lengths, tokens, size):
    lengths = sorted(lengths)
    expected = make_batches(lengths, tokens, size, range(len(lengths)))
    assert [list(range(s, s + c)) for s, c in cut_sorted(lengths, tokens, size)] == expected


def test_the_length_limits_leave_long_pairs_out_of_every_batch_and_are_counted():
    stream = make_stream(max_src_len=6, max_tgt_len=8)
    seen = [i for b in one_epoch(stream) for i in b]
    kept = [i for i, (s, t) in enumerate(EXAMPLES) if len(s) <= 6 and len(t) <= 8]
    assert sorted(seen) == kept and 0 < len(kept) < len(EXAMPLES)
    counts = length_filter(ExamplePairs(EXAMPLES), 6, 8, block=7)  # blocks: the counts do not depend on them
    too_src = sum(len(s) > 6 for s, _ in EXAMPLES)
    assert counts == {"kept": len(kept), "too_long_src": too_src, "too_long_tgt": len(EXAMPLES) - len(kept) - too_src}


def test_the_stream_keeps_nothing_per_pair_but_the_batch_table():
    stream = make_stream()
    plan = stream.epoch_batches(0)
    assert len(plan) == stream.batches_per_epoch() and plan.pools.shape == plan.starts.shape == plan.counts.shape
    assert int(plan.counts.sum()) == len(EXAMPLES)
