"""A run's embedding tables and token counts, read from its files.

A checkpoint's table is found under the state-dict key that the model names
(`Seq2Seq.table_key`), so reading one needs no model built; `embeddings_init.pt` (written before
the first step) holds the tables by side, as `snapshot_embeddings` saved them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from nmt.batching import within_limits
from nmt.checkpoint import load_checkpoint
from nmt.errors import NmtError
from nmt.model import Seq2Seq
from nmt.rundir import RunDir
from nmt.token_counts import check_side, load_counts  # noqa: F401  (serve.py and report.py import load_counts here)
from nmt.tokenizer import Tokenizer

def checkpoint_file(run: RunDir, checkpoint: str) -> Path:
    """The file that `checkpoint` ('best', 'last', 'init' or a path) names in a run directory."""
    if checkpoint == "init":
        if not run.embeddings_init.is_file():
            raise NmtError(f"{run.path}: no embeddings_init.pt (the tables before the first step); "
                           "runs trained by this version of nmt have one")
        return run.embeddings_init
    return run.checkpoint_path(checkpoint)


def load_tables(run_dir: str | Path, checkpoint: str = "best", side: str = "src") -> tuple[torch.Tensor, Tokenizer]:
    """One side's embedding table (vocab, dim) and that side's tokenizer.

    checkpoint: 'best', 'last', 'init' (the tables saved before the first training step) or a
    path to a checkpoint file.
    """
    check_side(side)
    run = RunDir(run_dir).require()
    tokenizer = Tokenizer.load(run.src_tokenizer if side == "src" else run.tgt_tokenizer)
    path = checkpoint_file(run, checkpoint)
    if checkpoint == "init":
        try:
            tables = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # torch raises many types for torn or foreign files
            raise NmtError(f"{path}: not a readable embeddings file") from None
        if not isinstance(tables, dict) or side not in tables:
            raise NmtError(f"{path}: has no {side!r} table")
        table = tables[side]
    else:
        weights = load_checkpoint(path).get("model", {})
        key = Seq2Seq.table_key(side)
        if key not in weights:
            raise NmtError(f"{path}: checkpoint has no {key}")
        table = weights[key]
    table = table.detach().float().cpu()
    if table.dim() != 2 or table.shape[0] != len(tokenizer):
        raise NmtError(f"{path}: the {side} table has shape {tuple(table.shape)}, "
                       f"but the run's {side} tokenizer has {len(tokenizer)} pieces")
    return table, tokenizer


def training_side(run_dir: str | Path, side: str) -> list[list[int]]:
    """The ids of one side of the run's training pairs, as training saw them: the prepared dataset
    that RUN/prepared.json names (nmt prepare), under the run's length limits."""
    from nmt.data import training_data  # the data path: only compare-word2vec needs it here
    from nmt.dataset import Dataset

    check_side(side)
    run = RunDir(run_dir).require()
    try:
        record = json.loads(run.prepared.read_text(encoding="utf-8"))
        folder = Path(record["path"])
    except (OSError, ValueError, KeyError, TypeError):
        raise NmtError(f"{run.prepared}: missing or unreadable; it names the prepared training data "
                       "(runs trained before nmt prepare existed have none)") from None
    if not (folder / "manifest.json").is_file():
        raise NmtError(f"{run.prepared} names {folder}, which is gone; make it again with "
                       f"nmt prepare {run.config} (from the folder the run was trained in)")
    dataset = Dataset(folder)
    problem = dataset.problem()
    if problem:
        raise NmtError(f"{folder}: the prepared dataset is damaged: {problem}; rebuild it with: "
                       f"nmt prepare {run.config} --force")
    if dataset.manifest.get("key") != record.get("key"):
        raise NmtError(f"{folder} holds another prepared dataset than the one {run.prepared} records")
    data = training_data(run.load_config(), dataset, str(run.config))
    split = data.split
    keep = np.flatnonzero(within_limits(split.src_lengths, split.tgt_lengths, data.max_src_len, data.max_tgt_len))
    return split.sentences(side, keep)
