"""The torch floor: one constant, the same as pyproject.toml's, and one line when torch is older."""

from __future__ import annotations

import re

import pytest
import torch

import nmt
from helpers import ROOT, error_line
from nmt import NmtError
from nmt.cli import main
from nmt.torch_version import TORCH_MIN, require_torch


def test_the_floor_is_the_one_pyproject_declares():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    floors = re.findall(r'^\s*"torch>=(\d+)\.(\d+)(?:\.0)?"', text, re.M)
    assert [tuple(map(int, f)) for f in floors] == [TORCH_MIN]


@pytest.mark.parametrize("version,ok", [("2.5.1+cpu", False), ("2.6.0", True), ("2.13.0+cpu", True), ("10.0", True)])
def test_releases_compare_as_numbers(monkeypatch, version, ok):
    monkeypatch.setattr(torch, "__version__", version)
    if ok:
        require_torch()
    else:
        with pytest.raises(NmtError):
            require_torch()


def test_an_older_torch_is_one_line_naming_the_floor_and_what_it_lacks(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.3.1")
    with pytest.raises(NmtError) as e:
        require_torch()
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith("nmt needs torch >= %d.%d (found 2.3.1): " % TORCH_MIN)
    assert "get_total_norm (2.6)" in message and "fused Adam on CPU (2.4)" in message
    assert "GradScaler" not in message  # 2.3 has it


def test_the_cli_says_it_before_the_subcommand_starts(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(torch, "__version__", "2.1.0")
    returncode = main(["plot", str(tmp_path / "no_run")])
    error_line(returncode, capsys.readouterr().err, "nmt plot: error: nmt needs torch >=", "(found 2.1.0)")


def test_the_python_api_says_it_before_importing_torch_code(monkeypatch):
    monkeypatch.setattr(torch, "__version__", "2.1.0")
    with pytest.raises(NmtError, match=r"nmt needs torch >= .* \(found 2\.1\.0\)"):
        nmt.Translator
