"""scripts/benchmark.py on a tiny config: it runs, writes the fixed JSON keys, and fails cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import DEV_PAIRS, PAIRS, tiny_config_dict, write_parallel

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "benchmark.py"
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
}
SETTINGS_KEYS = {"config", "steps", "device", "precision"}


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_benchmark_tiny_config(tmp_path: Path) -> None:
    train = write_parallel(tmp_path / "data", "train", PAIRS)
    dev = write_parallel(tmp_path / "data", "dev", DEV_PAIRS)
    cfg = tiny_config_dict(tmp_path / "run", train, dev)
    cfg["data"]["test"] = dev
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    out = tmp_path / "bench.json"

    proc = run_script(str(config), "--steps", "3", "--warmup", "1", "--json", str(out))

    assert proc.returncode == 0, proc.stderr
    assert "tokens/s" in proc.stdout and str(config) in proc.stdout
    result = json.loads(out.read_text(encoding="utf-8"))
    assert FIXED_KEYS <= set(result) <= FIXED_KEYS | SETTINGS_KEYS
    assert result["device"] == "cpu" and result["steps"] == 3 and result["config"] == str(config)
    assert isinstance(result["torch_version"], str) and result["torch_version"]
    for key in FIXED_KEYS - {"torch_version"}:
        assert isinstance(result[key], (int, float)) and result[key] > 0, key
    expected = result["flops_per_tgt_token"] * result["train_tgt_tokens_per_s"] / 1e9
    assert abs(result["train_gflops_per_s"] - expected) <= 1e-9 * max(1.0, expected)
    assert not (tmp_path / "run").exists()  # nothing written to the run directory


def test_benchmark_missing_config(tmp_path: Path) -> None:
    proc = run_script(str(tmp_path / "missing.yaml"), "--steps", "1")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "missing.yaml" in proc.stderr
