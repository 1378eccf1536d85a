"""Cosine neighbours of a word in an embedding table, in numpy: the one implementation behind
GET /v1/embeddings/neighbors (of `nmt serve` and `nmt-runtime serve`) and the embedding lab's
`nmt embeddings RUN neighbors` (nmt/lab/stats.py hands its tensors' values to these functions).

Rows are named by sentencepiece pieces, not words: "▁king" is the piece that starts a word, "s"
one that continues a word. A word that sentencepiece keeps whole has one row; a word split into
several pieces gets the mean of their rows (see `word_vector`).

A tokenizer here is anything with `pieces(text)`, `piece_to_id`, `id_to_piece` and `len()`
(nmt's Tokenizer, the runtime's, or a test's stand-in).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from nmt_runtime.errors import NmtError
from nmt_runtime.tokenizer import N_SPECIAL, UNK_ID, WORD_MARK, shown


def word_rows(word: str, tokenizer: Any) -> list[tuple[str, int]]:
    """The (piece, id) rows a word stands for: its pieces, tokenized like training text, or the
    word itself when it starts with "▁" (a piece name, looked up as is).

    Raises NmtError naming the word when a piece is unknown (<unk>) or the word is empty."""
    if not word.strip():
        raise NmtError("empty word: give a word or a piece")
    pieces = [word] if word.startswith(WORD_MARK) and len(word) > 1 else tokenizer.pieces(word)
    rows = [(piece, int(tokenizer.piece_to_id(piece))) for piece in pieces]
    if not rows:
        raise NmtError(f"{word!r} gives no pieces")
    unknown = [piece for piece, i in rows if i == UNK_ID]
    if unknown:
        raise NmtError(f"{word!r} is not in this vocabulary: its piece(s) {' '.join(unknown)!r} map to <unk>")
    return rows


def word_vector(word: str, table: np.ndarray, tokenizer: Any) -> tuple[np.ndarray, list[tuple[str, int]]]:
    """The vector of a word and the (piece, id) rows it came from (`word_rows`).

    A word that sentencepiece keeps whole (one piece, e.g. "king" → "▁king") uses that row. A word
    split into several pieces (e.g. "woman" → "▁wom" + "an") gets the MEAN of its piece rows: the
    model itself never holds one vector for such a word (the encoder composes the pieces in
    context), so the mean is only a simple, common stand-in."""
    rows = word_rows(word, tokenizer)
    return table[[i for _, i in rows]].mean(axis=0), rows


def unit(x: np.ndarray) -> np.ndarray:
    """`x` scaled to unit length along its last axis (an all-zero vector stays zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cosine_to_all(query_vec: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Cosine similarity of `query_vec` with every row of `table` (0 for an all-zero row)."""
    return unit(table) @ unit(query_vec)


def neighbors(query_vec: np.ndarray, table: np.ndarray, k: int = 10,
              exclude_ids: Sequence[int] = ()) -> list[tuple[int, float]]:
    """The k rows most similar to `query_vec` by cosine, in float32: [(id, cosine), …], best first,
    equal cosines by id. The special rows (pad, unk, bos, eos) and `exclude_ids` are never returned."""
    scores = cosine_to_all(np.asarray(query_vec, np.float32), np.asarray(table, np.float32))
    allowed = np.ones(len(table), dtype=bool)
    allowed[: min(N_SPECIAL, len(table))] = False
    allowed[[i for i in exclude_ids if 0 <= i < len(table)]] = False
    ids = np.flatnonzero(allowed)
    best = ids[np.argsort(-scores[ids], kind="stable")[: max(k, 0)]]
    return [(int(i), float(scores[i])) for i in best]


class Table(NamedTuple):
    """One side's embedding table of one checkpoint, and what names and counts its rows."""

    vectors: np.ndarray  # (vocab, dim)
    tokenizer: Any  # that side's: pieces, piece_to_id, id_to_piece, len()
    counts: np.ndarray | None  # (vocab,) how often each id occurs in the training data; None: unknown


class Neighbours:
    """The body of GET /v1/embeddings/neighbors over the tables of some checkpoints.

    `checkpoints` are the names a query may give (a run's init, best and last; an export's one),
    `default` the one it reads when it gives none. `load(checkpoint, side)` reads a table; each
    is loaded on its first query and kept, so a server starts without reading them."""

    def __init__(self, checkpoints: Sequence[str], load: Callable[[str, str], Table], default: str | None = None) -> None:
        self.checkpoints = tuple(checkpoints)
        self.default = default if default is not None else self.checkpoints[0]
        if self.default not in self.checkpoints:
            raise ValueError(f"default checkpoint {self.default!r} is not one of {self.checkpoints}")
        self.load = load
        self.cache: dict[tuple[str, str], Table] = {}

    def table(self, checkpoint: str, side: str) -> Table:
        if (checkpoint, side) not in self.cache:
            self.cache[(checkpoint, side)] = self.load(checkpoint, side)
        return self.cache[(checkpoint, side)]

    def query(self, word: str | None, piece: str | None, side: str, k: int, checkpoint: str) -> dict[str, Any]:
        """The k nearest rows to a word (`word_vector`) or to a piece of the vocabulary as is, its
        own rows excluded, with the rows it stands for; a piece or word not in the vocabulary
        raises NmtError."""
        vectors, tok, counts = self.table(checkpoint, side)
        if piece is not None:
            i = tok.piece_to_id(piece)
            if i == UNK_ID or tok.id_to_piece(i) != piece:
                raise NmtError(f"piece {piece!r} is not in the {side} vocabulary")
            vec, rows = vectors[i], [(piece, int(i))]
        else:
            vec, rows = word_vector(word or "", vectors, tok)

        def row(i: int, **more: Any) -> dict[str, Any]:
            piece = tok.id_to_piece(i)  # what a query names it by; `label`, what the page shows (the word, in a word vocabulary)
            return {"piece": piece, "label": shown(tok, piece), "id": i, **more,
                    "count": None if counts is None else int(counts[i])}

        return {
            "query": piece if piece is not None else word, "side": side, "checkpoint": checkpoint,
            "pieces": [row(i) for _, i in rows],
            "neighbors": [row(i, cosine=round(c, 4)) for i, c in neighbors(vec, vectors, k, [i for _, i in rows])],
        }
