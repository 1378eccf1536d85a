"""The Python API: the manual's example (docs/getting-started.md, "Python API") runs as written, and
Translator returns what it promises."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from nmt import NmtError, Translator

ROOT = Path(__file__).resolve().parent.parent


API_PAGE = ROOT / "docs" / "getting-started.md"


def api_example() -> str:
    """The first ```python block under the '## Python API' heading of docs/getting-started.md."""
    text = API_PAGE.read_text(encoding="utf-8")
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"{API_PAGE}: no python block under '## Python API'"
    return match.group(1)


def test_the_manuals_api_example_runs(trained_run, make_config, tmp_path, monkeypatch, capsys):
    # the block runs unchanged in a folder where configs/toy.yaml is a tiny config and runs/toy a tiny run
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "toy.yaml").write_text(yaml.safe_dump(make_config("unused")), encoding="utf-8")
    shutil.copytree(trained_run, tmp_path / "runs" / "toy")
    monkeypatch.chdir(tmp_path)
    exec(compile(api_example(), str(API_PAGE.relative_to(ROOT)), "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("[") and len(eval(printed[0])) == 2  # two translations
    assert (tmp_path / "runs" / "toy_api" / "checkpoints" / "best.pt").is_file()
    assert printed[-1].startswith("runs/toy_api [")


@pytest.fixture(scope="module")
def translator(trained_run) -> Translator:
    return Translator.load(trained_run)


def test_translate_returns_one_string_per_sentence_in_order(translator):
    sentences = ["the cat eats an apple .", "", "the dog sees the book ."]
    out = translator.translate(sentences, beam=2)
    assert len(out) == 3 and all(isinstance(s, str) for s in out) and out[1] == ""
    assert out[2] == translator.translate([sentences[2]], beam=2)[0]


def test_translate_full_gives_n_best_lists_with_descending_scores(translator):
    nbest = translator.translate_full(["the cat eats an apple ."], beam=3, n_best=3)[0]
    assert len(nbest) == 3
    assert [h.score for h in nbest] == sorted((h.score for h in nbest), reverse=True)
    assert nbest[0].attention is None  # only on request


def test_translate_full_attention_covers_every_piece_and_eos(translator):
    best = translator.translate_full(["the cat eats an apple ."], beam=2, attention=True)[0][0]
    assert tuple(best.attention.shape) == (len(best.tgt_pieces) + 1, len(best.src_pieces) + 1)
    assert best.attention.sum(dim=1).allclose(best.attention.new_ones(len(best.tgt_pieces) + 1), atol=1e-4)


def test_load_names_the_missing_averaged_checkpoint(trained_run):
    with pytest.raises(NmtError, match="averaged.pt.*nmt average"):
        Translator.load(trained_run, "averaged")


def test_load_takes_a_step_checkpoint_by_name(trained_run, tmp_path):
    run = shutil.copytree(trained_run, tmp_path / "run")
    shutil.copy(run / "checkpoints" / "best.pt", run / "checkpoints" / "step_20.pt")
    assert Translator.load(run, "step_20").checkpoint == run / "checkpoints" / "step_20.pt"


@pytest.mark.parametrize("sentences,kwargs,fragment", [
    (["the cat eats ."], {"beam": 0}, "beam is 0; it must be a whole number of at least 1"),
    (["the cat eats ."], {"beam": 2.5}, "beam is 2.5; it must be a whole number of at least 1"),
    (["the cat eats ."], {"n_best": 0}, "n_best is 0; it must be a whole number of at least 1"),
    (["the cat eats ."], {"beam": 2, "n_best": 3}, "n_best is 3; it must be at most the beam (2)"),
    (["the cat eats ."], {"n_best": 3}, "n_best is 3; it must be at most the beam (2)"),  # the run's decode.beam_size
    (["the cat eats ."], {"length_penalty": -1.0}, "length_penalty is -1.0; it must be a number of at least 0"),
    ("the cat eats .", {}, "sentences must be a list of strings, got one str; wrap it in a list"),
    (["the cat eats .", 3], {}, "sentences[1] is int, not a string"),
], ids=["beam 0", "beam 2.5", "n_best 0", "n_best above beam", "n_best above the run's beam",
        "negative length_penalty", "one string", "not a string"])
def test_a_bad_argument_is_an_nmt_error_in_one_line(translator, sentences, kwargs, fragment):
    with pytest.raises(NmtError) as e:
        translator.translate_full(sentences, **kwargs)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_sentences_may_come_from_any_iterable(translator):
    sentences = ["the cat eats an apple .", "the dog sees the book ."]
    assert translator.translate(s for s in sentences) == translator.translate(sentences)
