"""The tables as files for other tools: word2vec text (gensim) and TSV (TensorBoard projector).

Both skip the special pieces and any piece with whitespace in its name (word2vec's format
splits on spaces), so both files of a run list the same pieces in the same order.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nmt.errors import NmtError
from nmt.tokenizer import N_SPECIAL, Tokenizer
from nmt_runtime.tokenizer import shown


def exportable(tokenizer: Tokenizer) -> list[tuple[int, str]]:
    """(id, name) of every non-special piece whose name has no whitespace: the piece, or in a word
    vocabulary the word (`Tokenizer.show`)."""
    rows = []
    for i in range(N_SPECIAL, len(tokenizer)):
        piece = shown(tokenizer, tokenizer.id_to_piece(i))
        if piece and not any(ch.isspace() for ch in piece):
            rows.append((i, piece))
    return rows


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise NmtError(f"{path}: cannot write ({e.strerror})") from None


def _floats(row: torch.Tensor, sep: str) -> str:
    return sep.join(f"{v:.9g}" for v in row.tolist())  # 9 significant digits: float32 round-trips exactly


def export_word2vec(table: torch.Tensor, tokenizer: Tokenizer, path: str | Path) -> int:
    """Write the table in word2vec text format ("N D" header, then "token v1 … vD" lines).

    Tokens are the sentencepiece pieces, "▁" word-start marker kept: "▁king" is the word "king",
    "ing" a piece inside a word; look words up as "▁" + word. The special pieces (<pad>, <unk>,
    <s>, </s>) are skipped, and so is any piece containing whitespace (the format splits on
    spaces). Loads with gensim's `KeyedVectors.load_word2vec_format(path, binary=False)`.
    Returns the number of vectors written.
    """
    rows = exportable(tokenizer)
    table = table.detach().float().cpu()
    lines = [f"{len(rows)} {table.shape[1]}"]
    lines += [f"{piece} {_floats(table[i], ' ')}" for i, piece in rows]
    _write(Path(path), "\n".join(lines) + "\n")
    return len(rows)


def export_projector(
    table: torch.Tensor, tokenizer: Tokenizer, out_dir: str | Path, counts: torch.Tensor | None = None
) -> tuple[Path, Path]:
    """Write `vectors.tsv` (tab-separated floats, one row a vector, no header) and
    `metadata.tsv` (header "piece<TAB>id<TAB>count", one row per vector; count "?" without
    counts) into out_dir, for https://projector.tensorflow.org ("Load") or TensorBoard.
    The special pieces are skipped, as in `export_word2vec`. Returns both paths."""
    out_dir = Path(out_dir)
    rows = exportable(tokenizer)
    table = table.detach().float().cpu()
    vectors = "".join(_floats(table[i], "\t") + "\n" for i, _ in rows)
    metadata = "piece\tid\tcount\n" + "".join(
        f"{piece}\t{i}\t{int(counts[i]) if counts is not None else '?'}\n" for i, piece in rows
    )
    _write(out_dir / "vectors.tsv", vectors)
    _write(out_dir / "metadata.tsv", metadata)
    return out_dir / "vectors.tsv", out_dir / "metadata.tsv"
