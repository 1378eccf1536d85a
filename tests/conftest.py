"""Shared fixtures: a tiny synthetic English→French corpus, tiny configs, a tiny trained run.

The corpus is 6 subjects × 4 verbs × 4 objects = 96 pairs of a toy grammar; sentencepiece can fill
at most ~36 unigram pieces per side from it, so the configs here ask for 30.
"""

from __future__ import annotations

import copy
import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import settings

from helpers import ENV, ROOT

# Hypothesis profiles: "ci" (.ci/run sets HYPOTHESIS_PROFILE=ci) draws the same examples on every run
# (derandomize), so a CI result depends on the code alone; "dev", the default, draws new ones each run
# to explore. Both: no deadline (a loaded 2-core machine is slow, not wrong), the failing example's
# blob printed to reproduce it. A test's own @settings (max_examples) go on top.
settings.register_profile("dev", deadline=None, print_blob=True)
settings.register_profile("ci", deadline=None, print_blob=True, derandomize=True, database=None)
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "dev")
settings.load_profile(HYPOTHESIS_PROFILE)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Print the profile first, even under -q (make test's), where pytest's own header is hidden."""
    s = settings()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"hypothesis profile: {HYPOTHESIS_PROFILE} (derandomize={s.derandomize}, max_examples="
                            f"{s.max_examples} unless a test says, deadline={s.deadline}; tests/conftest.py)")

SUBJECTS = [
    ("the cat", "le chat"),
    ("the dog", "le chien"),
    ("the king", "le roi"),
    ("the queen", "la reine"),
    ("my sister", "ma soeur"),
    ("the child", "l'enfant"),
]
VERBS = [("eats", "mange"), ("sees", "voit"), ("likes", "aime"), ("takes", "prend")]
OBJECTS = [("an apple", "une pomme"), ("the bread", "le pain"), ("a fish", "un poisson"), ("the book", "le livre")]

PAIRS: list[tuple[str, str]] = [
    (f"{s_en} {v_en} {o_en} .", f"{s_fr} {v_fr} {o_fr} .")
    for (s_en, s_fr), (v_en, v_fr), (o_en, o_fr) in itertools.product(SUBJECTS, VERBS, OBJECTS)
]
DEV_PAIRS = PAIRS[::12]  # 8 pairs
TINY_VOCAB = 30  # unigram pieces a side; the corpus can fill up to ~36


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_parallel(directory: Path, name: str, pairs: list[tuple[str, str]], src: str = "en", tgt: str = "fr") -> str:
    """Write <dir>/<name>.<src> and <dir>/<name>.<tgt>; return the prefix <dir>/<name>."""
    directory.mkdir(parents=True, exist_ok=True)
    write_lines(directory / f"{name}.{src}", [p[0] for p in pairs])
    write_lines(directory / f"{name}.{tgt}", [p[1] for p in pairs])
    return str(directory / name)


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> dict[str, str]:
    """tmp_path/data/{train,dev}.{en,fr}; returns the prefixes {'train': …, 'dev': …}."""
    data = tmp_path / "data"
    return {
        "train": write_parallel(data, "train", PAIRS),
        "dev": write_parallel(data, "dev", DEV_PAIRS),
    }


def tiny_config_dict(
    run_dir: str | Path, train_prefix: str, dev_prefix: str, /, **sections: dict[str, Any]
) -> dict[str, Any]:
    """A complete, valid config dict for a model small enough to train in seconds.

    `sections` update whole sections key by key, e.g. `train={"max_steps": 10}`.
    """
    cfg: dict[str, Any] = {
        "run": {"dir": str(run_dir)},
        "data": {"src_lang": "en", "tgt_lang": "fr", "train": str(train_prefix), "dev": str(dev_prefix)},
        "tokenizer": {"type": "unigram", "src_vocab_size": TINY_VOCAB, "tgt_vocab_size": TINY_VOCAB},
        "model": {
            "embedding_size": 16,
            "encoder_hidden_size": 16,
            "decoder_hidden_size": 32,
            "attention_size": 16,
            "dropout": 0.1,
        },
        "train": {
            "seed": 1,
            "max_steps": 40,
            "max_epochs": 0,
            "batch_size": 16,
            "batch_tokens": 2000,
            "lr": 3e-3,
            "validate_every": 20,
            "save_every": 20,
            "log_every": 10,
            "progress": False,
            "threads": 1,
        },
        "decode": {"beam_size": 2, "batch_size": 16},
    }
    for section, values in sections.items():
        cfg.setdefault(section, {}).update(values)
    return cfg


@pytest.fixture
def make_config(tmp_path: Path, tiny_corpus: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """Factory: make_config(run_name="run", **section_updates) → a config dict on the tiny corpus."""

    def factory(run_name: str = "run", /, **sections: dict[str, Any]) -> dict[str, Any]:
        return tiny_config_dict(tmp_path / run_name, tiny_corpus["train"], tiny_corpus["dev"], **sections)

    return factory


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run directory trained once per session (40 steps); treat it as read-only."""
    from nmt.trainer import train

    root = tmp_path_factory.mktemp("trained")
    train_prefix = write_parallel(root / "data", "train", PAIRS)
    dev_prefix = write_parallel(root / "data", "dev", DEV_PAIRS)
    return train(tiny_config_dict(root / "run", train_prefix, dev_prefix))


@pytest.fixture(scope="session")
def trained_export(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """trained_run's best.pt exported once per session by `nmt export` (fp32); treat it as read-only."""
    from nmt.export import export_run

    return export_run(trained_run, tmp_path_factory.mktemp("exported") / "toy")


@pytest.fixture(scope="session")
def trained_run_config(trained_run: Path) -> dict[str, Any]:
    import yaml

    return copy.deepcopy(yaml.safe_load((trained_run / "config.yaml").read_text(encoding="utf-8")))


@pytest.fixture
def start():
    """start(*ARGS, log=PATH): `python -m nmt ARGS` in the background, stdout and stderr into
    `log` (no pipe to fill); whatever still runs at the end of the test is killed."""
    procs: list[subprocess.Popen] = []

    def start(*args: str, log: Path) -> subprocess.Popen:
        with log.open("wb") as f:
            proc = subprocess.Popen([sys.executable, "-m", "nmt", *args], stdout=f, stderr=subprocess.STDOUT,
                                    cwd=ROOT, env=ENV)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()  # SIGKILL also ends a stopped process
            proc.wait()
