"""The HTTP API and the page of `nmt serve` (a run) and `nmt-runtime serve` (an export folder):
one loaded model behind a JSON API, and a page that shows what it does.

    nmt serve runs/toy                      then open http://127.0.0.1:8000/ (API docs: /docs)
    nmt-runtime serve export/toy            the same API and page, without torch

FastAPI on uvicorn (the `serve` extra). The caller loads the model once, before the port opens;
one worker thread owns it and decodes concurrent requests together (nmt_runtime/batcher.py).
Everything a client can send is checked here against `Limits`, and every refusal is a 4xx (or
503) with a JSON body {"error": "..."} that says what was wrong: the server never answers a bad
request with a traceback, and goes on serving. SIGTERM or Ctrl-C stops taking connections, lets
the requests in flight finish, and exits 0.

    POST /v1/translate        {"text": [...], "beam": 5, "n_best": 1, "attention": false, ...decode options}
    GET  /v1/info             languages, vocabularies, the model, settings, the neighbours' checkpoints
    GET  /v1/embeddings/neighbors?word=...&side=src|tgt&k=10&checkpoint=...  (a run: init|best|last)
    GET  /v1/embeddings/snapshots?side=src|tgt&words=king,queen  the words' rows at every validation (a run)
    GET  /health
    GET  /                    the page (web/)

What differs between a run and an export is what the caller hands `create_app`: the translator,
the model's part of /v1/info, the embedding tables (nmt_runtime/neighbours.py) and, for a run, its
embedding snapshots (nmt/serve.py's RunSnapshots; an export has none). No torch here.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import time
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from nmt_runtime.batcher import Batching, DynamicBatcher, QueueFull
from nmt_runtime.decode_options import DecodeOptions
from nmt_runtime.errors import MissingExtra, NmtError
from nmt_runtime.neighbours import Neighbours
from nmt_runtime.tokenizer import SIDES

try:
    import uvicorn
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, ConfigDict, ValidationError
    from starlette.exceptions import HTTPException
except ImportError:  # the optional `serve` extra; nmt/serve.py names nmt's
    raise MissingExtra("nmt-runtime serve needs FastAPI and uvicorn: pip install fastapi uvicorn "
                       "(the serve extra: pip install './runtime[serve]' in a clone of nmt)") from None

WEB = Path(__file__).resolve().parent / "web"


class ServedTranslator(Protocol):
    """What the server decodes with: nmt's Translator (nmt/translate.py) or the runtime's."""

    def options(self, *layers: Mapping[str, Any], **given: Any) -> DecodeOptions:
        """The model's default decode options with `layers` on top; a bad value raises NmtError."""

    def translate_full(self, sentences: list[str], options: DecodeOptions, attention: bool) -> list[list[Any]]:
        """Per sentence its n-best Translations (.text .score .src_pieces .tgt_pieces .attention)."""


@dataclass
class Limits:
    """What one request may ask for; each is a flag of `nmt serve` and `nmt-runtime serve`."""

    max_sentences: int = 64  # per request
    max_chars: int = 1000  # per sentence
    max_body_bytes: int = 1 << 20
    max_beam: int = 16
    timeout_s: float = 30.0  # queued and decoding; then 503
    max_k: int = 100  # neighbours
    max_words: int = 40  # words of one snapshots request


class NoSnapshots(NmtError):
    """The server holds no embedding snapshots: GET /v1/embeddings/snapshots answers 404 with the message."""


NO_SNAPSHOTS = ("this server has no embedding snapshots (an export keeps none): `nmt serve RUN` of a run shows "
                "them; a run keeps them at every validation while 'train.embedding_snapshots' is above 0")


class SnapshotPaths(Protocol):
    """What GET /v1/embeddings/snapshots reads: a run's embedding snapshots (nmt/serve.py's RunSnapshots)."""

    def steps(self) -> int:
        """How many validations kept snapshots (0: none)."""

    def paths(self, side: str, words: list[str] | None) -> dict[str, Any]:
        """The words' positions (None: the default words) in one projection: steps, labels, start,
        frames, rows, projection. Raises NoSnapshots where there are none, NmtError naming a bad word."""


