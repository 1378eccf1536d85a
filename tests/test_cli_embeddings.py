"""Tests for `nmt embeddings`, through subprocesses on the session's tiny trained run.

The tiny vocabulary is mostly single letters, so most words are several pieces: "king" is the
mean of the rows ▁ k i n g, which the output must show.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import assert_error, err, nmt, ok
from nmt.cli import build_parser

SUMMARY_KEYS = ("mean_l2", "median_l2", "frac_moved", "mean_cos", "mean_l2_seen", "mean_l2_unseen", "spearman_l2_freq")


@pytest.fixture
def run_without_counts(trained_run: Path, tmp_path: Path) -> Path:
    run = shutil.copytree(trained_run, tmp_path / "run")
    (run / "token_counts.pt").unlink(missing_ok=True)
    return run


# ----------------------------------------------------------------------------- help


def test_help_teaches_the_lookup_table_and_the_mean_of_pieces():
    text = ok(nmt("embeddings", "--help"))
    for word in ("neighbors", "analogy", "drift", "export", "plot", "--side", "--checkpoint", "MEAN", "▁"):
        assert word in text


@pytest.mark.parametrize("action,fragments", [
    ("neighbors", ["-k", "cosine", "mean"]),
    ("analogy", ["unit(A)", "mean"]),
    ("drift", ["--from", "--to", "-n", "init"]),
    ("export", ["--format", "word2vec", "tsv", "load_word2vec_format"]),
    ("plot", ["--words", "PCA", "matplotlib"]),
    ("movie", ["--words", "--fps", "--no-word2vec", "One projection for all frames", "train.embedding_snapshots"]),
])
def test_each_action_has_help(action, fragments):
    text = " ".join(ok(nmt("embeddings", "RUN", action, "--help")).split())
    for fragment in fragments:
        assert fragment in text


# ----------------------------------------------------------------------------- actions


def test_neighbors_lists_rows_with_cosines_and_shows_the_pieces_used(trained_run):
    text = ok(nmt("embeddings", trained_run, "neighbors", "king", "-k", "3"))
    assert "side src (en)" in text and "checkpoint best" in text
    assert "'king' = mean of 5 rows: ▁ (id" in text and "+ g (id" in text
    table = text[text.index("rank"):].splitlines()
    assert table[0].split() == ["rank", "id", "piece", "cosine", "count"]
    assert [row.split()[0] for row in table[1:4]] == ["1", "2", "3"]


def test_neighbors_on_the_target_side_of_the_last_checkpoint(trained_run):
    text = ok(nmt("embeddings", trained_run, "--side", "tgt", "--checkpoint", "last", "neighbors", "roi", "-k", "2"))
    assert "side tgt (fr)" in text and "checkpoint last" in text
    assert "oi (id" in text  # roi = ▁ + r + oi


def test_analogy_prints_the_inputs_and_the_ranked_answers(trained_run):
    text = ok(nmt("embeddings", trained_run, "analogy", "king", "queen", "cat", "-k", "2"))
    assert "king − queen + cat" in text
    assert "3CosAdd" in text and "side src (en)" in text
    for word in ("king", "queen", "cat"):
        assert f"  {word}" in text
    assert len(text[text.index("rank"):].strip().splitlines()) == 3


def test_drift_lists_rows_that_moved_most_and_least_with_the_summary(trained_run):
    text = ok(nmt("embeddings", trained_run, "drift", "-n", "4"))
    assert "drift from init" in text and "to best" in text and "side src (en)" in text
    for key in SUMMARY_KEYS:
        assert key in text
    assert "moved most" in text and "moved least" in text
    assert "l2" in text and "cos_to_start" in text


def test_drift_between_two_checkpoints_without_counts(run_without_counts):
    text = ok(nmt("embeddings", run_without_counts, "--side", "tgt", "drift", "--from", "best", "--to", "last"))
    assert "drift from best" in text and "to last" in text
    assert "mean_l2_seen" not in text
    assert "no token_counts.pt" in text
    assert text.rstrip().endswith("?")  # frequencies shown as "?"


def test_export_word2vec_and_tsv(trained_run, tmp_path):
    text = ok(nmt("embeddings", trained_run, "--side", "tgt", "export", "--format", "word2vec", tmp_path / "t.vec"))
    assert "side tgt" in text and "load_word2vec_format" in text
    header = (tmp_path / "t.vec").read_text(encoding="utf-8").splitlines()[0]
    assert header.split()[1] == "16"
    ok(nmt("embeddings", trained_run, "export", "--format", "tsv", tmp_path / "proj"))
    assert (tmp_path / "proj" / "metadata.tsv").read_text(encoding="utf-8").startswith("piece\tid\tcount\n")
    assert (tmp_path / "proj" / "vectors.tsv").is_file()


def test_plot_writes_a_png_and_names_the_multi_piece_words(trained_run, tmp_path):
    pytest.importorskip("matplotlib")
    text = ok(nmt("embeddings", trained_run, "plot", tmp_path / "p.png", "--words", "king", "queen", "cat", "a"))
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert "king* = mean of 5 rows" in text
    assert "init (left) vs best (right)" in text


# ----------------------------------------------------------------------------- shared options, before or after the action

# an action's own arguments, for parsing
ACTION_ARGS = {"neighbors": ["king"], "analogy": ["king", "man", "woman"], "drift": [], "export": ["t.vec"],
               "plot": ["p.png", "--words", "a", "b", "c"]}
# the options of `nmt embeddings` that every action takes too, with a value other than the default
SHARED = {"--side": ["tgt"], "--checkpoint": ["last"], "--debug": []}


def parse(*args: str) -> dict:
    return vars(build_parser().parse_args(["embeddings", "RUN", *args]))


@pytest.mark.parametrize("option", SHARED)
@pytest.mark.parametrize("action", ACTION_ARGS)
def test_a_shared_option_parses_the_same_after_the_action(action, option):
    given = [option, *SHARED[option]]
    before, after = parse(*given, action, *ACTION_ARGS[action]), parse(action, *ACTION_ARGS[action], *given)
    assert before == after
    assert before != parse(action, *ACTION_ARGS[action])  # and it was not the default


def test_an_action_keeps_the_defaults_of_the_shared_options():
    assert {k: v for k, v in parse("drift").items() if k in ("side", "checkpoint", "debug")} == {
        "side": "src", "checkpoint": "best", "debug": False}


def test_a_shared_option_given_before_and_after_the_action_takes_the_value_after():
    args = parse("--side", "tgt", "--checkpoint", "last", "drift", "--side", "src", "--checkpoint", "init")
    assert (args["side"], args["checkpoint"]) == ("src", "init")


def test_side_after_export_writes_the_same_table_as_before_it(trained_run, tmp_path):
    # the command of the bug report: `export --format word2vec OUT --side src` said "unrecognized arguments"
    ok(nmt("embeddings", trained_run, "--side", "tgt", "export", "--format", "word2vec", tmp_path / "before.vec"))
    text = ok(nmt("embeddings", trained_run, "export", "--format", "word2vec", tmp_path / "after.vec", "--side", "tgt"))
    assert "side tgt" in text
    assert (tmp_path / "after.vec").read_bytes() == (tmp_path / "before.vec").read_bytes()


def test_checkpoint_after_drift_gives_the_output_it_gives_before(trained_run):
    before = ok(nmt("embeddings", trained_run, "--checkpoint", "last", "drift", "-n", "2"))
    assert "to last" in before
    assert ok(nmt("embeddings", trained_run, "drift", "-n", "2", "--checkpoint", "last")) == before


def test_given_before_and_after_the_action_the_value_after_it_is_used(trained_run):
    text = ok(nmt("embeddings", trained_run, "--side", "src", "--checkpoint", "best", "drift", "-n", "2",
                  "--side", "tgt", "--checkpoint", "last"))
    assert "side tgt (fr)" in text and "to last" in text


# ----------------------------------------------------------------------------- errors


def test_an_unknown_word_is_one_line_naming_it(trained_run):
    assert_error(nmt("embeddings", trained_run, "neighbors", "KING"), "nmt embeddings: error:", "'KING'")


def test_an_unknown_word_in_an_analogy_is_one_line_naming_it(trained_run):
    assert_error(nmt("embeddings", trained_run, "analogy", "king", "QUEEN", "cat"), "'QUEEN'")


def test_a_bad_side_is_a_usage_error(trained_run):
    proc = nmt("embeddings", trained_run, "--side", "both", "neighbors", "king")
    assert proc.returncode == 2 and "invalid choice" in err(proc) and "Traceback" not in err(proc)


def test_a_missing_run_dir_is_one_line(tmp_path):
    assert_error(nmt("embeddings", tmp_path / "nope", "drift"), "run directory not found")


def test_a_missing_checkpoint_is_one_line(trained_run, tmp_path):
    assert_error(nmt("embeddings", trained_run, "--checkpoint", tmp_path / "x.pt", "neighbors", "a"),
                 "checkpoint not found")


def test_k_must_be_positive(trained_run):
    assert_error(nmt("embeddings", trained_run, "neighbors", "a", "-k", "0"), "-k must be at least 1")


# ----------------------------------------------------------------------------- a word vocabulary shows words


@pytest.fixture
def word_run(make_config) -> Path:
    """A run whose vocabularies are words (tokenizer.type: word)."""
    from nmt.trainer import train

    return train(make_config("words", tokenizer={"type": "word", "src_vocab_size": 23, "tgt_vocab_size": 23},
                             train={"max_steps": 4, "validate_every": 4}))


def test_a_word_vocabulary_shows_words_not_pieces(word_run, tmp_path):
    text = ok(nmt("embeddings", word_run, "neighbors", "king", "-k", "5"))
    assert "'king' = king (id " in text and "▁" not in text.split("\n", 1)[1]
    ok(nmt("embeddings", word_run, "export", "--format", "word2vec", tmp_path / "src.vec"))
    words = [line.split(" ", 1)[0] for line in (tmp_path / "src.vec").read_text().splitlines()[1:]]
    assert "king" in words and not any(w.startswith("▁") for w in words)


def test_a_subword_vocabulary_keeps_showing_pieces(trained_run):
    assert "▁" in ok(nmt("embeddings", trained_run, "neighbors", "king", "-k", "5"))


def test_the_neighbours_api_labels_a_word_vocabularys_rows_with_words(word_run):
    from nmt.lab.tables import load_tables
    from nmt_runtime.neighbours import Neighbours, Table

    def load(checkpoint: str, side: str) -> Table:
        table, tok = load_tables(word_run, checkpoint, side)
        return Table(table.numpy(), tok, None)

    body = Neighbours(("best",), load).query("king", None, "src", 3, "best")
    assert body["pieces"][0]["piece"] == "▁king" and body["pieces"][0]["label"] == "king"
    assert all(n["label"] == n["piece"][1:] for n in body["neighbors"])
