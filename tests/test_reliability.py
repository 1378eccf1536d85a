"""Never lose a run: exact resume after SIGKILL, SIGINT/SIGTERM, safe checkpoint files, and one
clear line (exit code 2, no traceback, files unchanged) for every bad input.

Most tests run `python -m nmt …` in a subprocess, as a user does; the few that need a fault the
CLI cannot cause (a full disk) patch the OS calls in-process.
"""

from __future__ import annotations

import copy
import errno
import os
import random
import re
import shutil
import signal
import time
from pathlib import Path

import pytest
import torch

from conftest import DEV_PAIRS, PAIRS, write_lines
from helpers import (assert_error, assert_identical, err, error_line, kill, last_step, nmt, ok, snapshot, tmp_files,
                     train_events, wait_for_step, write_yaml)
from nmt.checkpoint import load_checkpoint, save_checkpoint
from nmt.errors import NmtError
from nmt.rundir import RunDir
from nmt.snapshots import snapshot_files
from nmt.trainer import train


# ----------------------------------------------------------------------------- SIGKILL and exact resume

N = 30
KILL_TRAIN = {"max_steps": N, "save_every": 1, "log_every": 1, "validate_every": 10, "dev_max_sentences": 3}


@pytest.mark.slow
def test_run_killed_at_three_steps_and_resumed_ends_bit_identical_to_an_uninterrupted_run(tmp_path, make_config, start):
    whole_cfg = write_yaml(tmp_path / "whole.yaml", make_config("whole", train=KILL_TRAIN))
    killed_cfg = write_yaml(tmp_path / "killed.yaml", make_config("killed", train=KILL_TRAIN))
    whole_run, run = tmp_path / "whole", tmp_path / "killed"
    whole = start("train", str(whole_cfg), log=tmp_path / "whole.log")  # in parallel with the chain

    # 1) killed during its first session, 2) killed after a resume that needed no clean-up: the
    # run directory's lock went with the killed process
    steps: list[int] = []
    for i, (extra, at) in enumerate([((), 4), (("--resume",), 11)]):
        since = len(train_events(run))
        proc = start("train", str(killed_cfg), *extra, log=tmp_path / f"killed{i}.log")
        wait_for_step(run, max([at] + [s + 3 for s in steps]), proc, since)
        if i == 0:
            _second_trainers_are_refused(proc, killed_cfg, run)
        kill(proc)
        steps.append(last_step(run))

    # 3) killed while last.pt is being written: stop the process as soon as a .last.pt.*.tmp
    # appears; if the temp file is still there while it is stopped, the rename has not happened
    # yet, so the kill lands mid-save (otherwise let it go on and try the next save)
    since = len(train_events(run))
    proc = start("train", str(killed_cfg), "--resume", log=tmp_path / "killed2.log")
    wait_for_step(run, max(17, steps[-1] + 3), proc, since)
    landed, tries, deadline = [], 0, time.time() + 30
    while not landed:
        assert proc.poll() is None and time.time() < deadline, "never caught a save in progress"
        names = [n for n in os.listdir(run / "checkpoints") if n.startswith(".last.pt.") and n.endswith(".tmp")]
        if not names:
            continue
        os.kill(proc.pid, signal.SIGSTOP)
        tries += 1
        landed = [n for n in names if (run / "checkpoints" / n).exists()]
        if not landed:
            os.kill(proc.pid, signal.SIGCONT)
    kill(proc)
    steps.append(last_step(run))
    print(f"SIGKILL with last.pt at steps {steps}; the last one mid-save (try {tries}), left {landed}")
    assert tmp_files(run), "the kill landed mid-save, so its temp file is left"

    # a stale, torn temp file from an older crash, an empty one and a random one: never taken
    # for a checkpoint
    ckpts = run / "checkpoints"
    (ckpts / ".last.pt.stale001.tmp").write_bytes((ckpts / "last.pt").read_bytes()[:5000])
    (ckpts / ".last.pt.stale002.tmp").write_bytes(b"")
    (ckpts / ".best.pt.stale003.tmp").write_bytes(random.Random(0).randbytes(4096))
    assert RunDir(run).checkpoint_path("last") == ckpts / "last.pt"
    assert RunDir(run).checkpoint_path("best") == ckpts / "best.pt"
    assert last_step(run) == steps[-1]

    assert len(set(steps)) == 3 and steps == sorted(steps) and steps[0] >= 3 and steps[-1] < N, steps
    final = nmt("train", str(killed_cfg), "--resume")
    ok(final)
    assert f"resumed from {ckpts / 'last.pt'} at step {steps[-1]}" in err(final)
    assert tmp_files(run) == []  # the resume cleared the leftovers
    assert whole.wait(timeout=120) == 0, (tmp_path / "whole.log").read_text()

    a, b = load_checkpoint(whole_run / "checkpoints" / "last.pt"), load_checkpoint(ckpts / "last.pt")
    assert a["trainer"]["step"] == b["trainer"]["step"] == N
    assert_identical(a["model"], b["model"])
    assert a["optimizer"]["param_groups"] == b["optimizer"]["param_groups"]
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True):
        assert_identical(sa, sb)
    assert a["trainer"]["stream"] == b["trainer"]["stream"]
    assert torch.equal(a["trainer"]["rng_torch"], b["trainer"]["rng_torch"])
    assert a["trainer"]["rng_python"] == b["trainer"]["rng_python"]
    for key in ("best_score", "bad_validations", "best_saved_score", "last_validated_step", "schedule"):
        assert a["trainer"][key] == b["trainer"][key], key
    # the embedding snapshots of every validation, those made again after a kill included
    snaps_a, snaps_b = snapshot_files(whole_run / "snapshots"), snapshot_files(run / "snapshots")
    assert [s for s, _ in snaps_a] == [s for s, _ in snaps_b] == [10, 20, 30]
    for (_, pa), (_, pb) in zip(snaps_a, snaps_b):
        assert_identical(torch.load(pa, weights_only=True)["rows"], torch.load(pb, weights_only=True)["rows"])


