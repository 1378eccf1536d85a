"""What an optimizer step does to nn.Embedding rows (the tutorial's question, as tests), and
embedding tying."""

from __future__ import annotations

import pytest
import torch

from nmt.batching import collate
from nmt.config import ModelConfig
from nmt.loss import translation_loss
from nmt.model import Seq2Seq, snapshot_embeddings
from nmt.model.embeddings import Embeddings
from nmt.tokenizer import EOS_ID, PAD_ID

SRC_VOCAB, TGT_VOCAB = 30, 25
# source ids 5..9 (+ EOS) appear in the batch, the rest never do; the short sentence adds padding
SRC = [[5, 6, 7, 8], [9, 5]]
TGT = [[10, 11], [12, 13, 14]]
IN_BATCH = {5, 6, 7, 8, 9, EOS_ID}


def tiny_model(tie: bool = False, seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = ModelConfig(embedding_size=16, encoder_hidden_size=16, decoder_hidden_size=24,
                      attention_size=16, dropout=0.0, tie_embeddings=tie)
    return Seq2Seq(cfg, SRC_VOCAB, TGT_VOCAB)


def step(model: Seq2Seq, optimizer: torch.optim.Optimizer, src=SRC, tgt=TGT) -> None:
    batch = collate(src, tgt, list(range(len(src))))
    model.train()
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    loss = translation_loss(logits, batch.tgt_out, 0.1) / batch.n_tgt_tokens
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def changed_rows(before: torch.Tensor, after: torch.Tensor) -> set[int]:
    return set((before != after).any(dim=1).nonzero().squeeze(1).tolist())


def test_embedding_rows_are_a_lookup_table():
    emb = Embeddings(10, 4)
    ids = torch.tensor([[3, 7, 0]])
    assert torch.equal(emb(ids)[0, 1], emb.weight[7])


def test_padding_row_starts_at_zero():
    assert torch.all(Embeddings(10, 4).weight[PAD_ID] == 0.0)


def test_padding_row_gets_no_gradient():
    model = tiny_model()
    batch = collate(SRC, TGT, [0, 1])
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    translation_loss(logits, batch.tgt_out, 0.0).backward()
    grad = model.src_embed.weight.grad
    assert torch.all(grad[PAD_ID] == 0.0)
    assert changed_rows(torch.zeros_like(grad), grad) == IN_BATCH


@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_one_step_changes_the_source_rows_of_tokens_in_the_batch(opt):
    model = tiny_model()
    before = model.src_embed.weight.detach().clone()
    make = torch.optim.Adam if opt == "adam" else torch.optim.SGD
    step(model, make(model.parameters(), lr=0.1))
    assert IN_BATCH <= changed_rows(before, model.src_embed.weight.detach())


def test_one_sgd_step_without_weight_decay_leaves_every_other_row_unchanged():
    model = tiny_model()
    before = model.src_embed.weight.detach().clone()
    step(model, torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.0))
    assert changed_rows(before, model.src_embed.weight.detach()) == IN_BATCH


def test_one_adam_step_leaves_rows_never_seen_unchanged():
    model = tiny_model()
    before = model.src_embed.weight.detach().clone()
    step(model, torch.optim.Adam(model.parameters(), lr=0.1))
    assert changed_rows(before, model.src_embed.weight.detach()) == IN_BATCH


def test_sgd_weight_decay_moves_every_row_but_padding():
    model = tiny_model()
    before = model.src_embed.weight.detach().clone()
    step(model, torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.1))
    assert changed_rows(before, model.src_embed.weight.detach()) == set(range(1, SRC_VOCAB))


def test_adam_keeps_moving_a_row_after_its_token_leaves_the_batches():
    # Adam's running first moment keeps updating a row its token no longer appears in
    model = tiny_model()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    step(model, opt)
    before = model.src_embed.weight.detach().clone()
    step(model, opt, src=[[20, 21]], tgt=[[10]])  # none of 5..9 here
    moved = changed_rows(before, model.src_embed.weight.detach())
    assert {5, 6, 7, 8, 9} <= moved


def test_sgd_leaves_a_row_alone_once_its_token_leaves_the_batches():
    model = tiny_model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step(model, opt)
    before = model.src_embed.weight.detach().clone()
    step(model, opt, src=[[20, 21]], tgt=[[10]])
    assert changed_rows(before, model.src_embed.weight.detach()) == {20, 21, EOS_ID}


@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_padding_row_stays_exactly_zero_after_steps(opt):
    model = tiny_model()
    make = torch.optim.Adam if opt == "adam" else torch.optim.SGD
    optimizer = make(model.parameters(), lr=0.1, weight_decay=0.01)
    for _ in range(3):
        step(model, optimizer)
    assert torch.all(model.src_embed.weight[PAD_ID] == 0.0)
    assert torch.all(model.tgt_embed.weight[PAD_ID] == 0.0)


def test_snapshot_embeddings_is_a_copy():
    model = tiny_model()
    snap = snapshot_embeddings(model)
    step(model, torch.optim.SGD(model.parameters(), lr=0.1))
    assert not torch.equal(snap["src"], model.src_embed.weight)
    assert set(snap) == {"src", "tgt"}


# ----------------------------------------------------------------------------- tying


def test_tied_embeddings_share_one_tensor_with_the_output_projection():
    model = tiny_model(tie=True)
    assert model.generator.weight is model.tgt_embed.weight
    assert model.generator.weight.data_ptr() == model.tgt_embed.weight.data_ptr()


def test_tied_embeddings_count_the_table_once():
    n_untied = sum(p.numel() for p in tiny_model(tie=False).parameters())
    n_tied = sum(p.numel() for p in tiny_model(tie=True).parameters())
    assert n_untied - n_tied == TGT_VOCAB * 16


def test_untied_embeddings_are_separate_tensors():
    model = tiny_model(tie=False)
    assert model.generator.weight.data_ptr() != model.tgt_embed.weight.data_ptr()


def test_tied_embeddings_stay_shared_after_a_step_and_a_state_dict_round_trip():
    model = tiny_model(tie=True)
    step(model, torch.optim.Adam(model.parameters(), lr=0.1))
    fresh = tiny_model(tie=True, seed=1)
    fresh.load_state_dict(model.state_dict())
    assert fresh.generator.weight is fresh.tgt_embed.weight
    assert torch.equal(fresh.tgt_embed.weight, model.tgt_embed.weight)


def test_tied_padding_row_stays_exactly_zero_after_a_step():
    # the output projection gives row PAD a gradient (the softmax pushes the PAD logit down)
    # unless the model keeps it out; padding_idx only stops the lookup's gradient
    model = tiny_model(tie=True)
    step(model, torch.optim.Adam(model.parameters(), lr=0.1))
    assert torch.all(model.tgt_embed.weight[PAD_ID] == 0.0)
