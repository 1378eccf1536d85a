"""Reading the user's text files, with errors that name the file and line."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import BinaryIO

from nmt_runtime.errors import NmtError


def open_binary(path: str | Path, kind: str = "file") -> BinaryIO:
    """Open a user's file for reading; a missing file or a folder is an NmtError naming it."""
    try:
        return Path(path).open("rb")
    except FileNotFoundError:
        raise NmtError(f"{path}: {kind} not found") from None
    except IsADirectoryError:
        raise NmtError(f"{path}: is a directory, expected a {kind}") from None
    except OSError as e:
        raise NmtError(f"{path}: cannot read ({e.strerror})") from None


def file_sha256(path: str | Path, block_bytes: int = 1 << 24) -> str:
    """A file's sha256, read a block at a time (a missing file is an NmtError naming it): prepared
    datasets' manifests, exports' export.json and ensembles' tokenizer checks all compare these."""
    digest = hashlib.sha256()
    with open_binary(path) as f:
        while block := f.read(block_bytes):
            digest.update(block)
    return digest.hexdigest()


def read_text(path: str | Path, kind: str = "file") -> str:
    """Read a UTF-8 file (a BOM is dropped); a missing file or a bad byte is an NmtError."""
    with open_binary(path, kind) as f:
        data = f.read()
    return decode_utf8(data, str(path))


def decode_utf8(data: bytes, name: str) -> str:
    """Bytes → text; a bad byte is an NmtError naming `name` and the line. A BOM is dropped."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise NmtError(f"{name}: line {line}: not valid UTF-8 (byte 0x{data[e.start]:02x})") from None
    return text[1:] if text.startswith("\ufeff") else text


def split_lines(text: str, strip: bool = True) -> list[str]:
    """Text → lines at "\\n" only (str.splitlines() would also split at \\x0b, \\x85, \\u2028, …,
    and put outputs out of line with inputs). Lines are stripped, or lose only a CRLF's CR."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    if strip:
        return [line.strip() for line in lines]
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_lines(path: str | Path, strip: bool = True) -> list[str]:
    """Read a UTF-8 text file into lines (stripped, or with only a CR removed); invalid UTF-8
    names the line."""
    return split_lines(read_text(path), strip)


def swap_in(new: Path, folder: Path, aside: Path) -> None:
    """Rename the finished folder `new` to `folder`. A folder already there is renamed to `aside`
    first and deleted last, so that `folder`, whenever it exists, is a whole copy: the old or the
    new one (a failed rename puts the old one back). nmt prepare --force and nmt export use it."""
    if not folder.exists():
        os.replace(new, folder)
        return
    os.replace(folder, aside)
    try:
        os.replace(new, folder)
    except BaseException:
        os.replace(aside, folder)
        raise
    shutil.rmtree(aside)
