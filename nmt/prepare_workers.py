"""`nmt prepare`'s worker processes: a split cut into chunks of lines, and what a worker does to one.

nmt/prepare.py drives them: every chunk is first read and checked (`sample_chunk`, which also
returns the training lines of the tokenizer sample), then, once the tokenizers are trained,
encoded (`encode_chunk`); nmt/prepare_arrays.py appends the results to the arrays in chunk order.
A chunk is read from its byte ranges in the files, so no process ever holds a whole corpus, and
its errors name the file and the line as `load_corpus` would (nmt/corpus.py).
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from nmt.config import DataConfig
from nmt.corpus import ScannedFile, parse_lines, parse_pairs, read_range
from nmt.dataset import SIDES, ids_dtype
from nmt.tokenizer import Tokenizer


@dataclass
class Chunk:
    """A run of lines of a split (at most `chunk_lines`): what a worker reads and encodes at a time."""

    split: str
    first_line: int  # 1-based line number of its first line
    paths: list[Path]
    ranges: list[tuple[int, int]]  # byte range in each file


def split_chunks(split: str, scans: list[ScannedFile], chunk_lines: int) -> list[Chunk]:
    """The chunks of a split's aligned files, from where their scans found each chunk's first line."""
    starts = [s.chunk_starts for s in scans]
    n = len(starts[0])
    if any(len(s) != n for s in starts):  # line counts agree, so the boundaries do
        raise AssertionError("chunk boundaries differ between aligned files")
    out = []
    for k in range(n):
        ranges = [(st[k], st[k + 1] if k + 1 < n else scan.size) for st, scan in zip(starts, scans)]
        out.append(Chunk(split, k * chunk_lines + 1, [s.path for s in scans], ranges))
    return out


# what a worker process holds: set once by _init_worker
_WORKER: dict[str, Any] = {}


def _init_worker(data: DataConfig, protos: tuple[bytes, bytes] | None) -> None:
    _WORKER["data"] = data
    _WORKER["toks"] = None if protos is None else (Tokenizer(protos[0]), Tokenizer(protos[1]))


def _init_pool_worker(data: DataConfig, protos: tuple[bytes, bytes] | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: one line, no torn data
    _init_worker(data, protos)


def _chunk_bytes(chunk: Chunk) -> list[bytes]:
    return [read_range(p, a, b) for p, (a, b) in zip(chunk.paths, chunk.ranges)]


def sample_chunk(job: tuple[Chunk, tuple[list[int], list[int]] | None]) -> tuple[list[str], list[str], int]:
    """Read and check a chunk; return its lines for the tokenizer sample (those of every pair,
    or the source and target lines at the wanted line numbers, 0-based in the chunk, where the
    pair has no empty side; none for dev and test) and its number of pairs."""
    chunk, wanted = job
    src, tgt = parse_lines(_WORKER["data"], chunk.paths, _chunk_bytes(chunk), chunk.first_line)
    full = [i for i in range(len(src)) if src[i] and tgt[i]]
    if chunk.split != "train":
        return [], [], len(full)
    if wanted is None:
        return [src[i] for i in full], [tgt[i] for i in full], len(full)
    ok = set(full)
    return [src[i] for i in wanted[0] if i in ok], [tgt[i] for i in wanted[1] if i in ok], len(full)


def encode_chunk(chunk: Chunk) -> dict[str, Any]:
    """Encode one chunk: flat ids and lengths per side, and the pairs dropped as empty."""
    src, tgt, empty = parse_pairs(_WORKER["data"], chunk.paths, _chunk_bytes(chunk), chunk.first_line)
    out: dict[str, Any] = {"pairs": len(src), "empty": empty}
    for side, text, tok in zip(SIDES, (src, tgt), _WORKER["toks"]):
        ids = tok.encode_batch(text)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.uint32, count=len(ids))
        flat = np.fromiter((i for x in ids for i in x), dtype=ids_dtype(len(tok)), count=int(lengths.sum()))
        out[side] = (flat, lengths)
    return out


def _start_method() -> str:
    """Forked workers on Linux, as torch's DataLoader: a user's script that calls nmt.train() needs
    no `if __name__ == "__main__":` guard (spawned workers re-run the main script). Elsewhere
    (macOS, Windows) fork is unsafe or absent, and they are spawned."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


class Pool:
    """N worker processes, or this process for N = 1. The workers use sentencepiece and numpy
    only, never torch."""

    def __init__(self, workers: int, data: DataConfig, protos: tuple[bytes, bytes] | None) -> None:
        self.pool = None
        if workers > 1:
            ctx = multiprocessing.get_context(_start_method())
            self.pool = ctx.Pool(workers, _init_pool_worker, (data, protos))
        else:
            _init_worker(data, protos)

    def imap(self, fn: Callable, jobs: list) -> Iterator:
        if self.pool is None:
            return map(fn, jobs)
        return self.pool.imap(fn, jobs)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
