"""sacreBLEU scoring and `evaluate` on a run's own test set."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from nmt.errors import NmtError
from nmt.evaluate import evaluate, score


def test_identical_hypotheses_score_100_with_13a_signature():
    s = score(["le roi mange .", "la reine dort ."], ["le roi mange .", "la reine dort ."])
    assert s.bleu == pytest.approx(100.0)
    assert s.chrf == pytest.approx(100.0)
    assert "tok:13a" in s.bleu_signature and "case:mixed" in s.bleu_signature


def test_evaluate_without_files_and_without_data_test_names_the_key(trained_run: Path):
    with pytest.raises(NmtError, match="data.test"):
        evaluate(trained_run)


def test_evaluate_without_files_scores_the_configs_test_set(trained_run: Path, tmp_path: Path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    cfg = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    cfg["data"]["test"] = cfg["data"]["dev"]
    (run / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    scores, hyp_file, _ = evaluate(run, beam=1)
    n_dev = len(Path(cfg["data"]["dev"] + ".en").read_text(encoding="utf-8").splitlines())
    assert scores.n_sentences == n_dev
    assert len(hyp_file.read_text(encoding="utf-8").splitlines()) == n_dev


def test_evaluate_needs_both_src_and_ref(trained_run: Path, tmp_path: Path):
    src = tmp_path / "x.en"
    src.write_text("the cat eats an apple .\n", encoding="utf-8")
    with pytest.raises(NmtError, match="both --src and --ref"):
        evaluate(trained_run, src_file=src)
