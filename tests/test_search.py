"""Tests for the search (nmt/search.py over runtime/nmt_runtime/search.py): batched greedy and beam search."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from helpers import random_sources, tiny_seq2seq
from nmt.batching import collate
from nmt.errors import NmtError
from nmt.search import (
    beam_search,
    greedy_search,
    length_penalty_factor,
    max_output_length,
)
from nmt.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID



@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: threads only add overhead (and contention on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def batch_of(sources: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    b = collate(sources, None, list(range(len(sources))))
    return b.src, b.src_lengths


# ----------------------------------------------------------------------------- a fake model

A, B, C = 4, 5, 6  # target ids of the fake model (0-3 are PAD, UNK, BOS, EOS)


@dataclass
class FakeState:
    mask: torch.Tensor  # (batch, src_len)

    def select(self, index: torch.Tensor) -> "FakeState":
        return FakeState(self.mask.index_select(0, index))


class MarkovModel(nn.Module):
    """p(next | previous token) from a fixed table; attention is uniform over the real source.

    Records the number of rows of every decode_step call.
    """

    def __init__(self, probs: dict[int, dict[int, float]], vocab: int = 8) -> None:
        super().__init__()
        table = torch.full((vocab, vocab), 1e-3)
        for prev, row in probs.items():
            for tok, p in row.items():
                table[prev, tok] = p
        self.log_table = torch.log(table / table.sum(1, keepdim=True))  # rows sum to 1
        self.rows_per_step: list[int] = []

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> FakeState:
        return FakeState(src != PAD_ID)

    def decode_step(self, prev: torch.Tensor, state: FakeState):
        self.rows_per_step.append(prev.size(0))
        attn = state.mask.float() / state.mask.float().sum(1, keepdim=True)
        return self.log_table[prev], state, attn

    def logp(self, tokens: list[int]) -> float:
        """log p(tokens + EOS)."""
        seq = [BOS_ID] + tokens + [EOS_ID]
        return sum(float(self.log_table[a, b]) for a, b in zip(seq, seq[1:]))


def garden_path_model() -> MarkovModel:
    """Greedy takes A (0.55), ending A C EOS (≈ 0.55·0.4·0.9); B EOS (≈ 0.45·0.9) is better."""
    return MarkovModel(
        {
            BOS_ID: {A: 0.55, B: 0.45},
            A: {C: 0.4, EOS_ID: 0.35, A: 0.25},
            B: {EOS_ID: 0.9, A: 0.05, C: 0.05},
            C: {EOS_ID: 0.9, A: 0.05, B: 0.05},
        }
    )


def never_eos_model() -> MarkovModel:
    """Always prefers A, EOS is (almost) never wanted: every output runs to its maximum length."""
    return MarkovModel({t: {A: 0.6, B: 0.3, EOS_ID: 1e-6} for t in range(8)})


# ----------------------------------------------------------------------------- tests


def test_max_output_length_is_floor_ratio_times_length_plus_extra():
    lengths = torch.tensor([1, 3, 10])
    assert max_output_length(lengths, 1.5, 10) == [11, 14, 25]
    assert max_output_length(lengths, 0.5, 0) == [0, 1, 5]


def test_length_penalty_is_gnmt():
    assert length_penalty_factor(7, 0.0) == 1.0
    assert length_penalty_factor(7, 1.0) == pytest.approx(2.0)
    assert length_penalty_factor(3, 0.6) == pytest.approx((8 / 6) ** 0.6)


def test_beam_size_one_equals_greedy_on_random_model():
    model = tiny_seq2seq()
    src, lengths = batch_of(random_sources(12))
    greedy = greedy_search(model, src, lengths)
    beam = beam_search(model, src, lengths, beam_size=1, length_penalty=0.0)
    assert len(greedy) == len(beam) == 12
    for g, b in zip(greedy, beam):
        assert len(g) == len(b) == 1
        assert g[0].tokens == b[0].tokens
        assert g[0].score == pytest.approx(b[0].score, abs=1e-5)


def test_greedy_score_is_teacher_forced_log_probability():
    model = tiny_seq2seq()
    sources = random_sources(4, seed=3)
    src, lengths = batch_of(sources)
    for i, [hyp] in enumerate(greedy_search(model, src, lengths, return_attention=True)):
        s, l = batch_of([sources[i]])
        with torch.no_grad():
            logits, attn = model(s, l, torch.tensor([[BOS_ID] + hyp.tokens]))
        target = torch.tensor(hyp.tokens + [EOS_ID])
        logp = torch.log_softmax(logits[0], -1).gather(1, target[:, None]).sum()
        assert hyp.score == pytest.approx(float(logp), abs=1e-4)
        torch.testing.assert_close(hyp.attention, attn[0], atol=1e-5, rtol=1e-4)


def test_beam_hypotheses_are_consistent_with_teacher_forcing():
    """Back-pointers: each returned hypothesis' score and attention are those of its own tokens."""
    model = tiny_seq2seq()
    sources = random_sources(5, seed=4)
    src, lengths = batch_of(sources)
    alpha = 0.8
    results = beam_search(
        model, src, lengths, beam_size=4, length_penalty=alpha, n_best=4, return_attention=True
    )
    for i, hyps in enumerate(results):
        s, l = batch_of([sources[i]])
        for hyp in hyps:
            with torch.no_grad():
                logits, attn = model(s, l, torch.tensor([[BOS_ID] + hyp.tokens]))
            target = torch.tensor(hyp.tokens + [EOS_ID])
            logp = float(torch.log_softmax(logits[0], -1).gather(1, target[:, None]).sum())
            lp = length_penalty_factor(len(target), alpha)
            assert hyp.score == pytest.approx(logp / lp, abs=1e-4)
            torch.testing.assert_close(hyp.attention, attn[0], atol=1e-5, rtol=1e-4)


