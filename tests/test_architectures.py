"""The model's seams (`model.rnn_type` × `model.attention`): every combination trains, steps as it
unrolls, reorders its whole state, and searches; the unroll each takes; checkpoints that name their
architecture; the config's refusals. (Mixed precision per architecture: tests/test_precision.py;
two ranks: tests/test_distributed.py; kill -9 and resume, the lab, serve, int8 and average on an
LSTM + Luong run: the end of this file.)"""

from __future__ import annotations

import typing

import pytest
import torch

from helpers import assert_error, assert_identical, assert_same_function, err, kill, last_step, nmt, ok, wait_for_step, write_yaml
from nmt.batching import collate
from nmt.checkpoint import load_checkpoint, save_checkpoint
from nmt.config import ModelConfig, TrainConfig
from nmt.errors import NmtError
from nmt.model import Seq2Seq
from nmt.model.attention import ATTENTIONS
from nmt.model.cells import CELLS
from nmt.optim import make_optimizer, update
from nmt.search import beam_search, greedy_search
from nmt.tokenizer import BOS_ID

RNN_TYPES = ["gru", "lstm"]
ATTENTION_NAMES = ["bahdanau", "luong_general", "luong_dot"]
COMBINATIONS = [(r, a) for r in RNN_TYPES for a in ATTENTION_NAMES]
SRC_VOCAB, TGT_VOCAB = 30, 25
SRC = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
TGT = [[5, 6, 7], [8, 9, 10, 11, 12, 13], [14]]


def tiny_model(rnn_type: str, attention: str, layers: int = 1, feeding: bool = False, dropout: float = 0.0,
               fast: bool = True, tie: bool = False) -> Seq2Seq:
    """Decoder size 24 = 2 × encoder size 12, so that luong_dot can compare them."""
    torch.manual_seed(0)
    cfg = ModelConfig(embedding_size=16, encoder_hidden_size=12, decoder_hidden_size=24, attention_size=14,
                      encoder_layers=layers, decoder_layers=layers, dropout=dropout, input_feeding=feeding,
                      rnn_type=rnn_type, attention=attention, fused_decoder=fast, tie_embeddings=tie)
    return Seq2Seq(cfg, SRC_VOCAB, TGT_VOCAB)


@pytest.fixture
def batch():
    return collate(SRC, TGT, list(range(len(SRC))))


def test_the_config_offers_exactly_the_cells_and_attentions_the_model_maps():
    hints = typing.get_type_hints(ModelConfig)
    assert typing.get_args(hints["rnn_type"]) == tuple(CELLS) == tuple(RNN_TYPES)
    assert typing.get_args(hints["attention"]) == tuple(ATTENTIONS) == tuple(ATTENTION_NAMES)
    assert (ModelConfig().rnn_type, ModelConfig().attention) == ("gru", "bahdanau")


# ----------------------------------------------------------------------------- every combination


@pytest.mark.parametrize("rnn_type, attention", COMBINATIONS)
def test_a_short_training_lowers_the_loss(rnn_type, attention, batch):
    model = tiny_model(rnn_type, attention, dropout=0.1)
    tc = TrainConfig()
    optimizer = make_optimizer(model, tc)
    losses = [update(model, optimizer, batch, 1e-2, tc).loss.item() for _ in range(20)]
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("layers, feeding, tie", [(1, False, False), (2, False, False), (1, True, False),
                                                 (2, True, False), (1, False, True)])
