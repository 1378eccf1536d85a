"""Tests for nmt/sampling.py: subword regularization (tokenizer.sampling_alpha) in the batch stream."""

from __future__ import annotations

import pytest
import torch

from helpers import assert_identical, weights
from nmt.config import load_config
from nmt.data import training_data
from nmt.prepare import find, prepare
from nmt.errors import NmtError
from nmt.sampling import SubwordSampler
from nmt.tokenizer import UNK_ID
from nmt.trainer import train

SAMPLING = {"sampling_alpha": 0.1, "nbest_size": 8}


def quiet(_: str) -> None:
    pass


@pytest.fixture
def dataset(make_config):
    return prepare(load_config(make_config()), say=quiet).dataset


def test_a_sample_spells_the_same_text_and_depends_only_on_seed_epoch_and_batch(dataset):
    src, tgt = dataset.tokenizers()
    sentences = dataset.split("train").sentences("src", list(range(40)))
    sampler = SubwordSampler(src, tgt, 0.1, 8, seed=1)
    first = sampler.resample("src", sentences, epoch=0, batch=3)
    assert [src.decode(s) for s in first] == [src.decode(s) for s in sentences]
    assert first != sentences  # some splits differ from the best one
    assert sampler.resample("src", sentences, epoch=0, batch=3) == first
    assert SubwordSampler(src, tgt, 0.1, 8, seed=1).resample("src", sentences, 0, 3) == first
    assert sampler.resample("src", sentences, epoch=1, batch=3) != first


def test_a_large_alpha_draws_the_best_split_and_unknown_pieces_keep_theirs(dataset):
    src, tgt = dataset.tokenizers()
    sentences = dataset.split("train").sentences("tgt", list(range(40)))
    assert SubwordSampler(src, tgt, 1e6, 8, seed=1).resample("tgt", sentences, 0, 0) == sentences
    with_unk = [sentences[0][:1] + [UNK_ID] + sentences[0][1:]]
    assert SubwordSampler(src, tgt, 0.1, 8, seed=1).resample("tgt", with_unk, 0, 0) == with_unk


def test_two_ranks_take_the_halves_of_one_processs_sampled_batch_and_count_its_tokens(make_config, dataset):
    cfg = load_config(make_config(tokenizer=SAMPLING))
    data = training_data(cfg, dataset)
    one, ranks = data.stream(cfg), [data.stream(cfg, r, 2) for r in range(2)]
    for r in ranks:  # the same global batches: a rank's budget is per rank
        r.batch_tokens, r.batch_size = one.batch_tokens // 2, one.batch_size // 2
    for _ in range(5):
        whole, _ = one.next_batch()
        halves = [r.next_batch()[0] for r in ranks]
        assert sorted(halves[0].indices + halves[1].indices) == sorted(whole.indices)
        assert halves[0].norm_tokens * 2 == halves[1].norm_tokens * 2 == whole.norm_tokens
        assert whole.norm_tokens == int((whole.tgt_out != 0).sum())


def test_sampling_keys_reuse_the_prepared_data_and_need_a_unigram_model(make_config):
    assert find(load_config(make_config(tokenizer=SAMPLING))) == find(load_config(make_config()))
    with pytest.raises(NmtError, match="'tokenizer.sampling_alpha' samples unigram splits, but 'tokenizer.type' is 'bpe'"):
        load_config(make_config(tokenizer={**SAMPLING, "type": "bpe"}))


def test_a_sampled_run_resumed_equals_the_run_uninterrupted(make_config):
    every = {"dev_max_sentences": 3, "validate_every": 10, "save_every": 10, "log_every": 5}
    whole = train(make_config("whole", tokenizer=SAMPLING, train={**every, "max_steps": 20}))
    part = make_config("part", tokenizer=SAMPLING, train={**every, "max_steps": 10})
    train(part)
    part["train"]["max_steps"] = 20
    assert_identical(weights(whole), weights(train(part, resume=True)))
    plain = train(make_config("plain", train={**every, "max_steps": 20}))
    assert not torch.equal(weights(plain)["src_embed.table.weight"], weights(whole)["src_embed.table.weight"])
