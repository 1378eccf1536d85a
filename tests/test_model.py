"""Tests for nmt/model/seq2seq.py and decoder.py: shapes, input feeding, the state (step by step =
teacher forcing for every cell and attention: tests/test_architectures.py; the fused training
unroll against the step-by-step one: tests/test_fused.py)."""

from __future__ import annotations

import pytest
import torch

from nmt.batching import collate
from nmt.config import ModelConfig
from nmt.model import Seq2Seq
from nmt.tokenizer import BOS_ID, PAD_ID

SRC_VOCAB, TGT_VOCAB = 30, 25
SRC = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
TGT = [[5, 6, 7], [8, 9, 10, 11, 12, 13], [14]]


def tiny_model(layers: int = 1, tie: bool = False, dropout: float = 0.0, feeding: bool = False) -> Seq2Seq:
    torch.manual_seed(0)
    cfg = ModelConfig(embedding_size=16, encoder_hidden_size=12, decoder_hidden_size=20, attention_size=14,
                      encoder_layers=layers, decoder_layers=layers, dropout=dropout, tie_embeddings=tie,
                      input_feeding=feeding)
    return Seq2Seq(cfg, SRC_VOCAB, TGT_VOCAB)


@pytest.fixture
def batch():
    return collate(SRC, TGT, list(range(len(SRC))))


def test_forward_logits_shape(batch):
    logits, _ = tiny_model()(batch.src, batch.src_lengths, batch.tgt_in)
    assert logits.shape == (3, batch.tgt_in.size(1), TGT_VOCAB)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("arch", [("gru", "bahdanau", False), ("gru", "bahdanau", True), ("lstm", "luong_general", False),
                                  ("gru", "luong_dot", True)])  # (cell, attention, input feeding)
def test_the_logits_of_the_real_tokens_only_give_the_whole_loss_and_gradients(batch, dropout, arch):
    # training keeps the output layer and the loss off padding (nmt/optim.py): the same function
    from nmt.loss import translation_loss

    real = batch.tgt_out != PAD_ID
    rnn_type, attention, feeding = arch
    results = []
    for keep in (None, real):
        torch.manual_seed(0)
        cfg = ModelConfig(embedding_size=16, encoder_hidden_size=12, decoder_hidden_size=24, attention_size=14,
                          dropout=dropout, input_feeding=feeding, rnn_type=rnn_type, attention=attention)
        model = Seq2Seq(cfg, SRC_VOCAB, TGT_VOCAB).train()
        torch.manual_seed(1)  # the same dropout masks
        logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in, keep)
        loss = translation_loss(logits, batch.tgt_out if keep is None else batch.tgt_out[keep], 0.1)
        loss.backward()
        results.append((logits, loss, {n: p.grad for n, p in model.named_parameters()}))
    (full, loss_full, grads_full), (only, loss_only, grads_only) = results
    assert only.shape == (int(real.sum()), TGT_VOCAB)
    torch.testing.assert_close(only, full[real], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(loss_only, loss_full, atol=1e-5, rtol=1e-6)
    for name in grads_full:
        torch.testing.assert_close(grads_only[name], grads_full[name], atol=1e-6, rtol=1e-5, msg=name)


def test_forward_attention_shape(batch):
    _, attention = tiny_model()(batch.src, batch.src_lengths, batch.tgt_in)
    assert attention.shape == (3, batch.tgt_in.size(1), batch.src.size(1))


def test_forward_attention_is_zero_on_source_padding_and_sums_to_one(batch):
    _, attention = tiny_model()(batch.src, batch.src_lengths, batch.tgt_in)
    pad = (batch.src == PAD_ID).unsqueeze(1).expand_as(attention)
    assert torch.all(attention[pad] == 0.0)
    torch.testing.assert_close(attention.sum(-1), torch.ones(attention.shape[:2]))


def test_decode_step_shapes(batch):
    model = tiny_model().eval()
    state = model.encode(batch.src, batch.src_lengths)
    log_probs, state2, weights = model.decode_step(torch.full((3,), BOS_ID), state)
    assert log_probs.shape == (3, TGT_VOCAB)
    assert weights.shape == (3, batch.src.size(1))
    assert state2.hidden.shape == state.hidden.shape == (1, 3, 20)


def test_decode_step_returns_log_probabilities(batch):
    model = tiny_model().eval()
    state = model.encode(batch.src, batch.src_lengths)
    log_probs, _, _ = model.decode_step(torch.full((3,), BOS_ID), state)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(3))


