"""End to end: a tiny model overfits a handful of pairs and then translates them exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import PAIRS, tiny_config_dict, write_lines, write_parallel
from helpers import metrics

pytestmark = pytest.mark.slow

HANDFUL = PAIRS[::7]  # 14 pairs; every subject, verb and object appears
SRC = [p[0] for p in HANDFUL]
TGT = [p[1] for p in HANDFUL]

OVERFIT_MODEL = {"embedding_size": 32, "encoder_hidden_size": 32, "decoder_hidden_size": 64,
                 "attention_size": 32, "dropout": 0.0}
OVERFIT_TRAIN = {"max_steps": 300, "batch_size": 16, "lr": 3e-3, "schedule": "constant", "label_smoothing": 0.0,
                 "validate_every": 1000, "save_every": 1000, "log_every": 100, "patience": 0}


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory) -> Path:
    from nmt.trainer import train

    root = tmp_path_factory.mktemp("overfit")
    prefix = write_parallel(root / "data", "train", HANDFUL)
    cfg = tiny_config_dict(
        root / "run", prefix, prefix,
        tokenizer={"type": "bpe", "src_vocab_size": 100, "tgt_vocab_size": 100, "hard_vocab_limit": False},
        model=OVERFIT_MODEL,
        train=OVERFIT_TRAIN,
    )
    return train(cfg)


def test_greedy_reproduces_the_training_targets(overfit_run):
    from nmt import Translator

    assert Translator.load(overfit_run).translate(SRC, beam=1) == TGT


def test_beam_5_reproduces_the_training_targets(overfit_run):
    from nmt import Translator

    assert Translator.load(overfit_run).translate(SRC, beam=5) == TGT


def test_translation_does_not_depend_on_the_batch(overfit_run):
    from nmt import Translator

    t = Translator.load(overfit_run)
    assert [t.translate([s], beam=5)[0] for s in SRC[:4]] == TGT[:4]


def test_evaluate_on_the_training_pairs_gives_bleu_100(overfit_run, tmp_path):
    from nmt.evaluate import evaluate

    src = write_lines(tmp_path / "t.en", SRC)
    ref = write_lines(tmp_path / "t.fr", TGT)
    scores, out, _ = evaluate(overfit_run, src, ref, beam=5, out=tmp_path / "hyp.fr")
    assert scores.bleu == pytest.approx(100.0)
    assert scores.chrf == pytest.approx(100.0)
    assert out.read_text(encoding="utf-8").splitlines() == TGT


def test_last_validation_reports_bleu_100(overfit_run):
    validations = metrics(overfit_run, "validation")
    assert validations[-1]["dev_bleu"] == pytest.approx(100.0)


def test_tsv_reverse_direction_with_tied_embeddings_overfits(tmp_path):
    """French→English from a TSV whose columns are [en, fr], with a joint tokenizer and tying."""
    from nmt import Translator
    from nmt.trainer import train

    tsv = write_lines(tmp_path / "train.tsv", [f"{en}\t{fr}" for en, fr in HANDFUL])
    cfg = tiny_config_dict(
        tmp_path / "run", str(tsv), str(tsv),
        data={"format": "tsv", "tsv_columns": ["en", "fr"], "src_lang": "fr", "tgt_lang": "en"},
        tokenizer={"type": "bpe", "joint": True, "src_vocab_size": 150, "hard_vocab_limit": False},
        model={**OVERFIT_MODEL, "tie_embeddings": True},
        train=OVERFIT_TRAIN,
    )
    run = train(cfg)
    assert Translator.load(run).translate(TGT, beam=5) == SRC
