"""nmt-runtime: an export translates as its run does, by the same search, from the Python API, from
`nmt-runtime` where torch is absent, and from nmt's own commands (which accept an export folder).
The server's API on an export: tests/test_serve.py (its "export" backend); the export itself and
each damaged one: tests/test_export.py; numpy against torch on every option: test_search_backends.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")

from conftest import DEV_PAIRS, PAIRS
from helpers import assert_error, load_script, nmt, nmt_runtime, ok
from nmt.export import export_run
from nmt.translate import Translator
from nmt_runtime.translator import ExportTranslator

SOURCES = [en for en, _ in PAIRS[:40]] + ["", "the cat sees a dog that is not in the corpus ."]
OPTIONS = {
    "greedy": dict(strategy="greedy"),
    "beam 5": dict(beam=5),
    "beam 4, 3-best, length penalty 0.6": dict(beam=4, n_best=3, length_penalty=0.6),
    "min length and blocking": dict(beam=3, min_length=4, no_repeat_ngram_size=2),
    "sample": dict(strategy="sample", seed=5, n_best=2, top_p=0.9),
}


@pytest.fixture(scope="module")
def last_export(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """trained_run's last.pt exported: with best.pt's export, two models for an ensemble."""
    return export_run(trained_run, tmp_path_factory.mktemp("last") / "toy", checkpoint="last")


def texts(results) -> list[list[str]]:
    return [[h.text for h in nbest] for nbest in results]


@pytest.mark.parametrize("name", list(OPTIONS))
def test_an_export_translates_as_its_run(trained_run, trained_export, name):
    want = Translator.load(trained_run).translate_full(SOURCES, **OPTIONS[name])
    got = ExportTranslator.load(trained_export).translate_full(SOURCES, **OPTIONS[name])
    assert texts(got) == texts(want)
    for g, w in zip(got, want):
        assert [h.score for h in g] == pytest.approx([h.score for h in w], abs=1e-4)
        assert [h.src_pieces for h in g] == [h.src_pieces for h in w]


def test_an_ensemble_of_exports_decodes_as_the_ensemble_of_their_runs(trained_run, trained_export, last_export):
    want = Translator.load([f"{trained_run}:best", f"{trained_run}:last"]).translate_full(SOURCES, beam=4, n_best=2)
    got = ExportTranslator.load([trained_export, last_export]).translate_full(SOURCES, beam=4, n_best=2)
    assert texts(got) == texts(want)


def test_nmt_runtime_translates_a_pipe_where_torch_is_absent(trained_run, trained_export):
    lines = "".join(s + "\n" for s in SOURCES[:10])
    got = ok(nmt_runtime("translate", trained_export, "--beam", "5", "--threads", "1", input=lines))
    assert got == ok(nmt("translate", trained_run, "--beam", "5", input=lines))


def test_nmt_runtime_evaluates_where_torch_is_absent(trained_run, trained_export, tmp_path):
    src, ref = tmp_path / "dev.en", tmp_path / "dev.fr"
    src.write_text("".join(en + "\n" for en, _ in DEV_PAIRS))
    ref.write_text("".join(fr + "\n" for _, fr in DEV_PAIRS))
    printed = ok(nmt_runtime("evaluate", trained_export, "--src", src, "--ref", ref, "--out", tmp_path / "h"))
    assert printed.startswith("BLEU = ") and "signature: nrefs:1" in printed and "\ndecode: " in printed
    ran = ok(nmt("evaluate", trained_run, "--src", src, "--ref", ref, "--out", tmp_path / "w"))
    assert printed.splitlines()[0] == ran.splitlines()[0]  # the same BLEU line
    assert (tmp_path / "h").read_text() == (tmp_path / "w").read_text()


def test_nmt_translate_and_evaluate_take_an_export_folder(trained_run, trained_export, tmp_path):
    lines = "".join(s + "\n" for s in SOURCES[:10])
    assert ok(nmt("translate", trained_export, "--nbest", "2", "--beam", "3", input=lines)) == \
        ok(nmt("translate", trained_run, "--nbest", "2", "--beam", "3", input=lines))
    src, ref = tmp_path / "dev.en", tmp_path / "dev.fr"
    src.write_text("".join(en + "\n" for en, _ in DEV_PAIRS))
    ref.write_text("".join(fr + "\n" for _, fr in DEV_PAIRS))
    printed = ok(nmt("evaluate", trained_export, "--src", src, "--ref", ref, "--out", tmp_path / "h"))
    assert printed.startswith("BLEU = ")


@pytest.mark.parametrize("flags,fragment", [
    (["--checkpoint", "last"], "--checkpoint last: an export folder holds the one checkpoint it was made from"),
    (["--quantize", "int8"], "--quantize int8: an export is quantized when it is made: nmt export RUN OUT --quantize int8"),
])
def test_nmt_refuses_run_flags_for_an_export_in_one_line(trained_export, flags, fragment):
    assert_error(nmt("translate", trained_export, *flags, input="the king eats .\n"), fragment)


def test_an_ensemble_mixing_a_run_and_an_export_is_refused_in_one_line(trained_run, trained_export):
    assert_error(nmt("translate", trained_run, "--ensemble", trained_export, input="a\n"),
                 "an ensemble is all run directories or all export folders")


def test_nmt_runtime_refuses_a_run_directory_and_bad_flags_in_one_line(trained_run, trained_export, tmp_path):
    prefix = r"nmt-runtime \w+: error: "
    assert_error(nmt_runtime("translate", trained_run, input="a\n"), "export.json", prefix=prefix)
    assert_error(nmt_runtime("translate", trained_export, "--threads", "0", input="a\n"), "--threads must be at least 1",
                 prefix=prefix)
    assert_error(nmt_runtime("translate", trained_export, "--beam", "0", input="a\n"), "beam", prefix=prefix)
    src = tmp_path / "src"
    src.write_text("a\nb\n")
    assert_error(nmt_runtime("evaluate", trained_export, "--src", src, "--ref", tmp_path / "missing"),
                 "missing: file not found", prefix=prefix)


def test_deploy_bench_compares_a_run_with_its_export(trained_run, tmp_path):
    src, ref = tmp_path / "dev.en", tmp_path / "dev.fr"
    src.write_text("".join(en + "\n" for en, _ in DEV_PAIRS))
    ref.write_text("".join(fr + "\n" for _, fr in DEV_PAIRS))
    bench = load_script("deploy_bench.py")
    assert bench.main([str(trained_run), "--src", str(src), "--ref", str(ref), "--work", str(tmp_path / "w"),
                       "--equality-only", "--json", str(tmp_path / "out.json")]) == 0
    result = json.loads((tmp_path / "out.json").read_text())
    for name in ("greedy", "beam5"):
        e = result["equality"][name]
        assert e["identical"] == e["sentences"] == len(DEV_PAIRS) and e["bleu_torch"] == e["bleu_onnx"]
    assert result["export"]["onnx_int8"]["bytes"] > 0


def test_nmt_serve_serves_an_export_folder(trained_export):
    bench = load_script("serve_bench.py")
    proc, url = bench.start_server(str(trained_export), [], command=("-m", "nmt", "serve"))
    try:
        info = httpx.get(f"{url}/v1/info", timeout=30).json()
        assert info["export"] == str(trained_export) and info["neighbors"]["checkpoints"] == ["best"]
        r = httpx.post(f"{url}/v1/translate", json={"text": ["the king eats ."]}, timeout=30)
        assert r.status_code == 200 and r.json()["translations"][0]["text"]
    finally:
        assert bench.stop_server(proc) == 0
