"""Tests for the servers: `nmt serve` (nmt/serve.py) and the runtime's HTTP layer it stands on
(nmt_runtime/serve.py, batcher.py, neighbours.py): the API, its refusals, dynamic batching, shutdown,
and the page in a real browser.

The API, refusal, batching, shutdown and page tests run once per backend, a way of serving a model:
BUILDERS names each one's builder (a run served by `nmt serve`; an export served by
`nmt-runtime serve` is one more builder). What only a run has (its checkpoint file, nmt serve's
flags, the lab's tables) is tested on the run alone (RUN_ONLY).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

pytest.importorskip("fastapi", reason="nmt serve needs the serve extra: pip install -e '.[serve]'")
httpx = pytest.importorskip("httpx")

import uvicorn  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from conftest import DEV_PAIRS, PAIRS, tiny_config_dict, write_parallel  # noqa: E402
from helpers import ENV, assert_error, load_script, metrics, nmt, nmt_process, python, until  # noqa: E402
from nmt import serve as nmt_serve  # noqa: E402
from nmt.lab.movie import snapshot_words, word_paths  # noqa: E402
from nmt.lab.stats import neighbors, word_vector  # noqa: E402
from nmt.lab.tables import load_tables  # noqa: E402
from nmt.rundir import RunDir  # noqa: E402
from nmt.snapshots import load_snapshots  # noqa: E402
from nmt.tokenizer import Tokenizer  # noqa: E402
from nmt.translate import Translator  # noqa: E402
from nmt_runtime import serve as http  # noqa: E402
from nmt_runtime.batcher import Batching, DynamicBatcher  # noqa: E402
from nmt_runtime.neighbours import Neighbours  # noqa: E402
from nmt_runtime.serve import Limits  # noqa: E402
from nmt_runtime.translator import ExportTranslator  # noqa: E402

SENTENCES = ["the king eats .", "the queen sings a song .", "", "a dog sees the cat ."]
bench = load_script("serve_bench.py")


# ----------------------------------------------------------------------------- the backends


@dataclass
class Backend:
    """One way of serving a model: what decodes, how its app is built, and the command that serves it."""

    name: str
    translator: Any  # options(*layers, **given) and translate_full(sentences, options, attention)
    app: Callable[..., Any]  # app(limits=None, batching=None, decode=None): a new FastAPI app of it
    source: Path  # what the command serves: a run directory, an export folder
    command: tuple[str, ...]  # python's arguments before `source`; nmt serve's flags follow it


def run_backend(request: pytest.FixtureRequest) -> Backend:
    """`nmt serve` of the tiny trained run."""
    run = request.getfixturevalue("trained_run")
    translator = Translator.load(run)
    return Backend("run", translator, lambda **kw: nmt_serve.create_app(translator, **kw), run,
                   ("-m", "nmt", "serve"))


def export_backend(request: pytest.FixtureRequest) -> Backend:
    """`nmt-runtime serve` of the tiny trained run's export (onnxruntime, no torch in the path)."""
    export = request.getfixturevalue("trained_export")
    translator = ExportTranslator.load(export)
    return Backend("export", translator, lambda **kw: http.export_app(translator, **kw), export,
                   ("-m", "nmt_runtime.cli", "serve"))


BUILDERS: dict[str, Callable[[pytest.FixtureRequest], Backend]] = {"run": run_backend, "export": export_backend}
BACKENDS = list(BUILDERS)
RUN_ONLY = pytest.mark.parametrize("backend", ["run"], indirect=True)
EXPORT_ONLY = pytest.mark.parametrize("backend", ["export"], indirect=True)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return BUILDERS[request.param](request)


@pytest.fixture(scope="module")
def served_translator(backend: Backend) -> Any:
    return backend.translator


@pytest.fixture(scope="module")
def client(backend: Backend) -> Iterator[TestClient]:
    with TestClient(backend.app(), raise_server_exceptions=False) as c:
        yield c


def translate(client, **body):
    return client.post("/v1/translate", json=body)


