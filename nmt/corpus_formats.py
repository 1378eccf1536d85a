"""The corpus formats, in one table: what `data.format` may name, and all that differs between them.

A format says which files hold a split, how one chunk of their lines becomes source and target
sentences, which of its own `data.*` keys the config must check, and which keys decide how the
text is read (so they are part of a prepared dataset's key). Everything else sees sentence pairs.
The config check (nmt/config.py), the reading of a split (nmt/corpus.py, in this process and in
`nmt prepare`'s workers) and the prepared dataset's key (nmt/prepare.py) all look the format up
in FORMATS, so adding a format is one entry there.

This module imports no config: nmt/config.py reads FORMAT_NAMES when it is itself imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from nmt.errors import NmtError
from nmt_runtime.files import decode_utf8, split_lines

if TYPE_CHECKING:
    from nmt.config import DataConfig


@dataclass(frozen=True)
class CorpusFormat:
    """One value of `data.format`."""

    # the files of a split named `spec` in the config (a prefix, a path)
    paths: Callable[[str, DataConfig], list[Path]]
    # one chunk of a split (the bytes of the same lines in each of its files) → the source and
    # target of every line: what `parse_lines` in nmt/corpus.py returns
    parse: Callable[[DataConfig, list[Path], list[bytes], int], tuple[list[str], list[str]]]
    # the config keys that decide how the text is read besides data.format, data.src_lang and
    # data.tgt_lang: they go into a prepared dataset's settings, so changing one prepares it again
    read_keys: tuple[str, ...] = ()
    # the config checks of this format's keys (the `where: key '…'` errors of nmt/config.py)
    check: Callable[[DataConfig, str], None] = lambda d, where: None  # none to check


def decode_lines(data: bytes, path: Path, first_line: int, strip: bool) -> list[str]:
    """The lines of a chunk of a file that starts at line `first_line` (a BOM is dropped from the
    file's first chunk only); a bad byte is an NmtError naming the file and the line."""
    try:
        text = decode_utf8(data, str(path)) if first_line == 1 else data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = first_line + data.count(b"\n", 0, e.start)
        raise NmtError(f"{path}: line {line}: not valid UTF-8 (byte 0x{data[e.start]:02x})") from None
    return split_lines(text, strip)


# ----------------------------------------------------------------------------- parallel


def _parallel_paths(spec: str, cfg: DataConfig) -> list[Path]:
    return [Path(f"{spec}.{cfg.src_lang}"), Path(f"{spec}.{cfg.tgt_lang}")]


def _parallel_parse(cfg: DataConfig, paths: list[Path], chunks: list[bytes], first_line: int
                    ) -> tuple[list[str], list[str]]:
    return (decode_lines(chunks[0], paths[0], first_line, strip=True),
            decode_lines(chunks[1], paths[1], first_line, strip=True))


# ----------------------------------------------------------------------------- tsv


def _tsv_paths(spec: str, cfg: DataConfig) -> list[Path]:
    return [Path(spec)]


def _tsv_parse(cfg: DataConfig, paths: list[Path], chunks: list[bytes], first_line: int
               ) -> tuple[list[str], list[str]]:
    src_col, tgt_col = cfg.tsv_columns.index(cfg.src_lang), cfg.tsv_columns.index(cfg.tgt_lang)
    src, tgt = [], []
    for i, line in enumerate(decode_lines(chunks[0], paths[0], first_line, strip=False), start=first_line):
        if not line.strip():
            src.append("")
            tgt.append("")
            continue
        cols = line.split("\t")
        if len(cols) < len(cfg.tsv_columns):
            raise NmtError(
                f"{paths[0]}: line {i}: expected {len(cfg.tsv_columns)} tab-separated columns "
                f"({', '.join(cfg.tsv_columns)}), found {len(cols)}"
            )
        src.append(cols[src_col].strip())
        tgt.append(cols[tgt_col].strip())
    return src, tgt


def _tsv_check(d: DataConfig, where: str) -> None:
    for lang, key in ((d.src_lang, "src_lang"), (d.tgt_lang, "tgt_lang")):
        if lang not in d.tsv_columns:
            raise NmtError(
                f"{where}: key 'data.{key}' is {lang!r} but 'data.tsv_columns' is "
                f"{d.tsv_columns}; name the columns of the .tsv file"
            )


# ----------------------------------------------------------------------------- the table


FORMATS: dict[str, CorpusFormat] = {
    # <prefix>.<src_lang> and <prefix>.<tgt_lang>, one sentence a line
    "parallel": CorpusFormat(paths=_parallel_paths, parse=_parallel_parse),
    # one file, one pair a line, columns named by `data.tsv_columns`
    "tsv": CorpusFormat(paths=_tsv_paths, parse=_tsv_parse, read_keys=("tsv_columns",), check=_tsv_check),
}
FORMAT_NAMES: tuple[str, ...] = tuple(FORMATS)  # the values of `data.format`, as its errors list them


def corpus_format(cfg: DataConfig) -> CorpusFormat:
    """The format the config names (checked by the config: always one of FORMATS)."""
    return FORMATS[cfg.format]
