"""A run directory is the unit users keep: everything to translate, evaluate or resume.

    runs/<name>/
      config.yaml            the resolved config (after --set overrides)
      tokenizer/src.model    sentencepiece models (the same model twice when joint)
      tokenizer/tgt.model
      checkpoints/last.pt    model + optimiser + schedule + RNG + data position + counters
      checkpoints/best.pt    model weights at the best dev score
      checkpoints/step_<N>.pt  weights at the last train.keep_checkpoints validations (for averaging)
      checkpoints/averaged.pt  the mean of the last K of them (`nmt average RUN --last K`)
      embeddings_init.pt     the embedding tables before the first step (for drift)
      snapshots/step_<N>.pt  the rows of the most frequent pieces at each validation (nmt embeddings RUN movie)
      token_counts.pt        how often each id occurs in the training data, per side
      prepared.json          which prepared dataset (nmt prepare) the run reads: folder, key, sources
      metrics.jsonl          one JSON object per log/validation event
      train.log              what the console showed, without progress bars
      tensorboard/           TensorBoard events (with train.tensorboard: true)
      curves.png             training curves (`nmt plot RUN`)

While `nmt train` runs, it holds an OS lock on the run directory (`RunLock`): a second trainer
there is refused, naming the first; nothing is written for the lock, and a killed trainer's goes
with it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock; a run directory is not locked there
    fcntl = None  # type: ignore[assignment]

from nmt.config import Config, load_config
from nmt.errors import NmtError
from nmt.tokenizer import Tokenizer


# Everything nmt writes into a run directory, as paths relative to it (`*` stays within one
# folder). `--overwrite` replaces a folder only when each of its files is one of these: anything
# else may be the user's. Keep it in step with the properties below.
RUN_FILES = (
    "config.yaml",
    "tokenizer/src.model",
    "tokenizer/tgt.model",
    "checkpoints/last.pt",
    "checkpoints/best.pt",
    "checkpoints/averaged.pt",
    "checkpoints/step_*.pt",
    "embeddings_init.pt",
    "snapshots/step_*.pt",
    "token_counts.pt",
    "prepared.json",
    "metrics.jsonl",
    "train.log",
    "curves.png",
    "tensorboard/events.out.tfevents.*",
    "hyps/*.hyp",  # nmt evaluate's default output
)
RUN_FOLDERS = {str(Path(p).parent) for p in RUN_FILES} - {"."}
TEMP_FILE = ".*.tmp"  # a temporary file of an atomic save, left by a kill, in any folder above


def _is_run_file(rel: Path) -> bool:
    name, folder = rel.name, str(rel.parent)
    if fnmatch.fnmatchcase(name, TEMP_FILE) and (folder == "." or folder in RUN_FOLDERS):
        return True
    return any(str(Path(p).parent) == folder and fnmatch.fnmatchcase(name, Path(p).name) for p in RUN_FILES)


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def foreign_files(self) -> Iterator[Path]:
        """Files and folders under the run directory that nmt does not write (links included)."""
        for top, dirs, files in os.walk(self.path):
            rel_top = Path(top).relative_to(self.path)
            for d in sorted(dirs):
                if os.path.islink(Path(top) / d) or str(rel_top / d) not in RUN_FOLDERS:
                    yield Path(top) / d
            dirs[:] = [d for d in sorted(dirs) if str(rel_top / d) in RUN_FOLDERS]
            for f in sorted(files):
                if os.path.islink(Path(top) / f) or not _is_run_file(rel_top / f):
                    yield Path(top) / f

    config = property(lambda self: self.path / "config.yaml")
    tokenizer_dir = property(lambda self: self.path / "tokenizer")
    src_tokenizer = property(lambda self: self.path / "tokenizer" / "src.model")
    tgt_tokenizer = property(lambda self: self.path / "tokenizer" / "tgt.model")
    prepared = property(lambda self: self.path / "prepared.json")  # which prepared dataset it reads
    checkpoints = property(lambda self: self.path / "checkpoints")
    last = property(lambda self: self.path / "checkpoints" / "last.pt")
    best = property(lambda self: self.path / "checkpoints" / "best.pt")
    averaged = property(lambda self: self.path / "checkpoints" / "averaged.pt")
    embeddings_init = property(lambda self: self.path / "embeddings_init.pt")
    snapshots = property(lambda self: self.path / "snapshots")  # nmt/snapshots.py
    token_counts = property(lambda self: self.path / "token_counts.pt")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    log = property(lambda self: self.path / "train.log")
    tensorboard = property(lambda self: self.path / "tensorboard")
    curves = property(lambda self: self.path / "curves.png")

    def step_checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step_{step}.pt"

    def step_checkpoints(self) -> list[Path]:
        """checkpoints/step_<N>.pt, oldest first."""
        return [p for _, p in step_files(self.checkpoints)]

    def require(self) -> "RunDir":
        if not self.path.is_dir():
            raise NmtError(f"{self.path}: run directory not found")
        if not self.config.is_file():
            raise NmtError(f"{self.path}: not a run directory (no config.yaml)")
        return self

    def load_config(self) -> Config:
        return load_config(self.config)

    def load_tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        return Tokenizer.load(self.src_tokenizer), Tokenizer.load(self.tgt_tokenizer)

    def checkpoint_path(self, which: str = "best") -> Path:
        """'best', 'last', 'averaged', 'step_<N>' (files in checkpoints/) or a path to a checkpoint file."""
        if which in ("best", "last"):
            path = self.best if which == "best" else self.last
            if which == "best" and not path.is_file() and self.last.is_file():
                path = self.last  # killed before the first validation
            if not path.is_file():
                raise NmtError(f"{self.path}: run directory has no checkpoint (no {path.name}); train first")
            return path
        named = self.checkpoints / f"{which}.pt"
        if which == "averaged" or (which.startswith("step_") and which[5:].isdigit()):
            if not named.is_file():
                how = f"nmt average {self.path} --last K" if which == "averaged" else "train.keep_checkpoints"
                raise NmtError(f"{self.path}: no checkpoints/{named.name} (made by {how})")
            return named
        return Path(which)

    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def step_files(folder: Path) -> list[tuple[int, Path]]:
    """(N, path) of the step_<N>.pt files in `folder` (checkpoints/, snapshots/), by step; none
    where the folder is missing."""
    found = [(int(p.stem[5:]), p) for p in folder.glob("step_*.pt") if p.stem[5:].isdigit()]
    return sorted(found)


_HELD: set[int] = set()  # the descriptors of the run locks this process holds


def _close_held_in_child() -> None:
    """In a forked child (nmt prepare's workers): close the inherited lock descriptors, so that a
    killed trainer's lock goes with it and not with its children. The parent keeps its lock."""
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_held_in_child)


