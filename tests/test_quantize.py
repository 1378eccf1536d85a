"""Dynamic int8 quantization for CPU decoding (`--quantize int8`, `Translator.load(quantize=...)`).

Tolerances, measured on the tiny trained run (torch 2.13, x86 fbgemm):
- each int8 layer's output on the same random input is within 1.4-2.0% (relative L2) of its float
  layer's; 5% leaves room for other CPUs and kernels, and a real bug in a layer goes over it (a
  dropped bias measured 8% for the readout; another layer's or a stale weight is far off);
- over 5 greedy steps of the dev sources, the int8 model's log-probabilities differ from the float
  model's by at most ~0.015 (0.019 over all 96 training sources; mean ~0.004), with the same argmax
  everywhere; 0.05 leaves 2.5-3x room. The tiny model is barely trained, so this end-to-end check
  catches gross breakage (a dropped readout bias gives 0.14) but not every small bug: the per-layer
  check is the sharp one.
"""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized import dynamic as nnqd

from conftest import DEV_PAIRS, write_parallel
from helpers import err, nmt, ok, out, run_script, write_yaml
from nmt import cli
from nmt.batching import eval_batches
from nmt.errors import NmtError
from nmt.evaluate import evaluate
from nmt.model import Seq2Seq
from nmt.rundir import RunDir
from nmt.tokenizer import BOS_ID
from nmt.translate import QUANTIZE_CHOICES, Translator, quantize_int8

LAYER_TOLERANCE = 0.05  # relative L2 error of one layer's output; see the module docstring
LOGP_TOLERANCE = 0.05  # max abs difference of log-probabilities; see the module docstring
SOURCES = [src for src, _ in DEV_PAIRS]


@pytest.fixture(scope="module")
def translators(trained_run: Path) -> tuple[Translator, Translator]:
    return Translator.load(trained_run), Translator.load(trained_run, quantize="int8")


def _layers(model: nn.Module, kinds: tuple[type, ...]) -> dict[str, type]:
    return {name: type(m) for name, m in model.named_modules() if isinstance(m, kinds)}


def test_int8_swaps_linear_and_gru_for_dynamic_quantized_ones_and_leaves_the_float_model(translators):
    float_t, int8_t = translators
    assert (float_t.quantize, int8_t.quantize) == ("none", "int8")
    float_layers = _layers(float_t.model, (nn.Linear, nn.GRU))
    assert set(float_layers.values()) == {nn.Linear, nn.GRU}  # the float translator: torch's own modules
    assert not _layers(float_t.model, (nnqd.Linear, nnqd.GRU))
    int8_layers = _layers(int8_t.model, (nnqd.Linear, nnqd.GRU))
    assert not _layers(int8_t.model, (nn.Linear, nn.GRU))
    # every Linear and GRU of the float model, under the same name, is now its dynamic int8 twin
    assert int8_layers == {name: nnqd.GRU if kind is nn.GRU else nnqd.Linear for name, kind in float_layers.items()}
    assert "generator" in int8_layers and "encoder.rnn" in int8_layers and "decoder.rnn" in int8_layers
    # the embedding tables stay float, the same values
    for side, table in int8_t.model.embedding_tables().items():
        assert table.dtype == torch.float32
        assert torch.equal(table, float_t.model.embedding_tables()[side])
    assert not int8_t.model.training and not any(m.training for m in int8_t.model.modules()
                                                 if isinstance(m, (nnqd.Linear, nnqd.GRU)))


def test_each_int8_layer_computes_what_its_float_layer_does(translators):
    float_t, int8_t = translators
    int8_modules = dict(int8_t.model.named_modules())
    generator = torch.Generator().manual_seed(0)
    errors = {}
    with torch.inference_mode():
        for name, kind in _layers(float_t.model, (nn.Linear, nn.GRU)).items():
            float_layer, int8_layer = float_t.model.get_submodule(name), int8_modules[name]
            if kind is nn.GRU:
                x = torch.randn(4, 7, float_layer.input_size, generator=generator)  # (batch, time, input)
                expected, got = float_layer(x)[0], int8_layer(x)[0]
            else:
                x = torch.randn(16, float_layer.in_features, generator=generator)
                expected, got = float_layer(x), int8_layer(x)
            errors[name] = ((got - expected).norm() / expected.norm()).item()
    assert 0 < min(errors.values()) and max(errors.values()) < LAYER_TOLERANCE, errors


