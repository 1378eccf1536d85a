"""What a training run tells: lines on the console and in RUN/train.log, records in
RUN/metrics.jsonl. Only rank 0 writes; the other ranks' calls do nothing.

Lines said before the log file is opened are kept and written when it is, so a run refused
while it is being set up (other data, a torn checkpoint) leaves train.log as it was.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from tqdm import tqdm

from nmt.checkpoint import atomic_write
from nmt.rundir import RunDir


class RunLog:
    def __init__(self, run: RunDir, is_main: bool = True) -> None:
        self.run, self.is_main = run, is_main
        self.file: TextIO | None = None
        self._pending: list[str] = []

    def open(self) -> None:
        """Start appending to train.log, with the lines said so far."""
        if not self.is_main:
            return
        self.file = self.run.log.open("a", encoding="utf-8")
        self.file.write("".join(line + "\n" for line in self._pending))
        self.file.flush()
        self._pending = []

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None

    def info(self, msg: str, console: bool = True) -> None:
        """A line for train.log and (unless a progress bar already shows it) the console."""
        if not self.is_main:
            return
        if console:
            tqdm.write(msg, file=sys.stderr)  # logs on stderr (unbuffered), like the progress bar
        if self.file is None:
            self._pending.append(msg)
            return
        self.file.write(msg + "\n")
        self.file.flush()

    def record(self, record: dict[str, Any]) -> None:
        """One event (train, validation, end) as a line of metrics.jsonl."""
        if self.is_main:
            self.run.append_metrics(record)

    def drop_after(self, step: int) -> None:
        """On resume, forget the events a killed session logged past the checkpoint's step: the
        resumed run logs those steps again, and metrics.jsonl should read like one run."""
        path = self.run.metrics
        if not self.is_main or not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
        if len(kept) != len(lines):
            atomic_write(path, lambda f: f.write("".join(line + "\n" for line in kept).encode("utf-8")))
