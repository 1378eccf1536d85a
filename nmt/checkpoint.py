"""Checkpoints that cannot be half-written, and that load without running pickled code.

A checkpoint is a dict of tensors and plain Python values, saved to a temporary file in the same
folder, flushed, fsynced and renamed over the old one: a crash leaves either the old file or the
new one, never a torn one. Loading uses `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from nmt.errors import NmtError

FORMAT_VERSION = 1


def atomic_write(path: str | Path, write: Any) -> None:
    """Call `write(fileobj)` on a temp file next to `path`, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(e, OSError):
            raise NmtError(f"{path}: could not save ({e.strerror}); the previous file is unchanged") from None
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    payload = {"format_version": FORMAT_VERSION, **payload}
    atomic_write(path, lambda f: torch.save(payload, f))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise NmtError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for torn or foreign files
        reason = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise NmtError(f"{path}: not a readable nmt checkpoint ({reason[:120]})") from None
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise NmtError(f"{path}: not an nmt checkpoint (no format_version)")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise NmtError(
            f"{path}: checkpoint format {ckpt['format_version']}, this nmt reads format {FORMAT_VERSION}"
        )
    return ckpt
