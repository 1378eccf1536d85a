"""The manual's reference pages (docs/reference/, scripts/make_reference.py) are generated from the
code: they list every config key and every command, and are up to date with them."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import typing

import pytest

from helpers import ROOT, load_script
from nmt import config as config_module

make_reference = load_script("make_reference.py")


def leaf_keys(cls: type = config_module.Config, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(cls, vars(config_module))
    keys = []
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            keys += leaf_keys(hints[f.name], f"{prefix}{f.name}.")
        else:
            keys.append(prefix + f.name)
    return keys


def test_the_config_page_lists_every_key_of_the_dataclasses_once():
    page = (ROOT / "docs" / "reference" / "config.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `([a-z_.]+)` \|", page, flags=re.M)
    assert sorted(listed) == sorted(leaf_keys()) and len(listed) == len(set(listed))


def test_every_config_key_says_what_it_means():
    assert [r["key"] for r in make_reference.config_rows() if not r["meaning"]] == []


def test_the_reference_pages_are_what_the_code_makes():
    assert make_reference.main(["--check"]) == 0, "run: python scripts/make_reference.py"


def test_the_command_page_has_every_subcommand_of_both_commands():
    page = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    for name in ("train", "prepare", "evaluate", "translate", "serve", "plot", "average", "embeddings",
                 "embeddings neighbors", "export"):
        assert f"### nmt {name}\n" in page
    for name in ("translate", "evaluate", "serve"):
        assert f"### nmt-runtime {name}\n" in page


def test_getting_started_shows_the_run_directory_as_rundir_describes_it():
    """The layout of a run directory has one source, nmt/rundir.py's docstring; the page copies it."""
    import nmt.rundir

    doc = nmt.rundir.__doc__
    layout = [line[4:] for line in doc[doc.index("    runs/<name>/"):doc.index("\n\n", doc.index("runs/<name>/"))].splitlines()]
    page = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
    assert "```\n" + "\n".join(layout) + "\n```" in page


@pytest.mark.parametrize("target,extra", [("docs", "docs"), ("notebook", "notebook")])
def test_make_without_the_extra_says_how_to_install_it_in_one_line(target, extra, tmp_path):
    """`make docs` and `make notebook` where their extra is missing (here: a BIN without it) print
    one line with the pip command, and stop before building anything."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    fake = tmp_path / "python"  # a python in which the extra's imports fail, and no mkdocs beside it
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    proc = subprocess.run(["make", "-s", "-o", ".venv/.installed", "-o", "data/toy/train.en", target,
                           f"BIN={tmp_path}"], cwd=ROOT, capture_output=True, text=True)
    lines = [line for line in proc.stderr.splitlines() if not re.match(r"make(\[\d+\])?: ", line)]  # make's own
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert lines[0] == f"make {target} needs the {extra} extra: {tmp_path}/pip install -c constraints.txt -e '.[{extra}]'"
    assert not (tmp_path / "site").exists()
