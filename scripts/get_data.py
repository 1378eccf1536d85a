#!/usr/bin/env python3
"""Fetch or copy the real corpora, verify them, and place them where the configs look.

Usage::

    python scripts/get_data.py multi30k [--from DIR] [--dest DIR] [--force]
    python scripts/get_data.py tatoeba  [--from DIR] [--dest DIR] [--force]
    python scripts/get_data.py tatoeba --tutorial-subset [--from DIR] [--dest DIR] [--force]

Corpora
-------
multi30k
    Multi30k task 1 (WMT16-18 multimodal MT), raw text, 12 files: ``train``, ``val`` and
    ``test2016`` x ``en de fr cs``.  Source: https://github.com/multi30k/dataset,
    ``data/task1/raw/<split>.<lang>.gz`` (``test2016.<lang>`` is ``test_2016_flickr.<lang>.gz``
    upstream).  Each file is gunzipped and renamed, otherwise byte-identical.
    Terms: no LICENSE file; non-commercial research / educational use only; cite
    Elliott et al. 2016 (and Elliott et al. 2017 for fr, Barrault et al. 2018 for cs).
    Default destination: ``<repo>/data/multi30k/``.

tatoeba
    Tatoeba English-French pairs, the ``eng-fra.txt`` (``english<TAB>french``, 135842 lines)
    of the PyTorch seq2seq tutorial, shipped as ``data/eng-fra.txt`` inside
    https://download.pytorch.org/tutorial/data.zip.  Terms: Tatoeba sentences under CC BY 2.0
    FR; credit tatoeba.org and www.manythings.org/anki.
    Default destination: ``<repo>/data/tatoeba/`` with ``train.tsv``, ``dev.tsv``, ``test.tsv``.

The tatoeba split (the corpus has no official one)
--------------------------------------------------
Pairs are grouped by their English side (exact bytes): one English sentence often has several
French translations, and all pairs that share an English sentence go to the same split, so no
English sentence of dev or test occurs in train.  Each group is assigned by a stable hash of
the English text::

    bucket = int.from_bytes(sha256(english_utf8_bytes).digest()[:8], "big") % 1000
    bucket  0..21  -> test   (~2.2 %)
    bucket 22..43  -> dev    (~2.2 %)
    otherwise      -> train

which gives train 129835 / dev 2983 / test 3024 pairs.  Inside each split the lines keep
their original file order, and every line is byte-identical to the source (nothing is
normalised: U+202F, U+00A0 etc. stay).  The resulting files are checked against
``TATOEBA_SPLIT_FILES``; if you change the rule, update that table.

Behaviour
---------
* Every input file is verified (sha256 and line count, tables below) before anything is placed.
  Work happens in a temporary folder next to the destination, which is renamed into place only
  once everything verifies: a failure leaves the destination untouched.
* An existing destination that already holds the verified files is left alone (exit 0).  Any
  other non-empty destination is refused unless ``--force``; ``--force`` replaces the corpus
  files in it (other files in that folder are kept).
* Errors are one line on stderr, ``get_data: error: ...``, exit code 2.

Only the Python standard library is used.  Importable: ``main(argv) -> int``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import re
import shutil
import sys
import tempfile
import unicodedata
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Callable, NoReturn

REPO_ROOT = Path(__file__).resolve().parent.parent

PROG = "get_data"
DOWNLOAD_TIMEOUT_S = 60
CHUNK = 1 << 20

# --------------------------------------------------------------------------------------------
# multi30k
# --------------------------------------------------------------------------------------------

MULTI30K_URL = "https://raw.githubusercontent.com/multi30k/dataset/master/data/task1/raw/{name}.gz"
MULTI30K_DEFAULT_DEST = REPO_ROOT / "data" / "multi30k"
MULTI30K_LANGS = ("en", "de", "fr", "cs")
MULTI30K_SPLITS = ("train", "val", "test2016")
# local split name -> upstream split name (the .gz files in data/task1/raw/)
MULTI30K_UPSTREAM_SPLIT = {"train": "train", "val": "val", "test2016": "test_2016_flickr"}

# local file name -> (sha256 of the decompressed file, number of lines)
MULTI30K_FILES: dict[str, tuple[str, int]] = {
    "train.en": ("460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6", 29000),
    "train.de": ("2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72", 29000),
    "train.fr": ("5925a3c18f1587b6b54b87743106e6e8ab93618edb6f65d19eac0621f853a10d", 29000),
    "train.cs": ("2be68b38c8d586ff4f54eb13cc6e1baaaa053695b3f070d3038303a47f2268da", 29000),
    "val.en": ("1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227", 1014),
    "val.de": ("660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660", 1014),
    "val.fr": ("5304e444d842e962b2dda4d816b70b22a1765b15401642b7ca37a67477e708dc", 1014),
    "val.cs": ("d53827e469b0a1ca8d57e9e26b2b64c4bc4b33f5479c7b03ae87ae5c882c3e33", 1014),
    "test2016.en": ("399a4382932c1aadd3ceb9bef1008d388a64c76d4ae4e9d4728c6f4301cac182", 1000),
    "test2016.de": ("4be6b5b3236b79c25475c6bb829800a7ce559e9ba7a1f6c2394fe4d40be46d16", 1000),
    "test2016.fr": ("cb3160d69b002bb638e66cc7612fcd56cb0af82eadc9c142dedc438afb885ef6", 1000),
    "test2016.cs": ("45adb85f688de8407fddcbe1b36dca15d12aab868149b337e2576f2d6d2ff8d8", 1000),
}

MULTI30K_LICENSE = (
    "Multi30k terms: non-commercial research / educational use only (derived from Flickr30K; "
    "no LICENSE file upstream). Cite Elliott et al. 2016, 'Multi30K: Multilingual "
    "English-German Image Descriptions' (VL@ACL 2016); for fr also Elliott et al. 2017, "
    "for cs Barrault et al. 2018."
)

# --------------------------------------------------------------------------------------------
# tatoeba
# --------------------------------------------------------------------------------------------

TATOEBA_URL = "https://download.pytorch.org/tutorial/data.zip"
TATOEBA_ZIP_MEMBER = "data/eng-fra.txt"
TATOEBA_DEFAULT_DEST = REPO_ROOT / "data" / "tatoeba"
TATOEBA_SOURCE_NAME = "eng-fra.txt"
# source file -> (sha256, number of lines)
TATOEBA_SOURCE: dict[str, tuple[str, int]] = {
    "eng-fra.txt": ("6b0f3decdb78600485b58efb541f5a2ab69ba888742ac04180e013084e40de7c", 135842),
}

# The split rule (see the module docstring).
TATOEBA_HASH_BYTES = 8
TATOEBA_BUCKETS = 1000
TATOEBA_TEST_BUCKETS = range(0, 22)
TATOEBA_DEV_BUCKETS = range(22, 44)
TATOEBA_SPLITS = ("train", "dev", "test")

# Output files of the split -> (sha256, number of lines).  Computed by this script from the
# verified eng-fra.txt; used as a self-check and for the "already present" check.
TATOEBA_SPLIT_FILES: dict[str, tuple[str, int]] = {
    "train.tsv": ("5e2e21aec686ecd7cfc2d38174cf4cef2d051f4ebe7eb7de930895b6f6e2df5f", 129835),
    "dev.tsv": ("7281ef5e9408d29109abe538b8f404ee631013b97d039691c1f94ba517e48b1f", 2983),
    "test.tsv": ("7ffca49746d79afbce6ef15ab4228f0f5c4887207d5bd141e8d0a7506a914ee7", 3024),
}

# --tutorial-subset: the pairs the PyTorch tutorial trains on (see tutorial_pairs), normalised as
# it normalises them, english<TAB>french, split by the English side into test (buckets 0-99, ~10%),
# dev (100-149, ~5%) and train, by the same hash as above
TUTORIAL_DEFAULT_DEST = REPO_ROOT / "data" / "tatoeba_tutorial"
TUTORIAL_PAIRS = 11445  # what the tutorial prints: "Trimmed to 11445 sentence pairs"
TUTORIAL_MAX_LENGTH = 10
TUTORIAL_ENG_PREFIXES = (
    "i am ", "i m ", "he is", "he s ", "she is", "she s ",
    "you are", "you re ", "we are", "we re ", "they are", "they re ",
)
TUTORIAL_TEST_BUCKETS = range(0, 100)
TUTORIAL_DEV_BUCKETS = range(100, 150)
TUTORIAL_SPLIT_FILES: dict[str, tuple[str, int]] = {
    "train.tsv": ("ee210d2eced20a304451fda213ff761cc7df87c87af642af792b7ab3142b4fe8", 9686),
    "dev.tsv": ("3dea04af026ef1cfaa435e9e2d064f65d645728503296b7c98ea7f7761ea7fdd", 635),
    "test.tsv": ("64f476c587d279e7a7297456dc331c566e440c9b6e8f56c49406c32d313f1544", 1124),
}

TATOEBA_LICENSE = (
    "Tatoeba terms: sentences from tatoeba.org under CC BY 2.0 FR; "
    "attribution: tatoeba.org and www.manythings.org/anki."
)


# --------------------------------------------------------------------------------------------
# errors and small helpers
# --------------------------------------------------------------------------------------------


class GetDataError(Exception):
    """An expected failure: reported as one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print usage + exit 2
        raise GetDataError(f"{message} (see --help)")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _info(msg: str = "") -> None:
    print(msg, flush=True)


