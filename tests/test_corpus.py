"""Tests for nmt/corpus.py: text files → validated sentence pairs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmt.config import DataConfig
from nmt.corpus import Corpus, load_corpus, read_lines
from nmt.errors import NmtError

PARALLEL = DataConfig(src_lang="en", tgt_lang="fr", train="x", dev="x")


def tsv_cfg(columns: list[str], src: str = "en", tgt: str = "fr") -> DataConfig:
    return DataConfig(format="tsv", tsv_columns=columns, src_lang=src, tgt_lang=tgt, train="x", dev="x")


def write_pair(tmp_path: Path, en: bytes | str, fr: bytes | str, name: str = "train") -> str:
    for lang, data in (("en", en), ("fr", fr)):
        path = tmp_path / f"{name}.{lang}"
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
    return str(tmp_path / name)


# ----------------------------------------------------------------------------- parallel files


def test_parallel_files_load_aligned_and_stripped(tmp_path):
    prefix = write_pair(tmp_path, "  the cat .\nthe dog .  \n", "\tle chat .\nle chien . \n")
    corpus = load_corpus(prefix, PARALLEL, "training")
    assert isinstance(corpus, Corpus)
    assert corpus.src == ["the cat .", "the dog ."]
    assert corpus.tgt == ["le chat .", "le chien ."]
    assert len(corpus) == 2
    assert corpus.name == "training"


def test_crlf_line_endings_are_stripped(tmp_path):
    prefix = write_pair(tmp_path, "a .\r\nb .\r\n", "x .\r\ny .\r\n")
    assert load_corpus(prefix, PARALLEL, "training").src == ["a .", "b ."]


def test_last_line_without_newline_is_kept(tmp_path):
    prefix = write_pair(tmp_path, "a .\nb .", "x .\ny .")
    assert load_corpus(prefix, PARALLEL, "training").tgt == ["x .", "y ."]


def test_utf8_byte_order_mark_is_dropped(tmp_path):
    prefix = write_pair(tmp_path, "\ufeffa .\n", "x .\n")
    assert load_corpus(prefix, PARALLEL, "training").src == ["a ."]


def test_line_count_mismatch_names_both_files_and_counts(tmp_path):
    prefix = write_pair(tmp_path, "a\nb\nc\n", "x\ny\n")
    with pytest.raises(NmtError) as e:
        load_corpus(prefix, PARALLEL, "training")
    msg = str(e.value)
    assert f"{prefix}.en has 3 lines" in msg
    assert f"{prefix}.fr has 2" in msg


def test_invalid_utf8_names_the_file_and_line(tmp_path):
    prefix = write_pair(tmp_path, b"ok\nfine\ncaf\xe9\n", "x\ny\nz\n")
    with pytest.raises(NmtError) as e:
        load_corpus(prefix, PARALLEL, "training")
    assert f"{prefix}.en: line 3:" in str(e.value)
    assert "UTF-8" in str(e.value)


def test_invalid_utf8_on_the_first_line_is_line_1(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"\xff\n")
    with pytest.raises(NmtError, match="line 1:"):
        read_lines(path)


def test_missing_file_is_an_error_naming_it(tmp_path):
    (tmp_path / "train.en").write_text("a\n", encoding="utf-8")
    with pytest.raises(NmtError, match=r"train\.fr: file not found"):
        load_corpus(str(tmp_path / "train"), PARALLEL, "training")


@pytest.mark.parametrize("folder, command", [
    ("data/toy", "make toy"),
    ("data/multi30k", "python scripts/get_data.py multi30k"),
    ("data/tatoeba", "python scripts/get_data.py tatoeba"),
    ("data/tatoeba_tutorial", "python scripts/get_data.py tatoeba --tutorial-subset"),
])
def test_a_missing_corpus_that_nmt_makes_names_the_command_that_makes_it(tmp_path, folder, command):
    with pytest.raises(NmtError) as info:
        load_corpus(str(tmp_path / folder / "train"), PARALLEL, "training")
    assert str(info.value) == f"{tmp_path / folder / 'train.en'}: file not found; make it with: {command}"


def test_directory_instead_of_file_is_an_error(tmp_path):
    with pytest.raises(NmtError, match="is a directory"):
        read_lines(tmp_path)


def test_pairs_with_an_empty_side_are_dropped_and_counted(tmp_path):
    prefix = write_pair(tmp_path, "a\n\nc\n   \ne\n", "x\ny\n\nw\nv\n")
    corpus = load_corpus(prefix, PARALLEL, "training")
    assert corpus.src == ["a", "e"]
    assert corpus.tgt == ["x", "v"]
    assert corpus.empty_dropped == 3


def test_corpus_of_only_empty_lines_is_an_error(tmp_path):
    prefix = write_pair(tmp_path, "\n\n", "\n\n")
    with pytest.raises(NmtError, match="dev corpus has no sentence pairs"):
        load_corpus(prefix, PARALLEL, "dev")


def test_empty_files_are_an_error_naming_them(tmp_path):
    prefix = write_pair(tmp_path, "", "")
    with pytest.raises(NmtError) as e:
        load_corpus(prefix, PARALLEL, "training")
    assert f"{prefix}.en" in str(e.value) and f"{prefix}.fr" in str(e.value)


def test_languages_pick_the_files(tmp_path):
    prefix = write_pair(tmp_path, "a .\n", "x .\n")
    cfg = DataConfig(src_lang="fr", tgt_lang="en", train="x", dev="x")
    corpus = load_corpus(prefix, cfg, "training")
    assert (corpus.src, corpus.tgt) == (["x ."], ["a ."])


# ----------------------------------------------------------------------------- tsv


def test_tsv_loads_the_configured_columns(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("the cat .\tle chat .\nthe dog .\tle chien .\n", encoding="utf-8")
    corpus = load_corpus(str(path), tsv_cfg(["en", "fr"]), "training")
    assert corpus.src == ["the cat .", "the dog ."]
    assert corpus.tgt == ["le chat .", "le chien ."]


def test_tsv_direction_fr_to_en_swaps_the_sides(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("the cat .\tle chat .\n", encoding="utf-8")
    corpus = load_corpus(str(path), tsv_cfg(["en", "fr"], src="fr", tgt="en"), "training")
    assert corpus.src == ["le chat ."]
    assert corpus.tgt == ["the cat ."]


def test_tsv_extra_columns_are_ignored(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("7\tle chat .\tthe cat .\tCC-BY\n", encoding="utf-8")
    corpus = load_corpus(str(path), tsv_cfg(["id", "fr", "en", "licence"]), "training")
    assert (corpus.src, corpus.tgt) == (["the cat ."], ["le chat ."])


def test_tsv_cells_are_stripped(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text(" the cat . \t le chat . \n", encoding="utf-8")
    corpus = load_corpus(str(path), tsv_cfg(["en", "fr"]), "training")
    assert (corpus.src, corpus.tgt) == (["the cat ."], ["le chat ."])


def test_tsv_line_with_too_few_columns_names_file_and_line(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("a\tx\nb\ty\nonly one column\n", encoding="utf-8")
    with pytest.raises(NmtError) as e:
        load_corpus(str(path), tsv_cfg(["en", "fr"]), "training")
    assert f"{path}: line 3:" in str(e.value)
    assert "expected 2" in str(e.value) and "found 1" in str(e.value)


def test_tsv_empty_lines_are_dropped_and_counted(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("a\tx\n\n   \nc\tz\n", encoding="utf-8")
    corpus = load_corpus(str(path), tsv_cfg(["en", "fr"]), "training")
    assert corpus.src == ["a", "c"]
    assert corpus.empty_dropped == 2


def test_tsv_empty_cell_in_the_middle_is_dropped_and_counted(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("1\ta\tx\n2\t\ty\n3\tc\tz\n", encoding="utf-8")
    corpus = load_corpus(str(path), tsv_cfg(["id", "en", "fr"]), "training")
    assert corpus.src == ["a", "c"]
    assert corpus.empty_dropped == 1


def test_tsv_empty_first_cell_is_an_empty_side_not_a_missing_column(tmp_path):
    # read_lines() strips each whole line, so a leading tab disappears and the row looks short
    path = tmp_path / "c.tsv"
    path.write_text("a\tx\n\ty\nc\tz\n", encoding="utf-8")
    corpus = load_corpus(str(path), tsv_cfg(["en", "fr"]), "training")
    assert corpus.src == ["a", "c"]
    assert corpus.empty_dropped == 1


def test_tsv_empty_last_cell_is_an_empty_side_not_a_missing_column(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("a\tx\nb\t \nc\tz\n", encoding="utf-8")
    corpus = load_corpus(str(path), tsv_cfg(["en", "fr"]), "training")
    assert corpus.tgt == ["x", "z"]
    assert corpus.empty_dropped == 1


def test_empty_tsv_is_an_error(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(NmtError, match="no sentence pairs"):
        load_corpus(str(path), tsv_cfg(["en", "fr"]), "training")


# ----------------------------------------------------------------------------- properties


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(en=st.binary(max_size=64), fr=st.binary(max_size=64))
def test_arbitrary_bytes_in_parallel_files_load_or_raise_nmt_error(tmp_path, en, fr):
    prefix = write_pair(tmp_path, en, fr)
    try:
        corpus = load_corpus(prefix, PARALLEL, "training")
    except NmtError:
        return
    assert len(corpus.src) == len(corpus.tgt) > 0
    assert all(s and s == s.strip() for s in corpus.src + corpus.tgt)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=64) | st.text(alphabet="ab\t\n\r ", max_size=40).map(str.encode))
def test_arbitrary_bytes_in_a_tsv_file_load_or_raise_nmt_error(tmp_path, data):
    path = tmp_path / "c.tsv"
    path.write_bytes(data)
    try:
        corpus = load_corpus(str(path), tsv_cfg(["en", "fr"]), "training")
    except NmtError:
        return
    assert len(corpus.src) == len(corpus.tgt) > 0
    assert all("\t" not in s for s in corpus.src + corpus.tgt)
