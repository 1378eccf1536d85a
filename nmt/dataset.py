"""Prepared data: a corpus tokenized once into memory-mapped numpy arrays, in a cache folder.

`nmt prepare CONFIG` (and `nmt train`, when the prepared data is missing) streams the corpus
files in chunks of lines, trains the sentencepiece models on a sample of at most
`tokenizer.max_sentences` lines, encodes the chunks in worker processes and writes, per split
(train, dev, test) and side (src, tgt):

    {split}.{side}.ids.npy      (tokens,)  every sentence's piece ids, one after the other
                                           (uint16 when the vocabulary fits, else uint32)
    {split}.{side}.offsets.npy  (pairs+1,) int64: sentence i is ids[offsets[i]:offsets[i+1]]
    {split}.{side}.lengths.npy  (pairs,)   uint32 pieces per sentence (what batching sorts by)
    {split}.{side}.counts.npy   (vocab,)   int64 occurrences of each id (the embedding lab's)

plus `src.model`, `tgt.model` and `manifest.json` (sizes, counts, the sha256 of every source file
and tokenizer model, the format version). The folder's name is a hash of the source files'
contents and of the settings that decide the arrays (`dataset_key`), so runs on the same corpus
share one prepared copy, an edited corpus gets a new one, and under DDP the ranks map the same
files: the operating system shares their pages. A prepare writes into a temporary folder and
renames it into place, so a prepare killed at any point leaves the complete dataset or none.
The length filter is not applied here: it is a training setting, applied to the lengths arrays.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from nmt.config import Config, DataConfig, TokenizerConfig
from nmt.corpus import (ScannedFile, check_aligned, corpus_paths, no_pairs, parse_lines, parse_pairs, read_range,
                        scan_file)
from nmt.errors import NmtError
from nmt.files import open_binary
from nmt.tokenizer import Tokenizer, train_tokenizer

FORMAT_VERSION = 1
SIDES = ("src", "tgt")
CHUNK_LINES = 50_000  # lines a worker encodes at a time: its memory, and the unit of progress
KEY_CHARS = 20  # a prepared folder's name: the first characters of its key (a sha256)
SAMPLE_SEED = 0  # the tokenizer sample depends on the data and the tokenizer settings only


def default_cache_dir() -> Path:
    """Where prepared datasets go unless `data.prepared_dir` says: the user's cache folder."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nmt" / "prepared"


def cache_dir(d: DataConfig) -> Path:
    return Path(d.prepared_dir).expanduser() if d.prepared_dir else default_cache_dir()


def split_specs(d: DataConfig) -> dict[str, str]:
    """The splits a dataset holds: train, dev and (when the config names one) test."""
    return {name: spec for name, spec in (("train", d.train), ("dev", d.dev), ("test", d.test)) if spec}


def settings(cfg: Config) -> dict[str, Any]:
    """What decides the arrays besides the text: how the files are read and the tokenizers trained."""
    d = cfg.data
    read = {"format": d.format, "src_lang": d.src_lang, "tgt_lang": d.tgt_lang}
    if d.format == "tsv":
        read["tsv_columns"] = list(d.tsv_columns)
    tokenizer = {f.name: getattr(cfg.tokenizer, f.name) for f in fields(cfg.tokenizer)
                 if not f.metadata.get("training_only")}
    return {"format_version": FORMAT_VERSION, "read": read, "tokenizer": tokenizer}


def file_sha256(path: Path, block_bytes: int = 1 << 24) -> str:
    digest = hashlib.sha256()
    with open_binary(path) as f:
        while block := f.read(block_bytes):
            digest.update(block)
    return digest.hexdigest()


def ids_dtype(vocab_size: int) -> type:
    """The smallest unsigned dtype that holds every id of the vocabulary."""
    return np.uint16 if vocab_size <= 1 << 16 else np.uint32