def test_greedy_misses_what_beam_finds_on_fake_model():
    model = garden_path_model()
    src, lengths = batch_of([[7, 7, 7]])
    [[g]] = greedy_search(model, src, lengths)
    assert g.tokens == [A, C]
    assert g.score == pytest.approx(model.logp([A, C]))

    for k in (2, 3):
        [[b]] = beam_search(model, src, lengths, beam_size=k, length_penalty=0.0)
        assert b.tokens == [B]
        assert b.score == pytest.approx(model.logp([B]))
        assert b.score > g.score

    # with a length penalty the score is log p / lp(len), len counting the EOS
    [[b]] = beam_search(model, src, lengths, beam_size=2, length_penalty=1.0)
    assert b.tokens == [B]
    assert b.score == pytest.approx(model.logp([B]) / ((5 + 2) / 6))


def test_beam_stops_once_beam_size_hypotheses_have_finished():
    model = garden_path_model()
    src, lengths = batch_of([[7, 7, 7]])  # a limit of 14 tokens, far away
    [hyps] = beam_search(model, src, lengths, beam_size=2, n_best=2, length_penalty=0.0)
    # step 1 finishes B EOS, step 2 finishes A C EOS: two finished, so no step 3
    assert model.rows_per_step == [2, 2, 2]
    assert [h.tokens for h in hyps] == [[B], [A, C]]
    model.rows_per_step.clear()
    greedy_search(model, src, lengths)  # stops at its first EOS
    assert model.rows_per_step == [1, 1, 1]


def test_pad_and_bos_are_never_produced():
    # PAD and BOS are the model's favourites; UNK comes next and is allowed
    favourites = {PAD_ID: 0.4, BOS_ID: 0.3, UNK_ID: 0.2, EOS_ID: 0.05}
    model = MarkovModel({t: favourites for t in range(8)})
    src, lengths = batch_of([[5, 6], [7]])
    beam = beam_search(model, src, lengths, beam_size=3, n_best=3)
    for hyps in greedy_search(model, src, lengths) + beam:
        for h in hyps:
            assert PAD_ID not in h.tokens and BOS_ID not in h.tokens
    [[g], _] = greedy_search(model, src, lengths)
    assert g.tokens[0] == UNK_ID


