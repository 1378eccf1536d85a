"""Tests for nmt/model/attention.py: Bahdanau additive attention, masked over padding."""

from __future__ import annotations

import torch

from nmt.model.attention import BahdanauAttention

BATCH, SRC_LEN, KEY, QUERY, ATTN = 3, 6, 10, 8, 7
LENGTHS = torch.tensor([6, 4, 1])


def inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    attention = BahdanauAttention(KEY, QUERY, ATTN)
    memory = torch.randn(BATCH, SRC_LEN, KEY, generator=g)
    query = torch.randn(BATCH, QUERY, generator=g)
    mask = torch.arange(SRC_LEN).unsqueeze(0) < LENGTHS.unsqueeze(1)  # (batch, src_len)
    return attention, query, memory, mask


def run(seed: int = 0):
    attention, query, memory, mask = inputs(seed)
    context, weights = attention(query, attention.project_keys(memory), memory, mask)
    return context, weights, memory, mask


def test_shapes():
    context, weights, _, _ = run()
    assert context.shape == (BATCH, KEY)
    assert weights.shape == (BATCH, SRC_LEN)


def test_weights_sum_to_one_over_real_positions():
    _, weights, _, mask = run()
    torch.testing.assert_close((weights * mask).sum(1), torch.ones(BATCH))


def test_weights_are_exactly_zero_on_padding():
    _, weights, _, mask = run()
    assert torch.all(weights[~mask] == 0.0)


def test_weights_are_positive_on_real_positions():
    _, weights, _, mask = run()
    assert torch.all(weights[mask] > 0.0)


def test_single_real_position_gets_all_the_weight():
    _, weights, _, _ = run()
    assert weights[2].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_context_is_the_weighted_sum_of_the_memory():
    context, weights, memory, _ = run()
    expected = torch.einsum("bs,bsk->bk", weights, memory)
    torch.testing.assert_close(context, expected)


def test_padding_content_does_not_change_the_result():
    attention, query, memory, mask = inputs()
    noisy = memory.clone()
    noisy[~mask] = 1e3
    c1, w1 = attention(query, attention.project_keys(memory), memory, mask)
    c2, w2 = attention(query, attention.project_keys(noisy), noisy, mask)
    torch.testing.assert_close(w1, w2)
    torch.testing.assert_close(c1, c2)


def test_weights_depend_on_the_query():
    attention, query, memory, mask = inputs()
    keys = attention.project_keys(memory)
    _, w1 = attention(query, keys, memory, mask)
    _, w2 = attention(query + 1.0, keys, memory, mask)
    assert not torch.allclose(w1[0], w2[0])


def test_gradients_are_finite_with_padding():
    attention, query, memory, mask = inputs()
    memory.requires_grad_(True)
    context, _ = attention(query, attention.project_keys(memory), memory, mask)
    context.sum().backward()
    assert torch.isfinite(memory.grad).all()
    assert torch.all(memory.grad[~mask] == 0.0)
