"""Helpers shared by the test modules: run the CLI (and torchrun) as a user does, read its one-line
errors, snapshot folders, read metrics, wait for and kill background runs. Test modules import
from here (and fixtures come from conftest.py), never from each other."""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import io
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path
from typing import Any, Callable

import torch
import yaml

from nmt.checkpoint import load_checkpoint
from nmt.plots import read_metrics
from nmt.rundir import RunDir

ROOT = Path(__file__).resolve().parent.parent
# prepared datasets (nmt prepare, nmt train) go to this session's own cache, not the user's
# ~/.cache/nmt; set before ENV is copied, so the CLI runs of the tests use it too
TEST_CACHE = Path(tempfile.mkdtemp(prefix="nmt-test-cache-"))
os.environ["XDG_CACHE_HOME"] = str(TEST_CACHE)
atexit.register(shutil.rmtree, TEST_CACHE, ignore_errors=True)
# this checkout's nmt and nmt_runtime (runtime/), whatever the environment has installed
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "runtime")]), "PYTHONIOENCODING": "utf-8"}
NMT_ERROR = r"nmt \w+: error: "  # how the CLI's one-line errors begin (a regular expression)


# ----------------------------------------------------------------------------- run as a user does


def python(*args: str | Path, input: str | bytes | None = None, cwd: Path | None = None, timeout: int = 120,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python ARGS` as a user runs it (in `cwd`, by default the repository root, with `env` added
    to the environment); stdout and stderr are bytes: `out` and `err` decode them."""
    return subprocess.run(
        [sys.executable, *map(str, args)],
        input=input.encode("utf-8") if isinstance(input, str) else input,
        capture_output=True, cwd=cwd or ROOT, env={**ENV, **(env or {})}, timeout=timeout,
    )


# torch and nmt as if not installed: importing them fails. (None in sys.modules instead would be taken
# for a module by array-api-compat's checks, which the search makes.)
WITHOUT_TORCH = """\
import sys
class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "nmt"):
            raise ImportError(f"No module named {name!r}")
sys.meta_path.insert(0, _Absent())
"""


def runtime_process(code: str, *args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    """`python -c CODE ARGS` where torch and nmt cannot be imported (only runtime/ on the path): what
    nmt-runtime sees on a machine without them. CODE must not need more than nmt_runtime."""
    env = {"PYTHONPATH": str(ROOT / "runtime"), **kwargs.pop("env", {})}
    return python("-c", WITHOUT_TORCH + code, *args, env=env, **kwargs)


def nmt_runtime(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    """`nmt-runtime ARGS` in a process where torch and nmt cannot be imported (keywords as for `python`)."""
    return runtime_process("from nmt_runtime.cli import main; sys.exit(main(sys.argv[1:]))", *args, **kwargs)


def nmt_process(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    """`python -m nmt ARGS` in a process of its own (keywords as for `python`): for what only a
    process shows (an exit code from a crash, signals, what a fresh interpreter imports)."""
    return python("-m", "nmt", *args, **kwargs)


def nmt(*args: str | Path, input: str | bytes | None = None, cwd: Path | None = None, timeout: int = 120,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`nmt ARGS` as `nmt.cli.main(ARGS)` in this process, as a user sees it: stdout and stderr
    (bytes), stdin from `input`, the exit code (argparse's included), an uncaught exception as
    Python prints it with exit 1; `cwd` and `env` apply during the call. A process of its own
    costs ~1.5 s of imports a call, so only what needs one uses `nmt_process`. `timeout` is the
    subprocess runner's keyword, not enforced here."""
    from nmt.cli import main

    stdout, stderr = io.BytesIO(), io.BytesIO()
    data = input.encode("utf-8") if isinstance(input, str) else (input or b"")
    streams = (sys.stdin, sys.stdout, sys.stderr)
    saved_env, saved_cwd, threads = dict(os.environ), os.getcwd(), torch.get_num_threads()
    rng_torch, rng_python = torch.get_rng_state(), random.getstate()  # a run seeds them: not for the next test
    # the wrappers stay referenced here: a collected TextIOWrapper closes its buffer
    wrappers = (io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"),
                io.TextIOWrapper(stdout, encoding="utf-8", write_through=True),
                io.TextIOWrapper(stderr, encoding="utf-8", write_through=True))
    sys.stdin, sys.stdout, sys.stderr = wrappers
    os.environ.update(env or {})
    os.chdir(cwd or ROOT)
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:  # argparse's usage errors (2) and --help (0)
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else (print(e.code, file=sys.stderr) or 1))
    except KeyboardInterrupt:  # main handles the program's own; this one is the test runner's Ctrl-C
        raise
    except Exception:  # noqa: BLE001 (what the interpreter would print, and its exit code)
        traceback.print_exc()
        code = 1
    finally:
        for f in wrappers[1:]:
            f.flush()
        sys.stdin, sys.stdout, sys.stderr = streams
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        torch.set_num_threads(threads)
        torch.set_rng_state(rng_torch)
        random.setstate(rng_python)
    return subprocess.CompletedProcess(["nmt", *map(str, args)], code, stdout.getvalue(), stderr.getvalue())


def run_script(name: str, *args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    """`python scripts/NAME ARGS` (keywords as for `python`)."""
    return python(ROOT / "scripts" / name, *args, **kwargs)


def load_script(name: str) -> types.ModuleType:
    """scripts/NAME imported as a module, to call its functions in this process."""
    spec = importlib.util.spec_from_file_location(f"{Path(name).stem}_under_test", ROOT / "scripts" / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # what dataclasses (and pickling) look a class's module up in
    spec.loader.exec_module(module)
    return module


def out(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout.decode("utf-8")


def err(proc: subprocess.CompletedProcess) -> str:
    return proc.stderr.decode("utf-8")


def ok(proc: subprocess.CompletedProcess) -> str:
    """Exit code 0 and no traceback; the standard output."""
    assert proc.returncode == 0, err(proc)
    assert "Traceback" not in err(proc), err(proc)
    return out(proc)


def error_line(returncode: int, stderr: str, *fragments: str, only_line: bool = True, prefix: str = NMT_ERROR) -> str:
    """Exit code 2, no traceback, one "nmt …: error: …" line (the last one; log lines of a training
    that had started may come before it, unless `only_line`), holding every fragment. A script's
    errors begin with their own `prefix` (a regular expression), e.g. "get_data: error: "."""
    assert returncode == 2, stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    if only_line:
        assert len(lines) == 1, stderr
    assert [line for line in lines if ": error: " in line or re.match(prefix, line)] == [lines[-1]], stderr
    assert re.match(prefix, lines[-1]), stderr
    for fragment in fragments:
        assert fragment in lines[-1], (fragment, lines[-1])
    print(f"exit {returncode}: {lines[-1]}")
    return lines[-1]


def assert_error(proc: subprocess.CompletedProcess, *fragments: str, only_line: bool = True,
                 prefix: str = NMT_ERROR) -> str:
    """`error_line` of a finished process."""
    return error_line(proc.returncode, err(proc), *fragments, only_line=only_line, prefix=prefix)


HELD_PREPARE = """\
# `nmt prepare` with chunks of {chunk_lines} lines, whose workers stop for good at the second
# training chunk, after touching {flag}: the first chunk's arrays are written, the rest never comes
import pathlib, sys, time
import nmt.prepare
from nmt.cli import main

real_write, real_encode = nmt.prepare._write, nmt.prepare.encode_chunk

def small_chunks(*args):
    return real_write(*args[:-1], {chunk_lines})

def held_encode_chunk(chunk):
    if chunk.split == "train" and chunk.first_line > 1:
        pathlib.Path({flag!r}).touch()
        time.sleep(600)  # until the test's signal ends the prepare
    return real_encode(chunk)

nmt.prepare._write, nmt.prepare.encode_chunk = small_chunks, held_encode_chunk
sys.exit(main(sys.argv[1:]))
"""


def held_prepare(folder: Path, *args: str, **popen: Any) -> tuple[subprocess.Popen, Path]:
    """`nmt prepare ARGS` (in `folder`, with `popen`'s keywords) in a process group of its own,
    its workers held at the second chunk of training lines (100 lines a chunk): a handshake for
    tests that signal a prepare in the middle of writing. Returns the process and the file that
    says a worker is held."""
    flag = folder / "held"
    script = folder / "held_prepare.py"
    script.write_text(HELD_PREPARE.format(chunk_lines=100, flag=str(flag)), encoding="utf-8")
    proc = subprocess.Popen([sys.executable, str(script), "prepare", *args], cwd=folder, env=ENV,
                            start_new_session=True, **popen)
    return proc, flag


# ----------------------------------------------------------------------------- files and run directories


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path, mtimes: bool = True) -> dict[str, tuple[int, str] | str]:
    """Everything under `folder` (hidden files too): each file's modification time and the sha256
    of its bytes (only the sha256 where `mtimes` is false: files rewritten with the same bytes, or
    another folder's), and each folder as "folder"."""

    def state(p: Path) -> tuple[int, str] | str:
        if not p.is_file():
            return "folder"
        return (p.stat().st_mtime_ns, sha256(p)) if mtimes else sha256(p)

    return {str(p.relative_to(folder)): state(p) for p in sorted(folder.rglob("*"))}


def write_yaml(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def metrics(run: Path, event: str | None = None, live: bool = False) -> list[dict]:
    """The records of RUN/metrics.jsonl (only those of `event` if given), read by nmt.plots.read_metrics,
    which `nmt plot` uses: every line must be a record. `live`: of a run that may still be training:
    none before the file exists, and a line being written is left out."""
    path = run / "metrics.jsonl"
    if not live:
        records = read_metrics(path)
    else:
        records = []
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:  # a line being written
                    pass
    return [r for r in records if event is None or r["event"] == event]


def train_events(run: Path) -> list[dict]:
    """The training steps logged so far by a run that may still be training."""
    return metrics(run, "train", live=True)


def until(condition: Callable[[], Any], timeout: float = 10, what: str = "the condition") -> None:
    """Poll `condition` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(0.01)


def wait_for_step(run: Path, step: int, proc: subprocess.Popen, since: int = 0, timeout: float = 60) -> None:
    """Poll metrics.jsonl until this session (events after the first `since`) logs a training step
    >= `step` (log_every=1)."""
    deadline = time.time() + timeout
    while not any(e["step"] >= step for e in train_events(run)[since:]):
        assert proc.poll() is None, f"training ended (exit {proc.returncode}) before step {step}"
        assert time.time() < deadline, f"no step {step} within {timeout}s"
        time.sleep(0.002)


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def tmp_files(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp"))


def last_step(run: Path) -> int:
    """last.pt must load after any kill; its step."""
    return load_checkpoint(RunDir(run).checkpoint_path("last"))["trainer"]["step"]


# torchrun gives each rank one thread (OMP_NUM_THREADS=1) anyway; unbuffered, a killed rank's
# last lines reach the log
DDP_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def torchrun_cmd(nproc: int, *args: str) -> list[str]:
    """`python -m torch.distributed.run --standalone --nproc_per_node N -m nmt ARGS`."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
            "-m", "nmt", *args]


def run_ok(cmd: list[str], timeout: int = 240) -> subprocess.CompletedProcess:
    """Run `cmd` (text output, DDP_ENV) from the repository root; it must exit 0."""
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=DDP_ENV, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def weights(run: Path, which: str = "last") -> dict[str, torch.Tensor]:
    """The model weights of a run's checkpoints/<which>.pt."""
    return load_checkpoint(run / "checkpoints" / f"{which}.pt")["model"]


def assert_identical(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    """The same keys, and every tensor equal to the bit (the assertion lists those that differ)."""
    assert a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


# ----------------------------------------------------------------------------- two unrolls, one function


def outputs_and_grads(model: torch.nn.Module, batch: Any, autocast: torch.dtype | None = None
                      ) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
    """The teacher-forced outputs (logits, attention) of `model` on `batch` (in train mode, with
    the dropout masks of seed 1; under CPU autocast to `autocast` if given) and every parameter's
    gradient of the sum of their squares."""
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=autocast, enabled=autocast is not None):
        outputs = model(batch.src, batch.src_lengths, batch.tgt_in)
    sum(o.float().pow(2).sum() for o in outputs).backward()
    return outputs, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_same_function(ref: torch.nn.Module, fast: torch.nn.Module, batch: Any) -> None:
    """Two models with the same weights and other unrolls compute the same outputs and gradients
    up to fp32 rounding."""
    (ref_out, ref_grads), (out, grads) = outputs_and_grads(ref, batch), outputs_and_grads(fast, batch)
    for a, b in zip(ref_out, out):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert ref_grads.keys() == grads.keys()
    for name in ref_grads:
        torch.testing.assert_close(ref_grads[name], grads[name], atol=1e-5, rtol=1e-4, msg=name)


# ----------------------------------------------------------------------------- the embedding lab
# A stand-in tokenizer and a table whose neighbours and analogies are known exactly.

SQ2 = math.sqrt(2.0)


class FakeTokenizer:
    """The four specials, then `pieces`; a word is "▁word" unless `splits` says otherwise."""

    def __init__(self, pieces: list[str], splits: dict[str, list[str]] | None = None) -> None:
        self._pieces = ["<pad>", "<unk>", "<s>", "</s>", *pieces]
        self._ids = {p: i for i, p in enumerate(self._pieces)}
        self.splits = splits or {}

    def __len__(self) -> int:
        return len(self._pieces)

    def pieces(self, text: str) -> list[str]:
        return [p for word in text.split() for p in self.splits.get(word, ["▁" + word])]

    def piece_to_id(self, piece: str) -> int:
        return self._ids.get(piece, 1)

    def id_to_piece(self, i: int) -> str:
        return self._pieces[i]


# A table built so that king − man + woman = queen exactly: axes royal, male, female, person,
# fruit, food; every word is the sum of two unit axes over sqrt(2), so all rows have length 1.
AXES = {name: i for i, name in enumerate(["royal", "male", "female", "person", "fruit", "food"])}
WORDS = {
    "▁king": ("royal", "male"),
    "▁queen": ("royal", "female"),
    "▁man": ("person", "male"),
    "▁woman": ("person", "female"),
    "▁apple": ("fruit", "food"),
    "▁bread": ("food", "person"),
}


def analogy_world() -> tuple[torch.Tensor, FakeTokenizer]:
    tok = FakeTokenizer(list(WORDS))
    table = torch.zeros(len(tok), len(AXES))
    table[1:4] = torch.randn(3, len(AXES))  # specials: never an answer
    for piece, (a, b) in WORDS.items():
        table[tok.piece_to_id(piece), AXES[a]] = 1 / SQ2
        table[tok.piece_to_id(piece), AXES[b]] = 1 / SQ2
    return table, tok


# ----------------------------------------------------------------------------- tiny models to decode with

TINY_SRC_VOCAB, TINY_TGT_VOCAB = 40, 30


def tiny_seq2seq(seed: int = 0, **model: Any) -> "Seq2Seq":
    """A small random Seq2Seq in eval mode (GRU + Bahdanau unless `model` says), seeded."""
    from nmt.config import ModelConfig
    from nmt.model.seq2seq import Seq2Seq

    torch.manual_seed(seed)
    sizes = dict(embedding_size=16, encoder_hidden_size=16, decoder_hidden_size=24, attention_size=16, dropout=0.0)
    return Seq2Seq(ModelConfig(**{**sizes, **model}), TINY_SRC_VOCAB, TINY_TGT_VOCAB).eval()


def random_sources(n: int, seed: int = 1, lo: int = 1, hi: int = 12) -> list[list[int]]:
    """n source sentences of lo to hi random ids of tiny_seq2seq's vocabulary (no specials)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(lo, hi + 1, (n,), generator=g).tolist()
    return [torch.randint(4, TINY_SRC_VOCAB, (n_,), generator=g).tolist() for n_ in lengths]
