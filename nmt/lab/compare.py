"""The translation model's embedding table side by side with word2vec trained on the same text.

"Is nn.Embedding like word2vec?" has an answer in numbers once both exist for the same tokens: a
skip-gram word2vec (gensim) trained on exactly the pieces the run trained on (its prepared
training split, one side, after the length filter), and the run's tables before and after
training. Every table here is put in the run's id space (row n = the vector of vocabulary id n),
so the lab's functions (neighbours, analogies) work on all three alike; a piece that word2vec never
saw keeps a zero row and is left out of every comparison.

The measures, each over tokens that both tables have:
- neighbour overlap: for the N most frequent tokens, the mean share of the k nearest neighbours
  (cosine, among all compared tokens) that two tables agree on. 1 for a table with itself; about
  k / (number of tokens) for unrelated tables;
- similarity correlation: Spearman's rank correlation of the cosines of all pairs of a fixed sample
  of frequent tokens. 1 with itself, about 0 for unrelated tables;
- Procrustes: the orthogonal map W (rotation/reflection) that best takes one table's unit rows onto
  the other's, fitted on half of the frequent tokens (every other one, by frequency rank), and the
  mean cosine of the mapped rows to their counterparts on the other half. 1 when one table is a
  rotation of the other; about 0 for unrelated ones. It asks whether the two spaces have the same
  shape, whatever their axes;
- analogies, top-1 and top-5, on the same queries for every table (`a b c d`: a − b + c ≈ d);
- with word classes (a TSV of word, class and optionally a group such as French gender): the share
  of a class's words' k nearest neighbours that are of the same class, and of those, of the same
  group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from nmt.drift import spearman
from nmt.drift import unit as _unit
from nmt.errors import NmtError
from nmt.lab.stats import analogy
from nmt.tokenizer import N_SPECIAL, UNK_ID, Tokenizer

GENSIM_HINT = "compare-word2vec needs gensim: pip install 'nmt[word2vec]'"


# ----------------------------------------------------------------------------- word2vec


@dataclass(frozen=True)
class Word2VecSettings:
    """Skip-gram with negative sampling, as in Mikolov et al. (2013); one worker thread, so that
    a seed gives the same vectors every time."""

    dim: int
    window: int = 5
    epochs: int = 10
    negative: int = 5
    min_count: int = 1  # every piece the run trained on gets a vector
    seed: int = 1

    def describe(self) -> str:
        return (f"gensim Word2Vec skip-gram, dim {self.dim}, window {self.window}, {self.epochs} epochs, "
                f"negative {self.negative}, min_count {self.min_count}, seed {self.seed}, 1 worker")


def train_word2vec(sentences: Sequence[Sequence[str]], settings: Word2VecSettings) -> dict[str, torch.Tensor]:
    """word2vec vectors of every piece of `sentences` (lists of pieces), by piece."""
    try:
        from gensim.models import Word2Vec
    except ImportError:
        raise NmtError(GENSIM_HINT) from None
    model = Word2Vec(sentences=[list(s) for s in sentences], vector_size=settings.dim, window=settings.window,
                     min_count=settings.min_count, sg=1, negative=settings.negative, epochs=settings.epochs,
                     seed=settings.seed, workers=1)
    kv = model.wv
    return {piece: torch.from_numpy(kv[piece].copy()) for piece in kv.index_to_key}


def as_table(vectors: dict[str, torch.Tensor], tokenizer: Tokenizer, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Vectors by piece → a (vocab, dim) table in the tokenizer's id space, and the mask of the
    rows that got a vector (the others stay zero)."""
    table = torch.zeros(len(tokenizer), dim)
    present = torch.zeros(len(tokenizer), dtype=torch.bool)
    for piece, vec in vectors.items():
        i = int(tokenizer.piece_to_id(piece))
        if i >= N_SPECIAL and i != UNK_ID:
            table[i], present[i] = vec, True
    return table, present


# ----------------------------------------------------------------------------- measures


