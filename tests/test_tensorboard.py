"""train.tensorboard: event files a TensorBoard can read, and a one-line hint without the package."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from conftest import DEV_PAIRS, PAIRS, tiny_config_dict, write_parallel
from nmt.errors import NmtError
from nmt.tensorboard import HINT
from nmt.trainer import train
from nmt.validation import greedy_decode

SCALARS = {"train/loss", "train/lr", "train/tgt_tokens_per_s", "dev/loss", "dev/ppl", "dev/bleu", "dev/chrf",
           "embedding_drift/src_mean_l2", "embedding_drift/src_mean_cos",
           "embedding_drift/tgt_mean_l2", "embedding_drift/tgt_mean_cos"}


def read_events(log_dir: Path):
    ea = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                             reason="the tensorboard extra is not installed (pip install 'nmt[tensorboard]')")
    acc = ea.EventAccumulator(str(log_dir), size_guidance={ea.SCALARS: 0, ea.IMAGES: 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def tb_config(tmp_path_factory) -> dict:
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (pip install 'nmt[tensorboard]')")
    root = tmp_path_factory.mktemp("tb")
    train_prefix = write_parallel(root / "data", "train", PAIRS)
    dev_prefix = write_parallel(root / "data", "dev", DEV_PAIRS)
    return tiny_config_dict(root / "run", train_prefix, dev_prefix, train={"max_steps": 20, "tensorboard": True})


@pytest.fixture(scope="module")
def tb_run(tb_config) -> Path:
    """20 steps with a validation at step 20, then resumed to 40."""
    train(tb_config)
    return train(tiny_config_dict(tb_config["run"]["dir"], tb_config["data"]["train"], tb_config["data"]["dev"],
                                  train={"max_steps": 40, "tensorboard": True}), resume=True)


def test_events_hold_loss_lr_dev_scores_and_embedding_drift(tb_run):
    acc = read_events(tb_run / "tensorboard")
    assert SCALARS <= set(acc.Tags()["scalars"])


def test_dev_scores_are_logged_once_per_validation_across_a_resume(tb_run):
    acc = read_events(tb_run / "tensorboard")
    assert [e.step for e in acc.Scalars("dev/bleu")] == [20, 40]
    assert [e.step for e in acc.Scalars("train/loss")] == [10, 20, 30, 40]


def test_attention_heatmaps_of_three_dev_sentences_at_each_validation(tb_run):
    acc = read_events(tb_run / "tensorboard")
    assert set(acc.Tags()["images"]) == {"attention/dev_1", "attention/dev_2", "attention/dev_3"}
    images = acc.Images("attention/dev_1")
    assert [i.step for i in images] == [20, 40]
    assert images[0].encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"


def test_heatmaps_without_matplotlib_are_the_bare_matrix(trained_run, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (pip install 'nmt[tensorboard]')")
    import nmt.tensorboard as tb
    from nmt.translate import Translator

    monkeypatch.setattr(tb, "_has_matplotlib", lambda: False)
    t = Translator.load(trained_run)
    log = tb.TensorBoardLog(tmp_path, t.src_tok, t.tgt_tok, t.src_tok.encode_batch([p[0] for p in DEV_PAIRS]))
    log.heatmaps(greedy_decode(t.model, log.dev_src_ids, t.cfg.decode, torch.device("cpu"), attention=True), step=7)
    log.close()
    image = read_events(tmp_path).Images("attention/dev_2")[0]
    assert image.step == 7 and image.width == len(t.src_tok.encode_batch([DEV_PAIRS[1][0]])[0]) + 1


def test_missing_tensorboard_is_a_one_line_hint_before_the_run_directory_is_made(make_config, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard → ImportError
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(NmtError) as info:
        train(make_config("run", train={"tensorboard": True}))
    assert str(info.value) == HINT
    assert "pip install 'nmt[tensorboard]'" in HINT and "\n" not in HINT
    assert not (tmp_path / "run").exists()
