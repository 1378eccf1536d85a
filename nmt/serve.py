"""`nmt serve`: a run's model behind an HTTP API, and a page that shows what it does.

    nmt serve runs/toy                      then open http://127.0.0.1:8000/ (API docs: /docs)

FastAPI on uvicorn (the `serve` extra). The model is loaded once, before the port opens; one
worker thread owns it and decodes concurrent requests together (nmt/batcher.py). Everything a
client can send is checked here against `Limits`, and every refusal is a 4xx (or 503) with a
JSON body {"error": "..."} that says what was wrong: the server never answers a bad request with
a traceback, and goes on serving. SIGTERM or Ctrl-C stops taking connections, lets the requests
in flight finish, and exits 0.

    POST /v1/translate        {"text": [...], "beam": 5, "n_best": 1, "attention": false, ...decode options}
    GET  /v1/info             languages, vocabularies, checkpoint, step, dev score, settings
    GET  /v1/embeddings/neighbors?word=...&side=src|tgt&k=10&checkpoint=init|best|last
    GET  /health
    GET  /                    the page (runtime/nmt_runtime/web/)
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
from typing import Any, Callable

import torch

import nmt_runtime

from nmt.batcher import Batching, DynamicBatcher, QueueFull
from nmt.checkpoint import load_checkpoint
from nmt.errors import NmtError
from nmt.lab.stats import neighbors, word_vector
from nmt.lab.tables import load_counts, load_tables
from nmt.tokenizer import UNK_ID
from nmt.translate import Translator

try:
    import uvicorn
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, ConfigDict, ValidationError
    from starlette.exceptions import HTTPException
except ImportError:  # the optional `serve` extra; cli.py says how to install it
    raise NmtError("nmt serve needs FastAPI and uvicorn: pip install 'nmt[serve]' "
                   "(or: pip install fastapi uvicorn)") from None

WEB = Path(nmt_runtime.__file__).resolve().parent / "web"
CHECKPOINTS = ("init", "best", "last")  # the tables /v1/embeddings/neighbors can read


@dataclass
class Limits:
    """What one request may ask for; each is a flag of `nmt serve`."""

    max_sentences: int = 64  # per request
    max_chars: int = 1000  # per sentence
    max_body_bytes: int = 1 << 20
    max_beam: int = 16
    timeout_s: float = 30.0  # queued and decoding; then 503
    max_k: int = 100  # neighbours


class TranslateRequest(BaseModel):
    """POST /v1/translate. Each decode option left out takes the server's default (`nmt serve`'s
    flags, else the run's decode.*); DecodeOptions (runtime/nmt_runtime/decode_options.py) checks the values."""

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


class Neighbours:
    """The lab's nearest rows by cosine, for the page and the API; tables loaded on first use."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.cache: dict[tuple[str, str], tuple[torch.Tensor, Any, torch.Tensor | None]] = {}

    def table(self, checkpoint: str, side: str) -> tuple[torch.Tensor, Any, torch.Tensor | None]:
        if (checkpoint, side) not in self.cache:
            table, tok = load_tables(self.run_dir, checkpoint, side)
            self.cache[(checkpoint, side)] = table, tok, load_counts(self.run_dir, side, len(tok))
        return self.cache[(checkpoint, side)]

    def query(self, word: str | None, piece: str | None, side: str, k: int, checkpoint: str) -> dict[str, Any]:
        table, tok, counts = self.table(checkpoint, side)
        if piece is not None:  # a piece as the page shows it, looked up as is
            i = tok.piece_to_id(piece)
            if i == UNK_ID or tok.id_to_piece(i) != piece:
                raise NmtError(f"piece {piece!r} is not in the {side} vocabulary")
            vec, rows = table[i], [(piece, i)]
        else:
            vec, rows = word_vector(word or "", table, tok)

        def row(i: int, **more: Any) -> dict[str, Any]:
            return {"piece": tok.id_to_piece(i), "id": i, **more, "count": None if counts is None else int(counts[i])}

        return {
            "query": piece if piece is not None else word, "side": side, "checkpoint": checkpoint,
            "pieces": [row(i) for _, i in rows],
            "neighbors": [row(i, cosine=round(c, 4)) for i, c in neighbors(vec, table, k, [i for _, i in rows])],
        }


def checkpoint_info(translator: Translator) -> dict[str, Any]:
    """The served checkpoint's step and dev score (best.pt and step_N.pt hold them; last.pt its step)."""
    ckpt = load_checkpoint(translator.checkpoint)
    trainer = ckpt.get("trainer", {})
    return {"path": str(translator.checkpoint), "step": ckpt.get("step", trainer.get("step")),
            "dev_score": ckpt.get("score", trainer.get("best_score")),
            "dev_metric": translator.cfg.train.early_stopping_metric}


