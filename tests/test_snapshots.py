"""Embedding snapshots (nmt/snapshots.py) and `nmt embeddings RUN movie` (nmt/lab/movie.py): which
rows are kept, their size, that a resumed run keeps the same ones, and the GIF with one frame per
validation.

Exact resume of the snapshots is also held in tests/test_reliability.py's SIGKILL test.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from helpers import assert_error, metrics, nmt, ok
from nmt.checkpoint import load_checkpoint
from nmt.model import Seq2Seq
from nmt.snapshots import drop_after, load_snapshots, pca_axes, snapshot_bytes, snapshot_files, snapshot_ids
from nmt.tokenizer import N_SPECIAL
from nmt.trainer import train

Image = pytest.importorskip("PIL.Image")


def _frames(gif: Path) -> int:
    with Image.open(gif) as im:
        return im.n_frames


# ----------------------------------------------------------------------------- which rows


def test_the_rows_are_the_most_frequent_seen_pieces_specials_left_out_ties_by_id():
    counts = torch.tensor([50, 40, 30, 20, 5, 0, 9, 9, 1, 7])  # ids 0-3 are the specials
    assert N_SPECIAL == 4
    assert snapshot_ids(counts, 3).tolist() == [6, 7, 9]
    assert snapshot_ids(counts, 100).tolist() == [6, 7, 9, 4, 8]  # never an unseen id (5)
    assert snapshot_ids(counts, 100).dtype == torch.int32


def test_pca_axes_fix_their_signs_and_fill_a_missing_axis():
    x = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    mean, axes = pca_axes(x)
    coords = (x.double() - mean) @ axes.T
    assert torch.allclose(axes @ axes.T, torch.eye(2, dtype=torch.float64), atol=1e-9)
    assert (coords.gather(0, coords.abs().argmax(dim=0, keepdim=True)) > 0).all()
    _, one = pca_axes(torch.randn(5, 1))
    assert one.shape == (2, 1) and one[1, 0] == 0


# ----------------------------------------------------------------------------- a trained run's snapshots


def test_the_readme_states_the_bound_of_a_multi30k_snapshot():
    """The README's size (1,000 rows of 256 dimensions, Multi30k's config) is `snapshot_bytes`."""
    from helpers import ROOT

    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    assert f"{snapshot_bytes(1000, 256) / 1e6:.2f} MB for Multi30k's 256 dimensions" in readme
    assert "at most 2 × 1,000 × `model.embedding_size` × 2 bytes" in readme


def test_a_run_keeps_one_snapshot_per_validation_within_the_stated_size(trained_run):
    steps = [r["step"] for r in metrics(trained_run, "validation")]
    files = snapshot_files(trained_run / "snapshots")
    assert [s for s, _ in files] == steps and len(steps) >= 2
    dim = 16
    counts = torch.load(trained_run / "token_counts.pt", weights_only=True)
    for _, path in files:
        data = torch.load(path, weights_only=True)
        rows = max(len(data["ids"][side]) for side in ("src", "tgt"))
        assert path.stat().st_size <= snapshot_bytes(rows, dim), path
        for side in ("src", "tgt"):
            assert data["rows"][side].dtype == torch.float16 and data["rows"][side].shape == (len(data["ids"][side]), dim)
            assert torch.equal(data["ids"][side], snapshot_ids(counts[side], 1000))


def test_the_last_snapshot_is_the_last_checkpoints_rows_in_fp16(trained_run):
    last = load_checkpoint(trained_run / "checkpoints" / "last.pt")
    (step, path), = snapshot_files(trained_run / "snapshots")[-1:]
    assert step == last["trainer"]["step"]
    data = torch.load(path, weights_only=True)
    for side in ("src", "tgt"):
        table = last["model"][Seq2Seq.table_key(side)]
        assert torch.equal(data["rows"][side], table[data["ids"][side].long()].half())


def test_load_snapshots_starts_from_the_initial_table(trained_run):
    snaps = load_snapshots(trained_run / "snapshots", trained_run / "embeddings_init.pt", "tgt")
    init = torch.load(trained_run / "embeddings_init.pt", weights_only=True)["tgt"]
    assert torch.equal(snaps.initial, init[snaps.ids].float())
    assert snaps.rows.shape[:2] == (len(snaps.steps), len(snaps.ids))


def test_zero_rows_keeps_no_snapshots(make_config):
    run = train(make_config("none", train={"max_steps": 10, "validate_every": 5, "embedding_snapshots": 0}))
    assert not (run / "snapshots").exists()


def test_a_resumed_run_drops_the_snapshots_after_its_step_and_makes_the_same_again(make_config):
    whole = train(make_config("whole", train={"max_steps": 20, "validate_every": 5, "save_every": 10}))
    part = train(make_config("part", train={"max_steps": 10, "validate_every": 5, "save_every": 10}))
    stale = part / "snapshots" / "step_15.pt"  # as if a killed trainer had validated past its last.pt
    shutil.copyfile(part / "snapshots" / "step_10.pt", stale)
    train(make_config("part", train={"max_steps": 20, "validate_every": 5, "save_every": 10}), resume=True)
    a, b = snapshot_files(whole / "snapshots"), snapshot_files(part / "snapshots")
    assert [s for s, _ in a] == [s for s, _ in b] == [5, 10, 15, 20]
    for (_, pa), (_, pb) in zip(a, b):
        da, db = torch.load(pa, weights_only=True), torch.load(pb, weights_only=True)
        for side in ("src", "tgt"):
            assert torch.equal(da["ids"][side], db["ids"][side]) and torch.equal(da["rows"][side], db["rows"][side])


def test_drop_after_keeps_the_step_itself(tmp_path):
    for step in (5, 10, 15):
        (tmp_path / f"step_{step}.pt").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("mine")
    assert drop_after(tmp_path, 10) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "step_10.pt", "step_5.pt"]


# ----------------------------------------------------------------------------- the movie


def test_movie_writes_a_gif_with_one_frame_per_validation(trained_run, tmp_path):
    out = tmp_path / "movie.gif"
    text = ok(nmt("embeddings", trained_run, "movie", out, "--words", "king", "queen", "--no-word2vec"))
    validations = len(metrics(trained_run, "validation"))
    assert _frames(out) == validations
    assert f"{validations} frames" in text and "one 2-D PCA for all frames" in text
    assert [p.name for p in tmp_path.iterdir()] == ["movie.gif"]  # no temporary file left


def test_movie_with_the_word2vec_panel_and_chosen_words_of_several_pieces(trained_run, tmp_path):
    pytest.importorskip("gensim")
    out = tmp_path / "tgt.gif"
    text = ok(nmt("embeddings", trained_run, "--side", "tgt", "movie", out, "--words", "roi", "reine", "chat"))
    assert _frames(out) == len(metrics(trained_run, "validation"))
    assert "word2vec panel" in text and "roi = the mean of its pieces' rows" in text


def test_movie_on_a_run_without_snapshots_says_how_to_get_them(trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "old")
    shutil.rmtree(run / "snapshots")
    out = tmp_path / "m.gif"
    assert_error(nmt("embeddings", run, "movie", out, "--words", "king", "queen"), f"{run}: no embedding snapshots", "train.embedding_snapshots")
    assert not out.exists()


def test_movie_of_an_unknown_word_names_it(trained_run, tmp_path):
    assert_error(nmt("embeddings", trained_run, "movie", tmp_path / "m.gif", "--words", "king", "xyzzy"),
                 "'xyzzy' is not in this vocabulary")


def test_movie_of_a_word_outside_the_snapshot_rows_says_which_key(make_config, tmp_path):
    run = train(make_config("few", train={"max_steps": 10, "validate_every": 5, "embedding_snapshots": 2}))
    assert_error(nmt("embeddings", run, "movie", tmp_path / "m.gif", "--words", "king", "queen", "--no-word2vec"),
                 "'king': its piece(s)", "are not among the 2 rows", "train.embedding_snapshots")


@pytest.mark.parametrize("args,fragment", [
    (["out.png"], "give a file name ending in .gif"),
    (["m.gif", "--fps", "0"], "--fps must be above 0"),
    (["m.gif", "--words", "king"], "at least 2 words"),
    (["m.gif"], "name the words with --words"),  # the tiny vocabulary has no whole words
])
def test_movie_bad_arguments_get_one_line(trained_run, tmp_path, args, fragment):
    args = [str(tmp_path / args[0]), *args[1:]]
    assert_error(nmt("embeddings", trained_run, "movie", *args, "--no-word2vec"), fragment)