class TranslateRequest(BaseModel):
    """POST /v1/translate. Each decode option left out takes the server's default (its flags, else
    the model's: a run's decode.*); DecodeOptions (nmt_runtime/decode_options.py) checks the values."""

    model_config = ConfigDict(extra="forbid", strict=True)
    text: list[str]
    attention: bool = False
    strategy: str | None = None  # beam | greedy | sample
    beam: int | None = None
    n_best: int | None = None
    length_penalty: float | None = None
    min_length: int | None = None
    no_repeat_ngram_size: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def choices(self) -> dict[str, Any]:
        """The decode options this request chooses (None: the server's)."""
        return {name: getattr(self, name) for name in type(self).model_fields if name not in ("text", "attention")}


def _refuse(status: int, message: str, retry_after: int | None = None) -> HTTPException:
    return HTTPException(status, message, headers={"Retry-After": str(retry_after)} if retry_after else None)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _validation_message(errors: list[dict[str, Any]], body: bool = True) -> tuple[int, str]:
    """The first problem pydantic found, as one line naming the field (or query parameter); 400
    when the body is not JSON."""
    e = errors[0]
    loc = list(e.get("loc", ()))
    what = "parameter" if loc[:1] == ["query"] else "field"
    if loc[:1] in (["query"], ["body"]):
        loc = loc[1:]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")  # text[1]
    kind = e.get("type", "")
    if kind == "json_invalid":
        return 400, f"the body is not valid UTF-8 JSON ({e.get('ctx', {}).get('error', e.get('msg'))})"
    if kind == "extra_forbidden":
        return 422, f"unknown field '{where}'; the fields are {', '.join(TranslateRequest.model_fields)}"
    if kind == "missing":
        return 422, f"{what} '{where}' is required"
    if kind == "model_type" or not where:
        return 422, f"the body must be a JSON object like {{\"text\": [\"...\"]}}, got {_short(e.get('input'))}"
    return 422, f"{what} '{where}': {e.get('msg')}, got {_short(e.get('input'))}"


def _short(value: Any, n: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 1] + "…"


def _control_character(text: str) -> tuple[int, str] | None:
    """The first control character of `text` (a tab is allowed) and its position, or None."""
    return next(((j, ch) for j, ch in enumerate(text) if ch != "\t" and unicodedata.category(ch) == "Cc"), None)


def check_sentence(i: int, text: str, limits: Limits) -> None:
    """Refuse a sentence that is too long or holds control characters."""
    if len(text) > limits.max_chars:
        raise _refuse(413, f"text[{i}] has {len(text):,} characters; the limit is {limits.max_chars:,}")
    if found := _control_character(text):
        raise _refuse(422, f"text[{i}] holds the control character U+{ord(found[1]):04X} at position {found[0]}")


def check_side(side: str) -> None:
    if side not in SIDES:
        raise _refuse(422, f"parameter 'side' is {side!r}; it must be src or tgt")


def check_parameter(name: str, text: str | None, limits: Limits) -> None:
    """Refuse a query parameter over the length of a sentence, or with control characters."""
    if text is not None and (len(text) > limits.max_chars or _control_character(text)):
        raise _refuse(422, f"parameter '{name}' is over {limits.max_chars} characters or holds control characters")