def _second_trainers_are_refused(proc, config: Path, run: Path) -> None:
    """While `proc` trains in `run` (held still, so that its files stay put), `--resume` and
    `--overwrite` are refused in one line naming it, and change nothing beside it."""
    os.kill(proc.pid, signal.SIGSTOP)
    before, beside = snapshot(run), sorted(os.listdir(run.parent))
    for flag in ("--resume", "--overwrite"):
        assert_error(nmt("train", str(config), flag),
                     f"{run}: another trainer is using this run directory: pid {proc.pid} (", str(config), "started ")
    assert snapshot(run) == before and sorted(os.listdir(run.parent)) == beside  # and no run set aside
    os.kill(proc.pid, signal.SIGCONT)


# ----------------------------------------------------------------------------- SIGINT / SIGTERM


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_saves_last_pt_at_that_step_exits_2_and_resume_continues(tmp_path, make_config, signum, start):
    long = {"max_steps": 100_000, "save_every": 1000, "validate_every": 1000, "log_every": 1,
            "dev_max_sentences": 3}
    cfg = write_yaml(tmp_path / "c.yaml", make_config(train=long))
    run = tmp_path / "run"
    proc = start("train", str(cfg), log=tmp_path / "out.log")
    wait_for_step(run, 3, proc)
    os.kill(proc.pid, signum)
    assert proc.wait(timeout=60) == 2
    line = error_line(2, (tmp_path / "out.log").read_text(encoding="utf-8"), f"interrupted by {signum.name}",
                      str(run / "checkpoints" / "last.pt"), only_line=False)
    m = re.search(r"at step (\d+); saved .*Continue with: nmt train (\S+) --resume$", line)
    assert m, line
    step = int(m.group(1))
    assert step >= 3 and last_step(run) == step
    # the command the message gives, plus a new (safe) step limit
    resumed = nmt("train", m.group(2), "--resume", "--set", f"train.max_steps={step + 2}")
    ok(resumed)
    assert f"at step {step}, epoch" in err(resumed)
    assert last_step(run) == step + 2


# ----------------------------------------------------------------------------- bad input: config


def test_missing_config_file_exits_2_naming_it(tmp_path):
    before = snapshot(tmp_path)
    proc = nmt("train", "nope.yaml", cwd=tmp_path)
    assert_error(proc, "nope.yaml: config file not found")
    assert snapshot(tmp_path) == before


def test_unknown_config_key_exits_2_with_did_you_mean(tmp_path, make_config):
    cfg = make_config()
    cfg["train"]["max_step"] = cfg["train"].pop("max_steps")
    write_yaml(tmp_path / "c.yaml", cfg)
    before = snapshot(tmp_path)
    proc = nmt("train", "c.yaml", cwd=tmp_path)
    assert_error(proc, "c.yaml: unknown key 'train.max_step'; did you mean 'train.max_steps'?")
    assert snapshot(tmp_path) == before


def test_set_with_a_bad_value_exits_2_naming_key_and_value(tmp_path, make_config):
    write_yaml(tmp_path / "c.yaml", make_config())
    before = snapshot(tmp_path)
    proc = nmt("train", "c.yaml", "--set", "train.lr=fast", cwd=tmp_path)
    assert_error(proc, "key 'train.lr' has value 'fast'; expected float")
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- bad input: corpus