def _cosines(table: torch.Tensor, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """(len(rows), len(columns)) cosine similarities between rows of `table`."""
    unit = _unit(table.double())
    return unit[rows] @ unit[columns].t()


def nearest(table: torch.Tensor, queries: torch.Tensor, candidates: torch.Tensor, k: int) -> torch.Tensor:
    """For each query id, the ids of its k nearest candidates by cosine (itself excluded)."""
    sims = _cosines(table, queries, candidates)
    sims[queries.unsqueeze(1) == candidates.unsqueeze(0)] = -math.inf
    return candidates[sims.topk(k, dim=1).indices]  # (queries, k)


def neighbour_overlap(a: torch.Tensor, b: torch.Tensor, queries: torch.Tensor, candidates: torch.Tensor,
                      k: int = 10) -> float:
    """The mean share of the k nearest neighbours of each query that tables a and b agree on."""
    na, nb = nearest(a, queries, candidates, k), nearest(b, queries, candidates, k)
    shared = (na.unsqueeze(2) == nb.unsqueeze(1)).any(dim=2).sum(dim=1)  # (queries,)
    return float(shared.double().mean()) / k


def similarity_correlation(a: torch.Tensor, b: torch.Tensor, sample: torch.Tensor) -> float:
    """Spearman's rho between the two tables' cosines over all pairs of the sample's ids."""
    upper = torch.triu_indices(len(sample), len(sample), offset=1)
    pairs_a = _cosines(a, sample, sample)[upper[0], upper[1]]
    pairs_b = _cosines(b, sample, sample)[upper[0], upper[1]]
    return spearman(pairs_a, pairs_b)


def procrustes(a: torch.Tensor, b: torch.Tensor, fit: torch.Tensor, held_out: torch.Tensor) -> float:
    """Mean cosine of the held-out unit rows of a, mapped by the orthogonal W fitted on `fit`
    (W = argmin ||A W − B||_F over orthogonal W: U Vᵀ from the SVD of Aᵀ B), to their rows in b."""
    if a.shape[1] != b.shape[1]:
        raise NmtError(f"Procrustes needs tables of one dimension, got {a.shape[1]} and {b.shape[1]}")
    ua, ub = _unit(a.double()), _unit(b.double())
    u, _, vh = torch.linalg.svd(ua[fit].t() @ ub[fit])
    mapped = ua[held_out] @ (u @ vh)
    return float((_unit(mapped) * ub[held_out]).sum(dim=1).mean())


def _data_lines(path: str | Path, what: str) -> list[tuple[int, str]]:
    """(line number, line) of a user's file, blank lines and comments (# or :) left out."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise NmtError(f"{path}: cannot read the {what} ({e.__class__.__name__})") from None
    found = [(n, line) for n, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith(("#", ":"))]
    if not found:
        raise NmtError(f"{path}: no {what} in it")
    return found


def read_analogies(path: str | Path) -> list[tuple[str, str, str, str]]:
    """`a b c d` lines (a − b + c ≈ d); blank lines and lines starting with # or : are skipped
    (word2vec's questions-words.txt marks its sections with ':')."""
    queries = []
    for number, line in _data_lines(path, "analogies"):
        words = line.split()
        if len(words) != 4:
            raise NmtError(f"{path}:{number}: an analogy is 4 words 'a b c d' (a - b + c = d), got {len(words)}")
        queries.append((words[0], words[1], words[2], words[3]))
    return queries


def single_piece(word: str, tokenizer: Tokenizer) -> int | None:
    """The id of a word that the tokenizer keeps whole, else None."""
    pieces = tokenizer.pieces(word)
    if len(pieces) != 1:
        return None
    i = int(tokenizer.piece_to_id(pieces[0]))
    return None if i == UNK_ID else i


def analogy_accuracy(queries: Sequence[tuple[str, str, str, str]], table: torch.Tensor, tokenizer: Tokenizer,
                     usable: torch.Tensor) -> dict[str, Any]:
    """Top-1 and top-5 accuracy of 3CosAdd (`nmt.lab.stats.analogy`) over the queries whose four
    words are each one piece that every compared table has (`usable`, a mask over ids); the others
    are counted as skipped, the same for every table."""
    top1 = top5 = asked = 0
    for a, b, c, d in queries:
        ids = [single_piece(w, tokenizer) for w in (a, b, c, d)]
        if any(i is None or not bool(usable[i]) for i in ids):
            continue
        found = [i for i, _ in analogy(a, b, c, table, tokenizer, k=5)]
        asked += 1
        top1 += found[:1] == [ids[3]]
        top5 += ids[3] in found
    return {"top1": top1 / asked if asked else None, "top5": top5 / asked if asked else None,
            "asked": asked, "skipped": len(queries) - asked}


def read_classes(path: str | Path) -> dict[str, tuple[str, str]]:
    """`word<TAB>class[<TAB>group]` lines → {word: (class, group or "")}."""
    classes = {}
    for number, line in _data_lines(path, "word classes"):
        fields = line.split("\t")
        if len(fields) not in (2, 3) or not all(f.strip() for f in fields):
            raise NmtError(f"{path}:{number}: expected 'word<TAB>class[<TAB>group]', got {line!r}")
        classes[fields[0].strip()] = (fields[1].strip(), fields[2].strip() if len(fields) == 3 else "")
    return classes


def class_agreement(classes: dict[int, tuple[str, str]], table: torch.Tensor, candidates: torch.Tensor,
                    of_class: str, k: int = 10) -> dict[str, Any]:
    """For the words of `of_class` (ids → (class, group)), the share of their k nearest candidates
    that have a class and are of the same class, and among those, of the same group."""
    queries = torch.tensor(sorted(i for i, (c, _) in classes.items() if c == of_class), dtype=torch.long)
    if not len(queries):
        return {"words": 0, "same_class": None, "same_group": None}
    found = nearest(table, queries, candidates, k)
    same_class = known = grouped = same_group = 0
    for q, row in zip(queries.tolist(), found.tolist()):
        for n in row:
            if n not in classes:
                continue
            known += 1
            if classes[n][0] == of_class:
                same_class += 1
                if classes[q][1]:  # the group share counts the words that have one
                    grouped += 1
                    same_group += classes[n][1] == classes[q][1]
    return {"words": len(queries), "neighbours_with_a_class": known,
            "same_class": same_class / known if known else None,
            "same_group": same_group / grouped if grouped else None}


# ----------------------------------------------------------------------------- the whole comparison


@dataclass
class Comparison:
    """What `compare` measured, with the tokens and samples it used."""

    tables: dict[str, torch.Tensor]  # "trained", "init", "word2vec": (vocab, dim), the run's ids
    compared: torch.Tensor  # ids that every table has (word2vec saw them), most frequent first
    results: dict[str, Any]


PAIRS = (("trained", "word2vec"), ("init", "word2vec"), ("trained", "init"))


def compare(tables: dict[str, torch.Tensor], present: torch.Tensor, counts: torch.Tensor, tokenizer: Tokenizer,
            top: int = 1000, k: int = 10, sample: int = 300, analogies: Sequence[tuple[str, str, str, str]] = (),
            classes: dict[str, tuple[str, str]] | None = None) -> Comparison:
    """Compare the tables pairwise (PAIRS) on the ids word2vec has (`present`), by frequency
    (`counts`, ids → occurrences in the training side)."""
    ids = torch.nonzero(present & (counts > 0)).squeeze(1)
    compared = ids[torch.argsort(counts[ids], descending=True, stable=True)]
    if len(compared) < 4:
        raise NmtError(f"only {len(compared)} tokens to compare; the training side is too small")
    frequent = compared[:top]
    queries, corr_sample = frequent, frequent[:sample]
    fit, held_out = frequent[0::2], frequent[1::2]
    kk = min(k, len(compared) - 1)
    results: dict[str, Any] = {
        "tokens": {"compared": len(compared), "frequent": len(frequent), "correlation_sample": len(corr_sample),
                   "procrustes_fit": len(fit), "procrustes_held_out": len(held_out), "k": kk,
                   "most_frequent": [tokenizer.id_to_piece(int(i)) for i in frequent[:10]]},
        "pairs": {},
    }
    for x, y in PAIRS:
        a, b = tables[x], tables[y]
        results["pairs"][f"{x} vs {y}"] = {
            "neighbour_overlap": neighbour_overlap(a, b, queries, compared, kk),
            "similarity_correlation": similarity_correlation(a, b, corr_sample),
            "procrustes_cosine": procrustes(a, b, fit, held_out),
        }
    if analogies:
        results["analogies"] = {name: analogy_accuracy(analogies, t, tokenizer, present) for name, t in tables.items()}
    if classes:
        by_id = {}
        for word, cls in classes.items():
            i = single_piece(word, tokenizer)
            if i is not None and bool(present[i]):
                by_id[i] = cls
        names = sorted({c for c, _ in by_id.values()})
        results["classes"] = {name: {c: class_agreement(by_id, t, compared, c, kk) for c in names}
                              for name, t in tables.items()}
    return Comparison(tables, compared, results)


