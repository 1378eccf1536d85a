"""Tests for nmt/model/attention.py: every attention behind the one interface (precompute once,
score a query against the cache), masked over padding."""

from __future__ import annotations

import pytest
import torch

from nmt.model.attention import ATTENTIONS, make_attention, padding_bias

BATCH, SRC_LEN, KEY, QUERY, ATTN = 3, 6, 10, 8, 7
LENGTHS = torch.tensor([6, 4, 1])


@pytest.fixture(params=list(ATTENTIONS))
def name(request) -> str:
    """Each test runs for every attention (luong_dot with a query of the key's size)."""
    return request.param


def inputs(name: str, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    query_size = KEY if name == "luong_dot" else QUERY
    attention = make_attention(name, KEY, query_size, ATTN)
    memory = torch.randn(BATCH, SRC_LEN, KEY, generator=g)
    query = torch.randn(BATCH, query_size, generator=g)
    mask = torch.arange(SRC_LEN).unsqueeze(0) < LENGTHS.unsqueeze(1)  # (batch, src_len)
    return attention, query, memory, mask


def run(name: str, seed: int = 0):
    attention, query, memory, mask = inputs(name, seed)
    context, weights = attention(query, attention.precompute(memory), memory, padding_bias(mask, memory.dtype))
    return context, weights, memory, mask


def test_a_query_of_several_steps_gives_each_step_s_result(name):
    attention, query, memory, mask = inputs(name)
    queries = torch.stack([query, query * 2, -query], 1)  # (batch, steps, query)
    cache = attention.precompute(memory)
    contexts, weights = attention(queries, cache, memory, padding_bias(mask, memory.dtype))
    assert contexts.shape == (BATCH, 3, KEY) and weights.shape == (BATCH, 3, SRC_LEN)
    for t in range(3):
        c, w = attention(queries[:, t], cache, memory, padding_bias(mask, memory.dtype))
        torch.testing.assert_close(contexts[:, t], c)
        torch.testing.assert_close(weights[:, t], w)


def test_shapes(name):
    context, weights, _, _ = run(name)
    assert context.shape == (BATCH, KEY)
    assert weights.shape == (BATCH, SRC_LEN)


def test_weights_sum_to_one_over_real_positions(name):
    _, weights, _, mask = run(name)
    torch.testing.assert_close((weights * mask).sum(1), torch.ones(BATCH))


def test_weights_are_exactly_zero_on_padding(name):
    _, weights, _, mask = run(name)
    assert torch.all(weights[~mask] == 0.0)


def test_weights_are_positive_on_real_positions(name):
    _, weights, _, mask = run(name)
    assert torch.all(weights[mask] > 0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_padding_bias_gives_the_masked_softmax_to_the_bit(name, dtype):
    # the bias, made once per batch, replaced a masked_fill at every step: the same weights
    attention, query, memory, mask = inputs(name)
    scores = attention.score(query.unsqueeze(1), attention.precompute(memory), memory).to(dtype)
    masked = torch.softmax(scores.masked_fill(~mask.unsqueeze(1), float("-inf")), dim=-1)
    _, weights = attention.weigh(scores, memory.to(dtype), padding_bias(mask, dtype))
    assert weights.dtype == dtype and torch.equal(weights, masked)


def test_single_real_position_gets_all_the_weight(name):
    _, weights, _, _ = run(name)
    assert weights[2].tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_context_is_the_weighted_sum_of_the_memory(name):
    context, weights, memory, _ = run(name)
    expected = torch.einsum("bs,bsk->bk", weights, memory)
    torch.testing.assert_close(context, expected)


def test_padding_content_does_not_change_the_result(name):
    attention, query, memory, mask = inputs(name)
    noisy = memory.clone()
    noisy[~mask] = 1e3
    c1, w1 = attention(query, attention.precompute(memory), memory, padding_bias(mask, memory.dtype))
    c2, w2 = attention(query, attention.precompute(noisy), noisy, padding_bias(mask, noisy.dtype))
    torch.testing.assert_close(w1, w2)
    torch.testing.assert_close(c1, c2)


def test_weights_depend_on_the_query(name):
    attention, query, memory, mask = inputs(name)
    keys = attention.precompute(memory)
    _, w1 = attention(query, keys, memory, padding_bias(mask, memory.dtype))
    _, w2 = attention(query + 1.0, keys, memory, padding_bias(mask, memory.dtype))
    assert not torch.allclose(w1[0], w2[0])


def test_gradients_are_finite_with_padding(name):
    attention, query, memory, mask = inputs(name)
    memory.requires_grad_(True)
    context, _ = attention(query, attention.precompute(memory), memory, padding_bias(mask, memory.dtype))
    context.sum().backward()
    assert torch.isfinite(memory.grad).all()
    assert torch.all(memory.grad[~mask] == 0.0)
