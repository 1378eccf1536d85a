"""DistributedDataParallel through torchrun on the CPU (gloo), as a user starts it:
`python -m torch.distributed.run --standalone --nproc_per_node 2 -m nmt train CONFIG`.

Each test starts real processes (a few seconds each), so they are marked slow; CI runs them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers import DDP_ENV, ROOT, metrics, run_ok, torchrun_cmd, weights, write_yaml
from nmt.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow


def kill_all(marker: str) -> int:
    """SIGKILL every process whose command line holds `marker` (torchrun puts its workers in
    process groups of their own, so killing its group would leave them running)."""
    killed = 0
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
        except (OSError, ProcessLookupError):
            pass
    return killed


def ddp_config(make_config, name: str, **train) -> dict:
    return make_config(name, train={"max_steps": 12, "validate_every": 6, "save_every": 3, **train})


@pytest.mark.parametrize("feeding, arch", [  # model.input_feeding: the readout inside the recurrence
    (False, ("gru", "bahdanau")), (True, ("gru", "bahdanau")), (False, ("lstm", "luong_general"))])
def test_two_ranks_with_half_the_batch_take_the_steps_of_one_process_with_the_whole_batch(make_config, tmp_path, feeding,
                                                                                          arch):
    # no dropout: the ranks draw other masks than one process would
    model = {"dropout": 0.0, "input_feeding": feeding, "rnn_type": arch[0], "attention": arch[1]}
    one = make_config("one", model=model, train={"max_steps": 6, "batch_size": 16, "batch_tokens": 200})
    two = make_config("two", model=model, train={"max_steps": 6, "batch_size": 8, "batch_tokens": 100})
    run_ok([sys.executable, "-m", "nmt", "train", str(write_yaml(tmp_path / "one.yaml", one))])
    out = run_ok(torchrun_cmd(2, "train", str(write_yaml(tmp_path / "two.yaml", two))))
    a, b = weights(tmp_path / "one"), weights(tmp_path / "two")
    init = torch.load(tmp_path / "one" / "embeddings_init.pt", weights_only=True)["src"]
    assert (a["src_embed.table.weight"] - init).abs().max() > 1e-3  # six steps did move the weights
    # rounding, which Adam scales up where a gradient is tiny: measured at most 3e-6 without input
    # feeding; with it, the readout weight 1.7e-5 (the fused and the reference unroll differ by 1.5e-5
    # on it in one process); one step moves a weight by up to lr = 3e-3
    atol = 5e-5 if feeding else 1e-5
    for k in a:
        assert torch.allclose(a[k], b[k], atol=atol, rtol=0), (k, (a[k] - b[k]).abs().max().item())
    assert out.stderr.count("stopped at step 6") == 1  # rank 0 alone logs


def test_two_rank_run_killed_and_resumed_ends_identical_to_an_uninterrupted_one(make_config, tmp_path):
    # long enough (200 steps, a few seconds) for the kill to land mid-run
    long = {"max_steps": 200, "validate_every": 50, "save_every": 5, "patience": 0}
    whole = write_yaml(tmp_path / "whole.yaml", ddp_config(make_config, "whole", **long))
    run_ok(torchrun_cmd(2, "train", str(whole)))

    cut_cfg = write_yaml(tmp_path / "cut.yaml", ddp_config(make_config, "cut", **{**long, "max_steps": 100_000}))
    log = (tmp_path / "cut.log").open("wb")
    proc = subprocess.Popen(torchrun_cmd(2, "train", str(cut_cfg)), stdout=log, stderr=subprocess.STDOUT,
                            cwd=ROOT, env=DDP_ENV)
    last = tmp_path / "cut" / "checkpoints" / "last.pt"
    deadline = time.time() + 180
    try:
        while not last.is_file():
            assert proc.poll() is None and time.time() < deadline, (tmp_path / "cut.log").read_text()[-3000:]
            time.sleep(0.2)
    finally:
        assert kill_all(str(cut_cfg)) == 3  # torchrun and both ranks, mid-training
        proc.wait()
    saved = load_checkpoint(last)["trainer"]
    assert saved["world_size"] == 2 and len(saved["rng_ranks"]) == 2
    assert saved["step"] < 200, "the run went past the comparison point before it was killed"

    run_ok(torchrun_cmd(2, "train", str(cut_cfg), "--resume", "--set", "train.max_steps=200"))
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "cut")
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_resume_with_another_number_of_processes_is_refused_in_one_line(make_config, tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", ddp_config(make_config, "r", max_steps=3))
    run_ok(torchrun_cmd(2, "train", str(cfg)))
    proc = subprocess.run([sys.executable, "-m", "nmt", "train", str(cfg), "--resume", "--set", "train.max_steps=6"],
                          capture_output=True, text=True, cwd=ROOT, env=DDP_ENV, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "trained by 2 process(es) and this is 1" in proc.stderr.strip().splitlines()[-1]


def test_a_two_rank_checkpoint_evaluates_and_translates_in_one_cpu_process(make_config, tmp_path, tiny_corpus):
    cfg = write_yaml(tmp_path / "c.yaml", ddp_config(make_config, "r", max_steps=6))
    run_ok(torchrun_cmd(2, "train", str(cfg)))
    nmt = [sys.executable, "-m", "nmt"]
    src, ref = tiny_corpus["dev"] + ".en", tiny_corpus["dev"] + ".fr"
    out = run_ok(nmt + ["evaluate", str(tmp_path / "r"), "--src", src, "--ref", ref, "--beam", "2"])
    assert "BLEU" in out.stdout
    proc = subprocess.run(nmt + ["translate", str(tmp_path / "r")], input="the king eats the bread .\n",
                          capture_output=True, text=True, cwd=ROOT, env=DDP_ENV, timeout=120)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 1, proc.stderr


def test_two_ranks_on_the_linear_schedule_by_the_clock_stop_together_with_a_falling_rate(make_config, tmp_path):
    # the rate follows the slowest rank's clock, which the ranks agree on every step: the run stops
    # once, for the time, with one log; a rank that disagreed would wait in a collective forever
    cfg = ddp_config(make_config, "clock", max_steps=0, max_epochs=0, max_minutes=0.15, schedule="linear",
                     warmup_steps=0, validate_every=10_000, save_every=10_000, log_every=5)
    out = run_ok(torchrun_cmd(2, "train", str(write_yaml(tmp_path / "clock.yaml", cfg))))
    assert out.stderr.count("reached train.max_minutes=0.15") == 1
    rates = [e["lr"] for e in metrics(tmp_path / "clock", "train")]
    assert len(rates) >= 3 and rates == sorted(rates, reverse=True) and rates[-1] < 0.5 * rates[0]
