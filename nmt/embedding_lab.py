"""What did `nn.Embedding` learn? Nearest neighbours, analogies, drift and exports of the tables.

`nn.Embedding` is a lookup table: row n is the vector of vocabulary id n. The rows are ordinary
parameters, so training moves every row whose id occurs in the data (and, through Adam's running
moments, keeps moving rows seen earlier); rows of ids that never occur keep their initial values
(unless weight decay shrinks them).
These functions answer "did my vectors change, and do they look like word2vec now?" with the
numbers of one run:

- `load_tables` reads a side's table (src or tgt) from a checkpoint, or the tables saved before
  the first step (`embeddings_init.pt`), with the tokenizer that gives the rows their names;
- `word_vector`, `neighbors` and `analogy` query a table by cosine similarity;
- `drift` and `drift_summary` measure how far rows moved from their initial values;
- `export_word2vec` and `export_projector` write the table for gensim or the TensorBoard
  projector; `plot_projection` draws a 2-D PCA of chosen words before and after training.

Rows are named by sentencepiece pieces, not words: "▁king" is the piece that starts a word,
"s" one that continues a word. A word that sentencepiece keeps whole has one row; a word split
into several pieces gets the mean of their rows (see `word_vector`).

The pure functions take tensors and a tokenizer; they only use its `pieces`, `piece_to_id`,
`id_to_piece` and `len()`, so tests can pass a small stand-in.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import NamedTuple, Sequence

import torch

from nmt.checkpoint import load_checkpoint
from nmt.errors import NmtError
from nmt.model import Seq2Seq
from nmt.rundir import RunDir
from nmt.tokenizer import N_SPECIAL, PAD_ID, UNK_ID, WORD_MARK, Tokenizer

SIDES = ("src", "tgt")
MOVED_EPS = 1e-8  # a row "moved" when its L2 change exceeds this


# ----------------------------------------------------------------------------- loading


def table_key(side: str) -> str:
    """The state-dict key of a side's embedding table."""
    return Seq2Seq.table_key(side)


def _check_side(side: str) -> None:
    if side not in SIDES:
        raise NmtError(f"side must be 'src' or 'tgt', got {side!r}")


def checkpoint_file(run: RunDir, checkpoint: str) -> Path:
    """The file that `checkpoint` ('best', 'last', 'init' or a path) names in a run directory."""
    if checkpoint == "init":
        if not run.embeddings_init.is_file():
            raise NmtError(f"{run.path}: no embeddings_init.pt (the tables before the first step); "
                           "runs trained by this version of nmt have one")
        return run.embeddings_init
    return run.checkpoint_path(checkpoint)


def load_tables(run_dir: str | Path, checkpoint: str = "best", side: str = "src") -> tuple[torch.Tensor, Tokenizer]:
    """One side's embedding table (vocab, dim) and that side's tokenizer.

    checkpoint: 'best', 'last', 'init' (the tables saved before the first training step) or a
    path to a checkpoint file.
    """
    _check_side(side)
    run = RunDir(run_dir).require()
    tokenizer = Tokenizer.load(run.src_tokenizer if side == "src" else run.tgt_tokenizer)
    path = checkpoint_file(run, checkpoint)
    if checkpoint == "init":
        try:
            tables = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # torch raises many types for torn or foreign files
            raise NmtError(f"{path}: not a readable embeddings file") from None
        if not isinstance(tables, dict) or side not in tables:
            raise NmtError(f"{path}: has no {side!r} table")
        table = tables[side]
    else:
        weights = load_checkpoint(path).get("model", {})
        if table_key(side) not in weights:
            raise NmtError(f"{path}: checkpoint has no {table_key(side)}")
        table = weights[table_key(side)]
    table = table.detach().float().cpu()
    if table.dim() != 2 or table.shape[0] != len(tokenizer):
        raise NmtError(f"{path}: the {side} table has shape {tuple(table.shape)}, "
                       f"but the run's {side} tokenizer has {len(tokenizer)} pieces")
    return table, tokenizer


def load_counts(run_dir: str | Path, side: str, vocab_size: int | None = None) -> torch.Tensor | None:
    """How often each id of `side` occurs in the training data (RUN/token_counts.pt), or None
    when the run has no counts (runs trained before nmt saved them)."""
    _check_side(side)
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


# ----------------------------------------------------------------------------- queries


