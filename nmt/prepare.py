"""Prepared data, the prepare side: a corpus tokenized once into a prepared folder (nmt/dataset.py).

`nmt prepare CONFIG` (and `nmt train`, when the prepared data is missing) finds the config's
folder by its key (`find`) or makes it (`prepare`): it streams the corpus files in chunks of
lines, trains the sentencepiece models on a sample of at most `tokenizer.max_sentences` lines,
encodes the chunks in worker processes (nmt/prepare_workers.py), writes the arrays
(nmt/prepare_arrays.py) and the manifest. How the text is read depends on the corpus format
(nmt/corpus_formats.py), whose keys are part of the settings and so of the key. A prepare writes
into a temporary folder and renames it into place, so a prepare killed at any point leaves the
complete dataset or none.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable

from nmt.config import Config, DataConfig, TokenizerConfig
from nmt.corpus import check_aligned, corpus_paths, no_pairs, scan_file
from nmt.corpus_formats import corpus_format
from nmt.dataset import FORMAT_VERSION, KEY_CHARS, Dataset, dataset_key
from nmt.errors import NmtError
from nmt.prepare_arrays import write_split
from nmt.prepare_workers import Chunk, Pool, encode_chunk, sample_chunk, split_chunks
from nmt.tokenizer import Tokenizer, train_tokenizer
from nmt_runtime.files import file_sha256, swap_in

CHUNK_LINES = 50_000  # lines a worker encodes at a time: its memory, and the unit of progress
SAMPLE_SEED = 0  # the tokenizer sample depends on the data and the tokenizer settings only


def user_cache_dir() -> Path:
    """nmt's folder in the user's cache: $XDG_CACHE_HOME/nmt, else ~/.cache/nmt."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nmt"


def default_cache_dir() -> Path:
    """Where prepared datasets go unless `data.prepared_dir` says: the user's cache folder."""
    return user_cache_dir() / "prepared"


def cache_dir(d: DataConfig) -> Path:
    """The folder that holds the prepared datasets, one subfolder each."""
    return Path(d.prepared_dir).expanduser() if d.prepared_dir else default_cache_dir()


def split_specs(d: DataConfig) -> dict[str, str]:
    """The splits a dataset holds: train, dev and (when the config names one) test."""
    return {name: spec for name, spec in (("train", d.train), ("dev", d.dev), ("test", d.test)) if spec}


def settings(cfg: Config) -> dict[str, Any]:
    """What decides the arrays besides the text: how the files are read and the tokenizers trained."""
    d = cfg.data
    read = {"format": d.format, "src_lang": d.src_lang, "tgt_lang": d.tgt_lang}
    read.update({key: copy.deepcopy(getattr(d, key)) for key in corpus_format(d).read_keys})
    tokenizer = {f.name: getattr(cfg.tokenizer, f.name) for f in fields(cfg.tokenizer)
                 if not f.metadata.get("training_only")}
    return {"format_version": FORMAT_VERSION, "read": read, "tokenizer": tokenizer}


@dataclass
class PrepareResult:
    """What `prepare` found or made, and whether it had to make it (for `nmt prepare`'s line)."""

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
        replacing = folder.exists()  # --force: the old copy goes only once the new one is complete
        try:
            swap_in(tmp, folder, folder.with_name(f"{folder.name}.old-{os.getpid()}"))
        except OSError:
            if replacing or not (folder / "manifest.json").is_file():
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
    """Make the prepared dataset in the folder `out`: every split read and checked, the tokenizers,
    the arrays, then the manifest (a folder with a manifest is complete)."""
    d, tk = cfg.data, cfg.tokenizer
    t0 = time.time()
    scans = {}
    for name, spec in split_specs(d).items():
        scans[name] = [scan_file(p, chunk_lines) for p in corpus_paths(spec, d)]
        check_aligned([s.path for s in scans[name]], [s.lines for s in scans[name]])
    chunks = {name: split_chunks(name, s, chunk_lines) for name, s in scans.items()}
    n_lines = scans["train"][0].lines
    if workers is None:
        # no more workers than training chunks: a corpus of one chunk forks no process at all,
        # which also keeps a long-lived caller with torch's threads running (a test session, a
        # notebook) clear of fork-after-threads deadlocks
        workers = max(1, min(os.cpu_count() or 1, len(chunks["train"])))

    pool = Pool(workers, d, None)
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

    pool = Pool(workers, d, (src_tok.model_proto, tgt_tok.model_proto))
    splits: dict[str, Any] = {}
    try:
        for name, spec in split_specs(d).items():
            t2 = time.time()
            splits[name] = write_split(name, pool.imap(encode_chunk, chunks[name]), out, (src_tok, tgt_tok))
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


def _read_all(pool: Pool, chunks: dict[str, list[Chunk]], n_lines: int, tk: TokenizerConfig, cfg: Config,
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
    for (chunk, _), (s, t, n) in zip(jobs, pool.imap(sample_chunk, jobs)):
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


def train_tokenizers(tk: TokenizerConfig, src: list[str], tgt: list[str], where: str, pool: Pool | None = None
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
