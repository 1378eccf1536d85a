"""Tests for nmt/lab/plot.py: the words a projection shows by default, and the PCA picture."""

from __future__ import annotations

import pytest
import torch

from helpers import FakeTokenizer, analogy_world
from nmt.errors import NmtError
from nmt.lab.plot import default_words, plot_projection
from nmt.lab.tables import load_tables


# ----------------------------------------------------------------------------- pictures


def test_default_words_are_frequent_whole_word_pieces():
    tok = FakeTokenizer(["▁the", "s", "▁fro", "▁cat", "▁.", "▁a", "▁dog"])
    counts = torch.tensor([0, 0, 0, 0, 100, 90, 80, 5, 70, 60, 50])
    assert default_words(tok, counts, n=3) == ["the", "fro", "dog"]
    assert default_words(tok, None, n=2) == ["the", "fro"]
    # with the training text, "fro" is seen to be only the start of "from"
    text = ["the cat saw the dog from afar", "the cat ."]
    assert default_words(tok, counts, n=3, sentences=text) == ["the", "cat", "dog"]


def test_plot_projection_writes_a_png(trained_run, tmp_path):
    pytest.importorskip("matplotlib")
    initial, tok = load_tables(trained_run, "init", "src")
    trained, _ = load_tables(trained_run, "best", "src")
    out = plot_projection({"init": initial, "best": trained}, ["king", "queen", "cat", "dog", "a"], tok,
                          tmp_path / "sub" / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_projection_without_matplotlib_gives_a_one_line_hint(monkeypatch, tmp_path):
    import sys

    table, tok = analogy_world()
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    with pytest.raises(NmtError, match="pip install matplotlib") as excinfo:
        plot_projection({"a": table, "b": table}, ["king", "queen", "man"], tok, tmp_path / "p.png")
    assert "\n" not in str(excinfo.value)


def test_plot_projection_needs_three_words(tmp_path):
    pytest.importorskip("matplotlib")
    table, tok = analogy_world()
    with pytest.raises(NmtError, match="at least 3 words"):
        plot_projection({"a": table, "b": table}, ["king", "queen"], tok, tmp_path / "p.png")
