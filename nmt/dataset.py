"""Prepared data, the read side: a prepared folder opened, checked and memory-mapped for training.

nmt/prepare.py makes the folder (worker processes, the manifest, the atomic rename); this module
says what the folder holds and reads it, so training, evaluation and the lab depend on this one
only. A prepared folder holds, per split (train, dev, test) and side (src, tgt):

    {split}.{side}.ids.npy      (tokens,)  every sentence's piece ids, one after the other
                                           (uint16 when the vocabulary fits, else uint32)
    {split}.{side}.offsets.npy  (pairs+1,) int64: sentence i is ids[offsets[i]:offsets[i+1]]
    {split}.{side}.lengths.npy  (pairs,)   uint32 pieces per sentence (what batching sorts by)
    {split}.{side}.counts.npy   (vocab,)   int64 occurrences of each id (the embedding lab's)

plus `src.model`, `tgt.model` and `manifest.json` (sizes, counts, the sha256 of every source file
and tokenizer model, the format version). The folder's name is a hash of the source files'
contents and of the settings that decide the arrays (`dataset_key`), so runs on the same corpus
share one prepared copy, an edited corpus gets a new one, and under DDP the ranks map the same
files: the operating system shares their pages. Opening a folder checks it against its manifest
(`Dataset.problem`), so a truncated, replaced or edited file is refused with the reason.
The length filter is not applied here: it is a training setting, applied to the lengths arrays.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from nmt.errors import NmtError
from nmt_runtime.files import file_sha256
from nmt.tokenizer import Tokenizer
from nmt_runtime.tokenizer import SIDES

FORMAT_VERSION = 1
KEY_CHARS = 20  # a prepared folder's name: the first characters of its key (a sha256)


def ids_dtype(vocab_size: int) -> type:
    """The smallest unsigned dtype that holds every id of the vocabulary (the ids arrays' dtype)."""
    return np.uint16 if vocab_size <= 1 << 16 else np.uint32


def dataset_key(setting: dict[str, Any], hashes: dict[str, list[str]]) -> str:
    """The sha256 that names a prepared folder (its first KEY_CHARS characters): the settings that
    decide the arrays and the sources' hashes. Opening a folder recomputes it from the manifest."""
    blob = json.dumps({"settings": setting, "sources": hashes}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


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
