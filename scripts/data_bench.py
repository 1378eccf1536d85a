"""How nmt's data path scales with the corpus: prepare time, disk, start-up and memory, by size.

    python scripts/data_bench.py [--sizes 100k,1M,10M] [--workers 1,2] [--work data/bench]
                                 [--seed 1] [--skip-ddp] [--json OUT]

For each size (pairs of sentences) it

1. generates a synthetic English-French corpus of that many training pairs (plus 500-pair dev and
   test sets) from the toy grammar of scripts/make_toy_data.py, streamed to disk and determined by
   --seed. So that sentencepiece and the length filter do real work, some pairs get a numeral or
   spelled-out digits appended, about 1% are long (8 to 12 sentences joined, past the config's
   60-piece limit) and about 0.2% have an empty side. A corpus is cached under
   WORK/corpora/ and reused by later runs with the same size and seed (it is written to a temporary
   folder and renamed, so a killed generation is never reused);
2. writes WORK/configs/<corpus>.yaml: configs/toy.yaml (same model and tokenizer) with data.train,
   dev and test on the generated files, data.prepared_dir = WORK/prepared/<corpus> and
   run.dir = WORK/runs/<corpus>;
3. measures
   - `nmt prepare CONFIG --workers N` for each N of --workers, its prepared folder emptied first
     (a second prepare of the same inputs is a no-op): wall time, training pairs/s (every generated
     line, empty and long ones included), the peak RSS (VmHWM) and anonymous memory (RssAnon) of
     the main process and the peak RssAnon summed over it and its workers;
   - the prepared dataset's size on disk (apparent bytes and allocated blocks, as du);
   - `nmt train CONFIG --overwrite --set train.max_steps=3 --set train.log_every=1
     --set train.validate_every=1000000` after the prepare: the seconds from starting the process
     to its first "step 1 " log line (printed once step 1 is done: loading, mapping the prepared
     data, building the model and one update), the whole run's time, and the peak RSS (VmHWM) and
     peak RssAnon of the process, read from /proc/PID/status every 20 ms (RssAnon is what cannot be
     dropped as page cache; pages of the memory-mapped arrays that were read count in RSS, not in
     RssAnon), both also as they stood at the first step (the final validation comes after it);
   - unless --skip-ddp, the same training under `torchrun --standalone --nproc_per_node 2`
     (OMP_NUM_THREADS=1): the time to the first step and each rank's peaks (the ranks are the
     children of the torchrun process, told apart by RANK in their environment);
4. prints a table, one row per size, and writes the JSON (--json, default WORK/data_bench.json; it
   is rewritten after each size): the commit (`git rev-parse HEAD`) and whether the tree was dirty,
   the machine (cores, CPU model, memory, load averages at the start and end) and every figure.

How long it takes on a 2-core machine: 100k pairs about a minute or two; 1M pairs several minutes;
10M pairs tens of minutes (generating the corpus once, about 5 minutes and 1.2 GB of text, then two
prepares and two trainings). Run it on an otherwise idle machine: the figures are wall-clock times.

Each subprocess has a time limit; a failure stops the benchmark with one line,
"data_bench: error: ...", naming what failed and its last line on stderr (exit 2).
"""

# no `from __future__ import annotations`: tests load this file without registering it in
# sys.modules (tests/helpers.py load_script), and dataclasses look string annotations up there
import argparse
import collections
import datetime
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
import types
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from random import Random
from typing import Any, Iterator

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without installing: make `nmt` importable
from nmt.prepare import pid_alive  # noqa: E402
TOY_SCRIPT = ROOT / "scripts" / "make_toy_data.py"
TOY_CONFIG = ROOT / "configs" / "toy.yaml"
DEFAULT_SIZES = "100k,1M,10M"
DEFAULT_WORKERS = "1,2"
DEFAULT_WORK = ROOT / "data" / "bench"  # git-ignored (data/*)
DEFAULT_SEED = 1
DDP_RANKS = 2

