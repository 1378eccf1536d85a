"""`train.precision`: the dtype training computes in, and how `auto` chooses it by measuring.

Whether bf16 autocast pays is a fact of the CPU and of the model, not of nmt: on a 2-core AMD EPYC
with AVX512-BF16 a Multi30k step ran 1.4-1.7× faster in bf16, on a 2-core Intel Xeon with AMX
15% slower (docs/guides/speed.md). So `auto` times a few real training steps of this
model on the run's first batches in fp32 and in bf16, before the first step, and trains at the
faster:

- a copy of the model with its own optimiser runs them, at learning rate 0, inside
  `torch.random.fork_rng`, so the run's weights, optimiser and random streams are as if nothing
  had been measured;
- one warm-up step each (bf16's first step builds oneDNN's kernels), then up to `MEASURE_STEPS`
  timed steps each on the same batches, alternating which precision goes first, stopping early
  once `BUDGET_S` is spent; the figure is the mean seconds per step;
- the result is cached per machine and model shape (`cache_key`) in `cache_path()`, so repeated
  runs do not pay for it again;
- the choice is recorded in the run (last.pt), so `--resume` keeps it and a run's results never
  depend on a re-measurement (a run from an nmt that recorded nothing keeps that nmt's rule: bf16
  where the CPU has bf16 units; one that trained in fp16 is measured, as fp16 needs its scaler).

Where there is nothing to choose, nothing is measured: a CPU without bf16 units emulates bf16
several times slower than fp32 (docs/results.md, "Precision"), and on CUDA no GPU measured here trained faster in bf16
or fp16, so `auto` is fp32 there.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import platform
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from nmt.batching import Batch, BatchStream
from nmt.checkpoint import atomic_write
from nmt.config import TrainConfig
from nmt.cpu import has_bf16_units
from nmt.errors import NmtError
from nmt.optim import make_optimizer, update
from nmt.prepare import user_cache_dir

AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
MEASURED = ("fp32", "bf16")  # what `auto` chooses between
MEASURE_STEPS = 3  # timed steps per precision, after one warm-up step each
BUDGET_S = 15.0  # the timed steps stop early once this is spent (the warm-up steps count too)
CACHE_FILE = "precision.json"
CACHE_FORMAT = 1
# part of every cache key: raise it when a change to nmt moves fp32's or bf16's speed, so that
# measurements made before are not used
SPEED_VERSION = 1
LEGACY = "legacy"  # `recorded` of a resumed run whose last.pt predates the recorded precision


@dataclass(frozen=True)
class Choice:
    """The precision a run trains at, why, and the seconds per step it was chosen by (if measured)."""

    precision: str
    why: str
    seconds_per_step: dict[str, float] | None = None


def cache_path() -> Path:
    """Where measurements are kept: ~/.cache/nmt/precision.json ($XDG_CACHE_HOME/nmt/…)."""
    return user_cache_dir() / CACHE_FILE


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the measurement is a fact of, besides the model: the CPU, its bf16 units, the threads
    torch uses and torch's version (oneDNN's kernels come with it)."""
    return {"cpu": _cpu_name(), "bf16_units": has_bf16_units(), "threads": torch.get_num_threads(),
            "torch": torch.__version__}


def cache_key(model_config: Any, vocab: dict[str, int], tc: TrainConfig, world_size: int = 1) -> dict[str, Any]:
    """The machine and the model's shape: the model section, the vocabulary sizes, the batch size
    and the processes sharing the machine (each rank trains a part of every batch); and
    `SPEED_VERSION`, nmt's own part."""
    return {"nmt_speed_version": SPEED_VERSION, "machine": machine(), "model": asdict(model_config), "vocab": vocab,
            "batch": {"batch_size": tc.batch_size, "batch_tokens": tc.batch_tokens, "world_size": world_size}}


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode("utf-8")).hexdigest()[:16]


class PrecisionCache:
    """Measurements by `cache_key`, one JSON file that nmt alone writes. A file that cannot be read
    as one is left as it is: the measurement is then made and not kept (`problem` says why), and
    a file that cannot be written costs the next run a measurement, never the run."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self.problem: str | None = None

    @property
    def path(self) -> Path:
        return self._path or cache_path()  # resolved when used: a run that does not measure never asks

    def _read(self) -> dict[str, Any] | None:
        """The file's entries ({} when there is no file), or None when it is not a cache nmt wrote."""
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not (isinstance(data, dict) and data.get("format") == CACHE_FORMAT and isinstance(data.get("entries"), dict)
                    and all(_is_entry(e) for e in data["entries"].values())):
                raise ValueError("not an nmt precision cache")
            return data["entries"]
        except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            self.problem = f"{self.path}: not read ({e}); left as it is"
            return None

    def get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        return (self._read() or {}).get(_digest(key))

    def put(self, key: dict[str, Any], seconds_per_step: dict[str, float], steps: int) -> None:
        entries = self._read()
        if entries is None:
            return
        entries[_digest(key)] = {
            "key": key, "seconds_per_step": seconds_per_step, "steps": steps,
            "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
        text = json.dumps({"format": CACHE_FORMAT, "entries": entries}, indent=1, sort_keys=True) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.path, lambda f: f.write(text.encode("utf-8")))
        except (OSError, NmtError) as e:  # a read-only home, say: the run goes on, measured again next time
            self.problem = f"{self.path}: not written ({e})"


