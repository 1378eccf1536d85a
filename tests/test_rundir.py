"""Loading a run's model refuses checkpoints of another shape or another vocabulary."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from nmt.checkpoint import load_checkpoint, save_checkpoint
from nmt.errors import NmtError
from nmt.translate import Translator


def copy_run(trained_run: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    return run


def test_a_checkpoint_of_another_model_shape_is_refused(trained_run, tmp_path):
    run = copy_run(trained_run, tmp_path)
    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    cfg["model"]["decoder_hidden_size"] *= 2
    (run / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    with pytest.raises(NmtError, match="does not fit the model"):
        Translator.load(run)


def test_a_checkpoint_of_another_vocabulary_is_refused(trained_run, tmp_path):
    run = copy_run(trained_run, tmp_path)
    best = run / "checkpoints" / "best.pt"
    ckpt = load_checkpoint(best)
    ckpt["vocab"] = {"src": ckpt["vocab"]["src"] + 1, "tgt": ckpt["vocab"]["tgt"]}
    ckpt.pop("format_version")
    save_checkpoint(best, ckpt)
    with pytest.raises(NmtError, match="vocabulary sizes"):
        Translator.load(run)
