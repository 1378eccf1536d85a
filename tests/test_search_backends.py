"""The one search (runtime/nmt_runtime/search.py) on numpy arrays decodes as it does on torch
tensors: the same model, its every step handed over as numpy arrays, gives the same hypotheses
and scores on every decode option, ensembles included. What differs per library (the top k of a
row; sampling's draws) is held here; an export's own arithmetic is held by tests/test_export.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch

from helpers import random_sources, tiny_seq2seq
from nmt.search import decode as torch_decode
from nmt_runtime import search as one
from nmt_runtime.decode_options import DecodeOptions


class NumpyState:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def select(self, index: np.ndarray) -> "NumpyState":
        assert isinstance(index, np.ndarray)
        return NumpyState(self.inner.select(torch.from_numpy(index)))


class AsNumpy:
    """A torch model that the search sees as an export: numpy in, numpy out."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def encode(self, src: np.ndarray, src_lengths: np.ndarray) -> NumpyState:
        return NumpyState(self.model.encode(torch.from_numpy(src), torch.from_numpy(src_lengths)))

    def decode_step(self, prev: np.ndarray, state: NumpyState) -> tuple[np.ndarray, NumpyState, np.ndarray]:
        log_probs, inner, attention = self.model.decode_step(torch.from_numpy(prev), state.inner)
        return log_probs.numpy(), NumpyState(inner), attention.numpy()


def numpy_decode(models: list, sources: list[list[int]], options: DecodeOptions, attention: bool = False):
    with torch.inference_mode():
        return one.decode([AsNumpy(m) for m in models], sources, options, 64, lambda s, n: (s, n), attention)


OPTIONS = {
    "greedy": dict(strategy="greedy"),
    "beam 4": dict(beam=4),
    "beam 5, 3-best": dict(beam=5, n_best=3),
    "length penalty 0": dict(beam=4, length_penalty=0.0),
    "length penalty 2": dict(beam=4, length_penalty=2.0),
    "min length 6": dict(beam=3, min_length=6),
    "no repeated 2-grams": dict(beam=3, no_repeat_ngram_size=2),
    "short outputs": dict(beam=3, max_len_ratio=0.5, max_len_extra=1),
    "sample": dict(strategy="sample", seed=7, n_best=3),
    "sample, temperature 0.5, top-k 5": dict(strategy="sample", seed=3, temperature=0.5, top_k=5),
    "sample, top-p 0.8": dict(strategy="sample", seed=11, top_p=0.8),
}


@pytest.mark.parametrize("members", [1, 2], ids=["one model", "ensemble of two"])
@pytest.mark.parametrize("name", list(OPTIONS))
def test_numpy_and_torch_decode_alike_on_every_option(name, members):
    models = [tiny_seq2seq(seed=s) for s in range(members)]
    sources = random_sources(9, seed=5) + [[]]
    options = DecodeOptions.resolve(OPTIONS[name])
    want = torch_decode(models, sources, options)
    got = numpy_decode(models, sources, options)
    assert [[h.tokens for h in nbest] for nbest in got] == [[h.tokens for h in nbest] for nbest in want]
    for g, w in zip(got, want):
        assert [h.score for h in g] == pytest.approx([h.score for h in w], abs=1e-5)


def test_numpy_attention_is_the_torch_attention():
    model, sources = tiny_seq2seq(), random_sources(5, seed=2)
    options = DecodeOptions.resolve(dict(beam=3, n_best=2))
    want = torch_decode(model, sources, options, attention=True)
    got = numpy_decode([model], sources, options, attention=True)
    for g, w in zip(got, want):
        for hg, hw in zip(g, w):
            assert isinstance(hg.attention, np.ndarray) and isinstance(hw.attention, torch.Tensor)
            np.testing.assert_allclose(hg.attention, hw.attention.numpy(), atol=1e-6)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_numpy_topk_ranks_as_torch_does(k):
    x = torch.randn(6, 8)
    x[1, 2] = float("nan")  # a diverged row: NaN ranks first, as in torch.topk
    want_v, want_i = x.topk(k, dim=1)
    got_v, got_i = one.topk(x.numpy(), k)
    np.testing.assert_array_equal(got_i, want_i.numpy())
    np.testing.assert_array_equal(got_v, want_v.numpy())


@pytest.mark.parametrize("n", [5, 4000], ids=["a short row", "a long row (the block bound)"])
def test_numpy_topk_breaks_exact_ties_by_the_lower_index(n):
    x = np.zeros((1, n), dtype=np.float32)
    x[0, [1, 2, n - 1]] = 3.0
    values, ids = one.topk(x, 2)
    assert ids.tolist() == [[1, 2]] and values.tolist() == [[3.0, 3.0]]


def reference_topk(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A stable sort of each whole row: values descending, a NaN first, ties by the lower index."""
    idx = np.argsort(-np.where(np.isnan(x), np.inf, x), axis=1, kind="stable")[:, :k]
    return np.take_along_axis(x, idx, 1), idx


@settings(max_examples=300)
@given(st.integers(1, 6), st.integers(1, 3000), st.integers(1, 80), st.integers(0, 2**32 - 1),
       st.sampled_from(["plain", "ties", "mostly -inf", "a NaN"]))
def test_numpy_topk_is_a_stable_sort_of_each_row(rows, n, k, seed, kind):
    k = min(k, n)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, n)).astype(np.float32)
    if kind == "ties":
        x = np.round(x, 1)
    elif kind == "mostly -inf":
        x[rng.random((rows, n)) < 0.95] = -np.inf
    elif kind == "a NaN":
        x[0, rng.integers(n)] = np.nan
    values, ids = one.topk(x, k)
    want_values, want_ids = reference_topk(x, k)
    np.testing.assert_array_equal(values, want_values)
    np.testing.assert_array_equal(ids, want_ids)


def test_sampling_draws_each_token_at_its_probability():
    probs = np.array([0.5, 0.3, 0.15, 0.05, 0.0], dtype=np.float32)
    with np.errstate(divide="ignore"):  # log 0 = -inf: a token never drawn
        log_probs = np.log(np.tile(probs, (20000, 1)))
    generators = [np.random.default_rng(i) for i in range(20000)]
    drawn = np.asarray(one._draw(np, log_probs, DecodeOptions.resolve(dict(strategy="sample")), generators)).ravel()
    counts = np.bincount(drawn, minlength=5) / 20000
    assert counts[4] == 0
    np.testing.assert_allclose(counts[:4], probs[:4], atol=0.012)  # > 4 standard deviations of each share