GENERATOR_VERSION = 1  # change it when the generated text changes: cached corpora are then remade
EVAL_PAIRS = 500  # dev and test pairs
P_EMPTY = 0.002  # a pair with an empty side (or two): prepare counts and skips them
P_LONG = 0.01  # a pair of LONG_PARTS sentences joined: past the 60-piece limit of configs/toy.yaml
LONG_PARTS = (8, 12)
P_NUMERAL = 0.3  # of the other pairs: "( 48213 )" appended, the same number on both sides
P_DIGIT_WORDS = 0.15  # "( four eight two )" / "( quatre huit deux )" appended
DIGITS_EN = "zero one two three four five six seven eight nine".split()
DIGITS_FR = "zéro un deux trois quatre cinq six sept huit neuf".split()

TRAIN_SETS = ["train.max_steps=3", "train.log_every=1", "train.validate_every=1000000"]
FIRST_STEP = "step 1 "  # how the trainer's log line of step 1 begins
POLL_S = 0.02  # /proc/PID/status is read this often
SCAN_S = 0.5  # the process tree is looked up this often (a scan of /proc/*/stat)


class BenchError(Exception):
    """A failure the benchmark reports in one line (no traceback)."""


# ----------------------------------------------------------------------------- arguments


_SUFFIXES = {"k": 10**3, "m": 10**6}


def parse_size(text: str) -> int:
    """'100k' -> 100000, '1M' -> 1000000, '1.5M' -> 1500000, '2000' -> 2000: a whole number >= 1."""
    t = text.strip()
    scale = 1
    if t[-1:].lower() in _SUFFIXES:
        t, scale = t[:-1], _SUFFIXES[t[-1].lower()]
    try:
        value = Decimal(t) * scale
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value != value.to_integral_value() or value < 1:
        raise BenchError(f"--sizes: bad size {text!r}; expected a whole number of pairs >= 1, "
                         "optionally with k or M (e.g. 100k, 1M, 2.5M)")
    return int(value)


def parse_sizes(text: str) -> list[int]:
    """A comma-separated list of sizes, in the order given."""
    items = text.split(",")
    if not text.strip() or any(not item.strip() for item in items):
        raise BenchError(f"--sizes: bad list {text!r}; expected sizes separated by commas, e.g. 100k,1M")
    return [parse_size(item) for item in items]


def parse_workers(text: str) -> list[int]:
    """'1,2' -> [1, 2]: worker counts for `nmt prepare --workers`."""
    try:
        workers = [int(item) for item in text.split(",")]
    except ValueError:
        workers = []
    if not workers or min(workers) < 1:
        raise BenchError(f"--workers: bad list {text!r}; expected whole numbers >= 1 separated by commas, e.g. 1,2")
    return workers


def size_label(n: int) -> str:
    """100000 -> '100k', 1000000 -> '1M', 1500 -> '1500': for the table and progress lines."""
    for suffix, scale in (("M", 10**6), ("k", 10**3)):
        if n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


# ----------------------------------------------------------------------------- the corpus


def toy_module() -> types.ModuleType:
    """scripts/make_toy_data.py as a module, for its grammar (registered in sys.modules: its
    dataclasses look their module up there)."""
    name = "_data_bench_make_toy_data"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, TOY_SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
    return sys.modules[name]


def split_seed(seed: int, split: str) -> int:
    """Each split its own grammar seed, so that dev and test are not a prefix of train."""
    return int.from_bytes(hashlib.sha256(f"data_bench/{seed}/{split}".encode()).digest()[:8], "big")


def _append(sentence: str, extra: str) -> str:
    """`extra` before the final " ." of a toy sentence."""
    return f"{sentence.removesuffix(' .')} {extra} ."


