"""Pretrained word vectors (word2vec or GloVe text files) into the embedding tables.

A file has one word a line, then its vector: `word v1 v2 … vd`. word2vec's text format starts
with a header line `count dim`; GloVe's has none: a first line of exactly two integers is taken
as a header. Every vector must have `model.embedding_size` values.

A sentencepiece piece takes the vector of a word:

- `▁word` (the piece that starts a word) takes the vector of `word`;
- a piece without the `▁` marker (the inside or end of a word) takes the vector of the exact
  same string, if the file has it;
- the special ids 0–3 (pad, unk, bos, eos) never take one.

Matching is exact (case included). Rows of pieces not in the file keep the model's random
initialisation, N(0, std 1/sqrt(embedding_size)). The vectors are copied as they are: no
rescaling, so GloVe rows (norms around 5) are much larger than the random ones (norm about 1),
and `model.embeddings.scale` multiplies both by sqrt(embedding_size) on lookup.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from nmt.config import ModelConfig
from nmt.errors import NmtError
from nmt_runtime.files import open_binary
from nmt.tokenizer import N_SPECIAL, WORD_MARK, Tokenizer

_FIELDS = re.compile(r"[ \t]+")  # spaces and tabs only: a word may hold other (Unicode) spaces


@dataclass
class PretrainedReport:
    side: str  # "src", "tgt" or "src+tgt" (a shared table)
    path: str
    covered: int  # pieces (specials excluded) that took a vector from the file
    total: int  # vocabulary size minus the 4 specials
    dim: int
    file_words: int  # vectors in the file
    uncovered_examples: list[str] = field(default_factory=list)  # a few pieces left random

    @property
    def fraction(self) -> float:
        return self.covered / self.total if self.total else 0.0

    def __str__(self) -> str:
        uncovered = self.total - self.covered
        examples = f" (e.g. {', '.join(self.uncovered_examples[:5])})" if self.uncovered_examples else ""
        return (
            f"pretrained {self.side}: {self.covered}/{self.total} pieces covered ({100 * self.fraction:.1f}%) "
            f"from {self.path} ({self.file_words} words, dim {self.dim}); the other {uncovered} keep the "
            f"random N(0, std 1/sqrt({self.dim}) = {self.dim ** -0.5:.3g}) initialisation{examples}"
        )


def _wanted_words(tokenizer: Tokenizer) -> dict[str, list[int]]:
    """File word → the piece ids that take its vector."""
    wanted: dict[str, list[int]] = {}
    for i in range(N_SPECIAL, len(tokenizer)):
        piece = tokenizer.id_to_piece(i)
        word = piece[len(WORD_MARK):] if piece.startswith(WORD_MARK) else piece
        if word:
            wanted.setdefault(word, []).append(i)
    return wanted


def _is_int(text: str) -> bool:
    return text.isascii() and text.isdigit()


def read_vectors(path: str | Path, dim: int, wanted: set[str] | None = None) -> tuple[dict[str, torch.Tensor], int]:
    """Read a word2vec/GloVe text file: ({word: vector} for the `wanted` words (all when None),
    number of vectors in the file). Every line is checked: UTF-8, `dim` numbers, finite values.
    The first occurrence of a word wins."""
    path = Path(path)
    name = str(path)
    f = open_binary(path, "pretrained embeddings file")
    vectors: dict[str, torch.Tensor] = {}
    n_words = 0
    with f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise NmtError(f"{name}: line {lineno}: not valid UTF-8 (byte 0x{raw[e.start]:02x})") from None
            if lineno == 1 and line.startswith("\ufeff"):
                line = line[1:]
            parts = _FIELDS.split(line.strip(" \t\r\n"))
            if parts == [""]:
                continue  # an empty line (e.g. at the end)
            if lineno == 1 and len(parts) == 2 and _is_int(parts[0]) and _is_int(parts[1]):
                header_dim = int(parts[1])  # word2vec: "count dim"
                if header_dim != dim:
                    raise NmtError(
                        f"{name}: line 1: the word2vec header says the vectors have {header_dim} values but "
                        f"'model.embedding_size' is {dim}"
                    )
                continue
            if len(parts) - 1 < dim or (n_words == 0 and len(parts) - 1 != dim):
                raise NmtError(
                    f"{name}: line {lineno}: a vector of {len(parts) - 1} values but "
                    f"'model.embedding_size' is {dim}"
                )
            # more fields than dim + 1 after the first vector: a word with spaces in it (GloVe 840B
            # has a few, like ". . ."); the last dim fields are the vector
            word, values = " ".join(parts[: len(parts) - dim]), parts[len(parts) - dim :]
            try:
                floats = [float(v) for v in values]
            except ValueError:
                bad = next(v for v in values if not _is_float(v))
                raise NmtError(f"{name}: line {lineno}: {bad[:40]!r} is not a number") from None
            n_words += 1
            if (wanted is None or word in wanted) and word not in vectors:
                if not all(math.isfinite(x) for x in floats):
                    raise NmtError(f"{name}: line {lineno}: the vector of {word!r} has a nan or inf value")
                vectors[word] = torch.tensor(floats, dtype=torch.float32)
    if n_words == 0:
        raise NmtError(f"{name}: no word vectors in the file (empty, or only a header)")
    return vectors, n_words


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_pretrained(
    path: str | Path, tokenizer: Tokenizer, table: torch.Tensor, side: str = "src", max_examples: int = 10
) -> PretrainedReport:
    """Copy the file's vectors into the rows of `table` (vocab, dim) whose pieces match a word,
    in place; other rows are left as they are. Returns what was covered."""
    vocab, dim = table.shape
    if vocab != len(tokenizer):
        raise ValueError(f"table has {vocab} rows but the tokenizer {len(tokenizer)} pieces")  # a bug
    wanted = _wanted_words(tokenizer)
    vectors, n_words = read_vectors(path, dim, set(wanted))
    covered: set[int] = set()
    with torch.no_grad():
        for word, vector in vectors.items():
            for i in wanted[word]:
                table[i].copy_(vector.to(device=table.device, dtype=table.dtype))
                covered.add(i)
    uncovered = [tokenizer.id_to_piece(i) for i in range(N_SPECIAL, vocab) if i not in covered]
    return PretrainedReport(
        side=side,
        path=str(path),
        covered=len(covered),
        total=vocab - N_SPECIAL,
        dim=dim,
        file_words=n_words,
        uncovered_examples=uncovered[:max_examples],
    )


def apply_pretrained(model, cfg: ModelConfig, src_tok: Tokenizer, tgt_tok: Tokenizer) -> list[PretrainedReport]:
    """Load `cfg.embeddings.pretrained_src` / `pretrained_tgt` into the model's tables (a shared
    table is loaded once, from whichever is set). Call right after building the model, before
    the first step; a resumed run gets its tables from the checkpoint instead."""
    e = cfg.embeddings
    reports = []
    if e.share_src_tgt:
        path = e.pretrained_src or e.pretrained_tgt
        if path:
            reports.append(load_pretrained(path, src_tok, model.src_embed.weight, "src+tgt"))
        return reports
    if e.pretrained_src:
        reports.append(load_pretrained(e.pretrained_src, src_tok, model.src_embed.weight, "src"))
    if e.pretrained_tgt:
        reports.append(load_pretrained(e.pretrained_tgt, tgt_tok, model.tgt_embed.weight, "tgt"))
    return reports


__all__ = ["PretrainedReport", "load_pretrained", "apply_pretrained", "read_vectors"]