class BodyLimit:
    """ASGI middleware: refuse a body over `max_bytes`, by its Content-Length before reading it, and
    while reading when it has none (chunked), so a 10 MB body is never held."""

    def __init__(self, app: Callable, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = f"the request body is over the limit of {self.max_bytes:,} bytes"
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await _error(413, message)(scope, receive, send)
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > self.max_bytes:
                raise HTTPException(413, message)  # FastAPI passes it on while reading the body
            return msg

        await self.app(scope, limited, send)


def create_app(translator: ServedTranslator, info: Mapping[str, Any], neighbours: Neighbours,
               limits: Limits | None = None, batching: Batching | None = None,
               decode: Mapping[str, Any] | None = None, snapshots: SnapshotPaths | None = None) -> FastAPI:
    """The service for one loaded model (or ensemble); the decoder worker starts and stops with the
    app's lifespan.

    `info`: what the caller knows of the model, the body of GET /v1/info (languages and vocab are
    needed: the page shows them; a run adds its checkpoint, parameters, architecture, members…).
    Its "decode" entry, facts of decoding that the model fixes (max_src_pieces), joins the default
    options; the app adds limits, batching, the neighbours' checkpoints and what it has served.
    `neighbours`: the embedding tables GET /v1/embeddings/neighbors reads.
    `decode`: the decode options the server's flags chose, over the model's defaults; a request's
    own choices go over both (`DecodeOptions.resolve`).
    `snapshots`: a run's embedding snapshots, for GET /v1/embeddings/snapshots (None: 404 there)."""
    limits, batching, server = limits or Limits(), batching or Batching(), dict(decode or {})
    defaults = translator.options(server)
    batcher = DynamicBatcher(translator.translate_full, batching)
    info = {
        **info,
        "decode": {**defaults.as_dict(), **info.get("decode", {})},
        "limits": asdict(limits),
        "batching": asdict(batching),
        "neighbors": {"checkpoints": list(neighbours.checkpoints), "default": neighbours.default},
        "snapshots": {"steps": n} if snapshots is not None and (n := snapshots.steps()) else None,  # the page's panel
    }
    languages = f"{info['languages']['src']}→{info['languages']['tgt']}"

    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        batcher.start()
        yield
        batcher.stop()

    app = FastAPI(title="nmt", version="1", lifespan=lifespan,
                  description=f"{languages} translation with the model that GET /v1/info describes")
    app.state.batcher = batcher
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail
        if exc.status_code == 404:
            message = f"no such path: {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; use {(exc.headers or {}).get('Allow', '?')}"
        return _error(exc.status_code, str(message), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(*_validation_message(list(exc.errors())))

    @app.exception_handler(NoSnapshots)
    async def no_snapshots(request: Request, exc: NoSnapshots) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(NmtError)
    async def nmt_error(request: Request, exc: NmtError) -> JSONResponse:
        return _error(422, str(exc))

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:  # logged by uvicorn, never sent
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")

    schema = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": TranslateRequest.model_json_schema()}}}}

    @app.post("/v1/translate", openapi_extra=schema)
    async def translate(request: Request) -> dict[str, Any]:
        """Translate sentences: per sentence the best translation and its score; with n_best > 1
        the n best; with attention, the pieces and the attention matrix (rows: target pieces and
        </s>, columns: source pieces and </s>). An empty sentence gives an empty translation."""
        try:  # read here, not by FastAPI, so that every bad body gets its own message
            body = TranslateRequest.model_validate_json(await request.body())
        except ValidationError as e:
            raise _refuse(*_validation_message(list(e.errors()))) from None
        if len(body.text) > limits.max_sentences:
            raise _refuse(413, f"field 'text' has {len(body.text)} sentences; the limit is {limits.max_sentences}")
        for i, text in enumerate(body.text):
            check_sentence(i, text, limits)
        options = translator.options(server, body.choices())  # a bad value: DecodeOptionError, a 422
        if options.beam > limits.max_beam:
            raise _refuse(422, f"field 'beam' is {options.beam}; this server's limit is {limits.max_beam}")
        if options.search == "sample" and options.n_best > limits.max_beam:
            raise _refuse(422, f"field 'n_best' is {options.n_best}; this server samples at most {limits.max_beam}")
        t0 = time.perf_counter()
        try:
            future = batcher.submit(body.text, options, body.attention)
        except QueueFull:
            raise _refuse(503, f"the server is busy: {batching.max_queue} requests are waiting; retry shortly",
                          retry_after=1) from None
        try:
            results = await asyncio.wait_for(asyncio.wrap_future(future), limits.timeout_s)
        except asyncio.TimeoutError:
            raise _refuse(503, f"the request took over the limit of {limits.timeout_s:g} s; retry later",
                          retry_after=5) from None
        return {
            "translations": [_translation(nbest, options.n_best, body.attention) for nbest in results],
            "beam": options.beam, "n_best": options.n_best, "strategy": options.search,
            "ms": round(1000 * (time.perf_counter() - t0), 1),
        }

    @app.get("/v1/info")
    def get_info() -> dict[str, Any]:
        """The model and the settings this server decodes with."""
        return {**info, "served": asdict(batcher.stats)}

    @app.get("/v1/embeddings/neighbors")
    def get_neighbors(word: str | None = Query(None, description="a word, tokenized as in training (several pieces: their mean)"),
                      piece: str | None = Query(None, description="a piece of the vocabulary, as is (instead of word)"),
                      side: str = Query("src", description="src or tgt"), k: int = 10,
                      checkpoint: str = Query(neighbours.default, description="whose tables: one of "
                                              f"{', '.join(neighbours.checkpoints)} (a run's init: before training)")
                      ) -> dict[str, Any]:
        """The k rows of an embedding table nearest to a word (or a piece) by cosine similarity."""
        if (word is None) == (piece is None):
            raise _refuse(422, "give exactly one of the parameters 'word' and 'piece'")
        check_side(side)
        if checkpoint not in neighbours.checkpoints:
            raise _refuse(422, f"parameter 'checkpoint' is {checkpoint!r}; it must be one of "
                               f"{', '.join(neighbours.checkpoints)}")
        if not 1 <= k <= limits.max_k:
            raise _refuse(422, f"parameter 'k' is {k}; it must be between 1 and {limits.max_k}")
        check_parameter("word", word, limits)
        check_parameter("piece", piece, limits)
        return neighbours.query(word, piece, side, k, checkpoint)

    @app.get("/v1/embeddings/snapshots")
    def get_snapshots(side: str = Query("src", description="src or tgt"),
                      words: str | None = Query(None, description="comma-separated words (several pieces: their "
                                                "mean); default: the most frequent whole words among the rows")
                      ) -> dict[str, Any]:
        """Words' rows before the first step (`start`) and at every validation (`frames`), in one 2-D
        PCA fitted on all the snapshot rows of all frames, so that motion is motion (a run's only)."""
        if snapshots is None:
            raise NoSnapshots(NO_SNAPSHOTS)
        check_side(side)
        check_parameter("words", words, limits)
        chosen = list(dict.fromkeys(w.strip() for w in (words or "").split(",") if w.strip()))
        if len(chosen) > limits.max_words:
            raise _refuse(422, f"parameter 'words' names {len(chosen)} words; the limit is {limits.max_words}")
        return {"side": side, "language": info["languages"][side], **snapshots.paths(side, chosen or None)}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB / "index.html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app


def export_app(translator: Any, limits: Limits | None = None, batching: Batching | None = None,
               decode: Mapping[str, Any] | None = None) -> FastAPI:
    """The service for an export (or an ensemble of exports; the first one's tables): an
    `ExportTranslator` (nmt_runtime/translator.py) with its info and neighbours; no snapshots."""
    return create_app(translator, translator.info(), translator.neighbours(), limits, batching, decode)


def _translation(nbest: list, n_best: int, attention: bool) -> dict[str, Any]:
    """One sentence's answer: the best; with n_best > 1 the list; with attention, each
    hypothesis's target pieces and weights (rows: its pieces and </s>; columns: the source's)."""

    def hyp(h: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"text": h.text, "score": round(float(h.score), 4)}
        if attention:
            out["tgt_pieces"] = h.tgt_pieces
            out["attention"] = [] if h.attention is None else [
                [round(float(w), 4) for w in row] for row in _rows(h.attention)]
        return out

    out = hyp(nbest[0])
    if attention:
        out["src_pieces"] = nbest[0].src_pieces
    if n_best > 1:
        out["n_best"] = [hyp(h) for h in nbest]
    return out


def _rows(matrix: Any) -> list[list[float]]:
    """A 2-D numpy array or torch tensor as lists of numbers, without importing torch (a tensor's
    .float() first: bf16 has no Python or numpy twin)."""
    return (matrix.float() if hasattr(matrix, "float") else matrix).tolist()


class _Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame: Any) -> None:
        # uvicorn re-raises the signal once it has shut down, which ends the process with it;
        # a drained server has done what was asked and exits 0 instead. A second Ctrl-C forces.
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def serve(app: FastAPI, host: str, port: int, say: Callable[[str], None] = print) -> int:
    """Bind, say where, serve until SIGTERM/Ctrl-C, drain, return 0."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # from here a client's connection waits in the backlog until the app is up
    except OSError as e:
        sock.close()
        raise NmtError(f"--host {host} --port {port}: cannot listen there ({e.strerror})") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    say(f"serving on http://{shown}:{bound}/ (the page; API docs at /docs); Ctrl-C or SIGTERM stops it")
    sys.stdout.flush()
    server = _Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=None, access_log=False))
    server.run(sockets=[sock])
    say("stopped: in-flight requests finished")
    return 0