def file_digest(path: Path) -> tuple[str, int]:
    """Return (sha256 hex, number of newline characters) of a file, streaming."""
    h = hashlib.sha256()
    lines = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            lines += chunk.count(b"\n")
    return h.hexdigest(), lines


def verify_file(path: Path, name: str, table: dict[str, tuple[str, int]], origin: str) -> None:
    """Raise GetDataError unless `path` has the sha256 and line count of `table[name]`."""
    want_sha, want_lines = table[name]
    got_sha, got_lines = file_digest(path)
    if (got_sha, got_lines) != (want_sha, want_lines):
        raise GetDataError(
            f"{name} does not verify (from {origin}): expected sha256 {want_sha} and "
            f"{want_lines} lines, got sha256 {got_sha} and {got_lines} lines"
        )


def _dest_state(dest: Path, table: dict[str, tuple[str, int]]) -> str:
    """'absent', 'empty', 'complete' (all files verify) or 'other'."""
    if not dest.exists():
        return "absent"
    if not dest.is_dir():
        raise GetDataError(f"destination {dest} exists and is not a folder")
    if not any(dest.iterdir()):
        return "empty"
    for name, (sha, lines) in table.items():
        p = dest / name
        if not p.is_file() or file_digest(p) != (sha, lines):
            return "other"
    return "complete"


