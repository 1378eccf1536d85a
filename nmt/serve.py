"""`nmt serve`: a run's model behind the HTTP API and the page of nmt_runtime/serve.py.

    nmt serve runs/toy                      then open http://127.0.0.1:8000/ (API docs: /docs)

The API, its limits and refusals, dynamic batching, the page and the shutdown are the runtime's,
the same as `nmt-runtime serve` of an export folder. This is the torch side: what /v1/info says
of a run (its checkpoint, step and dev score, parameters, architecture, ensemble members), the
run's embedding tables for /v1/embeddings/neighbors: init (before the first step), best and last,
and its embedding snapshots for /v1/embeddings/snapshots (the page's slider, nmt/snapshots.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nmt.checkpoint import load_checkpoint, step_and_score
from nmt.errors import NmtError
from nmt.lab.movie import snapshot_words, training_ids, word_paths
from nmt.lab.tables import load_counts, load_tables
from nmt.rundir import RunDir
from nmt.snapshots import Snapshots, load_snapshots, snapshot_files
from nmt.tokenizer import Tokenizer
from nmt.translate import Translator
from nmt_runtime.batcher import Batching
from nmt_runtime.errors import MissingExtra
from nmt_runtime.neighbours import Neighbours, Table

try:  # Limits and serve are nmt serve's too: cli.py imports them from here
    from nmt_runtime import serve as http
    from nmt_runtime.serve import FastAPI, Limits, NoSnapshots, export_app, serve
except MissingExtra:  # the same extra, by nmt's name
    raise NmtError("nmt serve needs FastAPI and uvicorn: pip install 'nmt[serve]' "
                   "(or: pip install fastapi uvicorn)") from None

__all__ = ["Limits", "RunSnapshots", "checkpoint_info", "create_app", "export_app", "run_info", "run_neighbours",
           "serve"]

CHECKPOINTS = ("init", "best", "last")  # the tables of a run that /v1/embeddings/neighbors reads


def checkpoint_info(translator: Translator) -> dict[str, Any]:
    """The served checkpoint's step and dev score (best.pt and step_N.pt hold them; last.pt its step)."""
    step, score = step_and_score(load_checkpoint(translator.checkpoint))
    return {"path": str(translator.checkpoint), "step": step, "dev_score": score,
            "dev_metric": translator.cfg.train.early_stopping_metric}


def run_info(translator: Translator) -> dict[str, Any]:
    """The run's part of GET /v1/info: what the model is (the app adds the settings)."""
    cfg = translator.cfg
    return {
        "languages": {"src": cfg.data.src_lang, "tgt": cfg.data.tgt_lang},
        "vocab": {"src": len(translator.src_tok), "tgt": len(translator.tgt_tok)},
        "word_level": {"src": translator.src_tok.word_level, "tgt": translator.tgt_tok.word_level},
        "run": str(translator.run.path),
        "checkpoint": checkpoint_info(translator),
        "parameters": sum(p.numel() for p in translator.model.parameters()),
        "architecture": translator.model.architecture(),  # model.rnn_type, model.attention
        "quantize": translator.quantize,
        "members": [m.info() for m in translator.members],  # more than one: an ensemble
        "decode": {"max_src_pieces": cfg.data.max_src_len},
    }


def run_neighbours(run_dir: Path) -> Neighbours:
    """The run's tables as numpy, read on first use: init, best and last (the default, best)."""

    def load(checkpoint: str, side: str) -> Table:
        table, tok = load_tables(run_dir, checkpoint, side)
        counts = load_counts(run_dir, side, len(tok))
        return Table(table.numpy(), tok, None if counts is None else counts.numpy())

    return Neighbours(CHECKPOINTS, load, default="best")


class RunSnapshots:
    """GET /v1/embeddings/snapshots of a run: the words' rows over its validations, in the one
    projection of `nmt embeddings RUN movie` (nmt/lab/movie.py). Each side's snapshots are read on
    first use and kept."""

    def __init__(self, run_dir: Path, tokenizers: dict[str, Tokenizer]) -> None:
        self.run, self.tokenizers = RunDir(run_dir), tokenizers
        self.cache: dict[str, Snapshots] = {}
        self.defaults: dict[str, list[str]] = {}  # the default words of a side, counted once

    def steps(self) -> int:
        return len(snapshot_files(self.run.snapshots))

    def load(self, side: str) -> Snapshots:
        if side not in self.cache:
            try:
                self.cache[side] = load_snapshots(self.run.snapshots, self.run.embeddings_init, side)
            except NmtError as e:
                if self.steps():  # a torn file: its own message
                    raise
                raise NoSnapshots(str(e)) from None
        return self.cache[side]

    def paths(self, side: str, words: list[str] | None) -> dict[str, Any]:
        """The body of the endpoint (the app adds side and language); None: `snapshot_words`."""
        snaps, tokenizer = self.load(side), self.tokenizers[side]
        rows = len(snaps.ids)
        if words is None:
            if side not in self.defaults:
                self.defaults[side] = snapshot_words(snaps, tokenizer, sentences=training_ids(self.run, side))
            words = self.defaults[side]
            if not words:
                raise NmtError(f"the {rows} snapshot rows of {side} hold no whole word to show by default: "
                               "name the words in parameter 'words'")
        try:
            paths = word_paths(snaps, words, tokenizer)
        except NmtError as e:
            raise NmtError(f"parameter 'words': {e}") from None
        return {
            "projection": f"one PCA fitted on the {rows} most frequent rows at the start and at all "
                          f"{len(paths.steps)} validations",
            "rows": rows, "steps": paths.steps, "labels": paths.labels,
            "start": _rounded(paths.start), "frames": _rounded(paths.xy),
        }


def _rounded(points: Any) -> list:
    """Coordinates as JSON: nested lists of floats rounded to 4 places."""
    return [_rounded(p) for p in points] if points.dim() > 1 else [round(float(x), 4) for x in points]


def create_app(translator: Translator, limits: Limits | None = None, batching: Batching | None = None,
               decode: dict[str, Any] | None = None) -> FastAPI:
    """The service for one loaded run (or ensemble; the first run's tables): nmt_runtime's app with
    this run's info, tables and snapshots. `decode`: the decode options `nmt serve`'s flags chose, over the
    run's decode.*."""
    tokenizers = {"src": translator.src_tok, "tgt": translator.tgt_tok}
    return http.create_app(translator, run_info(translator), run_neighbours(translator.run.path), limits, batching,
                           decode, RunSnapshots(translator.run.path, tokenizers))
