"""How often each id of a side occurs in a run's training data (RUN/token_counts.pt, written when
training starts): the embedding lab reports it beside the tables, and nmt export copies it."""

from __future__ import annotations

from pathlib import Path

import torch

from nmt.errors import NmtError
from nmt.model import Seq2Seq
from nmt.rundir import RunDir

SIDES = tuple(Seq2Seq.EMBEDDINGS)  # ("src", "tgt")


def check_side(side: str) -> None:
    """Refuse a side the model has no table for, before any file is read."""
    if side not in SIDES:
        raise NmtError(f"side must be {' or '.join(map(repr, SIDES))}, got {side!r}")


def load_counts(run_dir: str | Path, side: str, vocab_size: int | None = None) -> torch.Tensor | None:
    """How often each id of `side` occurs in the training data (RUN/token_counts.pt), or None
    when the run has no counts (runs trained before nmt saved them)."""
    check_side(side)
    path = RunDir(run_dir).token_counts
    if not path.is_file():
        return None
    try:
        counts = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        raise NmtError(f"{path}: not a readable token-counts file") from None
    if not isinstance(counts, dict) or not isinstance(counts.get(side), torch.Tensor) or counts[side].dim() != 1:
        raise NmtError(f"{path}: expected {{'src': LongTensor, 'tgt': LongTensor}}")
    if vocab_size is not None and counts[side].numel() != vocab_size:
        raise NmtError(f"{path}: {counts[side].numel()} {side} counts for {vocab_size} vocabulary ids")
    return counts[side].long()
