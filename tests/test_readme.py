"""The README is the project's front door: short, every command in it real, every link live.

What these tests check:

- README.md has at most 200 lines (the manual in docs/ holds the rest);
- every command line of its ```bash blocks (continuations joined, comments dropped, split at `|`,
  `&&`, `||` and `;`) is one this file knows how to check, and passes the check:
  `nmt ...` parses with nmt's own parser (`nmt.cli.build_parser()`: a wrong subcommand, flag or
  value is argparse's SystemExit), and the configs it names exist; `make TARGET` is a target
  `make -n` accepts; `python scripts/X.py` names a script that exists; `echo` and `source` are
  left alone;
- the tour names the five commands it promises: train, evaluate, translate, embeddings, serve;
- every file a code span names under configs/, scripts/ or docs/ exists;
- every relative link and image points at a file that exists, and a link to a heading of a
  Markdown file (`page.md#heading`) names a heading that page has.

- the tour's `nmt evaluate`, `translate` and `embeddings` commands succeed as written, run in a
  folder where `runs/toy` is the session's tiny trained run (its config given the toy test set)
  and `data/toy` the toy corpus.

What they do not run: `nmt train` (the demo's 12 epochs; `make demo` trains it, and the tests of
training run its config's keys on tiny runs) and `nmt serve` (a server: tests/test_serve.py);
`make demo` and `make test` run in CI (`.ci/run`); the demo's printed figures are held to
docs/report/demo.json by tests/test_report.py.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import ROOT, err, nmt
from nmt.cli import build_parser
from nmt.config import load_config

README = ROOT / "README.md"
MAX_LINES = 200
TOUR = {"train", "evaluate", "translate", "embeddings", "serve"}
UNCHECKED = {"echo", "source"}  # shell built-ins and plain output: nothing of nmt's to check
SEPARATORS = {"|", "||", "&&", ";"}


def readme() -> str:
    return README.read_text(encoding="utf-8")


def bash_commands(text: str) -> list[list[str]]:
    """Each simple command of the ```bash blocks, as its words."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split = True
            lexer.commenters = "#"
            command: list[str] = []
            for word in lexer:
                if word in SEPARATORS:
                    commands.append(command)
                    command = []
                else:
                    command.append(word)
            commands.append(command)
    return [c for c in commands if c]


def test_the_readme_is_at_most_200_lines():
    n = len(readme().splitlines())
    assert n <= MAX_LINES, f"README.md has {n} lines; move the detail into a page of docs/"


def test_every_command_of_the_readme_is_one_this_test_checks():
    unknown = [" ".join(c) for c in bash_commands(readme())
               if c[0] not in {"nmt", "make", "python", "python3", ".venv/bin/python", *UNCHECKED}]
    assert unknown == [], "add a check for these to tests/test_readme.py"


def test_the_tour_shows_the_five_commands():
    shown = {c[1] for c in bash_commands(readme()) if c[0] == "nmt" and len(c) > 1}
    assert TOUR <= shown, f"the README's tour lacks {sorted(TOUR - shown)}"


def nmt_commands() -> list[list[str]]:
    return [c for c in bash_commands(readme()) if c[0] == "nmt"]


@pytest.mark.parametrize("command", nmt_commands(), ids=[" ".join(c) for c in nmt_commands()])
def test_each_nmt_command_of_the_readme_parses(command, capsys):
    try:
        build_parser().parse_args(command[1:])
    except SystemExit as e:
        pytest.fail(f"`{' '.join(command)}` does not parse (exit {e.code}): {capsys.readouterr().err.strip()}")
    for word in command[1:]:
        if word.startswith("configs/"):
            assert (ROOT / word).is_file(), f"`{' '.join(command)}` names {word}, which does not exist"


NOT_RUN = {"train", "serve"}  # the demo's training and a server: see the docstring


@pytest.fixture(scope="module")
def readme_folder(tmp_path_factory) -> Path:
    """A folder laid out as the README's commands expect after `make demo`: data/toy, and runs/toy
    trained from it as configs/toy.yaml says but small and short (20 steps), its test set the toy one."""
    from conftest import tiny_config_dict
    from nmt.trainer import train

    folder = tmp_path_factory.mktemp("readme")
    (folder / "data").mkdir()
    (folder / "data" / "toy").symlink_to(ROOT / "data" / "toy")
    toy = load_config(ROOT / "configs" / "toy.yaml")
    cfg = tiny_config_dict(folder / "runs" / "toy", str(ROOT / "data" / "toy" / "train"), str(ROOT / "data" / "toy" / "dev"),
                           tokenizer={"src_vocab_size": toy.tokenizer.src_vocab_size,
                                      "tgt_vocab_size": toy.tokenizer.tgt_vocab_size},
                           train={"max_steps": 20, "validate_every": 10, "save_every": 10, "dev_max_sentences": 20})
    cfg["data"]["test"] = str(ROOT / "data" / "toy" / "test")
    train(cfg)
    return folder


RUN_COMMANDS = [c for c in nmt_commands() if c[1] not in NOT_RUN]


@pytest.mark.slow
@pytest.mark.parametrize("command", RUN_COMMANDS, ids=[" ".join(c) for c in RUN_COMMANDS])
def test_each_tour_command_of_the_readme_succeeds(command, readme_folder):
    proc = nmt(*command[1:], input="the queen is happy .\n", cwd=readme_folder)
    assert proc.returncode == 0, f"`{' '.join(command)}` exited {proc.returncode}: {err(proc)[-2000:]}"


def test_each_make_target_of_the_readme_exists():
    targets = [c[1:] for c in bash_commands(readme()) if c[0] == "make"]
    assert targets, "the README shows make demo and make test"
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for target in targets:
        proc = subprocess.run(["make", "-n", *target], cwd=ROOT, capture_output=True, text=True)
        assert proc.returncode == 0, f"make -n {' '.join(target)}: {proc.stderr.strip()}"


def test_each_script_the_readme_names_exists():
    text = readme()
    named = {w for c in bash_commands(text) if c[0].endswith(("python", "python3")) for w in c[1:2]}
    for span in re.findall(r"`([^`\n]+)`", text):
        named |= {w for w in span.split() if w.startswith(("configs/", "scripts/", "docs/"))}
    missing = sorted(w for w in named if not (ROOT / w.rstrip("/")).exists())
    assert missing == []


def slug(heading: str) -> str:
    """A heading's anchor as GitHub and MkDocs (Python-Markdown's toc) both make it, for the ASCII
    headings the README links to: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", heading, flags=re.ASCII).strip().lower())


def headings(page: str) -> set[str]:
    text = re.sub(r"```.*?```", "", page, flags=re.S)  # a '#' in a code block is no heading
    return {slug(h) for h in re.findall(r"^#{1,6} +(.+?) *#*$", text, flags=re.M)}


def test_every_relative_link_of_the_readme_points_at_a_file_and_heading_that_exist():
    links = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", readme())
    relative = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert relative, "the README links into the manual"
    problems = []
    for link in relative:
        path, _, anchor = link.partition("#")
        target = ROOT / path if path else README
        if not target.exists():
            problems.append(f"{link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in headings(target.read_text(encoding="utf-8")):
            problems.append(f"{link}: {path or 'README.md'} has no heading #{anchor}")
    assert problems == []
