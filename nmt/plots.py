"""Pictures with matplotlib (an optional dependency: `pip install nmt[plots]`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nmt.errors import NmtError


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend, or a one-line hint when it is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise NmtError("plots need matplotlib: pip install matplotlib (or pip install 'nmt[plots]')") from None
    return plt


def plot_attention(
    src_pieces: list[str], tgt_pieces: list[str], attention: torch.Tensor, path: str | Path, title: str = ""
) -> Path:
    """A heatmap of attention weights: source pieces across, target pieces down.

    attention: (len(tgt_pieces) + 1, len(src_pieces) + 1), the EOS step and the source EOS included,
    as returned by search. The figure grows with the sentence so every piece keeps a readable
    label, unlike a fixed-size plot of a long sentence.
    """
    plt = pyplot()
    src = src_pieces + ["</s>"]
    tgt = tgt_pieces + ["</s>"]
    weights = attention.detach().float().cpu().numpy()
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
