"""nmt/lab/compare.py and `nmt embeddings RUN compare-word2vec`: the trained table next to word2vec."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch

import nmt.lab.compare as compare_module
from conftest import PAIRS
from helpers import analogy_world, assert_error, nmt, ok
from nmt.cli import main
from nmt.errors import NmtError
from nmt.lab.compare import (
    Word2VecSettings,
    analogy_accuracy,
    class_agreement,
    neighbour_overlap,
    procrustes,
    read_analogies,
    read_classes,
    similarity_correlation,
)
from nmt.lab.report import Lab
from nmt.tokenizer import WORD_MARK


def random_table(rows: int = 400, dim: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed))


def test_procrustes_of_a_rotated_copy_is_one_and_of_unrelated_tables_near_zero():
    a = random_table()
    rotation, _ = torch.linalg.qr(random_table(16, 16, seed=1))
    ids = torch.arange(400)
    assert procrustes(a, a @ rotation, ids[0::2], ids[1::2]) == pytest.approx(1.0, abs=1e-9)
    unrelated = procrustes(a, random_table(seed=2), ids[0::2], ids[1::2])
    assert abs(unrelated) < 0.1, unrelated


def test_a_table_agrees_with_itself_and_not_with_an_unrelated_one():
    a, b, ids = random_table(), random_table(seed=3), torch.arange(400)
    assert neighbour_overlap(a, a, ids[:100], ids, k=10) == 1.0
    assert similarity_correlation(a, a, ids[:50]) == pytest.approx(1.0)
    assert neighbour_overlap(a, b, ids[:100], ids, k=10) < 0.1  # chance: 10 / 399
    assert abs(similarity_correlation(a, b, ids[:50])) < 0.1


def test_analogy_accuracy_counts_only_queries_whose_words_every_table_has():
    table, tok = analogy_world()
    usable = torch.ones(len(tok), dtype=torch.bool)
    result = analogy_accuracy([("king", "man", "woman", "queen")], table, tok, usable)
    assert result == {"top1": 1.0, "top5": 1.0, "asked": 1, "skipped": 0}
    usable[tok.piece_to_id(WORD_MARK + "queen")] = False  # word2vec never saw it
    assert analogy_accuracy([("king", "man", "woman", "queen")], table, tok, usable)["skipped"] == 1


def test_class_agreement_counts_neighbours_of_the_same_class_and_group():
    # ids 4-7 nouns (4, 5 masculine near each other; 6, 7 feminine near each other), 8-9 verbs
    table = torch.zeros(10, 3)
    table[4:6] = torch.tensor([[1.0, 0.1, 0], [1.0, 0.2, 0]])
    table[6:8] = torch.tensor([[0.8, 0.9, 0], [0.8, 1.0, 0]])
    table[8:10] = torch.tensor([[0, 0, 1.0], [0, 0.1, 1.0]])
    classes = {4: ("noun", "m"), 5: ("noun", "m"), 6: ("noun", "f"), 7: ("noun", "f"), 8: ("verb", ""), 9: ("verb", "")}
    ids = torch.arange(4, 10)
    nearest_one = class_agreement(classes, table, ids, "noun", k=1)
    assert nearest_one == {"words": 4, "neighbours_with_a_class": 4, "same_class": 1.0, "same_group": 1.0}
    three = class_agreement(classes, table, ids, "noun", k=3)  # the other three nouns: 1 of the same gender
    assert three["same_class"] == 1.0 and three["same_group"] == pytest.approx(1 / 3)
    assert class_agreement(classes, table, ids, "adjective")["words"] == 0


def test_bad_analogy_and_class_files_name_the_line(tmp_path):
    bad = tmp_path / "q.txt"
    bad.write_text(": section\nking man woman queen\nking man woman\n", encoding="utf-8")
    with pytest.raises(NmtError, match=r"q.txt:3: an analogy is 4 words"):
        read_analogies(bad)
    classes = tmp_path / "c.tsv"
    classes.write_text("king\tnoun\tm\nqueen noun f\n", encoding="utf-8")
    with pytest.raises(NmtError, match=r"c.tsv:2: expected 'word<TAB>class"):
        read_classes(classes)


def test_word2vec_trains_on_exactly_the_runs_training_side(trained_run, monkeypatch):
    pytest.importorskip("gensim")
    seen = []
    real = compare_module.train_word2vec
    monkeypatch.setattr(compare_module, "train_word2vec", lambda s, st: seen.append(s) or real(s, st))
    lab = Lab(trained_run, "src")
    lab.compare_word2vec(Word2VecSettings(dim=lab.table.shape[1], epochs=1), top=20, k=3, sample=10)
    text = ["".join(pieces).replace(WORD_MARK, " ").strip() for pieces in seen[0]]
    assert text == [en for en, _ in PAIRS]  # the English side, every training pair, nothing else


def test_compare_word2vec_cli_prints_and_writes_every_figure(trained_run, tmp_path):
    pytest.importorskip("gensim")
    queries = tmp_path / "q.txt"
    queries.write_text("king the the queen\ncat dog dog cat\n", encoding="utf-8")
    classes = tmp_path / "c.tsv"
    # the tiny vocabulary keeps few words whole: "a" and "." are single pieces, "cat" is not
    classes.write_text("a\tdeterminer\n.\tpunctuation\ncat\tnoun\tm\n", encoding="utf-8")
    out = tmp_path / "cmp.json"
    text = ok(nmt("embeddings", trained_run, "compare-word2vec", "--top", "20", "-k", "3", "--sample", "10",
                  "--epochs", "2", "--analogies", queries, "--classes", classes, "--json", out))
    for phrase in ("trained vs word2vec", "init vs word2vec", "trained vs init", "neighbour overlap@3",
                   "gensim Word2Vec skip-gram, dim 16, window 5, 2 epochs", "top-1", "same class"):
        assert phrase in text, phrase
    report = json.loads(out.read_text(encoding="utf-8"))
    assert set(report["pairs"]) == {"trained vs word2vec", "init vs word2vec", "trained vs init"}
    assert report["word2vec"]["sentences"] == len(PAIRS) and report["tokens"]["k"] == 3
    assert set(report["analogies"]) == set(report["classes"]) == {"trained", "init", "word2vec"}
    assert {c: v["words"] for c, v in report["classes"]["word2vec"].items()} == {"determiner": 1, "punctuation": 1}


def test_without_gensim_compare_word2vec_gives_a_one_line_hint(trained_run, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "gensim", None)  # import gensim fails
    monkeypatch.setitem(sys.modules, "gensim.models", None)
    assert main(["embeddings", str(trained_run), "compare-word2vec"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "nmt embeddings: error: compare-word2vec needs gensim: pip install 'nmt[word2vec]'"]


def test_compare_word2vec_refuses_a_bad_count_before_training(trained_run):
    assert_error(nmt("embeddings", trained_run, "compare-word2vec", "--top", "0"), "--top must be at least 1")


def test_a_run_whose_prepared_data_is_gone_is_refused_in_one_line(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    record = json.loads((run / "prepared.json").read_text(encoding="utf-8"))
    (run / "prepared.json").write_text(json.dumps({**record, "path": str(tmp_path / "gone")}), encoding="utf-8")
    assert_error(nmt("embeddings", run, "compare-word2vec"), "prepared.json names", "which is gone", "nmt prepare")
    (run / "prepared.json").unlink()
    assert_error(nmt("embeddings", run, "compare-word2vec"), "prepared.json: missing or unreadable")
