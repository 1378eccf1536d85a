"""scripts/benchmark.py on a tiny config: it runs, writes the fixed JSON keys, and fails cleanly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import assert_error, ok, out, run_script, write_yaml

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
SETTINGS_KEYS = {"config", "overrides", "steps", "device", "precision", "compile"}


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


def test_benchmark_missing_config(tmp_path: Path) -> None:
    proc = run_script("benchmark.py", tmp_path / "missing.yaml", "--steps", "1")
    assert_error(proc, "missing.yaml", prefix="error: ")
    assert out(proc) == ""
