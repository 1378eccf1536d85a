"""The rows moving: `nmt embeddings RUN movie OUT.gif --words …`, one frame per validation.

Every frame uses one projection, a 2-D PCA fitted on all the snapshot rows (nmt/snapshots.py) at
the start and at every validation, so that a word's motion in the picture is its row's motion in
the table, not a change of axes. Each word is drawn where it stands at the frame's step, with its
start (embeddings_init.pt) marked and its path so far; a second panel shows word2vec's vectors of
the same words (trained on the same tokenized text, PCA fitted on word2vec's vectors of the same
snapshot rows), for comparison: where words end up when learning only from their neighbours.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from nmt.checkpoint import atomic_write
from nmt.errors import NmtError
from nmt.plots import pyplot
from nmt.rundir import RunDir
from nmt.snapshots import Snapshots, load_snapshots, pca_axes
from nmt.tokenizer import WORD_MARK, Tokenizer
from nmt_runtime.neighbours import word_rows

DEFAULT_WORDS = 12


@dataclass
class Paths:
    """The chosen words' 2-D positions: `xy[k, w]` at snapshot k, `start[w]` before the first step."""

    labels: list[str]
    steps: list[int]
    columns: list[list[int]]  # each word's pieces, as indices of the snapshot rows (`word_columns`)
    xy: torch.Tensor  # (frames, words, 2)
    start: torch.Tensor  # (words, 2)


def training_ids(run: RunDir, side: str) -> list[list[int]] | None:
    """This side of the run's training pairs as ids (`training_side`), or None where the prepared
    data is gone."""
    from nmt.lab.tables import training_side

    try:
        return training_side(run.path, side)
    except NmtError:
        return None


def snapshot_words(snaps: Snapshots, tokenizer: Tokenizer, n: int = DEFAULT_WORDS,
                   sentences: list[list[int]] | None = None) -> list[str]:
    """The default words: the n most frequent whole words that are one row among the snapshot rows.

    With the training `sentences` (ids, `training_ids`), words are counted there (a "▁fro" piece
    followed by "m" is part of "from", not a word); without them the snapshot rows' own order (most
    frequent piece first) ranks the "▁" + letters pieces."""
    held = {int(i): k for k, i in enumerate(snaps.ids.tolist())}
    names = {i: tokenizer.id_to_piece(i) for i in held}
    candidates = [i for i, name in names.items()
                  if name.startswith(WORD_MARK) and len(name) > 2 and name[1:].isalpha()]
    whole = None
    if sentences is not None:
        starts = {i for i in range(len(tokenizer)) if tokenizer.id_to_piece(i).startswith(WORD_MARK)}
        whole = Counter(s[k] for s in sentences for k in range(len(s))
                        if s[k] in held and (k + 1 == len(s) or s[k + 1] in starts))
    if whole is not None:
        candidates = [i for i in candidates if whole[i] > 0]
        candidates.sort(key=lambda i: (-whole[i], held[i]))
    else:
        candidates.sort(key=lambda i: held[i])
    return [names[i][1:] for i in candidates[:n]]


def word_columns(words: Sequence[str], snaps: Snapshots, tokenizer: Tokenizer) -> list[list[int]]:
    """For each word, where its pieces' rows are among the snapshot rows (a word of several
    pieces is the mean of their rows, as everywhere in the lab). Raises NmtError naming a word
    the vocabulary lacks, or one whose rows the snapshots do not hold."""
    columns = []
    for word in words:
        rows = word_rows(word, tokenizer)
        where = [snaps.index(i) for _, i in rows]
        missing = [piece for (piece, _), k in zip(rows, where) if k is None]
        if missing:
            raise NmtError(f"{word!r}: its piece(s) {' '.join(missing)!r} are not among the {len(snaps.ids)} rows the "
                           "snapshots keep (the most frequent pieces; 'train.embedding_snapshots' sets how many)")
        columns.append([k for k in where if k is not None])
    return columns