def create_app(translator: Translator, limits: Limits | None = None, batching: Batching | None = None,
               decode: dict[str, Any] | None = None) -> FastAPI:
    """The service for one loaded model (or ensemble). The decoder worker starts and stops with the
    app's lifespan. `decode`: the decode options `nmt serve`'s flags chose, over the run's decode.*;
    a request's own choices go over both (`DecodeOptions.resolve`)."""
    limits, batching, server = limits or Limits(), batching or Batching(), decode or {}
    cfg = translator.cfg
    defaults = translator.options(server)
    batcher = DynamicBatcher(translator.translate_full, batching)
    lab = Neighbours(translator.run.path)
    info = {
        "languages": {"src": cfg.data.src_lang, "tgt": cfg.data.tgt_lang},
        "vocab": {"src": len(translator.src_tok), "tgt": len(translator.tgt_tok)},
        "run": str(translator.run.path),
        "checkpoint": checkpoint_info(translator),
        "parameters": sum(p.numel() for p in translator.model.parameters()),
        "architecture": translator.model.architecture(),  # model.rnn_type, model.attention
        "quantize": translator.quantize,
        "members": [m.info() for m in translator.members],  # more than one: an ensemble
        "decode": {**defaults.as_dict(), "max_src_pieces": cfg.data.max_src_len},
        "limits": asdict(limits),
        "batching": asdict(batching),
    }

    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        batcher.start()
        yield
        batcher.stop()

    app = FastAPI(title="nmt", version="1", lifespan=lifespan,
                  description=f"{cfg.data.src_lang}→{cfg.data.tgt_lang} translation with the model of {translator.run.path}")
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
                      checkpoint: str = Query("best", description="init (the tables before training), best or last")
                      ) -> dict[str, Any]:
        """The k rows of an embedding table nearest to a word (or a piece) by cosine similarity."""
        if (word is None) == (piece is None):
            raise _refuse(422, "give exactly one of the parameters 'word' and 'piece'")
        if side not in ("src", "tgt"):
            raise _refuse(422, f"parameter 'side' is {side!r}; it must be src or tgt")
        if checkpoint not in CHECKPOINTS:
            raise _refuse(422, f"parameter 'checkpoint' is {checkpoint!r}; it must be one of {', '.join(CHECKPOINTS)}")
        if not 1 <= k <= limits.max_k:
            raise _refuse(422, f"parameter 'k' is {k}; it must be between 1 and {limits.max_k}")
        for name, text in (("word", word), ("piece", piece)):
            if text is not None and (len(text) > limits.max_chars or _control_character(text)):
                raise _refuse(422, f"parameter '{name}' is over {limits.max_chars} characters or holds control characters")
        return lab.query(word, piece, side, k, checkpoint)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB / "index.html")

    app.mount("/static", StaticFiles(directory=WEB), name="static")
    return app


def _translation(nbest: list, n_best: int, attention: bool) -> dict[str, Any]:
    """One sentence's answer: the best; with n_best > 1 the list; with attention, each
    hypothesis's target pieces and weights (rows: its pieces and </s>; columns: the source's)."""

    def hyp(h: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"text": h.text, "score": round(h.score, 4)}
        if attention:
            out["tgt_pieces"] = h.tgt_pieces
            out["attention"] = [] if h.attention is None else [
                [round(float(w), 4) for w in row] for row in h.attention.float().tolist()]
        return out

    out = hyp(nbest[0])
    if attention:
        out["src_pieces"] = nbest[0].src_pieces
    if n_best > 1:
        out["n_best"] = [hyp(h) for h in nbest]
    return out


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
