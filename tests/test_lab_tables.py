"""Tests for nmt/lab/tables.py: a run's embedding tables and token counts.

They use the session's tiny trained run (read-only: copies are made where a file has to be
added or removed).
"""

from __future__ import annotations

import shutil

import pytest
import torch

from nmt.checkpoint import load_checkpoint
from nmt.errors import NmtError
from nmt.lab.tables import load_counts, load_tables
from nmt.tokenizer import Tokenizer


# ----------------------------------------------------------------------------- loading a run


def test_load_tables_reads_the_right_side_of_each_checkpoint(trained_run):
    weights = load_checkpoint(trained_run / "checkpoints" / "last.pt")["model"]
    init = torch.load(trained_run / "embeddings_init.pt", weights_only=True)
    for side in ("src", "tgt"):
        table, tok = load_tables(trained_run, "last", side)
        assert isinstance(tok, Tokenizer) and table.shape[0] == len(tok)
        assert torch.equal(table, weights[f"{side}_embed.table.weight"])
        assert torch.equal(load_tables(trained_run, "init", side)[0], init[side])
    path = trained_run / "checkpoints" / "best.pt"
    assert torch.equal(load_tables(trained_run, str(path), "tgt")[0], load_tables(trained_run, "best", "tgt")[0])


def test_load_tables_errors_are_one_line_nmt_errors(trained_run, tmp_path):
    with pytest.raises(NmtError, match="side must be 'src' or 'tgt'"):
        load_tables(trained_run, "best", "both")
    with pytest.raises(NmtError, match="run directory not found"):
        load_tables(tmp_path / "nope")
    with pytest.raises(NmtError, match="checkpoint not found"):
        load_tables(trained_run, str(tmp_path / "missing.pt"))
    run = shutil.copytree(trained_run, tmp_path / "run")
    (run / "embeddings_init.pt").unlink()
    with pytest.raises(NmtError, match="no embeddings_init.pt"):
        load_tables(run, "init")


def test_load_counts_reads_the_side_or_gives_none_without_the_file(trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    counts = {"src": torch.arange(len(Tokenizer.load(run / "tokenizer" / "src.model"))),
              "tgt": torch.zeros(len(Tokenizer.load(run / "tokenizer" / "tgt.model")), dtype=torch.long)}
    torch.save(counts, run / "token_counts.pt")
    assert torch.equal(load_counts(run, "src"), counts["src"])
    assert torch.equal(load_counts(run, "tgt"), counts["tgt"])
    with pytest.raises(NmtError, match="counts for"):
        load_counts(run, "src", vocab_size=3)
    (run / "token_counts.pt").unlink()
    assert load_counts(run, "src") is None