def word_paths(snaps: Snapshots, words: Sequence[str], tokenizer: Tokenizer) -> Paths:
    """The words' positions at every snapshot in the one projection of `snaps`."""
    columns = word_columns(words, snaps, tokenizer)
    mean, axes = snaps.projection()

    def place(rows: torch.Tensor) -> torch.Tensor:  # (..., snapshot rows, dim) → (..., words, 2)
        vectors = torch.stack([rows[..., c, :].mean(dim=-2) for c in columns], dim=-2)
        return (vectors.double() - mean) @ axes.T

    labels = [word + ("*" if len(c) > 1 else "") for word, c in zip(words, columns)]
    return Paths(labels, snaps.steps, columns, place(snaps.rows), place(snaps.initial))


def word2vec_positions(ids: list[list[int]], snaps: Snapshots, columns: list[list[int]], tokenizer: Tokenizer,
                       dim: int, seed: int = 1) -> torch.Tensor:
    """(words, 2): word2vec's vectors of the words (gensim skip-gram on `ids`, this side of the
    run's training text), PCA fitted on its vectors of the snapshot rows."""
    from nmt.lab.compare import Word2VecSettings, as_table, train_word2vec

    names = [tokenizer.id_to_piece(i) for i in range(len(tokenizer))]
    table, _ = as_table(train_word2vec([[names[i] for i in s] for s in ids], Word2VecSettings(dim=dim, seed=seed)),
                        tokenizer, dim)
    rows = table[snaps.ids]  # (snapshot rows, dim)
    mean, axes = pca_axes(rows)
    vectors = torch.stack([rows[c].mean(dim=0) for c in columns])
    return (vectors.double() - mean) @ axes.T


def _limits(points: torch.Tensor) -> tuple[tuple[float, float], tuple[float, float]]:
    """Fixed axis limits for every frame: all points, with a margin for the labels."""
    lo, hi = points.reshape(-1, 2).min(dim=0).values, points.reshape(-1, 2).max(dim=0).values
    pad = (hi - lo).clamp_min(1e-6) * 0.12
    return (float(lo[0] - pad[0]), float(hi[0] + pad[0])), (float(lo[1] - pad[1]), float(hi[1] + pad[1]))