def _train_fails(tmp_path: Path, cfg: dict, *fragments: str, only_line: bool = True) -> str:
    """`nmt train` refuses: exit 2, one error line, the data unchanged, no run directory left."""
    write_yaml(tmp_path / "c.yaml", cfg)
    before = snapshot(tmp_path)
    proc = nmt("train", "c.yaml", cwd=tmp_path)
    line = assert_error(proc, *fragments, only_line=only_line)
    assert snapshot(tmp_path) == before
    assert not Path(cfg["run"]["dir"]).exists()
    return line


def test_missing_corpus_file_exits_2_naming_it(tmp_path, make_config):
    cfg = make_config(data={"train": str(tmp_path / "data" / "nope")})
    _train_fails(tmp_path, cfg, f"{tmp_path / 'data' / 'nope.en'}: file not found")


def test_corpus_sides_with_different_line_counts_exit_2_with_both_counts(tmp_path, make_config):
    write_lines(tmp_path / "data" / "train.fr", [p[1] for p in PAIRS[:-1]])
    _train_fails(tmp_path, make_config(), "train.en has 96 lines", "train.fr has 95")


def test_invalid_utf8_in_corpus_exits_2_naming_file_and_line(tmp_path, make_config):
    path = tmp_path / "data" / "train.fr"
    lines = path.read_bytes().split(b"\n")
    lines[6] = b"le chat mange une pomme \xe9 ."
    path.write_bytes(b"\n".join(lines))
    _train_fails(tmp_path, make_config(), f"{path}: line 7: not valid UTF-8 (byte 0xe9)")


def test_empty_corpus_exits_2(tmp_path, make_config):
    (tmp_path / "data" / "train.en").write_bytes(b"")
    (tmp_path / "data" / "train.fr").write_bytes(b"")
    _train_fails(tmp_path, make_config(), "train.en and", "train.fr: the training corpus has no sentence pairs")


def test_corpus_of_only_empty_lines_exits_2(tmp_path, make_config):
    write_lines(tmp_path / "data" / "train.en", ["", "  ", ""])
    write_lines(tmp_path / "data" / "train.fr", ["", "", "\t"])
    _train_fails(tmp_path, make_config(), "the training corpus has no sentence pairs")


def test_length_filter_removing_every_pair_exits_2(tmp_path, make_config):
    cfg = make_config(data={"max_src_len": 1})
    _train_fails(tmp_path, cfg, "the length filter removed every pair", "data.max_src_len", "c.yaml",
                 only_line=False)


def test_vocabulary_the_data_cannot_fill_exits_2(tmp_path, make_config):
    cfg = make_config(tokenizer={"src_vocab_size": 5000})
    _train_fails(tmp_path, cfg, "c.yaml: key 'tokenizer.src_vocab_size' is 5000 but the training text can "
                 "fill at most", "hard_vocab_limit", only_line=False)


# ----------------------------------------------------------------------------- bad input: run directories


def test_training_into_an_existing_run_dir_without_resume_or_overwrite_exits_2_and_leaves_it(tmp_path, make_config):
    cfg = write_yaml(tmp_path / "c.yaml", make_config())
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"precious")
    (run / "notes.txt").write_text("mine", encoding="utf-8")
    before = snapshot(run)
    proc = nmt("train", str(cfg))
    assert_error(proc, f"{run}: run directory exists; use --resume", "--overwrite")
    assert snapshot(run) == before


def test_resume_with_a_changed_model_key_exits_2_with_the_diff_and_leaves_the_run(trained_run,
                                                                                  trained_run_config, tmp_path):
    cfg = copy.deepcopy(trained_run_config)  # the fixture is shared by the session
    cfg["model"]["dropout"] = 0.2
    write_yaml(tmp_path / "c.yaml", cfg)
    before = snapshot(trained_run)
    proc = nmt("train", str(tmp_path / "c.yaml"), "--resume")
    assert_error(proc, "cannot change on resume", "model.dropout: 0.1 -> 0.2")
    assert snapshot(trained_run) == before


