"""Tests for nmt/corpus_formats.py: the corpus formats are one table, which the config check, the
reading of a split (nmt/corpus.py) and the prepared dataset's key (nmt/prepare.py) all read."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from nmt.config import DataConfig, config_from_dict
from nmt.corpus import corpus_paths, parse_lines
from nmt.corpus_formats import FORMAT_NAMES, FORMATS, CorpusFormat
from nmt.errors import NmtError
from nmt.prepare import settings


def data_config(**data) -> dict:
    return {"data": {"train": "x", "dev": "y", **data}}


def test_the_config_accepts_exactly_the_formats_of_the_table():
    assert typing.get_args(typing.get_type_hints(DataConfig)["format"]) == FORMAT_NAMES == tuple(FORMATS)
    assert DataConfig().format in FORMATS
    for name in FORMATS:
        assert config_from_dict(data_config(format=name)).data.format == name
    with pytest.raises(NmtError, match=r"key 'data.format' has value 'xml'; expected 'parallel' \| 'tsv'"):
        config_from_dict(data_config(format="xml"))


def test_a_formats_read_keys_are_data_keys_and_go_into_the_prepared_settings():
    data_keys = {f.name for f in dataclasses.fields(DataConfig)}
    for name, fmt in FORMATS.items():
        assert set(fmt.read_keys) <= data_keys
        read = settings(config_from_dict(data_config(format=name)))["read"]
        assert set(read) == {"format", "src_lang", "tgt_lang", *fmt.read_keys}


def test_the_corpus_reads_a_split_through_its_formats_entry(monkeypatch):
    """corpus.py has no branch of its own per format: a changed entry changes what it reads."""
    entry = CorpusFormat(paths=lambda spec, cfg: [Path(f"{spec}.both")],
                         parse=lambda cfg, paths, chunks, first_line: (["s"], ["t"]))
    monkeypatch.setitem(FORMATS, "parallel", entry)
    cfg = DataConfig(train="x", dev="y")
    assert corpus_paths("x", cfg) == [Path("x.both")]
    assert parse_lines(cfg, [Path("x.both")], [b"anything\n"], 1) == (["s"], ["t"])