class RunLock:
    """One trainer per run directory: an OS lock (flock) on the directory itself, which rank 0 of
    a training takes before it touches the run directory and holds until training ends.

    Nothing is written for it, and the OS drops it when the process ends, however it ends: a
    SIGKILLed trainer leaves no stale lock, and `nmt train --resume` after it needs no clean-up
    (forked children, nmt prepare's workers, do not inherit it: `_close_held_in_child`).
    `take()` raises NmtError naming the process that holds it. A copy made by pickling (DDP ranks
    get rank 0's objects so) holds nothing; `release()` is safe to call twice."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def take(self) -> "RunLock":
        if fcntl is None:
            return self
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:  # unreadable: whatever reads it next says so, as before
            return self
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _flock_holder(fd)
            os.close(fd)
            who = _describe_process(pid) if pid else "a process whose id this system does not show"
            raise NmtError(
                f"{self.path}: another trainer is using this run directory: {who}; wait for it to end, or "
                f"stop it ({f'kill -INT {pid}' if pid else 'SIGINT'} makes it save and exit) and try again, "
                "or set run.dir elsewhere"
            ) from None
        except OSError:  # a file system without locks (some network ones): train unlocked, as before
            os.close(fd)
            return self
        self._fd = fd
        _HELD.add(fd)
        return self

    def release(self) -> None:
        if self._fd is not None:
            _HELD.discard(self._fd)
            os.close(self._fd)  # closing the last descriptor drops the lock
            self._fd = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "_fd": None}


def _flock_holder(fd: int) -> int | None:
    """The pid of the process holding a flock on the file `fd` is open on, from /proc/locks
    (Linux); None where that is not readable or the pid is not visible (another pid namespace)."""
    st = os.fstat(fd)
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return None
    # "1: FLOCK  ADVISORY  WRITE 3774 fe:00:260072 0 EOF" (a waiter's line has "->" after the number)
    pids = [int(f[4]) for f in map(str.split, lines) if len(f) > 5 and f[1] == "FLOCK" and f[5] == key]
    return pids[0] if pids and pids[0] > 0 else None


def _describe_process(pid: int) -> str:
    """"pid N (its command line, started at T)", with what /proc tells of it."""
    details = []
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        command = " ".join(raw.decode("utf-8", "replace").split("\0")).strip()
        command = "".join(c if c.isprintable() else "?" for c in command)
        if command:
            details.append(command if len(command) <= 160 else command[:157] + "...")
        # field 22 of /proc/PID/stat: the start, in clock ticks after boot (fields counted after the ")")
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        started = boot + ticks / os.sysconf("SC_CLK_TCK")
        details.append(f"started {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started))}")
    except (OSError, ValueError, IndexError, StopIteration):
        pass
    return f"pid {pid}" + (f" ({', '.join(details)})" if details else "")


@dataclass
class NewRun:
    """A run directory being started, and how to undo the start: `failed()` removes what the
    start wrote, puts a replaced run back and lets go of the lock; `started()` deletes the
    replaced run for good. `lock` is the run directory's, held until training ends."""

    path: Path
    created: bool  # nmt made the folder (else it was there, empty)
    lock: RunLock
    aside: Path | None = None  # the run that --overwrite replaces, kept until the new one has started

    def started(self) -> None:
        if self.aside is not None:
            shutil.rmtree(self.aside)
            self.aside = None

    def failed(self) -> None:
        if self.created:
            shutil.rmtree(self.path, ignore_errors=True)
        else:  # the user's empty folder: empty it again
            for child in self.path.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        if self.aside is not None:
            os.replace(self.aside, self.path)
            self.aside = None
        self.lock.release()


