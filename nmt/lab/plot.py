"""The picture of the lab: a 2-D PCA of chosen words, before and after training.

matplotlib stays optional: `nmt.plots.pyplot` imports it only when a picture is drawn, and says
how to install it when it is missing.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

import torch

from nmt.errors import NmtError
from nmt.lab.stats import pca_2d, word_vector
from nmt.plots import pyplot, save_figure
from nmt.tokenizer import N_SPECIAL, UNK_ID, WORD_MARK, Tokenizer


def default_words(
    tokenizer: Tokenizer, counts: torch.Tensor | None = None, n: int = 20, sentences: Sequence[str] | None = None
) -> list[str]:
    """The n most frequent words that the tokenizer keeps whole (one "▁word" piece).

    With `sentences` (the training text), the words are counted there, so a word-start fragment
    such as "▁fro" (of "from") is not mistaken for a word. Without them, every piece "▁" + two or
    more letters is a candidate, ranked by `counts` when given, else by vocabulary position
    (sentencepiece numbers pieces roughly from most to least frequent).
    """
    if sentences:
        frequency = Counter(word for line in sentences for word in line.split() if len(word) >= 2 and word.isalpha())
        words = []
        for word, _ in frequency.most_common():
            if tokenizer.pieces(word) == [WORD_MARK + word] and tokenizer.piece_to_id(WORD_MARK + word) != UNK_ID:
                words.append(word)
                if len(words) == n:
                    break
        return words
    candidates = []
    for i in range(N_SPECIAL, len(tokenizer)):
        piece = tokenizer.id_to_piece(i)
        word = piece[1:]
        if piece.startswith(WORD_MARK) and len(word) >= 2 and word.isalpha():
            candidates.append((i, word))
    if counts is not None:
        candidates.sort(key=lambda item: (-int(counts[item[0]]), item[0]))
    return [word for _, word in candidates[:n]]


def plot_projection(
    tables: dict[str, torch.Tensor],
    words: Sequence[str] | None,
    tokenizer: Tokenizer,
    out_png: str | Path,
    title: str = "",
    counts: torch.Tensor | None = None,
) -> Path:
    """A labelled 2-D PCA of the chosen words' vectors, one panel per table (by name, in order:
    e.g. the initial table, the trained one, word2vec's).

    PCA is fitted separately in each panel (the axes of the panels are not the same), so
    compare which words sit together, not where. Multi-piece words use the mean of their pieces'
    rows (see `word_vector`) and are labelled with a "*". Without words, `default_words`
    (by `counts` when given).
    Needs matplotlib (an optional dependency: pip install matplotlib, or nmt[plots]).
    """
    plt = pyplot()
    words = list(words) if words else default_words(tokenizer, counts)
    if len(words) < 3:
        raise NmtError(f"a 2-D projection needs at least 3 words, got {len(words)}")
    first = next(iter(tables.values()))
    labels = [word if len(word_vector(word, first, tokenizer)[1]) == 1 else word + "*" for word in words]
    fig, axes = plt.subplots(1, len(tables), figsize=(6.5 * len(tables), 6.2), squeeze=False)
    for ax, (name, table) in zip(axes[0], tables.items()):
        xy = pca_2d(torch.stack([word_vector(word, table, tokenizer)[0] for word in words])).numpy()
        ax.scatter(xy[:, 0], xy[:, 1], s=14, color="tab:blue")
        for (x, y), label in zip(xy, labels):
            ax.annotate(label, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=9)
        ax.set_title(f"{name} (PCA fitted on this panel)", fontsize=10)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        ax.grid(alpha=0.3)
    note = "* = several pieces, mean of their rows"
    fig.suptitle((title + "\n" if title else "") + f"2-D PCA of {len(words)} word vectors, fitted separately "
                 f"per panel; {note}", fontsize=11)
    fig.tight_layout()
    return save_figure(fig, out_png)
