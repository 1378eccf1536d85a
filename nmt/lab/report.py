"""`Lab`: one side of one run, and the text of the `nmt embeddings` reports about it.

The numbers come from `stats`, the tables from `tables`, the files from `export` and the
picture from `plot`; this module only loads once and lays the results out as aligned text.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch

from nmt.drift import drift, drift_summary
from nmt.errors import NmtError
from nmt.lab.export import export_projector, export_word2vec, exportable
from nmt.lab.plot import default_words, plot_projection
from nmt.lab.stats import analogy, most_and_least_moved, neighbors, word_vector
from nmt.lab.tables import check_side, checkpoint_file, load_counts, load_tables, training_side
from nmt.rundir import RunDir
from nmt.tokenizer import WORD_MARK
from nmt_runtime.tokenizer import shown

if TYPE_CHECKING:
    from nmt.lab.compare import Word2VecSettings


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


def _rows_text(rows: list[tuple[str, int]], counts: torch.Tensor | None, tokenizer: object = None) -> str:
    """'▁king (id 57, count 1,234)' or 'mean of 2 rows: ▁wom (id 87, …) + an (id 40, …)'; in a word
    vocabulary 'king (id 57, …)'."""
    named = [f"{shown(tokenizer, piece)} (id {i}, count {_count(counts, i)})" for piece, i in rows]
    return named[0] if len(named) == 1 else f"mean of {len(named)} rows: " + " + ".join(named)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class Lab:
    """One side of one run, loaded for the `nmt embeddings` reports."""

    def __init__(self, run_dir: str | Path, side: str = "src", checkpoint: str = "best") -> None:
        check_side(side)
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
        """Row i's name as shown: the piece, or in a word vocabulary the word."""
        return shown(self.tokenizer, self.tokenizer.id_to_piece(i))

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
            f"{word!r} = {_rows_text(rows, self.counts, self.tokenizer)}",
            f"the {len(results)} nearest rows by cosine similarity (specials and the word's own pieces left out):",
            self.ranked(results),
            *self.no_counts_note(),
        ])

    def analogy(self, a: str, b: str, c: str, k: int = 5) -> str:
        lines = [self.header(), f"{a} − {b} + {c} = ?"]
        width = max(len(w) for w in (a, b, c))
        for word in (a, b, c):
            lines.append(f"  {word.ljust(width)} = {_rows_text(word_vector(word, self.table, self.tokenizer)[1], self.counts, self.tokenizer)}")
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
            n = len(exportable(self.tokenizer))
            how = "TensorBoard projector: load both files at https://projector.tensorflow.org"
            where = f"{vectors} + {metadata}"
        else:
            raise NmtError(f"--format must be word2vec or tsv, got {fmt!r}")
        return "\n".join([
            self.header(),
            f"wrote {n} vectors of {self.table.shape[1]} dimensions to {where}",
            f"  ({how}; " + ("the words of a word vocabulary" if getattr(self.tokenizer, "word_level", False)
                           else "pieces keep the ▁ word-start marker") + ", specials skipped)",
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
        path = plot_projection({"init": initial, self.checkpoint: self.table}, words, self.tokenizer, out_png,
                               title=f"{self.run.path} · side {self.side} ({self.lang})")
        multi = []
        for word in words:
            rows = word_vector(word, self.table, self.tokenizer)[1]
            if len(rows) > 1:
                multi.append(f"  {word}* = {_rows_text(rows, self.counts, self.tokenizer)}")
        return "\n".join([
            self.header(),
            f"wrote {path}: 2-D PCA of {len(words)} words, init (left) vs {self.checkpoint} (right), "
            "PCA fitted separately per panel",
            "words: " + " ".join(words),
            *(["multi-piece words (plotted at the mean of their rows):"] + multi if multi else []),
        ])

    def compare_word2vec(self, settings: "Word2VecSettings", top: int = 1000, k: int = 10, sample: int = 300,
                         analogies: str | None = None, classes: str | None = None, json_out: str | None = None,
                         plot_out: str | None = None, words: Sequence[str] | None = None) -> str:
        """word2vec trained on this side of the run's training text, next to the trained and the
        initial table (nmt/lab/compare.py says what each figure measures)."""
        import json
        import time

        from nmt.lab.compare import as_table, compare, read_analogies, read_classes, train_word2vec

        queries = read_analogies(analogies) if analogies else []  # bad files fail before the training
        word_classes = read_classes(classes) if classes else None
        ids = training_side(self.run.path, self.side)
        names = [self.tokenizer.id_to_piece(i) for i in range(len(self.tokenizer))]
        sentences = [[names[i] for i in s] for s in ids]
        counts = torch.bincount(torch.tensor([i for s in ids for i in s], dtype=torch.long), minlength=len(names))
        t0 = time.time()
        w2v, present = as_table(train_word2vec(sentences, settings), self.tokenizer, self.table.shape[1])
        seconds = time.time() - t0
        initial, _ = load_tables(self.run.path, "init", self.side)
        tables = {"trained": self.table, "init": initial, "word2vec": w2v}
        result = compare(tables, present, counts, self.tokenizer, top, k, sample, queries, word_classes).results
        t = result["tokens"]
        lines = [
            self.header(),
            f"word2vec: {settings.describe()}, on this side of the run's training pairs (the prepared split, "
            f"length-filtered, tokenized as the run): {len(sentences):,} sentences, {int(counts.sum()):,} pieces "
            f"({seconds:.1f} s)",
            f"tables: trained = {self.describe()}; init = the table before the first step (random: the chance "
            "level of every figure); word2vec",
            f"compared: the {t['compared']:,} pieces of the training side (word2vec has a vector for each); "
            f"the {t['frequent']:,} most frequent are the queries: {' '.join(t['most_frequent'])} …",
            "",
            _table(("", f"neighbour overlap@{t['k']}", "similarity rank corr.", "Procrustes held-out cos"),
                   [(pair, f"{v['neighbour_overlap']:.3f}", f"{v['similarity_correlation']:.3f}",
                     f"{v['procrustes_cosine']:.3f}") for pair, v in result["pairs"].items()]),
            f"  neighbour overlap: share of the {t['k']} nearest neighbours (among the {t['compared']:,} compared "
            f"pieces) of each of the {t['frequent']:,} most frequent that two tables agree on; unrelated tables "
            f"≈ {t['k'] / (t['compared'] - 1):.3f}, a table with itself 1",
            f"  similarity rank corr.: Spearman's rho of the cosines of all {t['correlation_sample'] * (t['correlation_sample'] - 1) // 2:,} "
            f"pairs of the {t['correlation_sample']} most frequent; unrelated ≈ 0",
            f"  Procrustes: an orthogonal map fitted on {t['procrustes_fit']} of the most frequent (frequency ranks "
            f"1, 3, 5, …), the mean cosine of the other {t['procrustes_held_out']} mapped; a rotated copy 1, unrelated ≈ 0",
        ]
        if "analogies" in result:
            asked = next(iter(result["analogies"].values()))
            lines += ["", f"analogies ({analogies}: {asked['asked']} asked, {asked['skipped']} skipped: a word that is "
                          "not one piece the training side has):",
                      _table(("", "top-1", "top-5"), [(name, _fmt(v["top1"]), _fmt(v["top5"]))
                                                      for name, v in result["analogies"].items()])]
        if "classes" in result:
            rows = [(name, c, v["words"], _fmt(v["same_class"]), _fmt(v["same_group"]))
                    for name, by_class in result["classes"].items() for c, v in by_class.items()]
            lines += ["", f"word classes ({classes}): the {t['k']} nearest neighbours of each word of a class, among "
                          "the neighbours that have a class: the share of the same class, and of those, of the same group",
                      _table(("table", "class", "words", "same class", "same group"), rows)]
        if plot_out:
            # the training text, from the pieces already read (not the corpus files again)
            text = ["".join(pieces).replace(WORD_MARK, " ").strip() for pieces in sentences]
            words = words or default_words(self.tokenizer, counts, sentences=text)
            path = plot_projection({"init": initial, f"trained ({self.checkpoint})": self.table, "word2vec": w2v},
                                   words, self.tokenizer, plot_out,
                                   title=f"{self.run.path} · side {self.side} ({self.lang})")
            lines += ["", f"wrote {path}: 2-D PCA of {len(words)} words in the three tables"]
        if json_out:
            report = {"run": str(self.run.path), "side": self.side, "checkpoint": self.describe(),
                      "word2vec": {**settings.__dict__, "sentences": len(sentences), "pieces": int(counts.sum()),
                                   "seconds": round(seconds, 2)},
                      "analogies_file": analogies, "classes_file": classes, **result}
            Path(json_out).parent.mkdir(parents=True, exist_ok=True)
            Path(json_out).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            lines.append(f"wrote {json_out}")
        return "\n".join(lines)