def texts(translator: Any, sentences: list[str], **given: Any) -> list[str]:
    """The best translation of each sentence, straight from the translator."""
    return [nbest[0].text for nbest in translator.translate_full(sentences, translator.options(given), False)]


# ----------------------------------------------------------------------------- the endpoints


def test_translations_are_the_translators_for_the_same_settings(client, served_translator):
    r = translate(client, text=SENTENCES, beam=3)
    assert r.status_code == 200
    assert [t["text"] for t in r.json()["translations"]] == texts(served_translator, SENTENCES, beam=3)
    assert r.json()["translations"][2] == {"text": "", "score": 0.0}


def test_n_best_and_attention_come_with_the_pieces(client, served_translator):
    body = translate(client, text=SENTENCES[:2], beam=4, n_best=3, attention=True).json()
    want = served_translator.translate_full(SENTENCES[:2], served_translator.options(beam=4, n_best=3), True)
    for got, nbest in zip(body["translations"], want):
        assert [h["text"] for h in got["n_best"]] == [h.text for h in nbest]
        assert got["src_pieces"] == nbest[0].src_pieces
        for h, w in zip(got["n_best"], nbest):
            assert h["tgt_pieces"] == w.tgt_pieces
            assert len(h["attention"]) == len(w.tgt_pieces) + 1  # rows: target pieces and </s>
            assert {len(row) for row in h["attention"]} == {len(w.src_pieces) + 1}
            assert all(abs(sum(row) - 1) < 1e-2 for row in h["attention"])


def test_info_names_the_languages_the_settings_and_the_neighbours_checkpoints(client, served_translator):
    info = client.get("/v1/info").json()
    assert info["languages"] == {"src": "en", "tgt": "fr"} and info["vocab"]["src"] > 4
    assert info["decode"]["beam"] == 2 == served_translator.options().beam  # the run's decode.beam_size
    assert info["limits"] == asdict(Limits()) and info["batching"] == asdict(Batching())
    assert info["neighbors"]["default"] in info["neighbors"]["checkpoints"]
    assert {"received", "requests", "sentences", "batches"} <= set(info["served"])


@RUN_ONLY
def test_info_names_the_runs_checkpoint_and_architecture(client, trained_run):
    info = client.get("/v1/info").json()
    assert info["run"] == str(trained_run)
    assert info["checkpoint"]["path"].endswith("best.pt") and info["checkpoint"]["step"] > 0
    assert info["checkpoint"]["dev_metric"] == "bleu" and info["checkpoint"]["dev_score"] is not None
    assert info["architecture"] == {"rnn_type": "gru", "attention": "bahdanau"}
    assert info["decode"]["max_src_pieces"] > 0
    assert info["neighbors"] == {"checkpoints": ["init", "best", "last"], "default": "best"}
    assert info["snapshots"] == {"steps": len(metrics(trained_run, "validation"))}  # the page shows its slider


def test_neighbours_of_a_word_exclude_its_pieces_and_a_piece_is_looked_up_as_is(client):
    default = client.get("/v1/info").json()["neighbors"]["default"]
    body = client.get("/v1/embeddings/neighbors", params={"word": "king", "side": "src", "k": 3}).json()
    assert body["checkpoint"] == default and body["query"] == "king" and len(body["neighbors"]) == 3
    cosines = [n["cosine"] for n in body["neighbors"]]
    assert cosines == sorted(cosines, reverse=True) and all(-1 <= c <= 1 for c in cosines)
    ids = [n["id"] for n in body["neighbors"]]
    assert all(i >= 4 for i in ids) and not {p["id"] for p in body["pieces"]} & set(ids)  # no specials, not itself
    first = body["pieces"][0]["piece"]
    by_piece = client.get("/v1/embeddings/neighbors", params={"piece": first, "side": "src"}).json()
    assert by_piece["pieces"] == [body["pieces"][0]] and by_piece["query"] == first


