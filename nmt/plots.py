"""Pictures with matplotlib (an optional dependency: `pip install nmt[plots]`): attention heatmaps
and training curves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nmt.errors import NmtError
from nmt_runtime.files import read_text, split_lines


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend, or a one-line hint when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise NmtError("plots need matplotlib: pip install matplotlib (or pip install 'nmt[plots]')") from None
    return plt


def attention_figure(src_pieces: list[str], tgt_pieces: list[str], attention: torch.Tensor, title: str = "") -> Any:
    """A heatmap of attention weights: source pieces across, target pieces down (a matplotlib Figure).

    attention: (len(tgt_pieces) + 1, len(src_pieces) + 1), the EOS step and the source EOS included,
    as returned by search. The figure grows with the sentence so every piece keeps a readable
    label, unlike a fixed-size plot of a long sentence.
    """
    plt = pyplot()
    src = src_pieces + ["</s>"]
    tgt = tgt_pieces + ["</s>"]
    # a torch tensor (a run) or a numpy array (an export)
    weights = np.asarray(attention.detach().float().cpu() if isinstance(attention, torch.Tensor) else attention)
    assert weights.shape == (len(tgt), len(src)), (weights.shape, len(tgt), len(src))
    cell = 0.32  # inches per piece
    fig, ax = plt.subplots(figsize=(max(4.0, 1.8 + cell * len(src)), max(3.0, 1.4 + cell * len(tgt))))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(src)), src, rotation=90, fontsize=9)
    ax.set_yticks(range(len(tgt)), tgt, fontsize=9)
    ax.set_xlabel("source pieces")
    ax.set_ylabel("target pieces")
    if title:
        ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    fig.tight_layout()
    return fig


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Write a figure (creating its folder) and close it; an unwritable path is an NmtError."""
    plt = pyplot()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
    except OSError as e:
        raise NmtError(f"{path}: cannot write the image ({e.strerror or e})") from None
    finally:
        plt.close(fig)
    return path


def plot_attention(
    src_pieces: list[str], tgt_pieces: list[str], attention: torch.Tensor | np.ndarray, path: str | Path, title: str = ""
) -> Path:
    """Write `attention_figure` to `path` (PNG, or any format matplotlib knows by the suffix)."""
    return save_figure(attention_figure(src_pieces, tgt_pieces, attention, title), path)


# ----------------------------------------------------------------------------- training curves


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl; a missing or empty file or a bad line is an NmtError
    naming the file (and the line), since a curve drawn from half the log would mislead."""
    path = Path(path)
    if not path.is_file():
        raise NmtError(f"{path}: no metrics log (train first; it is written every train.log_every steps)")
    records = []
    for n, line in enumerate(split_lines(read_text(path, "metrics log")), 1):
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise NmtError(f"{path}: line {n}: not valid JSON ({e.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("step"), int) or "event" not in record:
            raise NmtError(f"{path}: line {n}: not a metrics record (needs 'event' and an integer 'step')")
        records.append(record)
    if not records:
        raise NmtError(f"{path}: empty metrics log (no step logged yet; train longer than train.log_every steps)")
    return records


def _series(records: list[dict[str, Any]], event: str, get: Any) -> tuple[list[int], list[float]]:
    """(steps, values) of one event type; records where `get` finds nothing are skipped."""
    steps, values = [], []
    for r in records:
        if r.get("event") != event:
            continue
        try:
            value = get(r)
        except (KeyError, TypeError):
            continue
        if isinstance(value, (int, float)):
            steps.append(r["step"])
            values.append(value)
    return steps, values


def plot_curves(records: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Four panels over training steps: train and dev loss, dev BLEU and chrF, the learning rate,
    and the embedding drift (mean L2 from the initial rows, and mean cosine to them) per side."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True)
    (loss_ax, bleu_ax), (lr_ax, drift_ax) = axes

    def line(ax: Any, series: tuple[list[int], list[float]], label: str, **style: Any) -> None:
        if series[0]:
            ax.plot(*series, label=label, **style)

    val = dict(marker="o", markersize=3)
    line(loss_ax, _series(records, "train", lambda r: r["loss"]), "train (label-smoothed)")
    line(loss_ax, _series(records, "validation", lambda r: r["dev_loss"]), "dev", **val)
    loss_ax.set_ylabel("loss (nats per target token)")
    line(bleu_ax, _series(records, "validation", lambda r: r["dev_bleu"]), "dev BLEU (greedy)", **val)
    line(bleu_ax, _series(records, "validation", lambda r: r["dev_chrf"]), "dev chrF", linestyle="--", **val)
    bleu_ax.set_ylabel("score")
    line(lr_ax, _series(records, "train", lambda r: r["lr"]), "learning rate")
    lr_ax.set_ylabel("learning rate")
    for side, color in (("src", "tab:blue"), ("tgt", "tab:orange")):
        line(drift_ax, _series(records, "validation", lambda r: r["embedding_drift"][side]["mean_l2"]),
             f"{side} mean L2", color=color, **val)
    drift_ax.set_ylabel("mean L2 distance from init")
    cos_ax = drift_ax.twinx()
    for side, color in (("src", "tab:blue"), ("tgt", "tab:orange")):
        line(cos_ax, _series(records, "validation", lambda r: r["embedding_drift"][side]["mean_cos"]),
             f"{side} mean cos", color=color, linestyle="--", **val)
    cos_ax.set_ylabel("mean cosine to init (dashed)")
    for ax, name in ((loss_ax, "loss"), (bleu_ax, "dev scores"), (lr_ax, "learning rate"),
                     (drift_ax, "embedding drift")):
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        lines = ax.lines + (cos_ax.lines if ax is drift_ax else [])
        if lines:
            ax.legend(lines, [x.get_label() for x in lines], fontsize=8, loc="best")
        else:
            ax.text(0.5, 0.5, "nothing logged yet", ha="center", va="center", transform=ax.transAxes)
    rates = _series(records, "train", lambda r: r["lr"])[1]
    if rates and min(rates) > 0 and max(rates) / min(rates) >= 10:  # decays read better on a log scale
        lr_ax.set_yscale("log")
    for ax in (lr_ax, drift_ax):
        ax.set_xlabel("training step")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)
