"""Training curves: `nmt plot RUN [OUT.png]` from metrics.jsonl, and errors that name the file and line."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from conftest import write_lines
from helpers import assert_error, nmt, ok
from nmt.cli import main
from nmt.errors import NmtError
from nmt.plots import plot_curves, read_metrics

PNG = b"\x89PNG\r\n\x1a\n"
TRAIN = {"event": "train", "step": 10, "epoch": 0, "loss": 3.2, "lr": 1e-3, "tgt_tokens_per_s": 100.0}


def test_read_metrics_returns_the_records_in_order(trained_run):
    records = read_metrics(trained_run / "metrics.jsonl")
    assert [r["step"] for r in records if r["event"] == "validation"] == [20, 40]


def test_a_missing_metrics_log_is_named(tmp_path):
    with pytest.raises(NmtError, match="metrics.jsonl: no metrics log"):
        read_metrics(tmp_path / "metrics.jsonl")


def test_an_empty_metrics_log_is_refused(tmp_path):
    with pytest.raises(NmtError, match="metrics.jsonl: empty metrics log"):
        read_metrics(write_lines(tmp_path / "metrics.jsonl", []))


def test_a_corrupt_line_is_named_with_its_number(tmp_path):
    path = write_lines(tmp_path / "metrics.jsonl", [json.dumps(TRAIN), '{"event": "train", "st'])
    with pytest.raises(NmtError, match=r"metrics.jsonl: line 2: not valid JSON"):
        read_metrics(path)


def test_a_line_without_a_step_is_refused(tmp_path):
    path = write_lines(tmp_path / "metrics.jsonl", ['{"event": "train"}'])
    with pytest.raises(NmtError, match=r"line 1: not a metrics record"):
        read_metrics(path)


def test_curves_of_a_run_without_validations_still_draw(tmp_path):
    pytest.importorskip("matplotlib")
    out_png = plot_curves([TRAIN, {**TRAIN, "step": 20, "loss": 2.9}], tmp_path / "c.png")
    assert out_png.read_bytes()[:8] == PNG


# ----------------------------------------------------------------------------- the command


def test_nmt_plot_writes_run_curves_png_by_default(trained_run, tmp_path):
    pytest.importorskip("matplotlib")
    run = shutil.copytree(trained_run, tmp_path / "run")
    stdout = ok(nmt("plot", str(run)))
    assert (run / "curves.png").read_bytes()[:8] == PNG
    assert stdout.startswith(f"wrote {run / 'curves.png'} (") and "2 validations" in stdout


def test_nmt_plot_writes_the_named_file(trained_run, tmp_path):
    pytest.importorskip("matplotlib")
    ok(nmt("plot", str(trained_run), str(tmp_path / "sub" / "toy.png")))
    assert (tmp_path / "sub" / "toy.png").read_bytes()[:8] == PNG


def test_nmt_plot_on_a_corrupt_log_is_one_line_naming_file_and_line(trained_run, tmp_path):
    pytest.importorskip("matplotlib")
    run = shutil.copytree(trained_run, tmp_path / "run")
    with (run / "metrics.jsonl").open("a", encoding="utf-8") as f:
        f.write("not json\n")
    n = len((run / "metrics.jsonl").read_text(encoding="utf-8").splitlines())
    assert_error(nmt("plot", str(run)), "metrics.jsonl", f"line {n}")


def test_nmt_plot_without_matplotlib_is_a_one_line_install_hint(trained_run, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["plot", str(trained_run)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["nmt plot: error: plots need matplotlib: pip install matplotlib (or pip install 'nmt[plots]')"]