def word_vector(word: str, table: torch.Tensor, tokenizer: Tokenizer) -> tuple[torch.Tensor, list[tuple[str, int]]]:
    """The vector of a word and the (piece, id) rows it came from.

    The word is tokenized like training text. A word that sentencepiece keeps whole (one piece,
    e.g. "king" → "▁king") uses that row. A word split into several pieces (e.g. "woman" →
    "▁wom" + "an") gets the MEAN of its piece rows: the model itself never holds one vector
    for such a word (the encoder composes the pieces in context), so the mean is only a simple,
    common stand-in. A word that starts with "▁" is taken as a piece name and looked up as is.

    Raises NmtError naming the word when a piece is unknown (<unk>) or the word is empty.
    """
    if not word.strip():
        raise NmtError("empty word: give a word or a piece")
    if word.startswith(WORD_MARK) and len(word) > 1:
        pieces = [word]
    else:
        pieces = tokenizer.pieces(word)
    rows = [(piece, int(tokenizer.piece_to_id(piece))) for piece in pieces]
    if not rows:
        raise NmtError(f"{word!r} gives no pieces")
    unknown = [piece for piece, i in rows if i == UNK_ID]
    if unknown:
        raise NmtError(f"{word!r} is not in this vocabulary: its piece(s) {' '.join(unknown)!r} map to <unk>")
    ids = torch.tensor([i for _, i in rows], device=table.device)
    return table[ids].mean(dim=0), rows


def _unit(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return x / x.norm(dim=dim, keepdim=True).clamp_min(1e-12)


def cosine_to_all(query_vec: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of `query_vec` with every row of `table` (0 for an all-zero row)."""
    return _unit(table) @ _unit(query_vec)


def neighbors(
    query_vec: torch.Tensor, table: torch.Tensor, k: int = 10, exclude_ids: Sequence[int] = ()
) -> list[tuple[int, float]]:
    """The k rows most similar to `query_vec` by cosine: [(id, cosine), …], best first.

    The special rows (pad, unk, bos, eos) and `exclude_ids` are never returned.
    """
    scores = cosine_to_all(query_vec.float(), table.float())
    banned = torch.zeros(table.shape[0], dtype=torch.bool, device=table.device)
    banned[: min(N_SPECIAL, table.shape[0])] = True
    for i in exclude_ids:
        if 0 <= i < table.shape[0]:
            banned[i] = True
    scores = scores.masked_fill(banned, float("-inf"))
    k = min(k, int((~banned).sum()))
    if k <= 0:
        return []
    values, ids = scores.topk(k)
    return [(int(i), float(v)) for i, v in zip(ids, values)]


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


# ----------------------------------------------------------------------------- drift


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
    cos = (_unit(current) * _unit(initial)).sum(dim=1).double()
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


def most_and_least_moved(d: Drift, n: int) -> tuple[list[int], list[int]]:
    """The ids of the n rows that moved most (largest L2 first) and least (smallest first),
    the pad row excluded."""
    ids = torch.arange(d.l2.shape[0])
    ids = ids[ids != PAD_ID]
    most = ids[torch.argsort(d.l2[ids], descending=True, stable=True)]
    least = ids[torch.argsort(d.l2[ids], stable=True)]
    return most[:n].tolist(), least[:n].tolist()


# ----------------------------------------------------------------------------- exports


def _exportable(tokenizer: Tokenizer) -> list[tuple[int, str]]:
    """(id, piece) of every non-special piece whose name has no whitespace."""
    rows = []
    for i in range(N_SPECIAL, len(tokenizer)):
        piece = tokenizer.id_to_piece(i)
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
    rows = _exportable(tokenizer)
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
    rows = _exportable(tokenizer)
    table = table.detach().float().cpu()
    vectors = "".join(_floats(table[i], "\t") + "\n" for i, _ in rows)
    metadata = "piece\tid\tcount\n" + "".join(
        f"{piece}\t{i}\t{int(counts[i]) if counts is not None else '?'}\n" for i, piece in rows
    )
    _write(out_dir / "vectors.tsv", vectors)
    _write(out_dir / "metadata.tsv", metadata)
    return out_dir / "vectors.tsv", out_dir / "metadata.tsv"


# ----------------------------------------------------------------------------- pictures


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


def pca_2d(x: torch.Tensor) -> torch.Tensor:
    """(n, dim) → (n, 2): the rows projected on their first two principal components.

    Each component's sign is fixed so that its largest coordinate is positive, so the same data
    always gives the same picture."""
    x = x.double() - x.double().mean(dim=0, keepdim=True)
    _, _, vh = torch.linalg.svd(x, full_matrices=False)
    coords = x @ vh[:2].T
    if coords.shape[1] < 2:
        coords = torch.cat([coords, torch.zeros(coords.shape[0], 2 - coords.shape[1], dtype=coords.dtype)], dim=1)
    signs = torch.sign(coords.gather(0, coords.abs().argmax(dim=0, keepdim=True)))
    return coords * torch.where(signs == 0, torch.ones_like(signs), signs)


def plot_projection(
    initial: torch.Tensor,
    trained: torch.Tensor,
    words: Sequence[str] | None,
    tokenizer: Tokenizer,
    out_png: str | Path,
    names: tuple[str, str] = ("initial", "trained"),
    title: str = "",
    counts: torch.Tensor | None = None,
) -> Path:
    """A labelled 2-D PCA of the chosen words' vectors, initial table left, trained right.

    PCA is fitted separately in each panel (the axes of the two panels are not the same), so
    compare which words sit together, not where. Multi-piece words use the mean of their pieces'
    rows (see `word_vector`) and are labelled with a "*". Without words, `default_words`
    (by `counts` when given).
    Needs matplotlib (an optional dependency: pip install matplotlib, or nmt[plots]).
    """
    from nmt.plots import pyplot

    plt = pyplot()
    words = list(words) if words else default_words(tokenizer, counts)
    if len(words) < 3:
        raise NmtError(f"a 2-D projection needs at least 3 words, got {len(words)}")
    labels, before, after = [], [], []
    for word in words:
        vec, rows = word_vector(word, initial, tokenizer)
        before.append(vec)
        after.append(word_vector(word, trained, tokenizer)[0])
        labels.append(word if len(rows) == 1 else word + "*")
    fig, axes = plt.subplots(1, 2, figsize=(13, 6.2))
    for ax, vectors, name in zip(axes, (before, after), names):
        xy = pca_2d(torch.stack(vectors)).numpy()
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
    out_png = Path(out_png)
    try:
        out_png.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_png, dpi=110)
    except OSError as e:
        raise NmtError(f"{out_png}: cannot write ({e.strerror})") from None
    finally:
        plt.close(fig)
    return out_png


# ----------------------------------------------------------------------------- text reports (the CLI)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "  ") -> str:
    """Aligned columns: text left, numbers right."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[j]) for row in cells) for j in range(len(headers))]
    numeric = [all(_is_number(row[j]) for row in cells[1:]) and len(cells) > 1 for j in range(len(headers))]
    lines = []
    for row in cells:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)]
        lines.append(indent + "  ".join(parts).rstrip())
    return "\n".join(lines)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return text in ("?", "-")


