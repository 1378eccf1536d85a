"""How far embedding rows moved from their initial values: the numbers the trainer logs at every
validation (`drift_summary`) and the embedding lab (nmt/lab) reports and plots.

It lives here, below both, because the core (trainer, model, data, ...) imports nothing from the
lab, the server or the CLI (tests/test_layers.py); the lab imports it from here.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from nmt.errors import NmtError
from nmt.tokenizer import N_SPECIAL, PAD_ID

MOVED_EPS = 1e-8  # a row "moved" when its L2 change exceeds this


def unit(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """`x` scaled to unit length along `dim` (an all-zero vector stays zero)."""
    return x / x.norm(dim=dim, keepdim=True).clamp_min(1e-12)


class Drift(NamedTuple):
    """Per-row change of a table: L2 distance and cosine to the initial row, with frequencies."""

    l2: torch.Tensor  # (vocab,) ‖current − initial‖
    cos: torch.Tensor  # (vocab,) cos(current, initial); 1.0 for a row that is zero in both
    counts: torch.Tensor | None  # (vocab,) occurrences in the training data, or None


def drift(initial: torch.Tensor, current: torch.Tensor, counts: torch.Tensor | None = None) -> Drift:
    """How far each row moved from `initial` to `current` (both (vocab, dim); live parameters
    are fine: the tables are detached and compared on the CPU, float64 results)."""
    if initial.shape != current.shape:
        raise NmtError(f"cannot compare tables of shapes {tuple(initial.shape)} and {tuple(current.shape)} "
                       "(checkpoints of different runs?)")
    if counts is not None and counts.shape != (initial.shape[0],):
        raise NmtError(f"{counts.numel()} token counts for a table of {initial.shape[0]} rows")
    dtype = torch.promote_types(torch.promote_types(initial.dtype, current.dtype), torch.float32)
    initial, current = initial.detach().cpu().to(dtype), current.detach().cpu().to(dtype)
    counts = counts.detach().cpu() if counts is not None else None
    l2 = (current - initial).norm(dim=1).double()
    cos = (unit(current) * unit(initial)).sum(dim=1).double()
    both_zero = (initial.norm(dim=1) == 0) & (current.norm(dim=1) == 0)
    cos = torch.where(both_zero, torch.ones_like(cos), cos)
    return Drift(l2, cos, counts)


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """1-based ranks of x, ties getting the average of their ranks (as Spearman's rho needs)."""
    sorted_x, order = torch.sort(x, stable=True)
    _, inverse, counts = torch.unique_consecutive(sorted_x, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    average = ends - (counts.double() - 1) / 2
    ranks = torch.empty(x.shape[0], dtype=torch.float64)
    ranks[order] = average[inverse]
    return ranks


def spearman(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman's rank correlation (Pearson's r of the average ranks); NaN if either is constant."""
    rx, ry = _ranks(x.double()), _ranks(y.double())
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = float(rx.norm() * ry.norm())
    return float((rx * ry).sum()) / denominator if denominator > 0 else math.nan


def _num(x: torch.Tensor | float) -> float | None:
    """A JSON-friendly float: NaN (an empty mean, a constant ranking) becomes None."""
    x = float(x)
    return None if math.isnan(x) else x


def drift_summary(initial: torch.Tensor, current: torch.Tensor, counts: torch.Tensor | None = None) -> dict:
    """One line of numbers on how a table moved; the pad row (always zero) is left out.

    Keys: mean_l2, median_l2, frac_moved (share of rows with L2 change > 1e-8), mean_cos (mean
    cosine between each row and its initial row) and, with counts (occurrences of each id in the
    training data), over the non-special rows (ids ≥ 4): mean_l2_seen (count > 0),
    mean_l2_unseen (count 0; None if there are none) and spearman_l2_freq (rank correlation of
    drift and frequency; None if either is constant). Values are floats or None, ready for JSON.
    """
    d = drift(initial, current, counts)
    keep = torch.ones(d.l2.shape[0], dtype=torch.bool)
    keep[PAD_ID] = False
    l2 = d.l2[keep]
    summary: dict[str, float | None] = {
        "mean_l2": _num(l2.mean()),
        "median_l2": _num(torch.quantile(l2, 0.5)) if l2.numel() else None,
        "frac_moved": _num((l2 > MOVED_EPS).double().mean()),
        "mean_cos": _num(d.cos[keep].mean()),
    }
    if counts is not None:
        # the special rows are left out here: how often the model sees <s> and </s> (added to
        # every sentence by batching) is not what a count of the text's pieces says
        l2_words, counts_words = d.l2[N_SPECIAL:], d.counts[N_SPECIAL:]
        seen = counts_words > 0
        summary["mean_l2_seen"] = _num(l2_words[seen].mean())
        summary["mean_l2_unseen"] = _num(l2_words[~seen].mean())
        summary["spearman_l2_freq"] = _num(spearman(l2_words, counts_words))
    return summary