@pytest.mark.parametrize("layers", [1, 2])
def test_input_feeding_feeds_the_previous_output_into_the_next_step(batch, layers):
    model = tiny_model(layers=layers, feeding=True).eval()
    assert model.decoder.rnn.input_size == 16 + 2 * 12 + 16  # [emb(y_{t-1}) ; c_t ; o_{t-1}]
    state = model.encode(batch.src, batch.src_lengths)
    assert torch.equal(state.feed, torch.zeros(3, 16))  # o_0
    with torch.no_grad():
        _, state, _ = model.decode_step(torch.full((3,), BOS_ID), state)
        o_1 = state.feed
        assert o_1.abs().sum() > 0
        log_probs, _, _ = model.decode_step(batch.tgt_in[:, 1], state)
        # the same step with another o_{t-1}: another distribution
        changed, _, _ = model.decode_step(batch.tgt_in[:, 1], state.after_step(state.rnn_state, torch.zeros_like(o_1)))
    assert not torch.allclose(log_probs, changed)
    assert tiny_model(layers=layers).decoder.rnn.input_size == 16 + 2 * 12  # off: [emb ; c_t]


def test_decoder_state_select_reorders_rows(batch):
    model = tiny_model().eval()
    state = model.encode(batch.src, batch.src_lengths)
    picked = state.select(torch.tensor([2, 0, 0]))
    assert torch.equal(picked.hidden[:, 1], state.hidden[:, 0])
    assert torch.equal(picked.memory[0], state.memory[2])
    assert torch.equal(picked.padding_bias[2], state.padding_bias[0])
    assert torch.equal(picked.attention_cache[0][0], state.attention_cache[0][2])
    assert picked.feed is None
    fed = tiny_model(feeding=True).eval().encode(batch.src, batch.src_lengths)
    fed = fed.after_step(fed.rnn_state, torch.arange(3.0).unsqueeze(1).expand(3, 16))
    assert torch.equal(fed.select(torch.tensor([2, 0, 0])).feed[:, 0], torch.tensor([2.0, 0.0, 0.0]))


def test_sentence_gets_the_same_logits_alone_and_in_a_batch(batch):
    model = tiny_model().eval()
    with torch.no_grad():
        logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
        alone = collate([SRC[1]], [TGT[1]], [0])
        logits_alone, _ = model(alone.src, alone.src_lengths, alone.tgt_in)
    torch.testing.assert_close(logits[1, : len(TGT[1]) + 1], logits_alone[0], atol=1e-5, rtol=1e-5)


def test_dropout_is_active_in_train_mode_only(batch):
    model = tiny_model(dropout=0.5)
    model.train()
    a, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    b, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    assert not torch.equal(a, b)
    model.eval()
    with torch.no_grad():
        c, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
        d, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    assert torch.equal(c, d)


def test_every_parameter_gets_a_gradient(batch):
    model = tiny_model(layers=2)
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    logits.logsumexp(-1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


@pytest.mark.parametrize("share", [False, True])
def test_table_key_names_each_side_s_embedding_table_in_the_state_dict(share):
    cfg = ModelConfig(embedding_size=8, encoder_hidden_size=4, decoder_hidden_size=4, attention_size=4)
    cfg.embeddings.share_src_tgt = share
    model = Seq2Seq(cfg, SRC_VOCAB, SRC_VOCAB)
    weights = model.state_dict()
    for side, table in model.embedding_tables().items():
        assert torch.equal(weights[Seq2Seq.table_key(side)], table)
