"""`--overwrite` replaces only a run directory that nmt made, and loses nothing on the way: each
refusal is one line (exit 2) that leaves every file byte-identical, and a replaced run is kept
until the new one has started."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from helpers import assert_error, nmt, snapshot, write_yaml
from nmt.errors import NmtError
from nmt.rundir import RunDir
from nmt.trainer import train


@pytest.fixture
def old_run(trained_run: Path, tmp_path: Path) -> Path:
    """A finished run directory of our own, to replace."""
    run = tmp_path / "old_run"
    shutil.copytree(trained_run, run)
    return run


def quick(cfg: dict, run: Path) -> dict:
    """The trained run's config (a copy: the fixture's is shared), into `run`, for 2 steps."""
    cfg = copy.deepcopy(cfg)
    return {**cfg, "run": {"dir": str(run)}, "train": {**cfg["train"], "max_steps": 2, "validate_every": 2}}


def overwrite_cli(cfg: dict, run_dir: str, tmp_path: Path, cwd: Path | None = None, config: Path | None = None,
                  home: Path | None = None):
    """`nmt train CONFIG --overwrite --set run.dir=RUN_DIR`, as a user types it."""
    config = config or write_yaml(tmp_path / "cfg.yaml", cfg)
    return nmt("train", str(config), "--overwrite", "--set", f"run.dir={run_dir}", cwd=cwd,
               env={"HOME": str(home)} if home else None)


def test_the_trained_run_holds_only_files_nmt_writes(trained_run):
    assert list(RunDir(trained_run).foreign_files()) == []


def test_a_folder_with_a_file_nmt_did_not_write_is_refused_naming_it(old_run, trained_run_config, tmp_path):
    (old_run / "checkpoints" / "notes.txt").write_text("mine", encoding="utf-8")
    before = snapshot(old_run)
    proc = overwrite_cli(trained_run_config, str(old_run), tmp_path)
    assert_error(proc, f"{old_run}/checkpoints/notes.txt is not a file nmt writes")
    assert snapshot(old_run) == before


def test_a_folder_without_config_yaml_is_refused_naming_a_file(tmp_path, trained_run_config):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work", encoding="utf-8")
    before = snapshot(precious)
    proc = overwrite_cli(trained_run_config, str(precious), tmp_path)
    assert_error(proc, "refuses to replace a folder that nmt did not make", f"{precious}/thesis.txt")
    assert snapshot(precious) == before


def test_the_working_directory_is_refused(old_run, trained_run_config, tmp_path):
    before = snapshot(old_run)
    proc = overwrite_cli(trained_run_config, ".", tmp_path, cwd=old_run)
    assert_error(proc, "refuses to replace the working directory")
    assert snapshot(old_run) == before


def test_a_parent_of_the_working_directory_is_refused(old_run, trained_run_config, tmp_path):
    before = snapshot(old_run)
    proc = overwrite_cli(trained_run_config, "..", tmp_path, cwd=old_run / "checkpoints")
    assert_error(proc, "refuses to replace a folder above the working directory")
    assert snapshot(old_run) == before


def test_the_home_directory_is_refused(old_run, trained_run_config, tmp_path):
    before = snapshot(old_run)
    proc = overwrite_cli(trained_run_config, str(old_run), tmp_path, home=old_run)
    assert_error(proc, "refuses to replace the home directory")
    assert snapshot(old_run) == before


def test_the_folder_holding_the_config_is_refused(old_run, tmp_path):
    before = snapshot(old_run)
    proc = overwrite_cli({}, str(old_run), tmp_path, config=old_run / "config.yaml")
    assert_error(proc, f"a folder that holds {old_run}/config.yaml, which this run reads")
    assert snapshot(old_run) == before


def test_the_folder_holding_the_training_data_is_refused(old_run, trained_run_config):
    cfg = quick(trained_run_config, old_run)
    shutil.copy(Path(cfg["data"]["train"] + ".en"), old_run / "train.en")
    shutil.copy(Path(cfg["data"]["train"] + ".fr"), old_run / "train.fr")
    cfg["data"]["train"] = str(old_run / "train")
    before = snapshot(old_run)
    with pytest.raises(NmtError, match=f"holds {old_run}/train.en, which this run reads"):
        train(cfg, overwrite=True)
    assert snapshot(old_run) == before


def test_a_run_directory_nmt_made_is_replaced(old_run, trained_run_config):
    (old_run / "hyps").mkdir()
    (old_run / "hyps" / "test.en.beam2.hyp").write_text("x\n", encoding="utf-8")
    (old_run / "checkpoints" / ".last.pt.abc123.tmp").write_bytes(b"torn")  # left by a kill
    run = train(quick(trained_run_config, old_run), overwrite=True)
    assert run == old_run
    assert not (run / "hyps").exists() and not list((run / "checkpoints").glob(".*.tmp"))
    assert [p.name for p in old_run.parent.iterdir() if p.name.startswith(".")] == []  # nothing left aside


def test_a_start_that_fails_after_the_move_leaves_the_old_run_intact(old_run, trained_run_config):
    before = snapshot(old_run)
    cfg = quick(trained_run_config, old_run)
    cfg["tokenizer"] = {**cfg["tokenizer"], "src_vocab_size": 5000}  # more pieces than the text has
    with pytest.raises(NmtError, match="src_vocab_size"):
        train(cfg, overwrite=True)
    assert snapshot(old_run) == before
    assert [p.name for p in old_run.parent.iterdir() if p.name.startswith(".")] == []


def test_a_run_left_aside_by_an_interrupted_overwrite_is_never_deleted(old_run, trained_run_config, tmp_path):
    aside = old_run.with_name(f".{old_run.name}.replaced")
    shutil.copytree(old_run, aside)  # as a SIGKILL between the move and the start leaves it
    before = snapshot(aside)
    with pytest.raises(NmtError, match="holds the run that an interrupted --overwrite"):
        train(quick(trained_run_config, old_run), overwrite=True)
    assert snapshot(aside) == before
