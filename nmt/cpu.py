"""CPU settings that make training and decoding fast."""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager
from typing import Iterator

# oneDNN (which runs torch's bf16 matmuls on a CPU) keeps up to 1,024 compiled primitives, one per
# shape; batches of varying lengths fill that cache, and a 1,000-step Multi30k run in bf16 peaked
# at 2.2 GB RSS against 0.95 GB in fp32. 16 keeps the peak down at the same speed (docs/results.md,
# "Precision").
# Read when oneDNN makes its first primitive, so setting it here, before any training, takes effect;
# a value set by the user wins.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")

import torch  # noqa: E402


@contextmanager
def flush_denormals() -> Iterator[None]:
    """Treat denormal (tiny, subnormal) floats as zero inside the block.

    They appear in GRU weights and Adam's moments as training goes on, and CPU arithmetic on them
    is many times slower: on Multi30k, training fell from ~2,800 to ~1,000 target tokens/s within
    a few hundred steps without this. The process-wide setting is restored to torch's default
    (off) on exit, so code around nmt (e.g. hypothesis, which needs subnormals) is unaffected.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@functools.cache  # a fact of the machine; nmt/model/cells.py asks at every LSTM step under bf16
def has_bf16_units() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX tiles). Where it does not,
    bf16 autocast is emulated and slower than fp32 (3.7–6.9× on a 2-core AVX2 EPYC, docs/results.md)."""
    try:  # private helpers of torch.cpu; a torch without them is taken to have no bf16 units
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False