def test_int8_step_log_probs_are_close_to_the_float_ones(translators):
    float_t, int8_t = translators
    ids = float_t.src_tok.encode_batch(SOURCES)
    batch = next(iter(eval_batches(ids, None, len(ids))))
    diffs = []
    with torch.inference_mode():
        state_f = float_t.model.encode(batch.src, batch.src_lengths)
        state_q = int8_t.model.encode(batch.src, batch.src_lengths)
        prev = torch.full((len(ids),), BOS_ID)
        for _ in range(5):  # both fed the float model's greedy tokens
            logp_f, state_f, _ = float_t.model.decode_step(prev, state_f)
            logp_q, state_q, _ = int8_t.model.decode_step(prev, state_q)
            diffs.append((logp_f - logp_q).abs().max().item())
            prev = logp_f.argmax(-1)
    assert 0 < max(diffs) < LOGP_TOLERANCE, diffs  # quantized (not the float model again), and close


def test_int8_translates_like_the_float_model(translators):
    float_t, int8_t = translators
    sources = [*SOURCES, "", "the king likes the bread ."]
    for beam in (1, 2):
        floats, int8s = float_t.translate(sources, beam=beam), int8_t.translate(sources, beam=beam)
        assert len(int8s) == len(sources) and all(isinstance(h, str) for h in int8s)
        assert int8s[-2] == ""  # an empty line stays empty
    # greedy: the tiny run is barely trained (near ties everywhere), yet ~80% of its 96 training
    # sources come out the same; at least half of these few must
    floats, int8s = float_t.translate(SOURCES, beam=1), int8_t.translate(SOURCES, beam=1)
    assert sum(f == q for f, q in zip(floats, int8s)) >= len(SOURCES) // 2, (floats, int8s)


def test_int8_keeps_a_tied_target_table_float_and_decodes_with_two_layers_and_input_feeding(trained_run: Path):
    cfg = RunDir(trained_run).load_config()
    model_cfg = replace(cfg.model, tie_embeddings=True, encoder_layers=2, decoder_layers=2, input_feeding=True)
    torch.manual_seed(0)
    model = Seq2Seq(model_cfg, 30, 30).eval()
    assert model.generator.weight is model.tgt_embed.weight
    reference = copy.deepcopy(model)
    table = model.tgt_embed.weight.detach().clone()
    ids = torch.tensor([[5, 6, 7, 3], [8, 9, 3, 0]])
    lengths = torch.tensor([4, 3])

    quantized = quantize_int8(model)

    assert isinstance(quantized.generator, nnqd.Linear)
    assert isinstance(quantized.tgt_embed.table, nn.Embedding)
    assert quantized.tgt_embed.weight.dtype == torch.float32 and torch.equal(quantized.tgt_embed.weight, table)
    with torch.inference_mode():
        assert torch.equal(quantized.tgt_embed(ids), reference.tgt_embed(ids))  # the lookup is unchanged
        prev = torch.full((2,), BOS_ID)
        logp_q, state_q, _ = quantized.decode_step(prev, quantized.encode(ids, lengths))
        logp_f, state_f, _ = reference.decode_step(prev, reference.encode(ids, lengths))
        logp_q, _, _ = quantized.decode_step(prev, state_q)  # a second step, fed o_1
        logp_f, _, _ = reference.decode_step(prev, state_f)
        o = torch.randn(8, model_cfg.embedding_size, generator=torch.Generator().manual_seed(0))
        expected, got = o @ table.T, quantized.generator(o)  # the int8 generator: a copy of the table
    assert ((got - expected).norm() / expected.norm()).item() < LAYER_TOLERANCE
    assert logp_q.shape == (2, 30)
    assert (logp_q - logp_f).abs().max().item() < LOGP_TOLERANCE


