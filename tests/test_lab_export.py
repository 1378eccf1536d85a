"""Tests for nmt/lab/export.py: word2vec text and TensorBoard-projector files of embedding tables.

Format tests use a small stand-in tokenizer (helpers.FakeTokenizer); the round-trip tests use the
session's tiny trained run (read-only).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import FakeTokenizer
from nmt.lab.export import export_projector, export_word2vec
from nmt.lab.tables import load_tables


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
