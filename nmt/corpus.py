"""Text → validated sentence pairs, from two aligned files or one tab-separated file.

What differs between the corpus formats (which files, how a line splits into a pair) is looked up
in nmt/corpus_formats.py; this module does what is the same for all of them.

Small files (dev, test, a user's input) are read whole with `load_corpus`. A training corpus of
millions of pairs is never read whole: `scan_file` hashes a file and finds where its chunks of
lines start, and `parse_lines` / `parse_pairs` turn one chunk's bytes into pairs, with the same
checks and the same messages (file and line) in a worker process as in `load_corpus`, which is
built on them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nmt.config import DataConfig
from nmt.corpus_formats import corpus_format
from nmt.errors import NmtError
from nmt_runtime.files import open_binary, read_lines  # noqa: F401  (read_lines: nmt.corpus's name too)


@dataclass
class Corpus:
    """Aligned sentence pairs plus what loading had to skip, for the report."""

    src: list[str]
    tgt: list[str]
    name: str
    empty_dropped: int = 0  # pairs with an empty side

    def __len__(self) -> int:
        return len(self.src)


def corpus_paths(spec: str, cfg: DataConfig) -> list[Path]:
    """The files of a split: <prefix>.<src_lang> and <prefix>.<tgt_lang>, or the one .tsv file."""
    return corpus_format(cfg).paths(spec, cfg)


@dataclass
class ScannedFile:
    """A file's sha256, its line count and the byte offset where each chunk of lines starts."""

    path: Path
    sha256: str
    size: int
    lines: int
    chunk_starts: list[int]  # byte offset of line 1, 1 + chunk_lines, 1 + 2 * chunk_lines, …


# the corpora nmt's own scripts make, by folder: a missing file of one names the command that makes it
MADE_BY = {
    "data/toy": "make toy",
    "data/multi30k": "python scripts/get_data.py multi30k",
    "data/tatoeba": "python scripts/get_data.py tatoeba",
    "data/tatoeba_tutorial": "python scripts/get_data.py tatoeba --tutorial-subset",
}


def open_corpus(path: str | Path) -> BinaryIO:
    """Open a corpus file; a missing one is an NmtError naming it, and, for a corpus nmt's scripts
    make, the command that makes it."""
    path = Path(path)
    if not path.exists():
        folder = path.parent.as_posix()
        made_by = next((cmd for prefix, cmd in MADE_BY.items() if folder == prefix or folder.endswith("/" + prefix)), None)
        if made_by:
            raise NmtError(f"{path}: file not found; make it with: {made_by}")
    return open_binary(path)


def line_count(newlines: int, last_byte: bytes) -> int:
    """Lines of a file with this many newlines and this last byte: a last line without "\\n" counts."""
    return newlines + (last_byte not in (b"", b"\n"))


def scan_file(path: Path, chunk_lines: int, block_bytes: int = 1 << 24) -> ScannedFile:
    """One streaming pass over a file: sha256, lines (a last line without "\n" counts), chunks."""
    digest, size, newlines, last = hashlib.sha256(), 0, 0, b""
    starts = [0]
    with open_corpus(path) as f:
        while block := f.read(block_bytes):
            digest.update(block)
            ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)  # positions of "\n"
            # line k*chunk_lines + 1 starts after newline number k*chunk_lines
            first = -newlines % chunk_lines or chunk_lines  # index (1-based) in `ends` of the next boundary
            starts += [size + int(e) + 1 for e in ends[first - 1 :: chunk_lines]]
            newlines += len(ends)
            size += len(block)
            last = block[-1:]
    lines = line_count(newlines, last)
    if starts and starts[-1] >= size:  # a boundary after the last line starts no chunk
        starts.pop()
    return ScannedFile(Path(path), digest.hexdigest(), size, lines, starts or [0])


def read_range(path: Path, start: int, end: int) -> bytes:
    with open_corpus(path) as f:
        f.seek(start)
        return f.read(end - start)


def parse_lines(cfg: DataConfig, paths: list[Path], chunks: list[bytes], first_line: int
                ) -> tuple[list[str], list[str]]:
    """One chunk of a split (the bytes of its lines in each file) → the source and target of
    every line, stripped ("" for an empty side). Lines are numbered from `first_line` in errors."""
    return corpus_format(cfg).parse(cfg, paths, chunks, first_line)


def parse_pairs(cfg: DataConfig, paths: list[Path], chunks: list[bytes], first_line: int
                ) -> tuple[list[str], list[str], int]:
    """`parse_lines` without the pairs that have an empty side: (sources, targets, how many
    were dropped)."""
    src, tgt = parse_lines(cfg, paths, chunks, first_line)
    keep = [i for i in range(len(src)) if src[i] and tgt[i]]
    if len(keep) == len(src):
        return src, tgt, 0
    return [src[i] for i in keep], [tgt[i] for i in keep], len(src) - len(keep)


def check_aligned(paths: list[Path], lines: list[int]) -> None:
    """The two sides of a parallel corpus have as many lines."""
    if len(paths) == 2 and lines[0] != lines[1]:
        raise NmtError(
            f"{paths[0]} has {lines[0]} lines but {paths[1]} has {lines[1]}: "
            "the two sides of a parallel corpus must be aligned line by line"
        )


def no_pairs(spec: str, cfg: DataConfig, name: str) -> NmtError:
    where = " and ".join(str(p) for p in corpus_paths(spec, cfg))
    return NmtError(f"{where}: the {name} corpus has no sentence pairs")


def load_corpus(spec: str, cfg: DataConfig, name: str) -> Corpus:
    """Load the split `spec` (a prefix, or a .tsv path) in the configured direction, whole."""
    paths = corpus_paths(spec, cfg)
    data = []
    for path in paths:
        with open_corpus(path) as f:
            data.append(f.read())
    check_aligned(paths, [line_count(d.count(b"\n"), d[-1:]) for d in data])
    src, tgt, empty = parse_pairs(cfg, paths, data, 1)
    if not src:
        raise no_pairs(spec, cfg, name)
    return Corpus(src=src, tgt=tgt, name=name, empty_dropped=empty)
