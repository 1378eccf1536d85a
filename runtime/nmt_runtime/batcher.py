"""Dynamic batching for `nmt serve` and `nmt-runtime serve`: concurrent requests decoded together
by one worker.

A beam search over 32 sentences costs little more than over one (the matmuls get wider, the
number of steps stays), so a service that decodes each request alone wastes most of the CPU.
Requests go into a bounded queue; one worker thread, the only code that touches the model, takes
the oldest, waits up to `max_wait_ms` for more that use the same decode settings, decodes up to
`max_batch` sentences in one `translate_full` call, and hands each request its own translations,
in order. A full queue refuses at once (`QueueFull`): the caller answers 503 rather than building
an unbounded backlog. With `enabled=False` each request is decoded alone, one after the other.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable

_STOP = object()


class QueueFull(Exception):
    """The queue holds `max_queue` requests already."""


@dataclass
class Job:
    sentences: list[str]
    options: Any  # nmt_runtime.decode_options.DecodeOptions (frozen, so it can be compared and hashed)
    attention: bool
    future: Future = field(default_factory=Future)

    @property
    def key(self) -> Any:
        """Jobs decoded together share their decode options (attention is computed when any of them asks)."""
        return self.options


@dataclass
class Batching:
    """The decoder worker's settings (the flags of `nmt serve` and `nmt-runtime serve` take their
    defaults from here)."""

    enabled: bool = True
    max_batch: int = 64  # sentences decoded together
    max_wait_ms: float = 5.0  # how long the worker waits for more requests after the first
    max_queue: int = 256  # requests waiting; more: QueueFull (503)


@dataclass
class BatcherStats:
    received: int = 0  # requests queued; received − requests: in flight (or failed)
    requests: int = 0  # requests answered
    sentences: int = 0
    batches: int = 0  # translate_full calls


class DynamicBatcher:
    def __init__(self, translate_full: Callable[..., list], settings: Batching | None = None) -> None:
        self.translate_full = translate_full
        settings = settings or Batching()
        self.max_batch, self.enabled = settings.max_batch, settings.enabled
        self.max_wait_s = settings.max_wait_ms / 1000
        self.queue: queue.Queue = queue.Queue(maxsize=settings.max_queue)
        self.held: deque[Job] = deque()  # taken from the queue but left for the next batch
        self.stats = BatcherStats()
        self.thread = threading.Thread(target=self._run, name="nmt-decoder", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Finish the batches in hand and end the worker (the server has drained its requests)."""
        if self.thread.is_alive():
            self.queue.put(_STOP)  # blocks while the queue is full: the worker is emptying it
            self.thread.join()

    def submit(self, sentences: list[str], options: Any, attention: bool) -> Future:
        """Queue a request; its future gets the n-best lists in the order of `sentences`."""
        job = Job(sentences, options, attention)
        self.stats.received += 1  # before the worker can answer it
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            self.stats.received -= 1
            raise QueueFull from None
        return job.future

    def _take(self, timeout: float | None) -> Any:
        if self.held:
            return self.held.popleft()
        try:
            return self.queue.get(timeout=timeout) if timeout is None or timeout > 0 else self.queue.get_nowait()
        except queue.Empty:
            return None

    def _run(self) -> None:
        while True:
            first = self._take(None)
            if first is _STOP:
                return
            group, n = [first], len(first.sentences)
            deadline = time.monotonic() + self.max_wait_s
            while self.enabled and n < self.max_batch:
                job = self._take(deadline - time.monotonic())
                if job is None:
                    break
                if job is _STOP or job.key != first.key or n + len(job.sentences) > self.max_batch:
                    self.held.append(job)  # first in the next batch, so nothing overtakes it
                    break
                group.append(job)
                n += len(job.sentences)
            self._decode([job for job in group if job.future.set_running_or_notify_cancel()])

    def _decode(self, group: list[Job]) -> None:
        """One translate_full call for the group; each job gets its slice (or the error)."""
        if not group:  # every one of them timed out while queued
            return
        sentences = [s for job in group for s in job.sentences]
        try:
            results = self.translate_full(sentences, options=group[0].options,
                                          attention=any(job.attention for job in group))
        except Exception as e:  # the callers report it; the worker keeps serving
            for job in group:
                job.future.set_exception(e)
            return
        self.stats.batches += 1
        self.stats.requests += len(group)
        self.stats.sentences += len(sentences)
        start = 0
        for job in group:
            job.future.set_result(results[start : start + len(job.sentences)])
            start += len(job.sentences)