def test_resume_refuses_changed_training_data_and_leaves_the_run(tmp_path, tiny_corpus, make_config):
    cfg = make_config(train={"max_steps": 4, "save_every": 2, "validate_every": 100})
    run = train(cfg)
    path = tmp_path / "data" / "train.fr"
    original = path.read_bytes()
    path.write_bytes(original.replace(b"le chat mange une pomme .", b"le chat mange une poire .", 1))
    cfg["train"]["max_steps"] = 6
    before = snapshot(run)
    with pytest.raises(NmtError) as e:
        train(cfg, resume=True)
    msg = str(e.value)
    print(f"NmtError: {msg}")
    assert "\n" not in msg
    assert msg.startswith(f"{tiny_corpus['train']}.en and {tiny_corpus['train']}.fr: the training data differs")
    assert snapshot(run) == before  # not even train.log or config.yaml
    path.write_bytes(original)  # the same data again: resume goes on
    assert load_checkpoint(train(cfg, resume=True) / "checkpoints" / "last.pt")["trainer"]["step"] == 6


def test_resume_accepts_a_checkpoint_saved_before_data_fingerprints(tmp_path, make_config):
    cfg = make_config(train={"max_steps": 2, "save_every": 2, "validate_every": 100})
    run = train(cfg)
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    del ckpt["trainer"]["data_fingerprint"], ckpt["format_version"]
    save_checkpoint(run / "checkpoints" / "last.pt", ckpt)
    cfg["train"]["max_steps"] = 3
    assert load_checkpoint(train(cfg, resume=True) / "checkpoints" / "last.pt")["trainer"]["step"] == 3


def test_failed_resume_leaves_config_yaml_and_train_log_unchanged(tmp_path, make_config):
    cfg = make_config(train={"max_steps": 2, "save_every": 2, "validate_every": 100})
    run = train(cfg)
    (run / "checkpoints" / "last.pt").write_bytes((run / "checkpoints" / "last.pt").read_bytes()[:1000])
    cfg["train"]["max_steps"] = 3  # a safe change that a successful resume would write
    before = snapshot(run)
    with pytest.raises(NmtError, match=r"last\.pt: not a readable nmt checkpoint \(truncated or damaged file\)") as e:
        train(cfg, resume=True)
    print(f"NmtError: {e.value}")
    assert snapshot(run) == before


# ----------------------------------------------------------------------------- bad input: checkpoints


def test_translate_with_a_truncated_checkpoint_path_exits_2(trained_run, tmp_path):
    ckpt = tmp_path / "trunc.pt"
    data = (trained_run / "checkpoints" / "last.pt").read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    before, run_before = snapshot(tmp_path), snapshot(trained_run)
    proc = nmt("translate", str(trained_run), "--checkpoint", str(ckpt), input="the cat eats an apple .\n")
    assert_error(proc, f"{ckpt}: not a readable nmt checkpoint (truncated or damaged file)")
    assert proc.stdout == b""
    assert snapshot(tmp_path) == before and snapshot(trained_run) == run_before


def test_evaluate_on_a_run_whose_best_pt_is_truncated_exits_2(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    best = run / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:3000])
    src = write_lines(tmp_path / "test.en", [p[0] for p in DEV_PAIRS])
    ref = write_lines(tmp_path / "test.fr", [p[1] for p in DEV_PAIRS])
    before = snapshot(tmp_path)
    proc = nmt("evaluate", str(run), "--src", str(src), "--ref", str(ref))
    assert_error(proc, f"{best}: not a readable nmt checkpoint (truncated or damaged file)")
    assert snapshot(tmp_path) == before  # no hyps/ written


def test_translate_with_a_random_bytes_checkpoint_exits_2(trained_run, tmp_path):
    ckpt = tmp_path / "random.pt"
    ckpt.write_bytes(random.Random(1).randbytes(8192))
    proc = nmt("translate", str(trained_run), "--checkpoint", str(ckpt), input="the cat eats an apple .\n")
    assert_error(proc, f"{ckpt}: not a readable nmt checkpoint (not a PyTorch checkpoint file)")