def _count(counts: torch.Tensor | None, i: int) -> str:
    return "?" if counts is None else f"{int(counts[i]):,}"


def _rows_text(rows: list[tuple[str, int]], counts: torch.Tensor | None) -> str:
    """'▁king (id 57, count 1,234)' or 'mean of 2 rows: ▁wom (id 87, …) + an (id 40, …)'."""
    named = [f"{piece} (id {i}, count {_count(counts, i)})" for piece, i in rows]
    return named[0] if len(named) == 1 else f"mean of {len(named)} rows: " + " + ".join(named)


class Lab:
    """One side of one run, loaded for the `nmt embeddings` reports."""

    def __init__(self, run_dir: str | Path, side: str = "src", checkpoint: str = "best") -> None:
        _check_side(side)
        self.run = RunDir(run_dir).require()
        self.side, self.checkpoint = side, checkpoint
        self.table, self.tokenizer = load_tables(run_dir, checkpoint, side)
        self.counts = load_counts(run_dir, side, len(self.tokenizer))
        cfg = self.run.load_config()
        self.lang = cfg.data.src_lang if side == "src" else cfg.data.tgt_lang

    def describe(self, checkpoint: str | None = None) -> str:
        checkpoint = checkpoint or self.checkpoint
        return f"{checkpoint} ({checkpoint_file(self.run, checkpoint)})"

    def header(self) -> str:
        rows, dim = self.table.shape
        return (f"run {self.run.path} · side {self.side} ({self.lang}) · checkpoint {self.describe()} · "
                f"table {rows} × {dim}")

    def piece(self, i: int) -> str:
        return self.tokenizer.id_to_piece(i)

    def ranked(self, results: list[tuple[int, float]]) -> str:
        rows = [(r, i, self.piece(i), f"{score:.4f}", _count(self.counts, i)) for r, (i, score) in enumerate(results, 1)]
        return _table(("rank", "id", "piece", "cosine", "count"), rows)

    def no_counts_note(self) -> list[str]:
        return [] if self.counts is not None else ["(count ?: this run has no token_counts.pt)"]

    def neighbors(self, word: str, k: int = 10) -> str:
        vec, rows = word_vector(word, self.table, self.tokenizer)
        results = neighbors(vec, self.table, k, [i for _, i in rows])
        return "\n".join([
            self.header(),
            f"{word!r} = {_rows_text(rows, self.counts)}",
            f"the {len(results)} nearest rows by cosine similarity (specials and the word's own pieces left out):",
            self.ranked(results),
            *self.no_counts_note(),
        ])

    def analogy(self, a: str, b: str, c: str, k: int = 5) -> str:
        lines = [self.header(), f"{a} − {b} + {c} = ?"]
        width = max(len(w) for w in (a, b, c))
        for word in (a, b, c):
            lines.append(f"  {word.ljust(width)} = {_rows_text(word_vector(word, self.table, self.tokenizer)[1], self.counts)}")
        results = analogy(a, b, c, self.table, self.tokenizer, k)
        lines += [
            f"the {len(results)} rows nearest to unit({a}) − unit({b}) + unit({c}) by cosine (3CosAdd; "
            "the inputs' pieces left out):",
            self.ranked(results),
            *self.no_counts_note(),
        ]
        return "\n".join(lines)

    def drift(self, start: str = "init", end: str | None = None, n: int = 15) -> str:
        end = end or self.checkpoint
        initial, _ = load_tables(self.run.path, start, self.side)
        current, _ = load_tables(self.run.path, end, self.side)
        d = drift(initial, current, self.counts)
        summary = drift_summary(initial, current, self.counts)
        most, least = most_and_least_moved(d, n)

        def rows(ids: list[int]) -> str:
            return _table(("id", "piece", "l2", "cos_to_start", "count"),
                          [(i, self.piece(i), f"{float(d.l2[i]):.4f}", f"{float(d.cos[i]):.4f}", _count(self.counts, i))
                           for i in ids])

        start_norm = initial.norm(dim=1)[1:].mean()
        lines = [
            f"run {self.run.path} · side {self.side} ({self.lang}) · table {initial.shape[0]} × {initial.shape[1]}",
            f"drift from {self.describe(start)}",
            f"        to {self.describe(end)}",
            "summary (pad row left out): " + "  ".join(f"{key} {_fmt(value)}" for key, value in summary.items()),
            f"for scale: the mean norm of a row at the start is {float(start_norm):.4f}",
            *self.no_counts_note(),
            "",
            f"the {len(most)} rows that moved most:",
            rows(most),
            "",
            f"the {len(least)} rows that moved least:",
            rows(least),
        ]
        return "\n".join(lines)

    def export(self, fmt: str, out: str | Path) -> str:
        if fmt == "word2vec":
            n = export_word2vec(self.table, self.tokenizer, out)
            how = f"word2vec text format; gensim: KeyedVectors.load_word2vec_format({str(out)!r}, binary=False)"
            where = str(out)
        elif fmt == "tsv":
            vectors, metadata = export_projector(self.table, self.tokenizer, out, self.counts)
            n = len(_exportable(self.tokenizer))
            how = "TensorBoard projector: load both files at https://projector.tensorflow.org"
            where = f"{vectors} + {metadata}"
        else:
            raise NmtError(f"--format must be word2vec or tsv, got {fmt!r}")
        return "\n".join([
            self.header(),
            f"wrote {n} vectors of {self.table.shape[1]} dimensions to {where}",
            f"  ({how}; pieces keep the ▁ word-start marker, specials skipped)",
        ])

    def training_text(self) -> list[str] | None:
        """This side's training sentences, or None when the run's data files are not reachable."""
        from nmt.corpus import load_corpus

        cfg = self.run.load_config()
        try:
            corpus = load_corpus(cfg.data.train, cfg.data, "train")
        except (NmtError, OSError):
            return None
        return corpus.src if self.side == "src" else corpus.tgt

    def plot(self, out_png: str | Path, words: Sequence[str] | None = None) -> str:
        initial, _ = load_tables(self.run.path, "init", self.side)
        if not words:
            words = default_words(self.tokenizer, self.counts, sentences=self.training_text())
        path = plot_projection(initial, self.table, words, self.tokenizer, out_png,
                               names=("init", self.checkpoint),
                               title=f"{self.run.path} · side {self.side} ({self.lang})")
        multi = []
        for word in words:
            rows = word_vector(word, self.table, self.tokenizer)[1]
            if len(rows) > 1:
                multi.append(f"  {word}* = {_rows_text(rows, self.counts)}")
        return "\n".join([
            self.header(),
            f"wrote {path}: 2-D PCA of {len(words)} words, init (left) vs {self.checkpoint} (right), "
            "PCA fitted separately per panel",
            "words: " + " ".join(words),
            *(["multi-piece words (plotted at the mean of their rows):"] + multi if multi else []),
        ])


def _fmt(value: float | None) -> str:
    return "None" if value is None else f"{value:.4f}"
