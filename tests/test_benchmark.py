"""scripts/benchmark.py on a tiny config: it runs, writes the fixed JSON keys, and fails cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import tiny_config_dict
from helpers import assert_error, load_script, ok, out, run_script, write_yaml
from nmt.config import config_from_dict
from nmt.model import Seq2Seq

FIXED_KEYS = {
    "train_tgt_tokens_per_s",
    "train_src_tokens_per_s",
    "ms_per_step",
    "peak_rss_mib",
    "params",
    "flops_per_tgt_token",
    "train_gflops_per_s",
    "greedy_sents_per_s",
    "beam5_sents_per_s",
    "torch_version",
    "threads",
    "warmup_s",
}
SETTINGS_KEYS = {"config", "overrides", "steps", "device", "precision", "auto", "compile"}


def test_benchmark_tiny_config(tmp_path: Path, make_config, tiny_corpus) -> None:
    config = write_yaml(tmp_path / "tiny.yaml", make_config(data={"test": tiny_corpus["dev"]}))
    bench = tmp_path / "bench.json"

    stdout = ok(run_script("benchmark.py", config, "--steps", "3", "--warmup", "1", "--json", bench))

    assert "tokens/s" in stdout and str(config) in stdout
    result = json.loads(bench.read_text(encoding="utf-8"))
    assert FIXED_KEYS <= set(result) <= FIXED_KEYS | SETTINGS_KEYS
    assert result["device"] == "cpu" and result["steps"] == 3 and result["config"] == str(config)
    assert isinstance(result["torch_version"], str) and result["torch_version"]
    for key in FIXED_KEYS - {"torch_version"}:
        assert isinstance(result[key], (int, float)) and result[key] > 0, key
    expected = result["flops_per_tgt_token"] * result["train_tgt_tokens_per_s"] / 1e9
    assert abs(result["train_gflops_per_s"] - expected) <= 1e-9 * max(1.0, expected)
    assert not (tmp_path / "run").exists()  # nothing written to the run directory


def test_benchmark_set_overrides_a_key_and_counts_the_flops_of_input_feeding(tmp_path: Path, make_config,
                                                                             tiny_corpus) -> None:
    cfg = make_config(data={"test": tiny_corpus["dev"]})
    config = write_yaml(tmp_path / "tiny.yaml", cfg)
    results = {}
    for feeding in ("false", "true"):
        bench = tmp_path / f"bench_{feeding}.json"
        stdout = ok(run_script("benchmark.py", config, "--steps", "1", "--warmup", "0", "--decode-sentences", "2",
                               "--set", f"model.input_feeding={feeding}", "--json", bench))
        assert f"--set model.input_feeding={feeding}" in stdout  # the settings, printed
        results[feeding] = json.loads(bench.read_text(encoding="utf-8"))
    assert results["true"]["overrides"] == ["model.input_feeding=true"]
    assert results["true"]["params"] > results["false"]["params"]  # the GRU's input grew by o_{t-1}
    # the same batches, so the same lengths: only the GRU's 3 × D × E more multiply-adds a token
    m = cfg["model"]
    extra = 2 * 3 * 3 * m["decoder_hidden_size"] * m["embedding_size"]
    assert results["true"]["flops_per_tgt_token"] - results["false"]["flops_per_tgt_token"] == pytest.approx(extra)


@pytest.mark.slow
def test_benchmark_compile_trains_through_torch_compile(tmp_path: Path, make_config, tiny_corpus) -> None:
    config = write_yaml(tmp_path / "tiny.yaml", make_config(data={"test": tiny_corpus["dev"]}))
    bench = tmp_path / "bench.json"
    stdout = ok(run_script("benchmark.py", config, "--steps", "2", "--warmup", "1", "--decode-sentences", "2",
                           "--compile", "--json", bench, timeout=600))
    assert "fp32, torch.compile" in stdout
    result = json.loads(bench.read_text(encoding="utf-8"))
    assert result["compile"] is True and result["train_tgt_tokens_per_s"] > 0 and result["warmup_s"] > 0


def test_benchmark_precision_auto_trains_at_what_auto_picks_here_and_says_so(tmp_path: Path, make_config, tiny_corpus,
                                                                           capsys, monkeypatch) -> None:
    import nmt.precision

    monkeypatch.setattr(nmt.precision, "has_bf16_units", lambda: True)  # so that it measures on any CPU
    config = write_yaml(tmp_path / "tiny.yaml", make_config(data={"test": tiny_corpus["dev"]}))
    bench = tmp_path / "bench.json"
    assert load_script("benchmark.py").main([str(config), "--steps", "1", "--warmup", "0", "--decode-sentences", "2",
                                             "--precision", "auto", "--json", str(bench)]) == 0
    stdout = capsys.readouterr().out
    result = json.loads(bench.read_text(encoding="utf-8"))
    assert result["precision"] == result["auto"]["picked"] in ("fp32", "bf16")
    assert set(result["auto"]["seconds_per_step"]) == {"fp32", "bf16"} and "measured on" in result["auto"]["why"]
    assert f"precision: {result['precision']} ({result['auto']['why']})" in stdout and "(auto's pick)" in stdout


def test_benchmark_missing_config(tmp_path: Path) -> None:
    proc = run_script("benchmark.py", tmp_path / "missing.yaml", "--steps", "1")
    assert_error(proc, "missing.yaml", prefix="error: ")
    assert out(proc) == ""


@pytest.mark.parametrize("rnn_type, attention", [(r, a) for r in ("gru", "lstm")
                                                 for a in ("bahdanau", "luong_general", "luong_dot")])
def test_the_flop_count_matches_the_weights_of_every_matmul_of_each_architecture(rnn_type, attention):
    """forward_macs_per_tgt_token against the built model: with no source tokens and one target
    token a sentence, the decoder's matmuls and the bridge; one source token more adds the
    encoder, the attention keys and one position's score and context."""
    bench = load_script("benchmark.py")
    model = {"embedding_size": 8, "encoder_hidden_size": 6, "decoder_hidden_size": 12, "attention_size": 5,
             "encoder_layers": 2, "decoder_layers": 2, "input_feeding": True, "rnn_type": rnn_type,
             "attention": attention}
    cfg = config_from_dict(tiny_config_dict("run", "train", "dev", model=model))
    net = Seq2Seq(cfg.model, 20, 17)
    dec = net.decoder

    def weights(module: torch.nn.Module) -> int:
        return sum(p.numel() for name, p in module.named_parameters() if "weight" in name)

    def macs(src_tokens: int) -> float:
        return bench.forward_macs_per_tgt_token(cfg, 17, bench.TrainTiming(1, 1.0, src_tokens, 1, 1))

    query = dec.attention.query_proj.weight.numel() if attention == "bahdanau" else 0
    assert macs(0) == weights(dec.rnn) + dec.readout.weight.numel() + net.generator.weight.numel() + query + \
        dec.bridge.weight.numel()
    keys = dec.attention.key_proj.weight.numel() if attention != "luong_dot" else 0
    position = (dec.attention.energy.weight.numel() if attention == "bahdanau" else 12) + 12  # score + context (M = 12)
    assert macs(1) - macs(0) == weights(net.encoder.rnn) + keys + position