def test_translate_on_a_run_without_checkpoints_exits_2(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    for p in (run / "checkpoints").iterdir():
        p.unlink()
    before = snapshot(run)
    proc = nmt("translate", str(run), input="the cat eats an apple .\n")
    assert_error(proc, f"{run}: run directory has no checkpoint", "train first")
    assert snapshot(run) == before


# ----------------------------------------------------------------------------- bad input: training faults


@pytest.mark.slow
def test_exploding_loss_exits_2_naming_the_step_and_keeps_the_last_checkpoint(tmp_path, make_config):
    # lr 1e35: the first update sends the weights to ~1e35, the second step's loss overflows to inf
    cfg = write_yaml(tmp_path / "c.yaml", make_config(train={
        "lr": 1e35, "max_steps": 10, "save_every": 1, "validate_every": 100}))
    proc = nmt("train", str(cfg))
    run = tmp_path / "run"
    line = assert_error(proc, f"the last good checkpoint {run / 'checkpoints' / 'last.pt'} is kept",
                        "Lower 'train.lr'", only_line=False)
    m = re.search(r"training loss became (-?inf|nan) at step (\d+);", line)
    assert m, line
    assert last_step(run) == int(m.group(2)) - 1 >= 1


def test_exploding_loss_before_any_save_says_no_checkpoint_was_saved(tmp_path, make_config):
    cfg = make_config(train={"lr": 1e35, "max_steps": 10, "save_every": 20, "validate_every": 100})
    # the step it explodes at depends on the arithmetic (2 or 3 so far); every one comes before the first save
    with pytest.raises(NmtError, match=r"training loss became inf at step \d; no checkpoint was saved before it") as e:
        train(cfg)
    print(f"NmtError: {e.value}")
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_huge_weights_do_not_crash_the_validation_log(tmp_path, make_config):
    # lr 1e20 keeps the loss finite, but some drift figures of the embeddings become nan (None)
    cfg = make_config(train={"lr": 1e20, "max_steps": 2, "validate_every": 2})
    log = (train(cfg) / "train.log").read_text(encoding="utf-8")
    drift = [line for line in log.splitlines() if "embeddings vs. init" in line]
    assert len(drift) == 2 and all("n/a" in line for line in drift)
    assert "stopped at step 2" in log


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _eacces(*_args, **_kwargs):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))


class _FillingFile:
    """A file on a disk that fills up after `room` bytes."""

    def __init__(self, f, room: int) -> None:
        self._f, self._room = f, room

    def write(self, data) -> int:
        self._room -= len(data)
        if self._room < 0:
            _enospc()
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


@pytest.mark.parametrize("fault", ["fsync", "write"])
def test_full_disk_while_saving_is_an_nmt_error_and_keeps_the_previous_last_pt(tmp_path, make_config, monkeypatch,
                                                                              fault):
    cfg = make_config(train={"max_steps": 2, "save_every": 1, "validate_every": 100})
    run = train(cfg)
    last = run / "checkpoints" / "last.pt"
    before = last.read_bytes()
    if fault == "fsync":
        monkeypatch.setattr(os, "fsync", _enospc)
    else:
        real_fdopen = os.fdopen
        monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: _FillingFile(real_fdopen(fd, mode, *a, **k), 4096))
    cfg["train"]["max_steps"] = 4
    with pytest.raises(NmtError) as e:
        train(cfg, resume=True)
    monkeypatch.undo()
    print(f"NmtError: {e.value}")
    assert str(e.value) == f"{last}: could not save (No space left on device); the previous file is unchanged"
    assert last.read_bytes() == before
    assert load_checkpoint(last)["trainer"]["step"] == 2
    assert tmp_files(run) == []


def test_save_into_a_folder_that_refuses_new_files_is_an_nmt_error(tmp_path, monkeypatch):
    import tempfile

    save_checkpoint(tmp_path / "last.pt", {"step": 1})
    before = snapshot(tmp_path)
    monkeypatch.setattr(tempfile, "mkstemp", _eacces)
    with pytest.raises(NmtError) as e:
        save_checkpoint(tmp_path / "last.pt", {"step": 2})
    print(f"NmtError: {e.value}")
    assert str(e.value) == f"{tmp_path / 'last.pt'}: could not save (Permission denied); the previous file is unchanged"
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- odd lines to translate

ODD_LINES = [
    "",
    "   \t  ",
    ("the cat eats an apple . " * 300)[:5000],  # a 5,000-character line
    "我喜欢吃苹果。",  # no piece of the vocabulary
    "the king 👑 eats 🍎 .",
    "the dog\x00 sees\x07 the\x1b[31m book\x7f .",  # control characters
    "\u200b\u200e\ufeff",  # format characters only
    "the queen takes a fish .",
]


def test_translate_filter_gives_one_line_per_odd_input_line(trained_run):
    proc = nmt("translate", str(trained_run), "--beam", "1", input="".join(s + "\n" for s in ODD_LINES))
    stdout = ok(proc)
    assert proc.stderr == b""
    lines = stdout.split("\n")
    assert len(lines) == len(ODD_LINES) + 1 and lines[-1] == ""
    assert lines[0] == lines[1] == lines[6] == ""
    assert lines[7]  # an ordinary sentence still gets a translation


def test_translate_prompt_answers_every_odd_non_blank_line_and_exits_0(trained_run):
    proc = nmt("translate", str(trained_run), "--interactive", "--beam", "1",
               input="".join(s + "\n" for s in ODD_LINES))
    stdout = ok(proc)
    assert stdout.count("fr: ") == sum(1 for s in ODD_LINES if s.strip())
    assert stdout.count("en> ") == len(ODD_LINES) + 1  # every line read, then EOF
