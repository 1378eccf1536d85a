"""Checkpoints that cannot be half-written, and that load without running pickled code.

A checkpoint is a dict of tensors and plain Python values, saved to a temporary file in the same
folder, flushed, fsynced and renamed over the old one: a crash leaves either the old file or the
new one, never a torn one. Loading uses `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from nmt.errors import NmtError

FORMAT_VERSION = 1


class _KeepWriteError:
    """A file whose failed write keeps its OSError: torch.save reports a write error (a full
    disk) as a RuntimeError ("unexpected pos ..."), which would hide the cause."""

    def __init__(self, f: Any) -> None:
        self._f, self.error = f, None

    def write(self, data: Any) -> int:
        try:
            return self._f.write(data)
        except OSError as e:
            self.error = e
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Any) -> None:
    """Call `write(fileobj)` on a temp file next to `path`, fsync, then rename over `path`.

    Any failure (a full disk, a read-only folder) removes the temp file and leaves `path` as it
    was; an OS error becomes an NmtError that names `path` and the cause."""
    path = Path(path)
    tmp, sink = None, None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give it the mode of other files
        with os.fdopen(fd, "wb") as f:
            sink = _KeepWriteError(f)
            write(sink)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        error = e if isinstance(e, OSError) else getattr(sink, "error", None)
        if error is not None:
            raise NmtError(
                f"{path}: could not save ({error.strerror or error}); the previous file is unchanged"
            ) from None
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)


def content_digest(obj: Any) -> str:
    """sha256 over every tensor's bytes and every plain value, in key order.

    torch.load notices a truncated file but not bytes flipped inside tensor data (a bad disk, a
    bad copy); this digest, stored in the checkpoint and checked on load, does.
    """
    h = hashlib.sha256()

    def walk(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, dict):
            for key in sorted(x, key=repr):
                h.update(repr(key).encode())
                walk(x[key])
        elif isinstance(x, (list, tuple)):
            h.update(f"L{len(x)}".encode())
            for item in x:
                walk(item)
        else:
            h.update(repr(x).encode())

    walk(obj)
    return h.hexdigest()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    payload = {"format_version": FORMAT_VERSION, **payload}
    payload["sha256"] = content_digest(payload)
    atomic_write(path, lambda f: torch.save(payload, f))


def _load_error_reason(e: Exception) -> str:
    """torch.load's error in a few words (its own messages run to paragraphs about weights_only)."""
    text = str(e)
    if isinstance(e, EOFError) or "central directory" in text:
        return "truncated or damaged file"
    refused = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", text)
    if refused:
        return f"it holds a pickled {refused.group(1)}; only tensors and plain values are loaded"
    if "WeightsUnpickler error" in text or isinstance(e, (pickle.UnpicklingError, KeyError, UnicodeDecodeError)):
        return "not a PyTorch checkpoint file"
    first = text.strip().splitlines()[0] if text.strip() else e.__class__.__name__
    return first[:120]


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise NmtError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for torn or foreign files
        raise NmtError(f"{path}: not a readable nmt checkpoint ({_load_error_reason(e)})") from None
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise NmtError(f"{path}: not an nmt checkpoint (no format_version)")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise NmtError(
            f"{path}: checkpoint format {ckpt['format_version']}, this nmt reads format {FORMAT_VERSION}"
        )
    stored = ckpt.pop("sha256", None)
    if stored is not None and stored != content_digest(ckpt):
        raise NmtError(f"{path}: checkpoint is corrupted (its content does not match its sha256)")
    return ckpt


def step_and_score(ckpt: dict[str, Any]) -> tuple[int | None, float | None]:
    """A loaded checkpoint's training step and dev score: best.pt and step_N.pt hold both; last.pt
    its trainer state (the step, and the best score so far)."""
    trainer = ckpt.get("trainer", {})
    return ckpt.get("step", trainer.get("step")), ckpt.get("score", trainer.get("best_score"))
