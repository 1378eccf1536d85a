"""Tests for nmt/embedding_lab.py: neighbours, analogies, drift and exports of embedding tables.

Most tests use hand-built tables whose answers are known exactly and a small stand-in tokenizer;
the loading and export tests use the session's tiny trained run (read-only: copies are made
where a file has to be added or removed).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from nmt.checkpoint import load_checkpoint
from nmt.embedding_lab import (
    Drift,
    analogy,
    default_words,
    drift,
    drift_summary,
    export_projector,
    export_word2vec,
    load_counts,
    load_tables,
    most_and_least_moved,
    neighbors,
    pca_2d,
    plot_projection,
    spearman,
    word_vector,
)
from nmt.errors import NmtError
from nmt.tokenizer import Tokenizer

SQ2 = math.sqrt(2.0)


class FakeTokenizer:
    """The four specials, then `pieces`; a word is "▁word" unless `splits` says otherwise."""

    def __init__(self, pieces: list[str], splits: dict[str, list[str]] | None = None) -> None:
        self._pieces = ["<pad>", "<unk>", "<s>", "</s>", *pieces]
        self._ids = {p: i for i, p in enumerate(self._pieces)}
        self.splits = splits or {}

    def __len__(self) -> int:
        return len(self._pieces)

    def pieces(self, text: str) -> list[str]:
        return [p for word in text.split() for p in self.splits.get(word, ["▁" + word])]

    def piece_to_id(self, piece: str) -> int:
        return self._ids.get(piece, 1)

    def id_to_piece(self, i: int) -> str:
        return self._pieces[i]


# A table built so that king − man + woman = queen exactly: axes royal, male, female, person,
# fruit, food; every word is the sum of two unit axes over sqrt(2), so all rows have length 1.
AXES = {name: i for i, name in enumerate(["royal", "male", "female", "person", "fruit", "food"])}
WORDS = {
    "▁king": ("royal", "male"),
    "▁queen": ("royal", "female"),
    "▁man": ("person", "male"),
    "▁woman": ("person", "female"),
    "▁apple": ("fruit", "food"),
    "▁bread": ("food", "person"),
}


def analogy_world() -> tuple[torch.Tensor, FakeTokenizer]:
    tok = FakeTokenizer(list(WORDS))
    table = torch.zeros(len(tok), len(AXES))
    table[1:4] = torch.randn(3, len(AXES))  # specials: never an answer
    for piece, (a, b) in WORDS.items():
        table[tok.piece_to_id(piece), AXES[a]] = 1 / SQ2
        table[tok.piece_to_id(piece), AXES[b]] = 1 / SQ2
    return table, tok


# ----------------------------------------------------------------------------- word_vector


def test_a_whole_word_uses_its_one_row():
    table, tok = analogy_world()
    vec, rows = word_vector("king", table, tok)
    assert rows == [("▁king", 4)]
    assert torch.equal(vec, table[4])


def test_a_multi_piece_word_is_the_mean_of_its_piece_rows_and_reports_them():
    tok = FakeTokenizer(["▁wom", "an", "▁m"], splits={"woman": ["▁wom", "an"]})
    table = torch.arange(len(tok) * 3, dtype=torch.float32).reshape(len(tok), 3)
    vec, rows = word_vector("woman", table, tok)
    assert rows == [("▁wom", 4), ("an", 5)]
    assert torch.allclose(vec, (table[4] + table[5]) / 2)


def test_a_piece_name_is_looked_up_as_is():
    tok = FakeTokenizer(["▁wom", "an"], splits={"an": ["▁a", "n"]})
    table = torch.randn(len(tok), 3)
    vec, rows = word_vector("▁wom", table, tok)
    assert rows == [("▁wom", 4)]
    assert torch.equal(vec, table[4])


@pytest.mark.parametrize("word", ["zebra", "▁zebra"])
def test_an_unknown_piece_names_the_word(word):
    table, tok = analogy_world()
    with pytest.raises(NmtError, match=f"'{word}' is not in this vocabulary"):
        word_vector(word, table, tok)


def test_an_empty_word_is_refused():
    table, tok = analogy_world()
    with pytest.raises(NmtError, match="empty word"):
        word_vector("  ", table, tok)


# ----------------------------------------------------------------------------- neighbors, analogy


def test_neighbors_rank_by_cosine_and_skip_specials_and_excluded_ids():
    table, tok = analogy_world()
    king = table[tok.piece_to_id("▁king")]
    table[1] = king * 3  # <unk> points the same way as the query: still never returned
    result = neighbors(king, table, k=3, exclude_ids=[tok.piece_to_id("▁king")])
    ids = [i for i, _ in result]
    # queen and man share one axis with king (cosine 1/2); apple shares none (0)
    assert set(ids[:2]) == {tok.piece_to_id("▁queen"), tok.piece_to_id("▁man")}
    assert [round(score, 6) for _, score in result[:2]] == [0.5, 0.5]
    assert all(i >= 4 for i in ids)


def test_neighbors_of_a_row_include_the_row_itself_at_cosine_one_unless_excluded():
    table, tok = analogy_world()
    queen = tok.piece_to_id("▁queen")
    (best, score), *_ = neighbors(table[queen] * 7, table, k=1)
    assert best == queen and score == pytest.approx(1.0)


def test_neighbors_k_larger_than_the_vocabulary_returns_every_allowed_row():
    table, tok = analogy_world()
    assert len(neighbors(table[4], table, k=100)) == len(tok) - 4
    assert neighbors(table[4], table, k=100, exclude_ids=range(len(tok))) == []


def test_analogy_king_minus_man_plus_woman_is_queen_exactly():
    table, tok = analogy_world()
    result = analogy("king", "man", "woman", table, tok, k=3)
    (best, score), *rest = result
    assert tok.id_to_piece(best) == "▁queen"
    assert score == pytest.approx(1.0)
    assert all(score < 1.0 - 1e-6 for _, score in rest)
    inputs = {tok.piece_to_id(p) for p in ("▁king", "▁man", "▁woman")}
    assert inputs.isdisjoint(i for i, _ in result)


def test_analogy_ignores_the_length_of_the_input_vectors():
    table, tok = analogy_world()
    table[tok.piece_to_id("▁man")] *= 10  # 3CosAdd works on unit vectors
    best, _ = analogy("king", "man", "woman", table, tok, k=1)[0]
    assert tok.id_to_piece(best) == "▁queen"


def test_analogy_ranks_like_gensim_most_similar():
    gensim_models = pytest.importorskip("gensim.models")
    torch.manual_seed(0)
    tok = FakeTokenizer([f"▁w{i}" for i in range(40)])
    table = torch.randn(len(tok), 8)
    kv = gensim_models.KeyedVectors(8)
    kv.add_vectors([tok.id_to_piece(i) for i in range(4, len(tok))], table[4:].numpy())
    expected = [w for w, _ in kv.most_similar(positive=["▁w1", "▁w3"], negative=["▁w2"], topn=5)]
    assert [tok.id_to_piece(i) for i, _ in analogy("w1", "w2", "w3", table, tok, k=5)] == expected


# ----------------------------------------------------------------------------- drift


def drift_world() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """8 rows (4 specials): rows 4, 5 and 7 move by 5, 1 and 2; the rest stay (pad moves by 100,
    which must not count)."""
    initial = torch.tensor([[0.0, 0.0], [1, 1], [1, -1], [2, 0], [1, 0], [0, 1], [3, 3], [-1, 0]])
    current = initial.clone()
    current[0] = torch.tensor([60.0, 80.0])  # the pad row: excluded from every statistic
    current[4] += torch.tensor([3.0, 4.0])  # l2 5
    current[5] += torch.tensor([1.0, 0.0])  # l2 1
    current[7] += torch.tensor([0.0, 2.0])  # l2 2
    counts = torch.tensor([0, 0, 0, 50, 10, 5, 0, 7])
    return initial, current, counts


def test_drift_gives_per_row_l2_and_cosine():
    initial, current, counts = drift_world()
    d = drift(initial, current, counts)
    assert isinstance(d, Drift)
    assert d.l2.tolist() == pytest.approx([100, 0, 0, 0, 5, 1, 0, 2])
    expected_cos = torch.nn.functional.cosine_similarity(initial[1:].double(), current[1:].double())
    assert torch.allclose(d.cos[1:], expected_cos)
    assert torch.equal(d.counts, counts)


def test_drift_of_a_zero_row_that_stays_zero_has_cosine_one():
    table = torch.zeros(5, 3)
    d = drift(table, table.clone())
    assert d.l2.tolist() == [0.0] * 5 and d.cos.tolist() == [1.0] * 5


def test_drift_summary_on_known_tensors():
    initial, current, counts = drift_world()
    s = drift_summary(initial, current, counts)
    assert list(s) == ["mean_l2", "median_l2", "frac_moved", "mean_cos",
                       "mean_l2_seen", "mean_l2_unseen", "spearman_l2_freq"]
    # non-pad rows 1..7 have l2 [0, 0, 0, 5, 1, 0, 2]
    assert s["mean_l2"] == pytest.approx(8 / 7)
    assert s["median_l2"] == pytest.approx(0.0)
    assert s["frac_moved"] == pytest.approx(3 / 7)
    cos = torch.nn.functional.cosine_similarity(initial[1:].double(), current[1:].double())
    assert s["mean_cos"] == pytest.approx(float(cos.mean()))
    # non-special rows 4..7: seen (count > 0) 4, 5, 7 → l2 5, 1, 2; unseen 6 → 0
    assert s["mean_l2_seen"] == pytest.approx(8 / 3)
    assert s["mean_l2_unseen"] == pytest.approx(0.0)
    # l2 [5, 1, 0, 2] and counts [10, 5, 0, 7] rank the same way
    assert s["spearman_l2_freq"] == pytest.approx(1.0)
    json.dumps(s, allow_nan=False)


def test_drift_summary_without_counts_has_the_four_keys():
    initial, current, _ = drift_world()
    assert list(drift_summary(initial, current)) == ["mean_l2", "median_l2", "frac_moved", "mean_cos"]


def test_drift_summary_median_of_an_even_count_is_the_middle_value():
    initial = torch.zeros(5, 1)
    current = torch.tensor([[0.0], [1.0], [2.0], [4.0], [8.0]])
    assert drift_summary(initial, current)["median_l2"] == pytest.approx(3.0)


def test_drift_summary_gives_none_where_a_statistic_is_undefined():
    initial, current, _ = drift_world()
    everywhere = torch.tensor([0, 0, 0, 0, 3, 3, 3, 3])  # no unseen row; frequency constant
    s = drift_summary(initial, current, everywhere)
    assert s["mean_l2_unseen"] is None and s["spearman_l2_freq"] is None
    json.dumps(s, allow_nan=False)


def test_drift_summary_of_an_unchanged_table():
    table = torch.randn(10, 4)
    table[0] = 0
    s = drift_summary(table, table.clone(), torch.arange(10))
    assert s["mean_l2"] == 0 and s["frac_moved"] == 0 and s["mean_cos"] == pytest.approx(1.0)


def test_drift_refuses_tables_of_different_shapes():
    with pytest.raises(NmtError, match="different runs"):
        drift(torch.zeros(5, 3), torch.zeros(6, 3))


def test_spearman_monotone_and_reversed():
    x = torch.tensor([1.0, 2.0, 3.0, 10.0, 100.0])
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)


def test_spearman_with_ties_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    torch.manual_seed(1)
    x = torch.randint(0, 5, (60,)).double()  # many ties
    y = x + torch.randn(60)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x.numpy(), y.numpy()).statistic)


def test_most_and_least_moved_leave_out_the_pad_row():
    initial, current, counts = drift_world()
    most, least = most_and_least_moved(drift(initial, current, counts), 3)
    assert most == [4, 7, 5]
    assert least == [1, 2, 3]


# ----------------------------------------------------------------------------- exports


def test_word2vec_export_format(tmp_path):
    tok = FakeTokenizer(["▁king", "ing", "bad piece"])
    table = torch.randn(len(tok), 3)
    n = export_word2vec(table, tok, tmp_path / "v.txt")
    lines = (tmp_path / "v.txt").read_text(encoding="utf-8").splitlines()
    assert n == 2 and lines[0] == "2 3"
    assert [line.split(" ")[0] for line in lines[1:]] == ["▁king", "ing"]  # specials and spaces skipped
    assert all(len(line.split(" ")) == 4 for line in lines[1:])


def test_word2vec_export_round_trips_through_gensim(trained_run, tmp_path):
    gensim_models = pytest.importorskip("gensim.models")
    table, tok = load_tables(trained_run, "best", "src")
    n = export_word2vec(table, tok, tmp_path / "src.vec")
    kv = gensim_models.KeyedVectors.load_word2vec_format(str(tmp_path / "src.vec"), binary=False)
    assert len(kv) == n == len(tok) - 4
    for i in range(4, len(tok)):
        assert torch.equal(torch.from_numpy(kv[tok.id_to_piece(i)].copy()), table[i])


def exported_tokens(path: Path) -> set[str]:
    return {line.split(" ")[0] for line in path.read_text(encoding="utf-8").splitlines()[1:]}


def test_each_side_exports_its_own_vocabulary(trained_run, tmp_path):
    src_table, src_tok = load_tables(trained_run, "best", "src")
    tgt_table, tgt_tok = load_tables(trained_run, "best", "tgt")
    export_word2vec(src_table, src_tok, tmp_path / "src.vec")
    export_word2vec(tgt_table, tgt_tok, tmp_path / "tgt.vec")
    src, tgt = exported_tokens(tmp_path / "src.vec"), exported_tokens(tmp_path / "tgt.vec")
    assert src == {src_tok.id_to_piece(i) for i in range(4, len(src_tok))}
    assert tgt == {tgt_tok.id_to_piece(i) for i in range(4, len(tgt_tok))}
    # "oi" (roi, voit, poisson) is a French-only piece of the tiny corpus; "k" (king, book) English-only
    assert "oi" in tgt and "oi" not in src
    assert "k" in src and "k" not in tgt


def test_projector_files_have_one_metadata_row_per_vector(tmp_path):
    tok = FakeTokenizer(["▁king", "ing", "s"])
    table = torch.randn(len(tok), 5)
    counts = torch.tensor([0, 0, 0, 0, 12, 3, 0])
    vectors, metadata = export_projector(table, tok, tmp_path / "proj", counts)
    vector_rows = vectors.read_text(encoding="utf-8").splitlines()
    meta_rows = metadata.read_text(encoding="utf-8").splitlines()
    assert meta_rows[0] == "piece\tid\tcount"
    assert len(meta_rows) - 1 == len(vector_rows) == 3
    assert meta_rows[1:] == ["▁king\t4\t12", "ing\t5\t3", "s\t6\t0"]
    assert [float(v) for v in vector_rows[1].split("\t")] == pytest.approx(table[5].tolist())


def test_projector_without_counts_writes_question_marks(trained_run, tmp_path):
    table, tok = load_tables(trained_run, "best", "tgt")
    vectors, metadata = export_projector(table, tok, tmp_path)
    meta_rows = metadata.read_text(encoding="utf-8").splitlines()
    assert len(meta_rows) - 1 == len(vectors.read_text(encoding="utf-8").splitlines()) == len(tok) - 4
    assert all(row.endswith("\t?") for row in meta_rows[1:])


# ----------------------------------------------------------------------------- loading a run


def test_load_tables_reads_the_right_side_of_each_checkpoint(trained_run):
    weights = load_checkpoint(trained_run / "checkpoints" / "last.pt")["model"]
    init = torch.load(trained_run / "embeddings_init.pt", weights_only=True)
    for side in ("src", "tgt"):
        table, tok = load_tables(trained_run, "last", side)
        assert isinstance(tok, Tokenizer) and table.shape[0] == len(tok)
        assert torch.equal(table, weights[f"{side}_embed.table.weight"])
        assert torch.equal(load_tables(trained_run, "init", side)[0], init[side])
    path = trained_run / "checkpoints" / "best.pt"
    assert torch.equal(load_tables(trained_run, str(path), "tgt")[0], load_tables(trained_run, "best", "tgt")[0])


def test_load_tables_errors_are_one_line_nmt_errors(trained_run, tmp_path):
    with pytest.raises(NmtError, match="side must be 'src' or 'tgt'"):
        load_tables(trained_run, "best", "both")
    with pytest.raises(NmtError, match="run directory not found"):
        load_tables(tmp_path / "nope")
    with pytest.raises(NmtError, match="checkpoint not found"):
        load_tables(trained_run, str(tmp_path / "missing.pt"))
    run = shutil.copytree(trained_run, tmp_path / "run")
    (run / "embeddings_init.pt").unlink()
    with pytest.raises(NmtError, match="no embeddings_init.pt"):
        load_tables(run, "init")


def test_load_counts_reads_the_side_or_gives_none_without_the_file(trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    counts = {"src": torch.arange(len(Tokenizer.load(run / "tokenizer" / "src.model"))),
              "tgt": torch.zeros(len(Tokenizer.load(run / "tokenizer" / "tgt.model")), dtype=torch.long)}
    torch.save(counts, run / "token_counts.pt")
    assert torch.equal(load_counts(run, "src"), counts["src"])
    assert torch.equal(load_counts(run, "tgt"), counts["tgt"])
    with pytest.raises(NmtError, match="counts for"):
        load_counts(run, "src", vocab_size=3)
    (run / "token_counts.pt").unlink()
    assert load_counts(run, "src") is None


# ----------------------------------------------------------------------------- pictures


def test_default_words_are_frequent_whole_word_pieces():
    tok = FakeTokenizer(["▁the", "s", "▁fro", "▁cat", "▁.", "▁a", "▁dog"])
    counts = torch.tensor([0, 0, 0, 0, 100, 90, 80, 5, 70, 60, 50])
    assert default_words(tok, counts, n=3) == ["the", "fro", "dog"]
    assert default_words(tok, None, n=2) == ["the", "fro"]
    # with the training text, "fro" is seen to be only the start of "from"
    text = ["the cat saw the dog from afar", "the cat ."]
    assert default_words(tok, counts, n=3, sentences=text) == ["the", "cat", "dog"]


def test_pca_2d_recovers_a_line_and_is_deterministic():
    t = torch.linspace(-1, 1, 7).unsqueeze(1)
    points = t * torch.tensor([[3.0, 4.0, 0.0]]) + torch.tensor([[1.0, 1.0, 1.0]])
    xy = pca_2d(points)
    assert xy.shape == (7, 2)
    assert torch.allclose(xy[:, 1], torch.zeros(7, dtype=xy.dtype), atol=1e-6)
    assert torch.allclose(xy[:, 0].abs(), (t.squeeze(1) * 5).abs().double(), atol=1e-6)
    assert torch.equal(pca_2d(points), xy)
    assert torch.allclose(pca_2d(-points), xy, atol=1e-6)  # signs fixed by convention


def test_plot_projection_writes_a_png(trained_run, tmp_path):
    pytest.importorskip("matplotlib")
    initial, tok = load_tables(trained_run, "init", "src")
    trained, _ = load_tables(trained_run, "best", "src")
    out = plot_projection(initial, trained, ["king", "queen", "cat", "dog", "a"], tok, tmp_path / "sub" / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_projection_without_matplotlib_gives_a_one_line_hint(monkeypatch, tmp_path):
    import sys

    table, tok = analogy_world()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    with pytest.raises(NmtError, match="pip install matplotlib") as excinfo:
        plot_projection(table, table, ["king", "queen", "man"], tok, tmp_path / "p.png")
    assert "\n" not in str(excinfo.value)


def test_plot_projection_needs_three_words(tmp_path):
    pytest.importorskip("matplotlib")
    table, tok = analogy_world()
    with pytest.raises(NmtError, match="at least 3 words"):
        plot_projection(table, table, ["king", "queen"], tok, tmp_path / "p.png")
