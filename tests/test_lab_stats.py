"""Tests for nmt/lab/stats.py: word vectors, neighbours, analogies, drift and PCA of embedding tables.

The tables are hand-built so that the answers are known exactly; the tokenizer is a small
stand-in (helpers.FakeTokenizer).
"""

from __future__ import annotations

import json

import pytest
import torch

from helpers import FakeTokenizer, analogy_world
from nmt.errors import NmtError
from nmt.drift import Drift, drift, drift_summary, spearman
from nmt.lab.stats import analogy, most_and_least_moved, neighbors, pca_2d, word_vector


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


# ----------------------------------------------------------------------------- projection


def test_pca_2d_recovers_a_line_and_is_deterministic():
    t = torch.linspace(-1, 1, 7).unsqueeze(1)
    points = t * torch.tensor([[3.0, 4.0, 0.0]]) + torch.tensor([[1.0, 1.0, 1.0]])
    xy = pca_2d(points)
    assert xy.shape == (7, 2)
    assert torch.allclose(xy[:, 1], torch.zeros(7, dtype=xy.dtype), atol=1e-6)
    assert torch.allclose(xy[:, 0].abs(), (t.squeeze(1) * 5).abs().double(), atol=1e-6)
    assert torch.equal(pca_2d(points), xy)
    assert torch.allclose(pca_2d(-points), xy, atol=1e-6)  # signs fixed by convention
