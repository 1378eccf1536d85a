"""The numbers of the embedding lab: word vectors, cosine neighbours, analogies, drift and PCA.

`nn.Embedding` is a lookup table: row n is the vector of vocabulary id n. The rows are ordinary
parameters, so training moves every row whose id occurs in the data (and, through Adam's running
moments, keeps moving rows seen earlier); rows of ids that never occur keep their initial values
(unless weight decay shrinks them). These functions answer "did my vectors change, and do they
look like word2vec now?" from tensors alone: no files, no pictures, no printing.

Rows are named by sentencepiece pieces, not words: "▁king" is the piece that starts a word,
"s" one that continues a word. A word that sentencepiece keeps whole has one row; a word split
into several pieces gets the mean of their rows (see `word_vector`). The word vectors and the
cosine neighbours are nmt_runtime/neighbours.py's, on the tensors' values: the servers rank with
the same code.

Drift itself (`drift`, `drift_summary`, `spearman`) is in nmt/drift.py, which the trainer uses
too; this module names it as before.

The functions only use a tokenizer's `pieces`, `piece_to_id`, `id_to_piece` and `len()`, so
tests can pass a small stand-in.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from nmt.drift import Drift
from nmt.drift import unit as _unit
from nmt.snapshots import pca_axes
from nmt.tokenizer import PAD_ID, Tokenizer
from nmt_runtime import neighbours


# ----------------------------------------------------------------------------- queries


def _values(t: torch.Tensor) -> np.ndarray:
    """A tensor's values as a float32 numpy array (bf16 has no numpy type; a GPU tensor comes over)."""
    return t.detach().float().cpu().numpy()


def word_vector(word: str, table: torch.Tensor, tokenizer: Tokenizer) -> tuple[torch.Tensor, list[tuple[str, int]]]:
    """The vector of a word and the (piece, id) rows it came from: `nmt_runtime.neighbours.word_vector`
    (one row for a whole word, the mean of its pieces' rows for a split one; a word starting with
    "▁" is a piece name). Raises NmtError naming the word when a piece is unknown or it is empty."""
    vec, rows = neighbours.word_vector(word, _values(table), tokenizer)
    return torch.from_numpy(vec).to(table.device), rows


def neighbors(
    query_vec: torch.Tensor, table: torch.Tensor, k: int = 10, exclude_ids: Sequence[int] = ()
) -> list[tuple[int, float]]:
    """The k rows most similar to `query_vec` by cosine: [(id, cosine), …], best first
    (`nmt_runtime.neighbours.neighbors`, the ranking the servers use). The special rows (pad, unk,
    bos, eos) and `exclude_ids` are never returned."""
    return neighbours.neighbors(_values(query_vec), _values(table), k, exclude_ids)


def analogy(
    a: str, b: str, c: str, table: torch.Tensor, tokenizer: Tokenizer, k: int = 5
) -> list[tuple[int, float]]:
    """A − B + C by 3CosAdd (Mikolov et al. 2013): "king − man + woman" should be near "queen".

    The three vectors (see `word_vector`) are scaled to unit length, combined as
    unit(A) − unit(B) + unit(C), and the k rows with the highest cosine to that target are
    returned as [(id, cosine), …]; the pieces of A, B and C are excluded (otherwise A itself
    usually wins). gensim's `most_similar(positive=[a, c], negative=[b])` ranks the same way.
    """
    vectors, exclude = [], set()
    for word in (a, b, c):
        vec, rows = word_vector(word, table, tokenizer)
        vectors.append(_unit(vec))
        exclude.update(i for _, i in rows)
    target = vectors[0] - vectors[1] + vectors[2]
    return neighbors(target, table, k, sorted(exclude))


# ----------------------------------------------------------------------------- drift (the rest: nmt/drift.py)


def most_and_least_moved(d: Drift, n: int) -> tuple[list[int], list[int]]:
    """The ids of the n rows that moved most (largest L2 first) and least (smallest first),
    the pad row excluded."""
    ids = torch.arange(d.l2.shape[0])
    ids = ids[ids != PAD_ID]
    most = ids[torch.argsort(d.l2[ids], descending=True, stable=True)]
    least = ids[torch.argsort(d.l2[ids], stable=True)]
    return most[:n].tolist(), least[:n].tolist()


# ----------------------------------------------------------------------------- projection


def pca_2d(x: torch.Tensor) -> torch.Tensor:
    """(n, dim) → (n, 2): the rows projected on their first two principal components (`pca_axes`:
    the signs fixed, so the same data always gives the same picture)."""
    mean, axes = pca_axes(x)
    return (x.double() - mean) @ axes.T
