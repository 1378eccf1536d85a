"""A prepared split's arrays on disk, written a chunk at a time as the workers encode them.

nmt/prepare.py hands `write_split` the encoded chunks (nmt/prepare_workers.py) in corpus order;
the arrays it writes are those nmt/dataset.py memory-maps. Nothing of a split is held whole, not
even its lengths: each .npy file grows by appending.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from nmt.dataset import SIDES, ids_dtype
from nmt.tokenizer import Tokenizer


class NpyWriter:
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


def write_split(name: str, encoded: Iterable[dict[str, Any]], out: Path,
                toks: tuple[Tokenizer, Tokenizer]) -> dict[str, Any]:
    """Write the arrays of split `name` into the folder `out` from its encoded chunks, in order;
    return what the manifest says of the split (pairs, empty pairs dropped, tokens, dtypes)."""
    writers = {}
    counts = {}
    offsets_end = {}
    for side, tok in zip(SIDES, toks):
        writers[side] = {a: NpyWriter(out / f"{name}.{side}.{a}.npy", dt)
                         for a, dt in (("ids", ids_dtype(len(tok))), ("offsets", np.int64), ("lengths", np.uint32))}
        writers[side]["offsets"].write(np.zeros(1, dtype=np.int64))
        counts[side] = np.zeros(len(tok), dtype=np.int64)
        offsets_end[side] = 0
    pairs = empty = 0
    try:
        for result in encoded:
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