def start_run_dir(run: RunDir, overwrite: bool, keep: Iterable[Path] = ()) -> NewRun:
    """Make `run` ready for a new run: create it, use it if it is an empty folder, or (with
    `overwrite`) replace a run directory that nmt made. Never replaced: a folder holding a file nmt
    does not write, the working directory or a folder above it, the home directory, or a folder
    holding one of the files in `keep` (the config, the corpora). The old run is moved aside and
    deleted only by `started()`, so a start that fails leaves it as it was.

    The run directory's lock (`RunLock`) is taken before anything is looked at or changed, so a
    run directory that another trainer uses is refused as it is; --overwrite locks the new folder
    before it lets go of the old one."""
    path = run.path
    if path.exists() and not path.is_dir():
        raise NmtError(f"{path}: run.dir exists and is not a directory")
    if not path.exists():
        try:
            path.mkdir(parents=True)
        except FileExistsError:  # another start made it a moment ago: the lock decides below
            pass
        else:
            return NewRun(path, created=True, lock=RunLock(path).take())
    lock = RunLock(path).take()
    try:
        return _start_in(run, overwrite, keep, lock)
    except BaseException:
        lock.release()
        raise


def _start_in(run: RunDir, overwrite: bool, keep: Iterable[Path], lock: RunLock) -> NewRun:
    """`start_run_dir` in a folder that exists, its lock held."""
    path = run.path
    if not any(path.iterdir()):
        return NewRun(path, created=False, lock=lock)
    if not overwrite:
        raise NmtError(f"{path}: run directory exists; use --resume to continue it, --overwrite to "
                       "replace it, or set run.dir elsewhere")
    real = path.resolve()
    refuse = f"{path}: --overwrite refuses to replace"
    if Path.cwd().resolve().is_relative_to(real):
        where = "the working directory" if Path.cwd().resolve() == real else "a folder above the working directory"
        raise NmtError(f"{refuse} {where}; set run.dir to a folder of its own, e.g. runs/NAME")
    if Path.home().resolve().is_relative_to(real):
        raise NmtError(f"{refuse} the home directory or a folder above it; set run.dir to a folder of its own")
    for kept in keep:
        if kept.resolve().is_relative_to(real):
            raise NmtError(f"{refuse} a folder that holds {kept}, which this run reads; set run.dir elsewhere")
    foreign = next(run.foreign_files(), None)
    if not run.config.is_file():
        example = foreign or min(path.iterdir())
        raise NmtError(f"{refuse} a folder that nmt did not make (no config.yaml); it would delete "
                       f"{example}. Set run.dir elsewhere")
    if foreign is not None:
        raise NmtError(f"{refuse} it: {foreign} is not a file nmt writes, and replacing the run would "
                       "delete it; move it out of the run directory, or set run.dir elsewhere")
    aside = real.with_name(f".{real.name}.replaced")
    if aside.exists():
        raise NmtError(f"{aside}: holds the run that an interrupted --overwrite of {path} was replacing; "
                       "move it back or delete it, then try again")
    os.replace(real, aside)
    # the new folder is locked before the old one (now aside) is let go; a start that took the
    # folder in the moment between leaves the old run aside, and the error says where
    try:
        path.mkdir(parents=True)
        new_lock = RunLock(path).take()
    except (OSError, NmtError):
        raise NmtError(f"{path}: another nmt train took this run directory while --overwrite was replacing it; "
                       f"the run it replaced is in {aside}: move it back or delete it") from None
    lock.release()
    return NewRun(path, created=True, lock=new_lock, aside=aside)