def generate_pairs(n: int, seed: int, split: str = "train") -> Iterator[tuple[str, str]]:
    """`n` (english, french) pairs, one at a time: the toy grammar's sentences with numerals,
    spelled digits, long joined pairs and empty sides mixed in. Only the seed decides them."""
    toy = toy_module()
    grammar = toy._Generator(split_seed(seed, split))
    rng = Random(f"data_bench/{seed}/{split}/extras")  # str seeds are hashed (sha512): stable

    def sentence() -> tuple[str, str]:
        s = grammar.sentence()
        return toy.render_english(s), toy.render_french(s)

    for _ in range(n):
        x = rng.random()
        if x < P_EMPTY:
            en, fr = sentence()
            empty = rng.choice(("en", "fr", "both"))
            yield ("" if empty in ("en", "both") else en), ("" if empty in ("fr", "both") else fr)
        elif x < P_EMPTY + P_LONG:
            parts = [sentence() for _ in range(rng.randint(*LONG_PARTS))]
            yield tuple(" , ".join(p[side].removesuffix(" .") for p in parts) + " ." for side in (0, 1))
        else:
            en, fr = sentence()
            y = rng.random()
            if y < P_NUMERAL:
                number = str(rng.randrange(10 ** rng.randint(1, 7)))
                en, fr = _append(en, f"( {number} )"), _append(fr, f"( {number} )")
            elif y < P_NUMERAL + P_DIGIT_WORDS:
                digits = [rng.randrange(10) for _ in range(rng.randint(1, 6))]
                en = _append(en, "( " + " ".join(DIGITS_EN[d] for d in digits) + " )")
                fr = _append(fr, "( " + " ".join(DIGITS_FR[d] for d in digits) + " )")
            yield en, fr


def write_split(prefix: Path, n: int, seed: int, split: str) -> int:
    """PREFIX.en and PREFIX.fr, one sentence a line, written as they are generated; their bytes."""
    with open(f"{prefix}.en", "w", encoding="utf-8", newline="\n", buffering=1 << 20) as en_file, \
         open(f"{prefix}.fr", "w", encoding="utf-8", newline="\n", buffering=1 << 20) as fr_file:
        for en, fr in generate_pairs(n, seed, split):
            en_file.write(en + "\n")
            fr_file.write(fr + "\n")
    return sum(Path(f"{prefix}.{lang}").stat().st_size for lang in ("en", "fr"))


@dataclass
class Corpus:
    path: Path  # the folder: train.en/.fr, dev.*, test.*, corpus.json
    pairs: int  # training pairs (lines), empty and long ones included
    seed: int
    reused: bool
    seconds: float  # to generate it (when it was generated earlier: that time)
    bytes: int

    @property
    def name(self) -> str:
        return self.path.name

    def prefix(self, split: str) -> Path:
        return self.path / split


def corpus_name(pairs: int, seed: int) -> str:
    return f"pairs{pairs}-seed{seed}-v{GENERATOR_VERSION}"


def ensure_corpus(work: Path, pairs: int, seed: int, eval_pairs: int = EVAL_PAIRS,
                  say: Any = print) -> Corpus:
    """The corpus of `pairs` training pairs for `seed` under WORK/corpora: reused when a complete
    one is there (its corpus.json is the last thing written), else generated into a temporary
    folder that is renamed into place."""
    final = work / "corpora" / corpus_name(pairs, seed)
    want = {"train": pairs, "dev": eval_pairs, "test": eval_pairs}
    info_path = final / "corpus.json"
    if info_path.is_file():
        info = json.loads(info_path.read_text(encoding="utf-8"))
        if info.get("pairs") == want and info.get("generator_version") == GENERATOR_VERSION:
            return Corpus(final, pairs, seed, True, info["seconds"], info["bytes"])
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(f"{final.name}.tmp-*"):  # left by a killed generation
        pid = stale.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or not pid_alive(int(pid)) or int(pid) == os.getpid():
            shutil.rmtree(stale, ignore_errors=True)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    say(f"[{size_label(pairs)}] generating {pairs:,} pairs (seed {seed}) into {final}")
    t0 = time.monotonic()
    try:
        tmp.mkdir()
        total = sum(write_split(tmp / split, n, seed, split) for split, n in want.items())
        seconds = round(time.monotonic() - t0, 2)
        info = {"pairs": want, "seed": seed, "generator_version": GENERATOR_VERSION, "bytes": total,
                "seconds": seconds, "created": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        (tmp / "corpus.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        if final.exists():  # an incomplete or outdated one
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Corpus(final, pairs, seed, False, seconds, total)


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))