def dataset_key(setting: dict[str, Any], hashes: dict[str, list[str]]) -> str:
    blob = json.dumps({"settings": setting, "sources": hashes}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------------------------------- reading


@dataclass
class Side:
    """One side of a split, memory-mapped: nothing is read until it is used."""

    ids: np.ndarray  # (tokens,)
    offsets: np.ndarray  # (pairs + 1,)
    lengths: np.ndarray  # (pairs,)
    counts: np.ndarray  # (vocab,)

    def sentence(self, i: int) -> list[int]:
        return self.ids[self.offsets[i] : self.offsets[i + 1]].tolist()


class Split:
    """The pairs of one split: `sentences(side, indices)` gives lists of ids for a batch."""

    def __init__(self, name: str, src: Side, tgt: Side) -> None:
        self.name, self.sides = name, {"src": src, "tgt": tgt}

    def __len__(self) -> int:
        return len(self.sides["src"].lengths)

    @property
    def src_lengths(self) -> np.ndarray:
        return self.sides["src"].lengths

    @property
    def tgt_lengths(self) -> np.ndarray:
        return self.sides["tgt"].lengths

    def sentences(self, side: str, indices: Iterator[int] | list[int] | np.ndarray) -> list[list[int]]:
        s = self.sides[side]
        return [s.sentence(int(i)) for i in indices]

    def all(self, side: str, limit: int = 0) -> list[list[int]]:
        """Every sentence of a side (the first `limit`): for the small dev and test sets."""
        n = min(limit, len(self)) if limit else len(self)
        return self.sentences(side, range(n))


class Dataset:
    """A prepared dataset folder, checked against its manifest when opened."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest_path = path / "manifest.json"
        try:
            self.manifest: dict[str, Any] = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise NmtError(f"{self.manifest_path}: not a readable manifest ({e})") from None

    def problem(self) -> str | None:
        """Why the folder does not hold what its manifest says (None: it does)."""
        m = self.manifest
        if m.get("format_version") != FORMAT_VERSION:
            return f"format version {m.get('format_version')}, this nmt reads {FORMAT_VERSION}"
        if str(m.get("key"))[:KEY_CHARS] != self.path.name or dataset_key(m["settings"], m["sources_sha256"]) != m["key"]:
            return "the manifest does not match the folder's name (edited, or copied from elsewhere)"
        for name, want in m["files"].items():
            f = self.path / name
            if not f.is_file():
                return f"{f} is missing"
            if f.stat().st_size != want["bytes"]:
                return f"{f} has {f.stat().st_size} bytes, the manifest says {want['bytes']} (truncated or replaced)"
            if "sha256" in want and file_sha256(f) != want["sha256"]:
                return f"{f} differs from the file it was prepared with (sha256)"
        return None

    def split(self, name: str) -> Split:
        info = self.manifest["splits"][name]

        def side(s: str) -> Side:
            arrays = [np.load(self.path / f"{name}.{s}.{a}.npy", mmap_mode="r")
                      for a in ("ids", "offsets", "lengths", "counts")]
            return Side(*arrays)

        split = Split(name, side("src"), side("tgt"))
        for s in SIDES:
            sd = split.sides[s]
            if len(sd.lengths) != info["pairs"] or int(sd.offsets[-1]) != len(sd.ids):
                raise NmtError(f"{self.path}: the {name}.{s} arrays do not agree with the manifest; "
                               "rebuild the prepared data: nmt prepare CONFIG --force")
        return split

    def tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        return Tokenizer.load(self.path / "src.model"), Tokenizer.load(self.path / "tgt.model")

    def training_fingerprint(self) -> str:
        """sha256 of what the training batches are made of: the training files' contents and the
        tokenizers (the saved stream position refers to it; a resume refuses a different one)."""
        m = self.manifest
        blob = json.dumps({"format_version": m["format_version"], "train": m["sources_sha256"]["train"],
                           "tokenizers": m["tokenizers_sha256"]}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


# ---------------------------------------------------------------------------------------- writing


class _NpyWriter:
    """Append to a 1-D .npy file whose length is known only at the end: numpy's header leaves
    room for the shape to grow, so it is written first with (0,) and rewritten when closing."""

    def __init__(self, path: Path, dtype: np.dtype) -> None:
        self.path, self.dtype, self.n = path, np.dtype(dtype), 0
        self.f = path.open("wb")
        self._header()
        self.header_bytes = self.f.tell()

    def _header(self) -> None:
        self.f.seek(0)
        np.lib.format.write_array_header_1_0(
            self.f, {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (self.n,)})

    def write(self, a: np.ndarray) -> None:
        self.f.write(np.ascontiguousarray(a, dtype=self.dtype).tobytes())
        self.n += len(a)

    def close(self) -> None:
        end = self.f.tell()
        self._header()
        assert self.f.tell() == self.header_bytes, "numpy's .npy header grew with the shape"
        self.f.seek(end)
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()


@dataclass
class _Chunk:
    split: str
    first_line: int  # 1-based line number of its first line
    paths: list[Path]
    ranges: list[tuple[int, int]]  # byte range in each file


def _chunks(split: str, scans: list[ScannedFile], chunk_lines: int) -> list[_Chunk]:
    starts = [s.chunk_starts for s in scans]
    n = len(starts[0])
    if any(len(s) != n for s in starts):  # line counts agree, so the boundaries do
        raise AssertionError("chunk boundaries differ between aligned files")
    out = []
    for k in range(n):
        ranges = [(st[k], st[k + 1] if k + 1 < n else scan.size) for st, scan in zip(starts, scans)]
        out.append(_Chunk(split, k * chunk_lines + 1, [s.path for s in scans], ranges))
    return out


# what a worker process holds: set once by _init_worker
_WORKER: dict[str, Any] = {}


def _init_worker(data: DataConfig, protos: tuple[bytes, bytes] | None) -> None:
    _WORKER["data"] = data
    _WORKER["toks"] = None if protos is None else (Tokenizer(protos[0]), Tokenizer(protos[1]))


def _init_pool_worker(data: DataConfig, protos: tuple[bytes, bytes] | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: one line, no torn data
    _init_worker(data, protos)


def _chunk_bytes(chunk: _Chunk) -> list[bytes]:
    return [read_range(p, a, b) for p, (a, b) in zip(chunk.paths, chunk.ranges)]


def _sample_chunk(job: tuple[_Chunk, tuple[list[int], list[int]] | None]) -> tuple[list[str], list[str], int]:
    """Read and check a chunk; return its lines for the tokenizer sample (those of every pair,
    or the source and target lines at the wanted line numbers, 0-based in the chunk, where the
    pair has no empty side; none for dev and test) and its number of pairs."""
    chunk, wanted = job
    src, tgt = parse_lines(_WORKER["data"], chunk.paths, _chunk_bytes(chunk), chunk.first_line)
    full = [i for i in range(len(src)) if src[i] and tgt[i]]
    if chunk.split != "train":
        return [], [], len(full)
    if wanted is None:
        return [src[i] for i in full], [tgt[i] for i in full], len(full)
    ok = set(full)
    return [src[i] for i in wanted[0] if i in ok], [tgt[i] for i in wanted[1] if i in ok], len(full)


def _encode_chunk(chunk: _Chunk) -> dict[str, Any]:
    """Encode one chunk: flat ids and lengths per side, and the pairs dropped as empty."""
    src, tgt, empty = parse_pairs(_WORKER["data"], chunk.paths, _chunk_bytes(chunk), chunk.first_line)
    out: dict[str, Any] = {"pairs": len(src), "empty": empty}
    for side, text, tok in zip(SIDES, (src, tgt), _WORKER["toks"]):
        ids = tok.encode_batch(text)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.uint32, count=len(ids))
        flat = np.fromiter((i for x in ids for i in x), dtype=ids_dtype(len(tok)), count=int(lengths.sum()))
        out[side] = (flat, lengths)
    return out


def _start_method() -> str:
    """Forked workers on Linux, as torch's DataLoader: a user's script that calls nmt.train() needs
    no `if __name__ == "__main__":` guard (spawned workers re-run the main script). Elsewhere
    (macOS, Windows) fork is unsafe or absent, and they are spawned."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


class _Pool:
    """N worker processes, or this process for N = 1. The workers use sentencepiece and numpy
    only, never torch."""

    def __init__(self, workers: int, data: DataConfig, protos: tuple[bytes, bytes] | None) -> None:
        self.pool = None
        if workers > 1:
            ctx = multiprocessing.get_context(_start_method())
            self.pool = ctx.Pool(workers, _init_pool_worker, (data, protos))
        else:
            _init_worker(data, protos)

    def imap(self, fn: Callable, jobs: list) -> Iterator:
        if self.pool is None:
            return map(fn, jobs)
        return self.pool.imap(fn, jobs)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()


@dataclass
class PrepareResult:
    dataset: Dataset
    prepared: bool  # False: it was there already
    seconds: float


def find(cfg: Config) -> Path:
    """Where the config's prepared dataset is (or would be): its folder, named by the key."""
    d = cfg.data
    hashes = {name: [file_sha256(p) for p in corpus_paths(spec, d)] for name, spec in split_specs(d).items()}
    return cache_dir(d) / dataset_key(settings(cfg), hashes)[:KEY_CHARS]


def prepare(cfg: Config, where: str = "config", workers: int | None = None, force: bool = False,
            say: Callable[[str], None] = print, chunk_lines: int = CHUNK_LINES) -> PrepareResult:
    """Find the config's prepared dataset, or make it; a damaged one is refused (or rebuilt with
    `force`)."""
    t0 = time.time()
    folder = find(cfg)
    if folder.exists() and not force:
        ds = Dataset(folder)
        problem = ds.problem()
        if problem:
            raise NmtError(f"{folder}: the prepared dataset is damaged: {problem}; rebuild it with: "
                           f"nmt prepare {where} --force")
        return PrepareResult(ds, False, time.time() - t0)
    _remove_stale_temporaries(folder)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    try:
        tmp.mkdir(parents=True)
        _write(cfg, tmp, folder.name, workers, where, say, chunk_lines)
        if folder.exists():  # --force: the old copy goes only once the new one is complete
            old = folder.with_name(f"{folder.name}.old-{os.getpid()}")
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old)
        else:
            try:
                os.replace(tmp, folder)
            except OSError:
                if not (folder / "manifest.json").is_file():
                    raise
                # another prepare of the same inputs (a second run started at once) finished
                # first: its copy holds the same arrays, so it stays and this one goes
                shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return PrepareResult(Dataset(folder), True, time.time() - t0)


