"""One trainer per run directory: a second `nmt train` (--resume, --overwrite, or a new run) on a
run directory that another process trains in is refused in one line naming that process, and
touches nothing; the lock is the OS's (flock), so a killed trainer leaves none behind.

These tests hold the lock from this process (or a small helper process) with the trainer's own
`RunLock`; tests/test_reliability.py refuses a second trainer beside a real one and resumes a
SIGKILLed one without clean-up.
"""

from __future__ import annotations

import copy
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ENV, assert_error, nmt, snapshot, write_yaml
from nmt.errors import NmtError
from nmt.rundir import RunDir, RunLock, start_run_dir
from nmt.trainer import train

HOLD = "import sys; from pathlib import Path; from nmt.rundir import RunLock; RunLock(Path(sys.argv[1])).take(); " \
       "print('held', flush=True); sys.stdin.read()"


@pytest.fixture
def run(trained_run: Path, tmp_path: Path) -> Path:
    """A copy of the trained run, to train in."""
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    return copy


def quick(cfg: dict, run: Path, steps: int = 42) -> dict:
    """The trained run's config (a copy: the fixture's is shared), into `run`, up to `steps` (a
    safe change on resume)."""
    cfg = copy.deepcopy(cfg)
    return {**cfg, "run": {"dir": str(run)}, "train": {**cfg["train"], "max_steps": steps}}


def refused(pid: int) -> str:
    return f"another trainer is using this run directory: pid {pid} ("


def test_resume_beside_a_trainer_is_refused_in_one_line_naming_it_and_touches_nothing(run, trained_run_config,
                                                                                        tmp_path):
    config = write_yaml(tmp_path / "c.yaml", quick(trained_run_config, run))
    before = snapshot(tmp_path)
    lock = RunLock(run).take()
    try:
        proc = nmt("train", str(config), "--resume")
    finally:
        lock.release()
    line = assert_error(proc, f"{run}: {refused(os.getpid())}", "pytest", "started ", f"kill -INT {os.getpid()}")
    assert line.startswith("nmt train: error: ")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("how", ["overwrite", "new run into an empty folder"])
def test_overwrite_or_a_new_run_beside_a_trainer_is_refused_and_touches_nothing(run, trained_run_config, tmp_path,
                                                                                how):
    if how != "overwrite":
        shutil.rmtree(run)
        run.mkdir()
    before = snapshot(tmp_path)
    lock = RunLock(run).take()
    try:
        with pytest.raises(NmtError, match=refused(os.getpid()).replace("(", r"\(")) as e:
            train(quick(trained_run_config, run), overwrite=how == "overwrite")
    finally:
        lock.release()
    print(f"NmtError: {e.value}")
    assert snapshot(tmp_path) == before  # nothing in the run, nothing set aside beside it


def test_the_lock_is_let_go_when_training_ends_and_when_a_start_fails(run, trained_run_config):
    cfg = quick(trained_run_config, run)
    train(cfg, resume=True)
    RunLock(run).take().release()
    bad = {**cfg, "model": {**cfg["model"], "dropout": 0.3}}  # cannot change on resume
    with pytest.raises(NmtError, match="cannot change on resume"):
        train(bad, resume=True)
    RunLock(run).take().release()
    with pytest.raises(NmtError, match="run directory exists"):
        train(cfg)
    RunLock(run).take().release()


def test_overwrite_holds_the_new_folder_and_a_failed_start_puts_the_old_run_back_unlocked(run):
    before = snapshot(run)
    new_run = start_run_dir(RunDir(run), overwrite=True)
    with pytest.raises(NmtError, match=refused(os.getpid()).replace("(", r"\(")):
        RunLock(run).take()  # the new, empty folder is locked
    new_run.failed()
    assert snapshot(run) == before
    RunLock(run).take().release()


def test_a_copy_of_the_lock_in_another_rank_holds_and_releases_nothing(run):
    lock = RunLock(run).take()
    copy = pickle.loads(pickle.dumps(lock))  # what DDP's broadcast gives the other ranks
    copy.release()
    with pytest.raises(NmtError):
        RunLock(run).take()
    lock.release()
    lock.release()  # twice is fine
    RunLock(run).take().release()


def test_a_killed_holder_leaves_no_lock(run):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env=ENV)
    try:
        assert holder.stdout.readline() == b"held\n"
        with pytest.raises(NmtError) as e:
            RunLock(run).take()
        assert refused(holder.pid) in str(e.value) and "from nmt.rundir import RunLock" in str(e.value)
    finally:
        holder.kill()  # SIGKILL: no chance to let go of anything
        holder.wait()
    RunLock(run).take().release()


def test_a_forked_child_does_not_keep_the_lock(tmp_path):
    """nmt prepare's workers are forked while the trainer holds the lock: a SIGKILLed trainer's
    lock must go with it, not live on in them."""
    lock = RunLock(tmp_path).take()
    pid = os.fork()
    if pid == 0:  # the child: its copy of the descriptor is closed, so it holds nothing
        try:
            os.fstat(lock._fd)
            os._exit(1)
        except OSError:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    with pytest.raises(NmtError, match="another trainer is using this run directory"):
        RunLock(tmp_path).take()  # the parent still holds it
    lock.release()
    RunLock(tmp_path).take().release()
