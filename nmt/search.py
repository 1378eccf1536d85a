"""nmt's side of the one search: torch models decoded by nmt_runtime/search.py.

The search itself (greedy, beam, sampling, n-best, length penalty, min length, n-gram blocking,
ensembles; its rules and its batch invariance) is nmt_runtime's, written once on the array API so
that an ONNX export decodes by the very same code (runtime/nmt_runtime/search.py documents it).
This module runs it on torch tensors: under `torch.inference_mode()`, on the model's device, with
the lengths on the CPU, as packing wants. Returned attention tensors are inference tensors: read
them freely, `.clone()` one outside inference mode before changing it in place.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from nmt_runtime import search as _one
from nmt_runtime.decode_options import DecodeOptions
from nmt_runtime.search import Hypothesis, length_penalty_factor, max_output_length, sample_seed

__all__ = ["Hypothesis", "decode", "search", "greedy_search", "beam_search", "length_penalty_factor",
           "max_output_length", "sample_seed"]


def decode(
    models: nn.Module | Sequence[nn.Module],
    src_ids: Sequence[list[int]],
    options: DecodeOptions,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    attention: bool = False,
) -> list[list[Hypothesis]]:
    """The n-best hypotheses of each source (a list of ids, without EOS), in input order: one
    model, or several decoded as an ensemble (nmt_runtime/ensemble.py). See nmt_runtime.search.decode."""
    members = list(models) if isinstance(models, (list, tuple)) else [models]

    def arrays(src: np.ndarray, lengths: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(src).to(device), torch.from_numpy(lengths)

    with torch.inference_mode():
        return _one.decode(members, src_ids, options, batch_size, arrays, attention)


@torch.inference_mode()
def search(model: nn.Module, src: torch.Tensor, src_lengths: torch.Tensor, options: DecodeOptions,
           return_attention: bool = False) -> list[list[Hypothesis]]:
    """Decode one batch (src (batch, src_len) on the model's device, src_lengths (batch,) on the CPU);
    see nmt_runtime.search.search."""
    return _one.search(model, src, src_lengths, options, return_attention)


def greedy_search(model: nn.Module, src: torch.Tensor, src_lengths: torch.Tensor, max_len_ratio: float = 1.5,
                  max_len_extra: int = 10, return_attention: bool = False) -> list[list[Hypothesis]]:
    """`search` with strategy greedy: the most probable token at every step."""
    options = DecodeOptions(strategy="greedy", beam=1, max_len_ratio=max_len_ratio, max_len_extra=max_len_extra)
    return search(model, src, src_lengths, options, return_attention)


def beam_search(model: nn.Module, src: torch.Tensor, src_lengths: torch.Tensor, beam_size: int = 5,
                length_penalty: float = 1.0, n_best: int = 1, max_len_ratio: float = 1.5, max_len_extra: int = 10,
                return_attention: bool = False) -> list[list[Hypothesis]]:
    """`search` with strategy beam (beam 1 is greedy search: its scores are then not length-penalised)."""
    options = DecodeOptions(beam=beam_size, length_penalty=length_penalty, n_best=n_best,
                            max_len_ratio=max_len_ratio, max_len_extra=max_len_extra)
    return search(model, src, src_lengths, options, return_attention)