@RUN_ONLY
def test_neighbours_are_the_labs_for_words_and_pieces(client, trained_run):
    table, tok = load_tables(trained_run, "best", "src")
    vec, rows = word_vector("king", table, tok)
    body = client.get("/v1/embeddings/neighbors", params={"word": "king", "side": "src", "k": 3}).json()
    assert [(p["piece"], p["id"]) for p in body["pieces"]] == rows
    assert [(n["id"], n["cosine"]) for n in body["neighbors"]] == [
        (i, round(c, 4)) for i, c in neighbors(vec, table, 3, [i for _, i in rows])]
    first = body["pieces"][0]["piece"]
    by_piece = client.get("/v1/embeddings/neighbors", params={"piece": first, "checkpoint": "init"}).json()
    assert by_piece["pieces"] == [body["pieces"][0]] and by_piece["checkpoint"] == "init"


def one_table_app(translator: Translator, run: Path) -> Any:
    """The run's model behind the runtime's app with the tables of one checkpoint, "last", as a
    server that has one (an export) is built."""
    last = Neighbours(("last",), nmt_serve.run_neighbours(run).load)
    return http.create_app(translator, nmt_serve.run_info(translator), last)


@RUN_ONLY
def test_a_server_with_the_tables_of_one_checkpoint_offers_that_one(backend):
    with TestClient(one_table_app(backend.translator, backend.source)) as c:
        assert c.get("/v1/info").json()["neighbors"] == {"checkpoints": ["last"], "default": "last"}
        assert c.get("/v1/embeddings/neighbors", params={"word": "king"}).json()["checkpoint"] == "last"
        r = c.get("/v1/embeddings/neighbors", params={"word": "king", "checkpoint": "best"})
        assert r.status_code == 422
        assert r.json() == {"error": "parameter 'checkpoint' is 'best'; it must be one of last"}