def write_movie(run_dir: str | Path, out: str | Path, words: Sequence[str] | None = None, side: str = "src",
                word2vec: bool = True, fps: float = 2.0, seed: int = 1) -> str:
    """Draw the words' rows over the run's validations into the GIF `out`; returns what was done
    as text. Needs matplotlib (and gensim for the word2vec panel)."""
    run = RunDir(run_dir).require()
    if fps <= 0:
        raise NmtError(f"--fps must be above 0, got {fps}")
    out = Path(out)
    if out.suffix.lower() != ".gif":
        raise NmtError(f"{out}: the movie is a GIF: give a file name ending in .gif")
    snaps = load_snapshots(run.snapshots, run.embeddings_init, side)
    tokenizer = Tokenizer.load(run.src_tokenizer if side == "src" else run.tgt_tokenizer)
    # this side's training text, read once: word2vec's (which needs it) and the default words'
    if word2vec:
        from nmt.lab.tables import training_side

        ids = training_side(run.path, side)
    else:
        ids = training_ids(run, side) if not words else None
    if not words:
        words = snapshot_words(snaps, tokenizer, sentences=ids)
        if len(words) < 2:
            raise NmtError(f"the {len(snaps.ids)} snapshot rows hold {len(words)} whole word(s) to draw by default: "
                           "name the words with --words")
    if len(words) < 2:
        raise NmtError(f"a movie needs at least 2 words, got {len(words)}")
    paths = word_paths(snaps, words, tokenizer)
    plt = pyplot()
    from matplotlib.animation import FuncAnimation, PillowWriter

    t0 = time.time()
    w2v = None
    if word2vec:
        w2v = word2vec_positions(ids, snaps, paths.columns, tokenizer, snaps.rows.shape[-1], seed)
    w2v_seconds = time.time() - t0
    cfg = run.load_config()
    lang = cfg.data.src_lang if side == "src" else cfg.data.tgt_lang
    fig, axes = plt.subplots(1, 2 if w2v is not None else 1, figsize=(13 if w2v is not None else 7, 6.4), squeeze=False)
    ax = axes[0, 0]
    xlim, ylim = _limits(torch.cat([paths.xy, paths.start[None]]))
    palette = plt.get_cmap("tab10" if len(words) <= 10 else "tab20")
    colours = [palette(i % palette.N) for i in range(len(words))]

    def frame(k: int) -> None:
        ax.clear()
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.grid(alpha=0.3)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        for w, label in enumerate(paths.labels):
            trail = torch.cat([paths.start[w][None], paths.xy[: k + 1, w]]).numpy()
            ax.plot(trail[:, 0], trail[:, 1], color=colours[w], alpha=0.35, linewidth=1)
            ax.scatter(*trail[0], s=40, facecolors="none", edgecolors=colours[w], linewidths=1.2)
            ax.scatter(*trail[-1], s=36, color=colours[w])
            ax.annotate(label, tuple(trail[-1]), xytext=(4, 4), textcoords="offset points", fontsize=10)
        ax.set_title(f"nmt's table at step {paths.steps[k]:,} (validation {k + 1} of {len(paths.steps)})\n"
                     "○ the row before the first step; the line: its path so far", fontsize=10)

    if w2v is not None:
        wax = axes[0, 1]
        xy = w2v.numpy()
        for w, label in enumerate(paths.labels):
            wax.scatter(*xy[w], s=36, color=colours[w])
            wax.annotate(label, tuple(xy[w]), xytext=(4, 4), textcoords="offset points", fontsize=10)
        wax.grid(alpha=0.3)
        wax.set_xlabel("PC 1")
        wax.set_ylabel("PC 2")
        wax.set_title("word2vec on the same text (gensim skip-gram), for comparison\n"
                      f"PCA fitted on its vectors of the same {len(snaps.ids)} rows", fontsize=10)
    fig.suptitle(f"{run.path} · side {side} ({lang}) · {len(words)} words; one PCA for every frame, fitted on the "
                 f"{len(snaps.ids)} snapshot rows at the start and at all {len(paths.steps)} validations", fontsize=10)
    fig.tight_layout()
    animation = FuncAnimation(fig, frame, frames=len(paths.steps), repeat=False)
    try:  # matplotlib writes a GIF to a named file: draw it aside, then put it in place whole
        with tempfile.TemporaryDirectory() as folder:
            drawn = Path(folder) / out.name
            animation.save(drawn, writer=PillowWriter(fps=fps))
            atomic_write(out, lambda f: f.write(drawn.read_bytes()))
    finally:
        plt.close(fig)
    several = [f"{label[:-1]} = the mean of its pieces' rows" for label in paths.labels if label.endswith("*")]
    return "\n".join([
        f"run {run.path} · side {side} ({lang}) · {len(snaps.ids)} snapshot rows × {len(paths.steps)} validations "
        f"(steps {paths.steps[0]:,}–{paths.steps[-1]:,})",
        f"wrote {out}: {len(paths.steps)} frames at {fps:g} a second, one per validation; {len(words)} words: "
        + " ".join(paths.labels),
        "projection: one 2-D PCA for all frames, fitted on the snapshot rows at the start and at every validation",
        *(["word2vec panel: gensim skip-gram on this side of the training text "
           f"({w2v_seconds:.1f} s), its own PCA"] if w2v is not None else []),
        *(["(" + "; ".join(several) + ")"] if several else []),
    ])


__all__ = ["write_movie", "word_paths", "snapshot_words", "training_ids", "Paths"]