def _is_entry(entry: Any) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("measured"), str) and isinstance(entry.get("steps"), int)
            and isinstance(entry.get("seconds_per_step"), dict)
            and all(isinstance(entry["seconds_per_step"].get(p), (int, float)) for p in MEASURED))


def time_steps(model: torch.nn.Module, batches: Sequence[Batch], tc: TrainConfig,
               budget_s: float = BUDGET_S) -> tuple[dict[str, float], int]:
    """Mean seconds per training step in fp32 and in bf16 of a copy of `model` on `batches` (the
    first one a warm-up for both), and how many steps each was timed on. The model, its random
    streams and Python's are left as they were."""
    times: dict[str, list[float]] = {p: [] for p in MEASURED}
    python_rng = random.getstate()
    with torch.random.fork_rng(devices=[]):
        trial = copy.deepcopy(model)
        optimizer = make_optimizer(trial, tc)
        start = time.perf_counter()
        for i, batch in enumerate(batches):
            order = MEASURED if i % 2 == 0 else MEASURED[::-1]  # neither always goes first
            for precision in order:
                t0 = time.perf_counter()
                update(trial, optimizer, batch, 0.0, tc, AUTOCAST_DTYPES[precision])
                if i > 0:
                    times[precision].append(time.perf_counter() - t0)
            if i > 0 and time.perf_counter() - start > budget_s:
                break
    random.setstate(python_rng)
    return {p: sum(ts) / len(ts) for p, ts in times.items()}, len(times["fp32"])


def _faster(seconds: dict[str, float]) -> str:
    return min(MEASURED, key=lambda p: seconds[p])


def _figures(seconds: dict[str, float]) -> str:
    fp32, bf16 = seconds["fp32"], seconds["bf16"]
    return f"fp32 {1000 * fp32:.0f} ms/step, bf16 {1000 * bf16:.0f} ms/step, bf16/fp32 speed {fp32 / bf16:.2f}×"


def upcoming_batches(stream: BatchStream, device: torch.device, n: int = MEASURE_STEPS + 1) -> list[Batch]:
    """The next `n` batches of the training stream, on `device`, the stream left where it was."""
    position = stream.state_dict()
    batches = [stream.next_batch()[0].to(device) for _ in range(n)]
    stream.load_state_dict(position)
    return batches


def choose_precision(
    configured: str,
    device: torch.device,
    recorded: str | None,
    key: Callable[[], dict[str, Any]],
    measure: Callable[[], tuple[dict[str, float], int]],
    cache: PrecisionCache | None,
) -> Choice:
    """The precision to train at. `recorded`: what a resumed run trained at before; `key` and
    `measure` are called only when `auto` has to measure (see the module docstring); `cache`: where
    measurements are looked up and kept (None: measure afresh, keep nothing)."""
    if configured != "auto":
        return Choice(configured, "as configured")
    units = device.type == "cpu" and has_bf16_units()
    if recorded in MEASURED:  # (an fp16 run resumed as auto is measured: fp16 needs its scaler)
        caveat = "" if recorded == "fp32" or units or device.type != "cpu" else (
            "; this CPU has no bf16 units, so bf16 is slow here: set train.precision: fp32 to change it")
        return Choice(recorded, f"auto: as the run trained before this resume (its last.pt){caveat}")
    if recorded == LEGACY:  # the rule of the nmt that started the run, which recorded nothing
        return Choice("bf16" if units else "fp32", "auto: as nmt chose before it measured (bf16 where the CPU has "
                      "bf16 units), for a run whose last.pt does not say")
    if device.type != "cpu":
        return Choice("fp32", f"auto: {device.type} device, not measured")
    if not units:
        return Choice("fp32", "auto: no bf16 units on this CPU (AVX512-BF16 or AMX), not measured")
    k = key() if cache is not None else {}
    hit = cache.get(k) if cache is not None else None
    if hit is not None:
        seconds = hit["seconds_per_step"]
        return Choice(_faster(seconds), f"auto: the faster here for this model shape, as measured on "
                      f"{hit['measured'][:10]} ({_figures(seconds)}; {hit['steps']} steps each; cached in "
                      f"{cache.path})", seconds)
    t0 = time.perf_counter()
    seconds, steps = measure()
    kept = "not cached"
    if cache is not None:
        cache.put(k, seconds, steps)
        kept = cache.problem or f"cached in {cache.path}"
    return Choice(_faster(seconds), f"auto: the faster, measured on {steps} training steps each in "
                  f"{time.perf_counter() - t0:.1f} s ({_figures(seconds)}; {kept})", seconds)