@pytest.mark.parametrize("beam_size", [1, 4])
def test_sentence_result_does_not_depend_on_its_batch(beam_size):
    model = tiny_seq2seq()
    sources = random_sources(8, seed=6)
    src, lengths = batch_of(sources)
    run = (
        (lambda s, l: greedy_search(model, s, l))
        if beam_size == 1
        else (lambda s, l: beam_search(model, s, l, beam_size=beam_size, n_best=2))
    )
    together = run(src, lengths)
    for i, source in enumerate(sources):
        alone = run(*batch_of([source]))[0]
        assert [h.tokens for h in alone] == [h.tokens for h in together[i]]
        for a, t in zip(alone, together[i]):
            assert a.score == pytest.approx(t.score, abs=1e-4)


@pytest.mark.parametrize("ratio,extra", [(1.5, 2), (0.5, 1), (1.0, 0)])
def test_outputs_respect_per_sentence_max_length(ratio, extra):
    sources = [[5] * n for n in (1, 4, 9, 2)]
    src, lengths = batch_of(sources)
    limits = max_output_length(lengths, ratio, extra)

    # a model that never wants EOS runs every sentence to exactly its own limit
    model = never_eos_model()
    greedy = greedy_search(model, src, lengths, max_len_ratio=ratio, max_len_extra=extra)
    beam = beam_search(
        model, src, lengths, beam_size=3, n_best=3, max_len_ratio=ratio, max_len_extra=extra
    )
    for limit, [g], bs in zip(limits, greedy, beam):
        assert g.tokens == [A] * limit
        assert len(bs) == (3 if limit > 0 else 1)  # with no room for a token only [] exists
        assert all(len(b.tokens) == limit for b in bs)

    # and a random model never goes past it
    rnd = tiny_seq2seq()
    for limit, [g] in zip(limits, greedy_search(rnd, src, lengths, ratio, extra)):
        assert len(g.tokens) <= limit
    for limit, hyps in zip(limits, beam_search(rnd, src, lengths, 3, 1.0, 3, ratio, extra)):
        assert all(len(h.tokens) <= limit for h in hyps)


def test_finished_sentences_are_pruned_from_the_batch():
    model = never_eos_model()
    src, lengths = batch_of([[5] * n for n in (1, 3, 6)])  # lengths 2, 4, 7 with the EOS
    # limits with ratio 1, extra 0: 2, 4, 7 tokens → 3, 5, 8 steps
    greedy_search(model, src, lengths, max_len_ratio=1.0, max_len_extra=0)
    assert model.rows_per_step == [3] * 3 + [2] * 2 + [1] * 3
    model.rows_per_step.clear()
    beam_search(model, src, lengths, beam_size=2, max_len_ratio=1.0, max_len_extra=0)
    assert model.rows_per_step == [6] * 3 + [4] * 2 + [2] * 3


def test_n_best_gives_distinct_hypotheses_sorted_by_score():
    model = tiny_seq2seq()
    src, lengths = batch_of(random_sources(6, seed=7))
    for hyps in beam_search(model, src, lengths, beam_size=5, n_best=4, length_penalty=0.6):
        assert len(hyps) == 4
        assert len({tuple(h.tokens) for h in hyps}) == 4
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
    with pytest.raises(NmtError, match=r"n_best is 3; it must be at most the beam \(2\)"):
        beam_search(model, src, lengths, beam_size=2, n_best=3)


@pytest.mark.parametrize("beam_size", [1, 3])
def test_attention_rows_sum_to_one_over_the_real_source(beam_size):
    model = tiny_seq2seq()
    sources = random_sources(6, seed=8)
    src, lengths = batch_of(sources)
    if beam_size == 1:
        results = greedy_search(model, src, lengths, return_attention=True)
    else:
        results = beam_search(
            model, src, lengths, beam_size=beam_size, n_best=2, return_attention=True
        )
    for source, hyps in zip(sources, results):
        for h in hyps:
            assert h.attention.shape == (len(h.tokens) + 1, len(source) + 1)  # + the source EOS
            torch.testing.assert_close(h.attention.sum(1), torch.ones(len(h.tokens) + 1))
    # and none unless asked for
    plain = beam_search(model, src, lengths, beam_size=2)
    assert all(h.attention is None for hyps in plain for h in hyps)