def test_int8_is_refused_off_the_cpu(trained_run: Path):
    model = Translator.load(trained_run).model.to("meta")  # stands in for a CUDA device
    with pytest.raises(NmtError, match="--quantize int8 runs on the CPU only.*meta"):
        quantize_int8(model)


def test_unknown_quantize_value_is_refused_by_the_api(trained_run: Path):
    with pytest.raises(NmtError, match="quantize must be one of none, int8, got 'int4'"):
        Translator.load(trained_run, quantize="int4")


def test_the_cli_offers_the_translators_choices():
    assert tuple(cli.QUANTIZE_CHOICES) == QUANTIZE_CHOICES  # cli.py keeps a copy so as not to import torch


def test_evaluate_int8_writes_its_own_hypotheses_file(trained_run: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)  # the default hypotheses file goes into the run directory
    prefix = write_parallel(tmp_path / "test", "test", DEV_PAIRS)
    scores, hyp, _ = evaluate(run, prefix + ".en", prefix + ".fr", beam=1, quantize="int8")
    assert hyp == run / "hyps" / "test.en.beam1.int8.hyp"
    assert len(hyp.read_text(encoding="utf-8").splitlines()) == scores.n_sentences == len(DEV_PAIRS)


def test_cli_evaluate_int8_prints_the_setting(trained_run: Path, tmp_path: Path):
    prefix = write_parallel(tmp_path, "test", DEV_PAIRS)
    hyp = tmp_path / "int8.hyp"
    stdout = ok(nmt("evaluate", trained_run, "--src", prefix + ".en", "--ref", prefix + ".fr", "--beam", "2",
                    "--quantize", "int8", "--out", hyp))
    settings, decoding, timing = stdout.strip().splitlines()[-3:]
    assert "quantize: int8  hypotheses: " in settings, stdout
    assert decoding.startswith("decode: strategy beam, beam 2, length penalty 1"), stdout
    assert timing.startswith("decoding: ") and " sentences/s (" in timing, stdout
    assert stdout.startswith("BLEU") and len(hyp.read_text(encoding="utf-8").splitlines()) == len(DEV_PAIRS)


def test_cli_translate_int8_filters_lines(trained_run: Path):
    lines = ["the cat eats an apple .", "", "my sister sees the book ."]
    stdout = ok(nmt("translate", trained_run, "--beam", "2", "--quantize", "int8", input="\n".join(lines) + "\n"))
    assert len(stdout.splitlines()) == len(lines) and stdout.splitlines()[1] == ""


@pytest.mark.parametrize("command", ["evaluate", "translate"])
def test_cli_refuses_int4(trained_run: Path, command: str):
    proc = nmt(command, trained_run, "--quantize", "int4")
    assert proc.returncode == 2 and out(proc) == ""
    assert "argument --quantize: invalid choice: 'int4'" in err(proc) and "Traceback" not in err(proc)


def test_cli_help_teaches_the_flag():
    stdout = ok(nmt("translate", "--help"))
    assert "int8: dynamic int8 weights for Linear, GRU and LSTM layers on CPU" in " ".join(stdout.split())


def test_benchmark_times_int8_decoding_next_to_float(tmp_path: Path, make_config, tiny_corpus):
    config = write_yaml(tmp_path / "tiny.yaml", make_config(data={"test": tiny_corpus["dev"]}))
    bench = tmp_path / "bench.json"
    stdout = ok(run_script("benchmark.py", config, "--steps", "2", "--warmup", "0", "--decode-sentences", "4",
                           "--quantize", "int8", "--json", bench))
    assert "greedy int8 sents/s (4 sents)" in stdout and "beam 5 int8 sents/s (4 sents)" in stdout
    result = json.loads(bench.read_text(encoding="utf-8"))
    for key in ("greedy_sents_per_s", "beam5_sents_per_s", "greedy_int8_sents_per_s", "beam5_int8_sents_per_s"):
        assert result[key] > 0, key