def _check_from(src: Path | None) -> None:
    if src is not None and not src.is_dir():
        what = "does not exist" if not src.exists() else "is not a folder"
        raise GetDataError(f"--from folder {src} {what}")


def download(url: str, target: Path) -> None:
    """Download `url` to `target` (timeout DOWNLOAD_TIMEOUT_S); one-line error on failure."""
    _info(f"downloading {url}")
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "nmt-get_data/1"})
        with urllib.request.urlopen(req, timeout=DOWNLOAD_TIMEOUT_S) as resp, open(
            target, "wb"
        ) as out:
            shutil.copyfileobj(resp, out, CHUNK)
    except urllib.error.HTTPError as e:
        raise GetDataError(f"cannot download {url}: HTTP {e.code} {_one_line(e.reason)}") from None
    except urllib.error.URLError as e:
        raise GetDataError(f"cannot download {url}: {_one_line(e.reason)}") from None
    except (OSError, ValueError) as e:  # timeouts, connection resets, bad URL
        raise GetDataError(f"cannot download {url}: {_one_line(e) or type(e).__name__}") from None


def gunzip(src: Path, target: Path) -> None:
    try:
        with gzip.open(src, "rb") as f, open(target, "wb") as out:
            shutil.copyfileobj(f, out, CHUNK)
    except (OSError, EOFError, zlib.error) as e:
        raise GetDataError(f"cannot decompress {src}: {_one_line(e) or type(e).__name__}") from None