def test_health_the_page_and_the_api_docs(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert "<textarea" in client.get("/").text and "heatmap" in client.get("/static/app.js").text
    assert "/v1/translate" in client.get("/openapi.json").json()["paths"]


# ----------------------------------------------------------------------------- the rows moving


def rounded(points: Any) -> list:
    return [rounded(p) for p in points] if points.dim() > 1 else [round(float(x), 4) for x in points]


def snapshots(client, **params: str):
    return client.get("/v1/embeddings/snapshots", params=params)


@RUN_ONLY
def test_snapshots_are_the_movies_paths_of_the_words_at_every_validation(client, trained_run):
    body = snapshots(client, side="tgt", words="roi, reine,roi").json()  # spaces and repeats dropped
    snaps = load_snapshots(trained_run / "snapshots", trained_run / "embeddings_init.pt", "tgt")
    paths = word_paths(snaps, ["roi", "reine"], Tokenizer.load(RunDir(trained_run).tgt_tokenizer))
    assert body["side"] == "tgt" and body["language"] == "fr" and body["rows"] == len(snaps.ids)
    assert body["steps"] == [r["step"] for r in metrics(trained_run, "validation")] == paths.steps
    assert body["labels"] == paths.labels == ["roi*", "reine*"]  # several pieces each: their mean
    assert len(body["frames"]) == len(body["steps"]) and {len(f) for f in body["frames"]} == {2}
    assert body["start"] == rounded(paths.start) and body["frames"] == rounded(paths.xy)
    assert body["projection"] == (f"one PCA fitted on the {len(snaps.ids)} most frequent rows at the start and at "
                                  f"all {len(body['steps'])} validations")


@pytest.fixture(scope="module")
def word_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of word vocabularies (tokenizer.type: word), 2 validations, snapshots of the 8 most
    frequent rows: '.', 'the' and 6 of the 10 words seen 24 times, not the subjects ('king': 16)."""
    from nmt.trainer import train

    root = tmp_path_factory.mktemp("words")
    cfg = tiny_config_dict(root / "run", write_parallel(root / "data", "train", PAIRS),
                           write_parallel(root / "data", "dev", DEV_PAIRS),
                           tokenizer={"type": "word", "src_vocab_size": 23, "tgt_vocab_size": 23},
                           train={"max_steps": 4, "validate_every": 2, "embedding_snapshots": 8})
    return train(cfg)


def test_the_default_words_are_the_whole_words_among_the_rows_shown_as_words(word_run):
    translator = Translator.load(word_run)
    with TestClient(nmt_serve.create_app(translator)) as c:
        assert c.get("/v1/info").json()["snapshots"] == {"steps": 2}
        body = snapshots(c).json()
        snaps = load_snapshots(word_run / "snapshots", word_run / "embeddings_init.pt", "src")
        words = snapshot_words(snaps, translator.src_tok)
        assert body["side"] == "src" and body["rows"] == 8 and len(body["frames"]) == 2
        assert body["labels"] == words and "the" in words and not any("\u2581" in w for w in words)
        assert body["frames"] == rounded(word_paths(snaps, words, translator.src_tok).xy)
        r = snapshots(c, words="the,king")
        assert r.status_code == 422 and r.json()["error"].startswith(
            "parameter 'words': 'king': its piece(s) '\u2581king' are not among the 8 rows the snapshots keep")


@RUN_ONLY
@pytest.mark.parametrize("params,fragment", [
    ({"side": "left", "words": "king"}, "parameter 'side' is 'left'; it must be src or tgt"),
    ({"words": "king,zzqqxx"}, "parameter 'words': 'zzqqxx' is not in this vocabulary"),
    ({"words": ",".join(["king"] + [f"w{i}" for i in range(40)])}, "parameter 'words' names 41 words; the limit is 40"),
    ({"words": "king," * 600}, "parameter 'words' is over 1000 characters"),
    ({"words": "king,\u0007"}, "holds control characters"),
    ({}, "snapshot rows of src hold no whole word to show by default: name the words in parameter 'words'"),
])
def test_bad_snapshot_queries_are_422_naming_the_parameter(client, params, fragment):
    r = snapshots(client, **params)
    assert r.status_code == 422 and fragment in r.json()["error"] and "\n" not in r.json()["error"]


@RUN_ONLY
def test_a_run_without_snapshots_says_how_to_get_them(backend, tmp_path):
    shutil.copytree(backend.source, tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "snapshots")
    with TestClient(nmt_serve.create_app(Translator.load(tmp_path / "run"))) as c:
        assert c.get("/v1/info").json()["snapshots"] is None
        r = snapshots(c, words="king")
        assert r.status_code == 404
        assert r.json()["error"].startswith(f"{tmp_path / 'run'}: no embedding snapshots in snapshots/; a run keeps them")


@EXPORT_ONLY
def test_an_export_has_no_snapshots(client):
    assert client.get("/v1/info").json()["snapshots"] is None
    r = snapshots(client, words="king")
    assert r.status_code == 404 and r.json() == {"error": http.NO_SNAPSHOTS}
    assert "'train.embedding_snapshots'" in http.NO_SNAPSHOTS


# ----------------------------------------------------------------------------- refusals

LONG = "a " * 600
BAD_REQUESTS = [
    # (what, request kwargs, status, error fragment)
    ("malformed JSON", {"content": b'{"text": ['}, 400, "not valid UTF-8 JSON"),
    ("non-UTF-8 bytes", {"content": b'{"text": ["\xff\xfe"]}'}, 400, "not valid UTF-8 JSON"),
    ("no body", {"content": b""}, 400, "not valid UTF-8 JSON"),
    ("a list, not an object", {"json": ["a"]}, 422, "must be a JSON object"),
    ("text missing", {"json": {"beam": 2}}, 422, "field 'text' is required"),
    ("unknown field", {"json": {"text": ["a"], "temperatur": 1}}, 422, "unknown field 'temperatur'"),
    ("text a string", {"json": {"text": "a"}}, 422, "field 'text': Input should be a valid array"),
    ("a sentence a number", {"json": {"text": ["a", 3]}}, 422, "field 'text[1]': Input should be a valid string"),
    ("beam a string", {"json": {"text": ["a"], "beam": "5"}}, 422, "field 'beam': Input should be a valid integer"),
    ("beam 0", {"json": {"text": ["a"], "beam": 0}}, 422, "beam is 0; it must be a whole number of at least 1"),
    ("beam 10,000", {"json": {"text": ["a"], "beam": 10_000}}, 422, "field 'beam' is 10000; this server's limit is 16"),
    ("n_best over the beam", {"json": {"text": ["a"], "beam": 2, "n_best": 3}}, 422,
     "n_best is 3; it must be at most the beam (2)"),
    ("samples over the limit", {"json": {"text": ["a"], "strategy": "sample", "n_best": 17}}, 422,
     "field 'n_best' is 17; this server samples at most 16"),
    ("attention not a bool", {"json": {"text": ["a"], "attention": "yes"}}, 422, "field 'attention'"),
    ("a control character", {"json": {"text": ["ok", "a\u0007b"]}}, 422, "text[1] holds the control character U+0007"),
    ("a sentence too long", {"json": {"text": [LONG]}}, 413, "text[0] has 1,200 characters; the limit is 1,000"),
    ("too many sentences", {"json": {"text": ["a"] * 65}}, 413, "field 'text' has 65 sentences; the limit is 64"),
    ("a 10 MB body", {"content": b'{"text": ["' + b"a" * 10_000_000 + b'"]}'}, 413, "over the limit of 1,048,576 bytes"),
]


@pytest.mark.parametrize("what,kwargs,status,fragment", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_a_bad_request_is_refused_in_one_json_line_and_the_next_is_served(client, what, kwargs, status, fragment):
    r = client.post("/v1/translate", headers={"content-type": "application/json"}, **kwargs)
    assert r.status_code == status
    assert list(r.json()) == ["error"] and fragment in r.json()["error"] and "\n" not in r.json()["error"]
    assert translate(client, text=["the king eats ."]).status_code == 200


@pytest.mark.parametrize("params,fragment", [
    ({"word": "zzqqxx"}, "is not in this vocabulary"),
    ({"piece": "no-such-piece"}, "is not in the src vocabulary"),
    ({"word": "king", "piece": "x"}, "exactly one of the parameters 'word' and 'piece'"),
    ({"word": "king", "side": "left"}, "parameter 'side' is 'left'"),
    ({"word": "king", "checkpoint": "step_3"}, "parameter 'checkpoint' is 'step_3'"),
    ({"word": "king", "k": 0}, "parameter 'k' is 0"),
    ({"word": "king", "k": "many"}, "parameter 'k': Input should be a valid integer"),
])
def test_bad_neighbour_queries_are_422_with_the_parameter(client, params, fragment):
    r = client.get("/v1/embeddings/neighbors", params=params)
    assert r.status_code == 422 and fragment in r.json()["error"]


def test_unknown_paths_and_methods_say_so(client):
    assert client.get("/v2/translate").json() == {"error": "no such path: /v2/translate"}
    r = client.get("/v1/translate")
    assert r.status_code == 405 and r.json() == {"error": "GET is not allowed on /v1/translate; use POST"}


def test_a_failure_inside_decoding_is_a_json_500_without_traceback_and_the_server_goes_on(backend, monkeypatch):
    calls, real = [], backend.translator.translate_full

    def flaky(sentences, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(sentences, **kw)

    monkeypatch.setattr(backend.translator, "translate_full", flaky)
    with TestClient(backend.app(), raise_server_exceptions=False) as c:
        r = translate(c, text=["a"])
        assert r.status_code == 500 and r.json() == {"error": "internal error (RuntimeError); the server log has the details"}
        assert translate(c, text=["the king eats ."]).status_code == 200


def blocking_translator(translator, monkeypatch) -> tuple[threading.Event, threading.Event]:
    """translate_full says when it has started and then waits for `release`: the worker stays busy
    until the test says."""
    started, release = threading.Event(), threading.Event()
    real = translator.translate_full

    def slow(sentences, **kw):
        started.set()
        release.wait(10)
        return real(sentences, **kw)

    monkeypatch.setattr(translator, "translate_full", slow)
    return started, release


def test_a_full_queue_is_503_with_retry_after(backend, monkeypatch):
    started, release = blocking_translator(backend.translator, monkeypatch)
    app = backend.app(batching=Batching(max_queue=1, max_wait_ms=0))
    with TestClient(app) as c:
        busy = [threading.Thread(target=translate, args=(c,), kwargs={"text": ["a"]}) for _ in range(2)]
        busy[0].start()
        until(started.is_set)  # the worker holds the first request
        busy[1].start()
        until(lambda: app.state.batcher.queue.full())  # the second fills the queue of one
        r = translate(c, text=["a"])
        release.set()
        for t in busy:
            t.join()
    assert r.status_code == 503 and r.headers["retry-after"] == "1" and "requests are waiting" in r.json()["error"]


def test_a_request_over_the_timeout_is_503(backend, monkeypatch):
    _, release = blocking_translator(backend.translator, monkeypatch)
    with TestClient(backend.app(limits=Limits(timeout_s=0.2))) as c:
        r = translate(c, text=["a"])
        release.set()
    assert r.status_code == 503 and "over the limit of 0.2 s" in r.json()["error"]


# ----------------------------------------------------------------------------- dynamic batching


def test_concurrent_requests_are_decoded_together_each_getting_its_own_in_order(served_translator):
    translator, calls = served_translator, []

    def recording(sentences, **kw):
        calls.append(len(sentences))
        return translator.translate_full(sentences, **kw)

    batcher = DynamicBatcher(recording, Batching(max_batch=64, max_wait_ms=20))
    requests = [[f"the king eats {i} ."] if i % 3 else SENTENCES for i in range(12)]
    futures = [batcher.submit(r, translator.options(beam=2), False) for r in requests]  # all waiting when the worker starts
    batcher.start()
    got = [[h[0].text for h in f.result(timeout=60)] for f in futures]
    batcher.stop()
    assert got == [texts(translator, r, beam=2) for r in requests]
    assert len(calls) < len(requests) and sum(calls) == sum(map(len, requests))


def test_without_batching_each_request_is_decoded_alone(served_translator):
    translator, calls = served_translator, []

    def recording(sentences, **kw):
        calls.append(len(sentences))
        return translator.translate_full(sentences, **kw)

    batcher = DynamicBatcher(recording, Batching(enabled=False))
    batcher.start()
    futures = [batcher.submit(SENTENCES, translator.options(beam=2), False) for _ in range(4)]
    [f.result(timeout=60) for f in futures]
    batcher.stop()
    assert calls == [len(SENTENCES)] * 4


def test_requests_with_other_decode_settings_are_not_merged_and_keep_their_order(served_translator):
    translator, calls = served_translator, []

    def recording(sentences, options, attention):
        calls.append((len(sentences), options.beam))
        time.sleep(0.02)
        return translator.translate_full(sentences, options, attention=attention)

    batcher = DynamicBatcher(recording, Batching(max_wait_ms=50))
    futures = [batcher.submit(["the king eats ."], translator.options(beam=beam), False) for beam in (2, 2, 3, 2)]
    batcher.start()
    [f.result(timeout=60) for f in futures]
    batcher.stop()
    assert [beam for _, beam in calls] == [2, 3, 2] and sum(n for n, _ in calls) == 4


# ----------------------------------------------------------------------------- the process


def test_serve_refuses_bad_flags_in_one_line(trained_run, tmp_path):
    assert_error(nmt("serve", trained_run, "--port", "70000"), "--port must be between 0 and 65535")
    assert_error(nmt("serve", trained_run, "--timeout", "nan"), "--timeout must be a finite number")
    assert_error(nmt("serve", trained_run, "--beam", "20"), "the beam 20 exceeds --max-beam 16")
    assert_error(nmt("serve", tmp_path / "nothing"), "nothing")


def test_without_the_serve_extra_each_server_names_its_own(trained_run, tmp_path):
    (tmp_path / "fastapi").mkdir()
    (tmp_path / "fastapi" / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), ENV["PYTHONPATH"]])}  # a fresh import of fastapi
    assert_error(nmt_process("serve", trained_run, env=env),
                 "nmt serve needs FastAPI and uvicorn: pip install 'nmt[serve]'")
    proc = python("-c", "import nmt_runtime.serve", env=env)
    assert proc.returncode == 1
    assert "nmt-runtime serve needs FastAPI and uvicorn: pip install fastapi uvicorn" in proc.stderr.decode()


@pytest.mark.slow
def test_sigterm_during_a_request_finishes_it_and_exits_0(backend):
    # the decoder holds a lone request for --max-wait-ms, waiting for company: SIGTERM comes meanwhile
    proc, url = bench.start_server(str(backend.source), ["--max-wait-ms", "3000"], command=backend.command)
    answer: dict = {}

    def post() -> None:
        r = httpx.post(f"{url}/v1/translate", json={"text": SENTENCES}, timeout=60)
        answer.update(status=r.status_code, body=r.json(), at=time.monotonic())

    t = threading.Thread(target=post)
    t.start()
    # the handshake: the server holds the request (received, not yet answered) when the signal comes
    def in_flight() -> bool:
        served = httpx.get(f"{url}/v1/info").json()["served"]
        return served["received"] - served["requests"] == 1

    until(in_flight, 30, "the request to arrive")
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    t.join(60)
    assert proc.wait(60) == 0
    assert answer["status"] == 200, answer["body"]
    assert len(answer["body"]["translations"]) == len(SENTENCES) and answer["at"] > signalled  # it was in flight
    assert "stopped: in-flight requests finished" in proc.stdout.read()


# ----------------------------------------------------------------------------- a real browser


def chrome():
    """Headless Chromium from Debian's packages, driven by selenium; skipped where it is missing."""
    pytest.importorskip("selenium.webdriver", reason="the browser test needs selenium (the test extra)")
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("the browser test needs Debian's chromium and chromium-driver (apt-get install chromium "
                    "chromium-driver; .ci/run installs them)")
    return load_script("serve_screenshot.py").headless_chromium()


@pytest.mark.slow
def test_the_page_translates_draws_the_attention_and_shows_neighbours(backend, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser = chrome()
    proc, url = bench.start_server(str(backend.source), [], command=backend.command)
    try:
        tables = httpx.get(f"{url}/v1/info").json()["neighbors"]
        shown = [tables["default"]] + (["init"] if "init" in tables["checkpoints"] else [])
        browser.get(url + "/")
        browser.find_element(By.ID, "text").send_keys("the king eats .")
        browser.find_element(By.ID, "go").click()
        wait = WebDriverWait(browser, 30)
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#heatmap rect.cell"))
        want = httpx.post(f"{url}/v1/translate", json={"text": ["the king eats ."], "attention": True}, timeout=60).json()
        best = want["translations"][0]
        assert browser.find_element(By.ID, "translation").text == (best["text"] or "(empty)")
        cells = browser.find_elements(By.CSS_SELECTOR, "#heatmap rect.cell")
        assert len(cells) == (len(best["src_pieces"]) + 1) * (len(best["tgt_pieces"]) + 1)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#hyps li")) >= 1
        browser.find_elements(By.CSS_SELECTOR, "#heatmap text.piece")[0].click()
        wait.until(lambda b: all(b.find_elements(By.CSS_SELECTOR, f"#nb-{c} li") for c in shown))
        assert [len(browser.find_elements(By.CSS_SELECTOR, f"#nb-{c} li")) for c in shown] == [10] * len(shown)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#nb-columns ol")) == len(shown)
        # the beam/sample choice: sampling hides the beam, shows the temperature, and draws n-best samples
        Select(browser.find_element(By.ID, "strategy")).select_by_value("sample")
        assert not browser.find_element(By.ID, "beam").is_displayed()
        assert browser.find_element(By.ID, "temperature").is_displayed()
        browser.find_element(By.ID, "nbest").clear()
        browser.find_element(By.ID, "nbest").send_keys("3")  # above the run's beam of 2: samples are not capped by it
        browser.find_element(By.ID, "go").click()
        wait.until(lambda b: "3 samples, temperature 1" in b.find_element(By.ID, "status").text)
        assert len(browser.find_elements(By.CSS_SELECTOR, "#hyps li")) == 3
        browser.save_screenshot(str(tmp_path / "page.png"))
        assert (tmp_path / "page.png").stat().st_size > 10_000
        if backend.name == "run":
            the_rows_move_with_the_slider(browser, wait)
        else:  # no snapshots: no panel
            assert not browser.find_element(By.ID, "movie").is_displayed()
    finally:
        browser.quit()
        assert bench.stop_server(proc) == 0


def the_rows_move_with_the_slider(browser: Any, wait: Any) -> None:
    """The panel of the rows moving, on the tiny run (2 validations, no whole words: the default
    words are refused, so the test names some): moving the slider moves the dots and the step."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def drawn() -> tuple[str, list[tuple[str, str, str]]]:
        dots = browser.find_elements(By.CSS_SELECTOR, "#mv-chart circle.dot")
        return browser.find_element(By.ID, "mv-label").text, [
            (d.get_attribute("data-word"), d.get_attribute("cx"), d.get_attribute("cy")) for d in dots]

    assert browser.find_element(By.ID, "movie").is_displayed()
    wait.until(lambda b: "hold no whole word" in b.find_element(By.ID, "mv-about").text)
    browser.find_element(By.ID, "mv-words").send_keys("king, queen")
    browser.find_element(By.CSS_SELECTOR, "#mv-form button").click()
    wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#mv-chart circle.dot")) == 2)
    label, last = drawn()
    assert label == "step 40 — validation 2 of 2" and [w for w, _, _ in last] == ["king*", "queen*"]
    assert "one PCA fitted on the" in browser.find_element(By.ID, "mv-about").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#mv-chart circle.start")) == 2
    browser.find_element(By.ID, "mv-step").send_keys(Keys.HOME)
    wait.until(lambda b: drawn()[0] == "step 20 — validation 1 of 2")
    first = drawn()[1]
    assert [w for w, _, _ in first] == ["king*", "queen*"] and first != last
    browser.find_element(By.ID, "mv-step").send_keys(Keys.END)
    wait.until(lambda b: drawn() == (label, last))
    # play, at the last validation, starts from the first; a second click pauses (one script: no race with its timer)
    shown = browser.execute_script("const play = document.getElementById('mv-play'); play.click(); const shown = "
                                   "[document.getElementById('mv-label').textContent, play.textContent]; "
                                   "play.click(); return [...shown, play.textContent];")
    assert shown == ["step 20 — validation 1 of 2", "❚❚ pause", "▶ play"]


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app on a free loopback port, served by a thread of this process: its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        until(lambda: server.started, 30, "the server to start")
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.mark.slow
@RUN_ONLY
def test_the_page_of_a_server_with_one_checkpoint_shows_one_column_of_neighbours(backend):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = chrome()
    try:
        with serving(one_table_app(backend.translator, backend.source)) as url:
            browser.get(url + "/")
            browser.find_element(By.ID, "text").send_keys("the king eats .")
            browser.find_element(By.ID, "go").click()
            wait = WebDriverWait(browser, 30)
            wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#heatmap text.piece"))
            browser.find_elements(By.CSS_SELECTOR, "#heatmap text.piece")[0].click()
            wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#nb-last li"))
            assert len(browser.find_elements(By.CSS_SELECTOR, "#nb-last li")) == 10
            titles = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "#nb-columns h3")]
            assert titles == ["trained (last checkpoint)"]
            assert "before the first step" not in browser.find_element(By.ID, "nb-about").text
    finally:
        browser.quit()