@pytest.mark.parametrize("rnn_type, attention", COMBINATIONS)
def test_decode_step_by_step_equals_the_teacher_forced_unroll(rnn_type, attention, layers, feeding, tie, batch):
    model = tiny_model(rnn_type, attention, layers, feeding, dropout=0.3, tie=tie).eval()  # eval: dropout off
    with torch.no_grad():
        logits, attn = model(batch.src, batch.src_lengths, batch.tgt_in)
        state = model.encode(batch.src, batch.src_lengths)
        for t in range(batch.tgt_in.size(1)):
            log_probs, state, weights = model.decode_step(batch.tgt_in[:, t], state)
            torch.testing.assert_close(log_probs, torch.log_softmax(logits[:, t], -1), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(weights, attn[:, t], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("rnn_type, attention", COMBINATIONS)
def test_select_reorders_every_part_of_the_state(rnn_type, attention, batch):
    model = tiny_model(rnn_type, attention, layers=2, feeding=True).eval()
    with torch.no_grad():
        _, state, _ = model.decode_step(torch.full((3,), BOS_ID), model.encode(batch.src, batch.src_lengths))
    index = torch.tensor([2, 0, 0, 1])
    picked = state.select(index)
    assert torch.equal(picked.hidden, state.hidden[:, index])
    assert (picked.cell is None) == (rnn_type == "gru")
    if picked.cell is not None:  # an LSTM's c, beside h
        assert picked.cell.shape == (2, 4, 24) and torch.equal(picked.cell, state.cell[:, index])
    for part in ("memory", "padding_bias", "feed"):
        assert torch.equal(getattr(picked, part), getattr(state, part)[index]), part
    assert len(picked.attention_cache) == len(state.attention_cache) == (attention != "luong_dot")
    for a, b in zip(picked.attention_cache, state.attention_cache):
        assert torch.equal(a, b[index])
    # and the reordered state steps as the rows it was picked from
    with torch.no_grad():
        prev = torch.tensor([7, 8, 9])
        whole, _, _ = model.decode_step(prev, state)
        rows, _, _ = model.decode_step(prev[index], picked)
    torch.testing.assert_close(rows, whole[index])


@pytest.mark.parametrize("rnn_type, attention", COMBINATIONS)
def test_beam_search_at_beam_1_returns_the_greedy_result(rnn_type, attention, batch):
    model = tiny_model(rnn_type, attention, layers=2).eval()
    greedy = greedy_search(model, batch.src, batch.src_lengths, return_attention=True)
    beam = beam_search(model, batch.src, batch.src_lengths, beam_size=1, length_penalty=0.0, return_attention=True)
    for g, b in zip(greedy, beam):
        assert g[0].tokens == b[0].tokens and g[0].score == pytest.approx(b[0].score)
        torch.testing.assert_close(g[0].attention, b[0].attention)
    nbest = beam_search(model, batch.src, batch.src_lengths, beam_size=3, n_best=3)
    assert all(len(h) == 3 for h in nbest)


# ----------------------------------------------------------------------------- the unroll each takes


@pytest.mark.parametrize("rnn_type, attention, layers, feeding, path", [
    ("gru", "bahdanau", 1, False, "fused"), ("gru", "bahdanau", 1, True, "fused"),
    ("gru", "bahdanau", 2, False, "stepwise"), ("lstm", "bahdanau", 1, False, "stepwise"),
    ("gru", "luong_general", 1, False, "sequence"), ("lstm", "luong_dot", 2, False, "sequence"),
    ("lstm", "luong_general", 1, True, "stepwise"), ("gru", "luong_dot", 1, True, "stepwise"),
])
def test_the_fast_paths_take_only_what_they_support(rnn_type, attention, layers, feeding, path):
    model = tiny_model(rnn_type, attention, layers, feeding)
    assert model.decoder.unroll_path == path
    assert model.decoder.describe_unroll().startswith(f"decoder unroll: {path} (")
    off = tiny_model(rnn_type, attention, layers, feeding, fast=False).decoder
    assert off.unroll_path == "stepwise" and "model.fused_decoder is false" in off.describe_unroll()


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("rnn_type, attention", [("gru", "luong_general"), ("lstm", "luong_general"),
                                                 ("lstm", "luong_dot")])
def test_the_sequence_unroll_gives_the_stepwise_outputs_and_gradients(rnn_type, attention, layers, batch):
    """Luong without input feeding: one RNN call over all steps against the step-by-step reference,
    with dropout (one layer: between layers the two draw their masks in another order)."""
    dropout = 0.0 if layers > 1 else 0.3
    plain, fast = (tiny_model(rnn_type, attention, layers, dropout=dropout, fast=f) for f in (False, True))
    assert (plain.decoder.unroll_path, fast.decoder.unroll_path) == ("stepwise", "sequence")
    assert_same_function(plain, fast, batch)


# ----------------------------------------------------------------------------- the bridge and the cell


def test_the_bridge_makes_an_lstms_h_and_c_from_the_encoders_final_states(batch):
    model = tiny_model("lstm", "bahdanau", layers=2).eval()
    state = model.encode(batch.src, batch.src_lengths)
    assert state.hidden.shape == state.cell.shape == (2, 3, 24)
    assert not torch.equal(state.hidden, state.cell)  # two halves of the bridge, not one copy
    assert model.decoder.bridge.out_features == 2 * 2 * 24
    assert isinstance(model.encoder.rnn, torch.nn.LSTM) and isinstance(model.decoder.rnn, torch.nn.LSTM)


@pytest.mark.parametrize("attention, size", [("bahdanau", 16 + 24), ("luong_general", 16), ("luong_dot", 16)])
def test_luong_feeds_the_rnn_only_the_embedding_and_reads_out_from_c_and_s(attention, size):
    decoder = tiny_model("gru", attention).decoder
    assert decoder.rnn.input_size == size  # Bahdanau's RNN input also has c_t
    assert decoder.readout.in_features == (24 + 24 + 16 if attention == "bahdanau" else 24 + 24)
    assert tiny_model("gru", attention, feeding=True).decoder.rnn.input_size == size + 16  # o_{t-1}


@pytest.mark.parametrize("attention", ATTENTION_NAMES)
def test_tied_embeddings_work_with_every_attention(attention, batch):
    model = tiny_model("lstm", attention, tie=True)
    assert model.generator.weight is model.tgt_embed.weight
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    assert logits.shape[-1] == TGT_VOCAB


def test_luong_dot_refuses_sizes_it_cannot_compare_when_built_directly():
    cfg = ModelConfig(embedding_size=8, encoder_hidden_size=4, decoder_hidden_size=6, attention="luong_dot")
    with pytest.raises(NmtError, match="luong_dot compares decoder states of size 6 with encoder states of size 8"):
        Seq2Seq(cfg, SRC_VOCAB, TGT_VOCAB)


# ----------------------------------------------------------------------------- config and checkpoints


@pytest.mark.parametrize("key, value, choices", [("rnn_type", "rnn", "'gru' | 'lstm'"),
                                                 ("attention", "luong", "'bahdanau' | 'luong_general' | 'luong_dot'")])
def test_an_unknown_cell_or_attention_is_refused_in_one_line_with_the_choices(make_config, tmp_path, key, value,
                                                                                choices):
    path = write_yaml(tmp_path / "c.yaml", make_config())
    proc = nmt("train", str(path), "--set", f"model.{key}={value}")
    assert_error(proc, f"model.{key}", repr(value), choices)
    assert not (tmp_path / "run").exists()


def test_luong_dot_with_sizes_that_cannot_be_compared_is_refused_in_one_line(make_config, tmp_path):
    path = write_yaml(tmp_path / "c.yaml", make_config(model={"attention": "luong_dot", "decoder_hidden_size": 40}))
    assert_error(nmt("train", str(path)), "'model.attention' is 'luong_dot'", "'model.decoder_hidden_size' 40",
                 "'model.encoder_hidden_size' = 32")


@pytest.fixture(scope="module")
def lstm_luong_run(tmp_path_factory):
    """A tiny LSTM + Luong run (two layers, input feeding, tied embeddings, kept step checkpoints),
    trained once for the tests below; treat it as read-only."""
    from conftest import DEV_PAIRS, PAIRS, tiny_config_dict, write_parallel
    from nmt.trainer import train

    root = tmp_path_factory.mktemp("lstm_luong")
    train_prefix = write_parallel(root / "data", "train", PAIRS)
    dev_prefix = write_parallel(root / "data", "dev", DEV_PAIRS)
    model = {"rnn_type": "lstm", "attention": "luong_general", "decoder_layers": 2, "encoder_layers": 2,
             "input_feeding": True, "tie_embeddings": True}
    return train(tiny_config_dict(root / "run", train_prefix, dev_prefix, model=model,
                                  train={"keep_checkpoints": 2}))


def test_checkpoints_name_their_architecture(lstm_luong_run):
    for name in ("last.pt", "best.pt"):
        ckpt = load_checkpoint(lstm_luong_run / "checkpoints" / name)
        assert ckpt["architecture"] == {"rnn_type": "lstm", "attention": "luong_general"}, name


def test_the_training_log_names_the_unroll_it_took(lstm_luong_run, trained_run):
    assert "decoder unroll: stepwise (the reference;" in (lstm_luong_run / "train.log").read_text()  # input feeding
    assert "decoder unroll: fused (nmt/model/fused.py: one GRU layer with Bahdanau attention)" in (
        trained_run / "train.log").read_text()


def test_a_checkpoint_of_another_architecture_is_refused_in_one_line_naming_the_key(lstm_luong_run, trained_run,
                                                                                      tmp_path):
    foreign = tmp_path / "lstm.pt"
    foreign.write_bytes((lstm_luong_run / "checkpoints" / "best.pt").read_bytes())
    proc = nmt("translate", str(trained_run), "--checkpoint", str(foreign), input="the cat eats an apple .\n")
    assert_error(proc, str(foreign), "'model.rnn_type: lstm'", "says 'gru'", "its own architecture")


def test_a_checkpoint_from_before_architectures_loads_as_gru_with_bahdanau(trained_run, tmp_path):
    from nmt.translate import Translator

    old = load_checkpoint(trained_run / "checkpoints" / "best.pt")
    old.pop("architecture", None)
    save_checkpoint(tmp_path / "old.pt", old)
    want = Translator.load(trained_run).translate(["the cat eats an apple ."], beam=2)
    assert Translator.load(trained_run, str(tmp_path / "old.pt")).translate(["the cat eats an apple ."], beam=2) == want
    luong = {**old, "architecture": {"rnn_type": "gru", "attention": "luong_general"}}
    save_checkpoint(tmp_path / "luong.pt", luong)
    with pytest.raises(NmtError, match="'model.attention: luong_general'"):
        Translator.load(trained_run, str(tmp_path / "luong.pt"))


# ----------------------------------------------------------------------------- an LSTM + Luong run end to end


def test_lstm_luong_translates_evaluates_with_nbest_and_int8_and_plots_attention(lstm_luong_run, tmp_path):
    from nmt.translate import Translator

    float_t = Translator.load(lstm_luong_run)
    int8_t = Translator.load(lstm_luong_run, quantize="int8")
    assert type(int8_t.model.decoder.rnn).__module__.startswith("torch.ao.nn.quantized")  # nn.LSTM swapped
    assert type(int8_t.model.encoder.rnn).__module__.startswith("torch.ao.nn.quantized")
    sentences = ["the cat eats an apple .", "my sister sees the book ."]
    assert len(int8_t.translate(sentences, beam=3)) == 2
    assert float_t.translate(sentences, beam=1) == float_t.translate(sentences, beam=1)
    ok(nmt("translate", str(lstm_luong_run), "--beam", "3", "--nbest", "2", "--attention-plots", str(tmp_path / "plots"),
           input="the cat eats an apple .\nthe dog sees a fish .\n"))
    assert sorted(p.name for p in (tmp_path / "plots").glob("*.png")) == ["0001.png", "0002.png"]
    data = lstm_luong_run.parent / "data"
    ok(nmt("evaluate", str(lstm_luong_run), "--src", str(data / "dev.en"), "--ref", str(data / "dev.fr"),
           "--quantize", "int8"))


def test_lstm_luong_is_served_with_nbest_and_attention(lstm_luong_run):
    from fastapi.testclient import TestClient

    from nmt.serve import create_app
    from nmt.translate import Translator

    translator = Translator.load(lstm_luong_run)
    with TestClient(create_app(translator)) as client:
        r = client.post("/v1/translate", json={"text": ["the cat eats an apple ."], "beam": 3, "n_best": 2,
                                               "attention": True})
        assert r.status_code == 200, r.text
        (got,) = r.json()["translations"]
        assert len(got["n_best"]) == 2 and all(abs(sum(row) - 1) < 1e-2 for row in got["n_best"][0]["attention"])
        assert client.get("/v1/info").json()["architecture"] == {"rnn_type": "lstm", "attention": "luong_general"}


def test_lstm_luong_average_and_the_embedding_lab(lstm_luong_run, tmp_path):
    averaged = tmp_path / "averaged.pt"
    ok(nmt("average", str(lstm_luong_run), "--last", "2", "--output", str(averaged)))
    assert load_checkpoint(averaged)["architecture"] == {"rnn_type": "lstm", "attention": "luong_general"}
    ok(nmt("translate", str(lstm_luong_run), "--checkpoint", str(averaged), input="the cat eats an apple .\n"))
    ok(nmt("embeddings", str(lstm_luong_run), "neighbors", "chat"))


@pytest.mark.slow
def test_lstm_luong_killed_and_resumed_ends_bit_identical(make_config, tmp_path, start):
    train = {"max_steps": 16, "save_every": 1, "log_every": 1, "validate_every": 8, "dev_max_sentences": 3}
    model = {"rnn_type": "lstm", "attention": "luong_general", "input_feeding": True}  # dropout 0.1: RNG resumes too
    whole_cfg = write_yaml(tmp_path / "whole.yaml", make_config("whole", model=model, train=train))
    cut_cfg = write_yaml(tmp_path / "cut.yaml", make_config("cut", model=model, train=train))
    whole = start("train", str(whole_cfg), log=tmp_path / "whole.log")  # in parallel
    proc = start("train", str(cut_cfg), log=tmp_path / "cut.log")
    wait_for_step(tmp_path / "cut", 6, proc)
    kill(proc)
    killed_at = last_step(tmp_path / "cut")
    assert 5 <= killed_at < train["max_steps"], killed_at
    resumed = nmt("train", str(cut_cfg), "--resume")
    ok(resumed)
    assert f"at step {killed_at}," in err(resumed)
    assert whole.wait(timeout=120) == 0, (tmp_path / "whole.log").read_text()
    a = load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert a["trainer"]["step"] == b["trainer"]["step"] == train["max_steps"]
    assert_identical(a["model"], b["model"])