def unzip_member(src: Path, names: tuple[str, ...], target: Path) -> None:
    """Extract the first member of zip `src` whose name is in `names` (or whose basename is
    the basename of names[0]) to `target`."""
    try:
        with zipfile.ZipFile(src) as z:
            members = z.namelist()
            member = next((n for n in names if n in members), None)
            if member is None:
                base = names[0].rsplit("/", 1)[-1]
                member = next((n for n in members if n.rsplit("/", 1)[-1] == base), None)
            if member is None:
                raise GetDataError(f"{src} holds no {' or '.join(names)}")
            with z.open(member) as f, open(target, "wb") as out:
                shutil.copyfileobj(f, out, CHUNK)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
        raise GetDataError(f"cannot unzip {src}: {_one_line(e) or type(e).__name__}") from None


def _place(work: Path, dest: Path, state: str, names: list[str]) -> None:
    """Move the verified files in `work` into `dest`."""
    if state in ("absent", "empty"):
        if state == "empty":
            dest.rmdir()
        os.replace(work, dest)  # one rename: the destination appears complete or not at all
    else:  # --force over a non-empty folder: replace our files, keep any others
        for name in names:
            os.replace(work / name, dest / name)


def _run_in_workdir(
    dest: Path,
    table: dict[str, tuple[str, int]],
    force: bool,
    label: str,
    build: Callable[[Path], None],
) -> bool:
    """Common frame: check the destination, build+verify into a temporary folder next to it,
    then place.  Returns False when the destination was already complete (nothing done)."""
    state = _dest_state(dest, table)
    if state == "complete" and not force:
        _info(f"{label}: {dest} already holds the verified files; nothing to do (--force to redo)")
        return False
    if state == "other" and not force:
        raise GetDataError(
            f"destination {dest} is not empty and does not hold the verified {label} files; "
            f"refusing to overwrite (use --force)"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.get_data-", dir=dest.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(work, 0o777 & ~umask)  # mkdtemp makes 0700; the placed folder gets the usual mode
        build(work)
        for name in table:  # final check of exactly what will be placed
            verify_file(work / name, name, table, str(work / name))
        _place(work, dest, state, list(table))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return True


# --------------------------------------------------------------------------------------------
# multi30k
# --------------------------------------------------------------------------------------------


def _multi30k_candidates(name: str) -> list[str]:
    split, lang = name.split(".")
    up = f"{MULTI30K_UPSTREAM_SPLIT[split]}.{lang}"
    return list(dict.fromkeys([name, f"{name}.gz", up, f"{up}.gz"]))


def _multi30k_build(src: Path | None, work: Path) -> None:
    dl = work / ".download"
    for name in MULTI30K_FILES:
        target = work / name
        if src is None:
            split, lang = name.split(".")
            up = f"{MULTI30K_UPSTREAM_SPLIT[split]}.{lang}"
            dl.mkdir(exist_ok=True)
            gz = dl / f"{up}.gz"
            download(MULTI30K_URL.format(name=up), gz)
            gunzip(gz, target)
            gz.unlink()
            origin = MULTI30K_URL.format(name=up)
        else:
            cands = [src / c for c in _multi30k_candidates(name)]
            found = next((c for c in cands if c.is_file()), None)
            if found is None:
                raise GetDataError(
                    f"{name} not found in {src} (looked for {', '.join(c.name for c in cands)})"
                )
            if found.name.endswith(".gz"):
                gunzip(found, target)
            else:
                shutil.copyfile(found, target)
            origin = str(found)
        verify_file(target, name, MULTI30K_FILES, origin)
    if dl.exists():
        shutil.rmtree(dl)


def get_multi30k(src: Path | None, dest: Path, force: bool) -> None:
    _check_from(src)
    did = _run_in_workdir(
        dest, MULTI30K_FILES, force, "multi30k", lambda work: _multi30k_build(src, work)
    )
    if did:
        _info(f"multi30k: {len(MULTI30K_FILES)} files verified (sha256 + line count) and placed in {dest}")
        for split in MULTI30K_SPLITS:
            files = " ".join(f"{split}.{lang}" for lang in MULTI30K_LANGS)
            _info(f"  {files}  ({MULTI30K_FILES[f'{split}.en'][1]} lines each)")
    _info(MULTI30K_LICENSE)


# --------------------------------------------------------------------------------------------
# tatoeba
# --------------------------------------------------------------------------------------------


def tatoeba_split_of(english: bytes, test: range = TATOEBA_TEST_BUCKETS, dev: range = TATOEBA_DEV_BUCKETS) -> str:
    """The split ('train', 'dev' or 'test') of every pair whose English side is `english`."""
    digest = hashlib.sha256(english).digest()
    bucket = int.from_bytes(digest[:TATOEBA_HASH_BYTES], "big") % TATOEBA_BUCKETS
    if bucket in test:
        return "test"
    if bucket in dev:
        return "dev"
    return "train"


def split_tatoeba(source: Path, out_dir: Path) -> dict[str, int]:
    """Write train.tsv / dev.tsv / test.tsv from `source`; lines byte-identical, in order."""
    data = source.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out: dict[str, list[bytes]] = {s: [] for s in TATOEBA_SPLITS}
    for line in lines:
        out[tatoeba_split_of(line.split(b"\t", 1)[0])].append(line)
    for split, rows in out.items():
        (out_dir / f"{split}.tsv").write_bytes(b"".join(r + b"\n" for r in rows))
    return {s: len(r) for s, r in out.items()}


def _tatoeba_source(src: Path | None, raw: Path) -> Path:
    """eng-fra.txt, downloaded or copied from `src` into `raw`, verified."""
    raw.mkdir()
    source = raw / TATOEBA_SOURCE_NAME
    if src is None:
        z = raw / "data.zip"
        download(TATOEBA_URL, z)
        unzip_member(z, (TATOEBA_ZIP_MEMBER,), source)
        origin = f"{TATOEBA_URL}:{TATOEBA_ZIP_MEMBER}"
    else:
        plain = src / TATOEBA_SOURCE_NAME
        zips = [
            (src / f"{TATOEBA_SOURCE_NAME}.zip", (TATOEBA_SOURCE_NAME,)),
            (src / "data.zip", (TATOEBA_ZIP_MEMBER, TATOEBA_SOURCE_NAME)),
        ]
        if plain.is_file():
            shutil.copyfile(plain, source)
            origin = str(plain)
        else:
            found = next(((z, m) for z, m in zips if z.is_file()), None)
            if found is None:
                looked = ", ".join([plain.name] + [z.name for z, _ in zips])
                raise GetDataError(f"{TATOEBA_SOURCE_NAME} not found in {src} (looked for {looked})")
            unzip_member(found[0], found[1], source)
            origin = f"{found[0]}:{TATOEBA_SOURCE_NAME}"
    verify_file(source, TATOEBA_SOURCE_NAME, TATOEBA_SOURCE, origin)
    return source


def _tatoeba_build(src: Path | None, work: Path) -> None:
    raw = work / ".source"
    split_tatoeba(_tatoeba_source(src, raw), work)
    shutil.rmtree(raw)


def tutorial_normalize(text: str) -> str:
    """The tutorial's normalizeString: lowercase ASCII (accents dropped), a space before . ! ?,
    every run of other characters one space."""
    text = "".join(c for c in unicodedata.normalize("NFD", text.lower().strip()) if unicodedata.category(c) != "Mn")
    text = re.sub(r"([.!?])", r" \1", text)
    return re.sub(r"[^a-zA-Z!?]+", r" ", text).strip()


def tutorial_pairs(source: Path) -> list[tuple[str, str]]:
    """(english, french) pairs that the PyTorch seq2seq tutorial keeps, in file order: both sides
    normalised, fewer than MAX_LENGTH = 10 space-separated words each, and the English side
    starting with one of its eng_prefixes ("i am ", "he is", …)."""
    pairs = []
    for line in source.read_text(encoding="utf-8").strip().split("\n"):
        english, french = (tutorial_normalize(side) for side in line.split("\t")[:2])
        if (len(english.split(" ")) < TUTORIAL_MAX_LENGTH and len(french.split(" ")) < TUTORIAL_MAX_LENGTH
                and english.startswith(TUTORIAL_ENG_PREFIXES)):
            pairs.append((english, french))
    return pairs


def _tutorial_build(src: Path | None, work: Path) -> None:
    raw = work / ".source"
    pairs = tutorial_pairs(_tatoeba_source(src, raw))
    if len(pairs) != TUTORIAL_PAIRS:
        raise GetDataError(f"the tutorial's filter kept {len(pairs)} pairs, not its {TUTORIAL_PAIRS}")
    out: dict[str, list[str]] = {s: [] for s in TATOEBA_SPLITS}
    for english, french in pairs:
        split = tatoeba_split_of(english.encode("utf-8"), TUTORIAL_TEST_BUCKETS, TUTORIAL_DEV_BUCKETS)
        out[split].append(f"{english}\t{french}\n")
    for split, rows in out.items():
        (work / f"{split}.tsv").write_text("".join(rows), encoding="utf-8")
    shutil.rmtree(raw)


def get_tutorial_subset(src: Path | None, dest: Path, force: bool) -> None:
    _check_from(src)
    if _run_in_workdir(dest, TUTORIAL_SPLIT_FILES, force, "tatoeba tutorial subset",
                       lambda work: _tutorial_build(src, work)):
        _info(f"tatoeba --tutorial-subset: {TATOEBA_SOURCE_NAME} verified; the tutorial's {TUTORIAL_PAIRS} pairs "
              f"written to {dest}")
    _info("the PyTorch tutorial's filter: normalizeString (lowercase ASCII, punctuation split off), fewer than "
          f"{TUTORIAL_MAX_LENGTH} words a side, English starting with its eng_prefixes; english<TAB>french")
    _info(f"split by the English sentence: sha256 bucket mod {TATOEBA_BUCKETS}: "
          f"{TUTORIAL_TEST_BUCKETS.start}-{TUTORIAL_TEST_BUCKETS.stop - 1} test, "
          f"{TUTORIAL_DEV_BUCKETS.start}-{TUTORIAL_DEV_BUCKETS.stop - 1} dev, rest train")
    for split in TATOEBA_SPLITS:
        _info(f"  {split + '.tsv':10s} {TUTORIAL_SPLIT_FILES[f'{split}.tsv'][1]:6d} pairs")
    _info(TATOEBA_LICENSE)


def get_tatoeba(src: Path | None, dest: Path, force: bool) -> None:
    _check_from(src)
    did = _run_in_workdir(
        dest, TATOEBA_SPLIT_FILES, force, "tatoeba", lambda work: _tatoeba_build(src, work)
    )
    if did:
        _info(f"tatoeba: {TATOEBA_SOURCE_NAME} verified (sha256 + line count); split written to {dest}")
    _info(
        "split: pairs grouped by English side; bucket = first 8 bytes of sha256(English UTF-8), "
        f"big-endian, mod {TATOEBA_BUCKETS}; buckets "
        f"{TATOEBA_TEST_BUCKETS.start}-{TATOEBA_TEST_BUCKETS.stop - 1} test, "
        f"{TATOEBA_DEV_BUCKETS.start}-{TATOEBA_DEV_BUCKETS.stop - 1} dev, rest train; "
        "original order kept, text byte-identical"
    )
    total = 0
    for split in TATOEBA_SPLITS:
        n = TATOEBA_SPLIT_FILES[f"{split}.tsv"][1]
        total += n
        _info(f"  {split + '.tsv':10s} {n:6d} pairs")
    _info(f"  {'total':10s} {total:6d} pairs")
    _info(TATOEBA_LICENSE)


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------

_EPILOG = f"""\
sources:
  multi30k  {MULTI30K_URL.format(name='<name>')}
            (12 files: train/val/test2016 x en/de/fr/cs; test2016.<lang> is
            test_2016_flickr.<lang>.gz upstream), gunzipped and renamed
  tatoeba   {TATOEBA_URL} -> {TATOEBA_ZIP_MEMBER}
            (english<TAB>french, 135842 pairs, PyTorch seq2seq tutorial)
  --from DIR copies instead: multi30k accepts train.en or train.en.gz /
  test_2016_flickr.en.gz etc.; tatoeba accepts eng-fra.txt, eng-fra.txt.zip or data.zip.
  Every file is checked against the sha256 and line count tables in this script.

licenses:
  multi30k  non-commercial research/educational use only; cite Elliott et al. 2016
  tatoeba   CC BY 2.0 FR; credit tatoeba.org and www.manythings.org/anki

destinations (default, relative to the repository root, not committed):
  multi30k  data/multi30k/<split>.<lang>
  tatoeba   data/tatoeba/train.tsv, dev.tsv, test.tsv

tatoeba split (no official one): pairs grouped by English sentence so no English
sentence of dev/test is in train; group bucket = sha256(English UTF-8)[:8] big-endian
mod 1000: 0-21 test, 22-43 dev, rest train (train 129835 / dev 2983 / test 3024);
original order kept, text byte-identical (no normalisation).

An already complete destination is left alone (exit 0); any other non-empty
destination needs --force.  Errors: one line 'get_data: error: ...', exit code 2.
"""


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="get_data.py",
        description="Fetch or copy the real corpora (Multi30k, Tatoeba eng-fra), verify them\n"
        "(sha256 + line count) and place them where the configs look.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("corpus", choices=("multi30k", "tatoeba"), help="which corpus")
    p.add_argument(
        "--from",
        dest="src",
        metavar="DIR",
        type=Path,
        help="copy from this folder instead of downloading (e.g. ../shared/data/multi30k)",
    )
    p.add_argument(
        "--dest",
        metavar="DIR",
        type=Path,
        help="output folder (default: <repo>/data/multi30k or <repo>/data/tatoeba)",
    )
    p.add_argument(
        "--tutorial-subset",
        action="store_true",
        help="tatoeba only: the 11,445 short pairs the PyTorch seq2seq tutorial trains on, normalised as "
        "it does, with a held-out dev and test split (default destination data/tatoeba_tutorial)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="redo even if the destination is complete; replace the corpus files in a "
        "non-empty destination",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as e:  # --help
            return e.code if isinstance(e.code, int) else 0
        src = args.src.expanduser().resolve() if args.src is not None else None
        if args.tutorial_subset and args.corpus != "tatoeba":
            raise GetDataError("--tutorial-subset goes with tatoeba (the tutorial's eng-fra.txt)")
        if args.corpus == "multi30k":
            dest = (args.dest or MULTI30K_DEFAULT_DEST).expanduser().resolve()
            get_multi30k(src, dest, args.force)
        elif args.tutorial_subset:
            dest = (args.dest or TUTORIAL_DEFAULT_DEST).expanduser().resolve()
            get_tutorial_subset(src, dest, args.force)
        else:
            dest = (args.dest or TATOEBA_DEFAULT_DEST).expanduser().resolve()
            get_tatoeba(src, dest, args.force)
        return 0
    except GetDataError as e:
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: error: interrupted", file=sys.stderr, flush=True)
        return 130
    except OSError as e:  # disk full, permissions, ... : still one line
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