# ----------------------------------------------------------------------------- the config


def write_config(work: Path, corpus: Corpus) -> tuple[Path, Path, Path]:
    """WORK/configs/<corpus>.yaml from configs/toy.yaml, checked by nmt's own config loader; the
    config, its prepared_dir and its run.dir."""
    raw = yaml.safe_load(TOY_CONFIG.read_text(encoding="utf-8"))
    prepared = work / "prepared" / corpus.name
    run_dir = work / "runs" / corpus.name
    raw.setdefault("data", {}).update({
        "train": str(corpus.prefix("train")), "dev": str(corpus.prefix("dev")),
        "test": str(corpus.prefix("test")), "prepared_dir": str(prepared),
    })
    raw.setdefault("run", {})["dir"] = str(run_dir)
    path = work / "configs" / f"{corpus.name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# written by scripts/data_bench.py from {TOY_CONFIG.relative_to(ROOT)}: the corpus {corpus.path}\n"
    path.write_text(header + yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    from nmt.config import load_config  # here: the pure parts of this script need no nmt
    from nmt.errors import NmtError

    try:
        load_config(path)
    except NmtError as e:
        raise BenchError(f"the generated config is refused by nmt: {e}") from None
    return path, prepared, run_dir


# ----------------------------------------------------------------------------- processes and memory


def read_status(pid: int) -> dict[str, int]:
    """VmHWM, VmRSS and RssAnon (KiB) of a live process; {} once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    values = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon"):
            values[key] = int(value.split()[0])
    return values


def parent_pids() -> dict[int, int]:
    """pid -> ppid of every process, from /proc/*/stat (the name in parentheses may hold spaces)."""
    parents = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(root: int, parents: dict[int, int]) -> list[int]:
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, ppid in parents.items():
        children[ppid].append(pid)
    found, todo = [], [root]
    while todo:
        for child in sorted(children.get(todo.pop(), [])):
            found.append(child)
            todo.append(child)
    return found


def env_rank(pid: int) -> int | None:
    """RANK in a process's environment (torchrun sets it for each worker), if readable."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"RANK="):
            try:
                return int(item[5:])
            except ValueError:
                return None
    return None


@dataclass
class Peaks:
    hwm_kib: int = 0  # VmHWM: the kernel's own peak RSS, as last read
    anon_kib: int = 0  # the largest RssAnon read

    def update(self, status: dict[str, int]) -> None:
        self.hwm_kib = max(self.hwm_kib, status.get("VmHWM", 0))
        self.anon_kib = max(self.anon_kib, status.get("RssAnon", 0))

    def mib(self) -> dict[str, float]:
        return {"peak_rss_mib": round(self.hwm_kib / 1024, 1), "peak_anon_mib": round(self.anon_kib / 1024, 1)}


@dataclass
class Monitor:
    """Peaks of a process and its descendants, polled; the ranks are the root's children with RANK."""

    root: int
    peaks: dict[int, Peaks] = field(default_factory=dict)
    ranks: dict[int, int] = field(default_factory=dict)  # pid -> rank
    tree_anon_kib: int = 0  # the largest sum of RssAnon over the tree at one poll
    _pids: list[int] = field(default_factory=list)
    _next_scan: float = 0.0

    def poll(self) -> None:
        now = time.monotonic()
        if now >= self._next_scan:
            parents = parent_pids()
            self._pids = [self.root, *descendants(self.root, parents)]
            for pid in self._pids:
                if parents.get(pid) == self.root and pid not in self.ranks:
                    rank = env_rank(pid)
                    if rank is not None:
                        self.ranks[pid] = rank
            self._next_scan = now + SCAN_S
        total = 0
        for pid in self._pids:
            status = read_status(pid)
            if status:
                self.peaks.setdefault(pid, Peaks()).update(status)
                total += status.get("RssAnon", 0)
        self.tree_anon_kib = max(self.tree_anon_kib, total)

    def rank_peaks(self) -> dict[int, Peaks]:
        return {rank: self.peaks.get(pid, Peaks()) for pid, rank in sorted(self.ranks.items(), key=lambda x: x[1])}


@dataclass
class RunResult:
    seconds: float
    first_line_s: float | None  # when the first line starting with `first_line` was read
    monitor: Monitor
    at_first_line: dict[int, Peaks]  # the peaks per pid so far, at the first poll after that line
    maxrss_kib: int  # ru_maxrss of the root from wait4: its exact peak RSS
    stdout: list[str]  # the last lines
    stderr: list[str]


def last_line(lines: list[str]) -> str:
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return "(nothing)"


def _kill_group(pgid: int) -> None:
    """The process group this script started (the command and whatever it spawned)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_measured(cmd: list[str], what: str, timeout: float, env: dict[str, str] | None = None,
                 first_line: str | None = None) -> RunResult:
    """Run `cmd` from the repository root in its own process group, polling its memory every
    POLL_S; it must exit 0 within `timeout` seconds, else BenchError with its last stderr line."""
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace",
                                start_new_session=True)
    except OSError as e:
        raise BenchError(f"{what}: cannot start {cmd[0]}: {e.strerror}") from None
    first: list[float] = []
    tails = {"stdout": collections.deque(maxlen=50), "stderr": collections.deque(maxlen=50)}

    def read(stream: Any, tail: collections.deque) -> None:
        for line in stream:
            line = line.rstrip("\n")
            tail.append(line)
            if first_line is not None and not first and line.startswith(first_line):
                first.append(time.monotonic() - t0)

    readers = [threading.Thread(target=read, args=(proc.stdout, tails["stdout"]), daemon=True),
               threading.Thread(target=read, args=(proc.stderr, tails["stderr"]), daemon=True)]
    for r in readers:
        r.start()
    monitor = Monitor(proc.pid)
    at_first: dict[int, Peaks] = {}
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            monitor.poll()
            if first and not at_first:
                at_first = {p: Peaks(v.hwm_kib, v.anon_kib) for p, v in monitor.peaks.items()}
            if time.monotonic() - t0 > timeout:
                _kill_group(proc.pid)
                proc.wait()
                raise BenchError(f"{what} timed out after {timeout:.0f}s; its last line: "
                                 f"{last_line(list(tails['stderr']) or list(tails['stdout']))}")
            time.sleep(POLL_S)
    except BaseException:
        _kill_group(proc.pid)
        if proc.returncode is None:
            proc.wait()
        raise
    seconds = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4 above
    _kill_group(proc.pid)  # anything it left behind
    for r in readers:
        r.join(timeout=10)
    out, err = list(tails["stdout"]), list(tails["stderr"])
    if proc.returncode != 0:
        raise BenchError(f"{what} failed (exit {proc.returncode}): {last_line(err or out)}")
    return RunResult(seconds, first[0] if first else None, monitor, at_first, usage.ru_maxrss, out, err)


def venv_command(name: str, module: str) -> list[str]:
    """The venv's console script NAME beside this Python (as `.venv/bin/nmt`), else `python -m MODULE`."""
    script = Path(sys.executable).parent / name
    return [str(script)] if script.is_file() else [sys.executable, "-m", module]


def nmt_command() -> list[str]:
    return venv_command("nmt", "nmt")


def torchrun_command(nproc: int) -> list[str]:
    return [*venv_command("torchrun", "torch.distributed.run"), "--standalone", "--nproc_per_node", str(nproc),
            "-m", "nmt"]


def check_interface(ddp: bool) -> None:
    """Before generating anything: `nmt prepare` exists (and torchrun, for DDP)."""
    checks = [(nmt_command() + ["prepare", "--help"], "nmt prepare --help")]
    if ddp:
        checks.append((venv_command("torchrun", "torch.distributed.run") + ["--help"], "torchrun --help"))
    for cmd, what in checks:
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
        except OSError as e:
            raise BenchError(f"{what}: cannot start {cmd[0]}: {e.strerror}") from None
        except subprocess.TimeoutExpired:
            raise BenchError(f"{what} timed out after 120s") from None
        if proc.returncode != 0:
            raise BenchError(f"{what} failed (exit {proc.returncode}): {last_line(proc.stderr.splitlines())}")


# ----------------------------------------------------------------------------- the measurements


def clear_folder(folder: Path, work: Path) -> None:
    """Empty the prepared folder this script configured (and only a folder inside WORK)."""
    if not folder.resolve().is_relative_to(work.resolve()):
        raise BenchError(f"refusing to empty {folder}: it is not inside {work}")
    folder.mkdir(parents=True, exist_ok=True)
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def disk_usage(folder: Path) -> dict[str, int]:
    """Apparent bytes and allocated bytes (st_blocks, what du counts) of the files under `folder`."""
    apparent = allocated = files = 0
    for dirpath, _, names in os.walk(folder):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            apparent += st.st_size
            allocated += st.st_blocks * 512
            files += 1
    return {"bytes": apparent, "du_bytes": allocated, "files": files}


def folder_state(folder: Path) -> dict[str, int]:
    """Each entry of `folder` and its modification time: did a training prepare again?"""
    if not folder.is_dir():
        return {}
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def read_manifest(prepared: Path) -> dict[str, Any]:
    """The figures of the prepared dataset's manifest.json (the first complete folder), if any."""
    for manifest in sorted(prepared.glob("*/manifest.json")):
        if ".tmp-" in manifest.parent.name:
            continue
        try:
            m = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        return {"folder": manifest.parent.name, "splits": m.get("splits"), "vocab": m.get("vocab"),
                "prepare_seconds": m.get("prepare_seconds"), "workers": m.get("workers")}
    return {}


def prepare_timeout(pairs: int) -> float:
    return 600 + pairs * 400e-6  # 10M: 77 min, far above what is expected


def train_timeout(pairs: int) -> float:
    return 300 + pairs * 60e-6  # 10M: 15 min


def measure_prepare(config: Path, prepared: Path, work: Path, workers: int, pairs: int) -> dict[str, Any]:
    clear_folder(prepared, work)
    label = f"nmt prepare ({size_label(pairs)} pairs, --workers {workers})"
    r = run_measured([*nmt_command(), "prepare", str(config), "--workers", str(workers)], label,
                     prepare_timeout(pairs))
    main = r.monitor.peaks.get(r.monitor.root, Peaks())
    return {"workers": workers, "seconds": round(r.seconds, 2), "pairs_per_s": round(pairs / r.seconds, 1),
            **main.mib(), "tree_peak_anon_mib": round(r.monitor.tree_anon_kib / 1024, 1),
            "maxrss_mib": round(r.maxrss_kib / 1024, 1), "log": r.stdout[-12:] + r.stderr[-12:]}


def measure_train(config: Path, prepared: Path, run_dir: Path, pairs: int, ddp: bool) -> dict[str, Any]:
    """`nmt train` for 3 steps on the prepared data: seconds to the first step, memory."""
    sets = [f"--set={s}" for s in TRAIN_SETS]
    if ddp:
        sets.append(f"--set=run.dir={run_dir}-ddp{DDP_RANKS}")
        cmd = [*torchrun_command(DDP_RANKS), "train", str(config), "--overwrite", *sets]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
        what = f"torchrun --nproc_per_node {DDP_RANKS} nmt train ({size_label(pairs)} pairs)"
    else:
        cmd = [*nmt_command(), "train", str(config), "--overwrite", *sets]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8"}
        what = f"nmt train ({size_label(pairs)} pairs)"
    before = folder_state(prepared)
    r = run_measured(cmd, what, train_timeout(pairs), env=env, first_line=FIRST_STEP)
    if r.first_line_s is None:
        raise BenchError(f"{what}: no line starting with {FIRST_STEP!r} in its output; "
                         f"its last line: {last_line(r.stderr or r.stdout)}")
    result: dict[str, Any] = {
        "first_step_s": round(r.first_line_s, 2), "seconds": round(r.seconds, 2),
        "prepared_again": folder_state(prepared) != before,  # should be false: prepare ran before
    }
    if ddp:
        ranks = r.monitor.rank_peaks()
        if len(ranks) != DDP_RANKS:
            raise BenchError(f"{what}: found {len(ranks)} rank process(es) among torchrun's children, "
                             f"not {DDP_RANKS} (no readable RANK in their environment)")
        result["ranks"] = {str(rank): p.mib() for rank, p in ranks.items()}
        result["ranks_at_first_step"] = {str(rank): r.at_first_line.get(pid, Peaks()).mib()
                                         for pid, rank in sorted(r.monitor.ranks.items(), key=lambda x: x[1])}
        result["torchrun"] = r.monitor.peaks.get(r.monitor.root, Peaks()).mib()
    else:
        result.update(r.monitor.peaks.get(r.monitor.root, Peaks()).mib())
        result["maxrss_mib"] = round(r.maxrss_kib / 1024, 1)
        result["at_first_step"] = r.at_first_line.get(r.monitor.root, Peaks()).mib()
    result["log"] = r.stderr[-8:]  # the trainer logs on stderr
    return result


# ----------------------------------------------------------------------------- the report


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True,
                                  timeout=60).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    changes = [line for line in git("status", "--porcelain").splitlines() if line.strip()]
    return {"commit": git("rev-parse", "HEAD").strip() or None, "dirty": bool(changes), "dirty_files": changes}


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    mem_kib = None
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    return {"cpu_count": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)), "cpu_model": model,
            "mem_total_gib": round(mem_kib / 2**20, 1) if mem_kib else None, "python": platform.python_version(),
            "torch": torch_version, "load_average_start": [round(x, 2) for x in os.getloadavg()]}


