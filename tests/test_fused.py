"""nmt/model/fused.py, the fast one-layer training unroll, against the step-by-step reference of
decoder.py, through the switch `model.fused_decoder`: two models with the same weights; and a run
may change the switch on resume."""

from __future__ import annotations

import pytest
import torch

import nmt.model.decoder
from conftest import tiny_config_dict
from helpers import assert_same_function
from nmt.batching import collate
from nmt.checkpoint import load_checkpoint
from nmt.config import config_from_dict
from nmt.model import Seq2Seq, build_model
from nmt.trainer import train

VOCAB = 30
SRC = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
TGT = [[5, 6, 7], [8, 9, 10, 11, 12, 13], [14]]


def tiny_model(fused: bool, layers: int = 1, dropout: float = 0.0, feeding: bool = False) -> Seq2Seq:
    """conftest's model, built as the trainer builds it, with `model.fused_decoder: fused`; the
    same seed gives the same weights whatever `fused` is."""
    model = {"fused_decoder": fused, "encoder_layers": layers, "decoder_layers": layers, "dropout": dropout,
             "input_feeding": feeding}
    cfg = config_from_dict(tiny_config_dict("run", "train", "dev", model=model))
    torch.manual_seed(0)
    return build_model(cfg, VOCAB, VOCAB)


@pytest.fixture
def batch():
    return collate(SRC, TGT, list(range(len(SRC))))


@pytest.mark.parametrize("feeding", [False, True])  # input feeding: o_t computed inside the loop
@pytest.mark.parametrize("dropout", [0.0, 0.3])  # dropout: both paths draw the same masks
def test_fused_training_unroll_gives_the_step_by_step_outputs_and_gradients(batch, dropout, feeding):
    plain, fused = (tiny_model(f, dropout=dropout, feeding=feeding) for f in (False, True))  # train mode
    assert (plain.decoder.unroll_path, fused.decoder.unroll_path) == ("stepwise", "fused")
    assert_same_function(plain, fused, batch)


@pytest.mark.parametrize("feeding", [False, True])
def test_fused_and_step_by_step_models_have_the_same_parameters_so_checkpoints_load_either_way(feeding):
    fused, plain = tiny_model(True, feeding=feeding), tiny_model(False, feeding=feeding)
    assert fused.state_dict().keys() == plain.state_dict().keys()
    plain.load_state_dict(fused.state_dict())  # strict
    fused.load_state_dict(plain.state_dict())


@pytest.mark.parametrize("layers, fused, feeding, takes_fused", [
    (1, True, False, True), (1, False, False, False), (2, True, False, False), (1, True, True, True), (2, True, True, False)
])
def test_the_switch_picks_the_unroll_and_search_always_steps(batch, monkeypatch, layers, fused, feeding, takes_fused):
    calls = []
    real = nmt.model.decoder.fused_unroll
    monkeypatch.setattr(nmt.model.decoder, "fused_unroll", lambda *args: calls.append(1) or real(*args))
    model = tiny_model(fused, layers=layers, feeding=feeding)
    assert (model.decoder.unroll_path == "fused") is takes_fused  # a multi-layer decoder takes the reference
    model(batch.src, batch.src_lengths, batch.tgt_in)
    assert len(calls) == takes_fused
    model.decode_step(batch.tgt_in[:, 0], model.encode(batch.src, batch.src_lengths))
    assert len(calls) == takes_fused


def test_a_run_resumes_with_the_switch_changed(make_config):
    cfg = make_config(train={"max_steps": 4, "validate_every": 4, "save_every": 4, "dev_max_sentences": 2})
    train(cfg)
    cfg["train"]["max_steps"], cfg["model"]["fused_decoder"] = 6, False
    run = train(cfg, resume=True)  # not refused: the key is resume-safe
    assert load_checkpoint(run / "checkpoints" / "last.pt")["trainer"]["step"] == 6
    assert "fused_decoder: false" in (run / "config.yaml").read_text(encoding="utf-8")