def _remove_stale_temporaries(folder: Path) -> None:
    """Temporary folders that a killed prepare of this dataset left (their process is gone): a
    copy being written, or the old copy that a --force was about to delete."""
    if not folder.parent.is_dir():
        return
    for p in [*folder.parent.glob(f"{folder.name}.tmp-*"), *folder.parent.glob(f"{folder.name}.old-*")]:
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (the owner of a temporary folder, say)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write(cfg: Config, out: Path, key_prefix: str, workers: int | None, where: str, say: Callable[[str], None],
           chunk_lines: int) -> None:
    d, tk = cfg.data, cfg.tokenizer
    t0 = time.time()
    scans = {}
    for name, spec in split_specs(d).items():
        scans[name] = [scan_file(p, chunk_lines) for p in corpus_paths(spec, d)]
        check_aligned([s.path for s in scans[name]], [s.lines for s in scans[name]])
    chunks = {name: _chunks(name, s, chunk_lines) for name, s in scans.items()}
    n_lines = scans["train"][0].lines
    if workers is None:
        # no more workers than training chunks: a corpus of one chunk forks no process at all,
        # which also keeps a long-lived caller with torch's threads running (a test session, a
        # notebook) clear of fork-after-threads deadlocks
        workers = max(1, min(os.cpu_count() or 1, len(chunks["train"])))

    pool = _Pool(workers, d, None)
    try:
        # every split is read and checked before anything is said or trained
        src_sample, tgt_sample = _read_all(pool, chunks, n_lines, tk, cfg, chunk_lines)
        say(f"prepare: {n_lines:,} training lines in {len(chunks['train'])} chunk(s), {workers} worker(s): "
            f"read and checked in {time.time() - t0:.1f}s")
        t1 = time.time()
        src_tok, tgt_tok = train_tokenizers(tk, src_sample, tgt_sample, where, pool)
        del src_sample, tgt_sample
        say(f"tokenizer: sentencepiece {tk.type}, {'joint ' if tk.joint else ''}vocab {len(src_tok)}/{len(tgt_tok)} "
            f"({time.time() - t1:.1f}s)")
    finally:
        pool.close()
    src_tok.save(out / "src.model")
    tgt_tok.save(out / "tgt.model")

    pool = _Pool(workers, d, (src_tok.model_proto, tgt_tok.model_proto))
    splits: dict[str, Any] = {}
    try:
        for name, spec in split_specs(d).items():
            t2 = time.time()
            splits[name] = _encode_split(pool, name, chunks[name], out, (src_tok, tgt_tok))
            info = splits[name]
            say(f"{name}: {info['pairs']:,} pairs ({info['empty_dropped']} with an empty side skipped), "
                f"{info['src_tokens']:,}/{info['tgt_tokens']:,} pieces ({time.time() - t2:.1f}s)")
    finally:
        pool.close()

    files = {}
    for f in sorted(out.iterdir()):
        files[f.name] = {"bytes": f.stat().st_size}
        if f.suffix == ".model":
            files[f.name]["sha256"] = file_sha256(f)
    setting = settings(cfg)
    sources = {name: [s.sha256 for s in sc] for name, sc in scans.items()}
    manifest = {
        "format_version": FORMAT_VERSION,
        "key": None,
        "settings": setting,
        "sources": {name: [{"path": str(s.path), "sha256": s.sha256, "bytes": s.size, "lines": s.lines}
                           for s in sc] for name, sc in scans.items()},
        "sources_sha256": sources,
        "tokenizers_sha256": {"src": files["src.model"]["sha256"], "tgt": files["tgt.model"]["sha256"]},
        "vocab": {"src": len(src_tok), "tgt": len(tgt_tok)},
        "splits": splits,
        "files": files,
        "workers": workers,
        "prepare_seconds": round(time.time() - t0, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    manifest["key"] = key = dataset_key(setting, sources)
    if key[:KEY_CHARS] != key_prefix:
        raise NmtError(f"{corpus_paths(d.train, d)[0]}: a corpus file changed while it was being prepared; "
                       f"run nmt prepare {where} again")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")


def _read_all(pool: _Pool, chunks: dict[str, list[_Chunk]], n_lines: int, tk: TokenizerConfig, cfg: Config,
              chunk_lines: int) -> tuple[list[str], list[str]]:
    """Read and check every chunk of every split (a bad byte, a short line: its file and line);
    refuse a split without pairs; return the tokenizer sample: at most `tk.max_sentences` lines
    per model, drawn by line number, so that only the sample is ever held (every line when the
    corpus is small enough, in corpus order, sources first). A joint model samples from the lines
    of both sides together."""
    candidates = 2 * n_lines if tk.joint else n_lines
    wanted: list[tuple[list[int], list[int]] | None] = [None] * len(chunks["train"])
    if candidates > tk.max_sentences:
        wanted = [([], []) for _ in chunks["train"]]
        for pick in sorted(random.Random(SAMPLE_SEED).sample(range(candidates), tk.max_sentences)):
            line = pick % n_lines
            sides = (0,) if tk.joint and pick < n_lines else (1,) if tk.joint else (0, 1)
            for side in sides:
                wanted[line // chunk_lines][side].append(line % chunk_lines)
        # a pick that falls on a pair with an empty side adds nothing: the sample depends on the
        # text and the settings only, not on how the lines are cut into chunks
    jobs = list(zip(chunks["train"], wanted)) + [(c, None) for name in chunks if name != "train" for c in chunks[name]]
    src, tgt = [], []
    pairs = dict.fromkeys(chunks, 0)
    for (chunk, _), (s, t, n) in zip(jobs, pool.imap(_sample_chunk, jobs)):
        src += s
        tgt += t
        pairs[chunk.split] += n
    for name, n in pairs.items():
        if n == 0:
            raise no_pairs(split_specs(cfg.data)[name], cfg.data, {"train": "training"}.get(name, name))
    return (src + tgt, []) if tk.joint else (src, tgt)


def _train_one(job: tuple[list[str], int, str, dict[str, Any]]) -> bytes:
    sentences, vocab_size, vocab_key, options = job
    return train_tokenizer(sentences, vocab_size, vocab_key=vocab_key, **options).model_proto


def train_tokenizers(tk: TokenizerConfig, src: list[str], tgt: list[str], where: str, pool: _Pool | None = None
                     ) -> tuple[Tokenizer, Tokenizer]:
    """The sentencepiece models of a sample (one joint model twice, or one per side). With a pool
    of workers the two models train at once, each in one thread, so they are the same models."""
    options: dict[str, Any] = dict(model_type=tk.type, character_coverage=tk.character_coverage,
                                   max_sentences=tk.max_sentences, hard_vocab_limit=tk.hard_vocab_limit,
                                   seed=SAMPLE_SEED)
    jobs = [(src, tk.src_vocab_size, f"{where}: key 'tokenizer.src_vocab_size'", options)]
    if not tk.joint:
        jobs.append((tgt, tk.tgt_vocab_size, f"{where}: key 'tokenizer.tgt_vocab_size'", options))
    protos = list(pool.imap(_train_one, jobs) if pool is not None else map(_train_one, jobs))
    toks = [Tokenizer(proto) for proto in protos]
    return (toks[0], toks[0]) if tk.joint else (toks[0], toks[1])


def _encode_split(pool: _Pool, name: str, chunks: list[_Chunk], out: Path,
                  toks: tuple[Tokenizer, Tokenizer]) -> dict[str, Any]:
    writers = {}
    counts = {}
    offsets_end = {}
    for side, tok in zip(SIDES, toks):
        writers[side] = {a: _NpyWriter(out / f"{name}.{side}.{a}.npy", dt)
                         for a, dt in (("ids", ids_dtype(len(tok))), ("offsets", np.int64), ("lengths", np.uint32))}
        writers[side]["offsets"].write(np.zeros(1, dtype=np.int64))
        counts[side] = np.zeros(len(tok), dtype=np.int64)
        offsets_end[side] = 0
    pairs = empty = 0
    try:
        for result in pool.imap(_encode_chunk, chunks):
            pairs += result["pairs"]
            empty += result["empty"]
            for side in SIDES:
                flat, lengths = result[side]
                w = writers[side]
                w["ids"].write(flat)
                w["lengths"].write(lengths)
                w["offsets"].write(offsets_end[side] + np.cumsum(lengths, dtype=np.int64))
                offsets_end[side] += int(lengths.sum())
                counts[side] += np.bincount(flat, minlength=len(counts[side]))
    finally:
        for w in writers.values():
            for writer in w.values():
                writer.close()
    for side in SIDES:
        np.save(out / f"{name}.{side}.counts.npy", counts[side])
    return {"pairs": pairs, "empty_dropped": empty, "lines": pairs + empty,
            "src_tokens": offsets_end["src"], "tgt_tokens": offsets_end["tgt"],
            "dtype": {side: writers[side]["ids"].dtype.name for side in SIDES}}