def write_json(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _num(x: float | None, fmt: str = ".1f") -> str:
    return "-" if x is None else format(x, fmt)


def table(results: list[dict[str, Any]], workers: list[int]) -> str:
    """One row per size; memory in MiB, times in seconds."""
    head = ["pairs", "gen s"]
    head += [f"prep {w}w s" for w in workers] + [f"pairs/s {w}w" for w in workers]
    if len(workers) > 1:
        head.append(f"{workers[-1]}w/{workers[0]}w")
    head += ["disk MiB", "1st step s", "RSS MiB", "anon MiB", "ddp 1st s", "ddp RSS/rank", "ddp anon/rank"]
    rows = [head]
    for r in results:
        prep = {p["workers"]: p for p in r["prepare"]}
        row = [size_label(r["pairs"]), _num(r["corpus"]["seconds"])]
        row += [_num(prep[w]["seconds"]) for w in workers] + [_num(prep[w]["pairs_per_s"], ",.0f") for w in workers]
        if len(workers) > 1:
            row.append(_num(r.get("speedup"), ".2f") + "x")
        t, d = r["train"], r.get("ddp")
        row += [_num(r["prepared_disk"]["du_bytes"] / 2**20), _num(t["first_step_s"], ".2f"),
                _num(t["peak_rss_mib"], ".0f"), _num(t["peak_anon_mib"], ".0f")]
        if d:
            ranks = d["ranks"].values()
            row += [_num(d["first_step_s"], ".2f"), "/".join(_num(x["peak_rss_mib"], ".0f") for x in ranks),
                    "/".join(_num(x["peak_anon_mib"], ".0f") for x in ranks)]
        else:
            row += ["-", "-", "-"]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def bench_size(pairs: int, args: argparse.Namespace, work: Path, workers: list[int]) -> dict[str, Any]:
    label = f"[{size_label(pairs)}]"
    corpus = ensure_corpus(work, pairs, args.seed)
    if corpus.reused:
        print(f"{label} reusing {corpus.path} ({corpus.bytes / 2**20:,.0f} MiB)", flush=True)
    else:
        print(f"{label} generated in {corpus.seconds:.1f}s ({corpus.bytes / 2**20:,.0f} MiB)", flush=True)
    config, prepared, run_dir = write_config(work, corpus)
    result: dict[str, Any] = {
        "pairs": pairs, "config": str(config), "prepared_dir": str(prepared),
        "corpus": {"path": str(corpus.path), "seed": corpus.seed, "reused": corpus.reused,
                   "seconds": corpus.seconds, "bytes": corpus.bytes, "eval_pairs": EVAL_PAIRS},
        "prepare": [],
    }
    for w in workers:
        p = measure_prepare(config, prepared, work, w, pairs)
        result["prepare"].append(p)
        print(f"{label} prepare, {w} worker(s): {p['seconds']:.1f}s, {p['pairs_per_s']:,.0f} pairs/s, "
              f"peak RSS {p['peak_rss_mib']:,.0f} MiB", flush=True)
    times = {p["workers"]: p["seconds"] for p in result["prepare"]}
    if len(workers) > 1:
        result["speedup"] = round(times[workers[0]] / times[workers[-1]], 3)
    result["prepared_disk"] = disk_usage(prepared)
    result["manifest"] = read_manifest(prepared)
    result["train"] = t = measure_train(config, prepared, run_dir, pairs, ddp=False)
    print(f"{label} nmt train: first step at {t['first_step_s']:.2f}s, peak RSS {t['peak_rss_mib']:,.0f} MiB, "
          f"anonymous {t['peak_anon_mib']:,.0f} MiB", flush=True)
    result["ddp"] = None
    if not args.skip_ddp:
        result["ddp"] = d = measure_train(config, prepared, run_dir, pairs, ddp=True)
        per_rank = ", ".join(f"rank {k}: {v['peak_rss_mib']:,.0f}/{v['peak_anon_mib']:,.0f}"
                             for k, v in d["ranks"].items())
        print(f"{label} torchrun x{DDP_RANKS}: first step at {d['first_step_s']:.2f}s, "
              f"peak RSS/anonymous MiB {per_rank}", flush=True)
    return result


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    sizes, workers = parse_sizes(args.sizes), parse_workers(args.workers)
    work = Path(args.work).resolve()
    out = Path(args.json).resolve() if args.json else work / "data_bench.json"
    check_interface(ddp=not args.skip_ddp)
    report: dict[str, Any] = {
        "script": "scripts/data_bench.py", "argv": sys.argv[1:],
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(), "machine": machine(),
        "settings": {"sizes": sizes, "workers": workers, "seed": args.seed, "ddp_ranks": 0 if args.skip_ddp else DDP_RANKS,
                     "train_overrides": TRAIN_SETS, "base_config": str(TOY_CONFIG.relative_to(ROOT)),
                     "poll_s": POLL_S, "generator_version": GENERATOR_VERSION},
        "results": [],
    }
    for pairs in sizes:
        report["results"].append(bench_size(pairs, args, work, workers))
        report["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
        write_json(out, report)
    print()
    print(table(report["results"], workers))
    print("RSS: peak VmHWM; anon: peak RssAnon; ddp: per rank, rank 0 first (MiB)")
    print(f"\nwrote {out}")
    return report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="data_bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=DEFAULT_SIZES,
                        help=f"training pairs per corpus, comma-separated, k and M allowed (default {DEFAULT_SIZES})")
    parser.add_argument("--workers", default=DEFAULT_WORKERS,
                        help=f"nmt prepare --workers values to time (default {DEFAULT_WORKERS})")
    parser.add_argument("--work", default=str(DEFAULT_WORK),
                        help="where corpora, configs, prepared data and runs go (default data/bench, git-ignored)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"corpus seed (default {DEFAULT_SEED})")
    parser.add_argument("--skip-ddp", action="store_true", help=f"skip the torchrun --nproc_per_node {DDP_RANKS} run")
    parser.add_argument("--json", default=None, help="where to write the JSON (default WORK/data_bench.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run_bench(args)
    except BenchError as e:
        print(f"data_bench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("data_bench: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
