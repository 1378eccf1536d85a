"""A Seq2Seq as two ONNX graphs: the encoder, and one decoder step, with dynamic batch and source length.

The search needs `encode(src, src_lengths) → state` and `decode_step(prev, state) → (log_probs,
state, attention)`; each becomes a graph, and the DecoderState becomes a flat list of named tensors
(`state_layout`): h, an LSTM's c, the memory, the padding bias, the attention's cache, input
feeding's previous output: as many as the architecture has. nmt_runtime/exported.py reads that
list from export.json and needs to know nothing else of the architecture.

Two exporters, because neither takes both graphs:
- the encoder runs nn.GRU/nn.LSTM on packed sequences (padding never enters the recurrence), which
  torch.export refuses; the TorchScript exporter (`dynamo=False`) turns it into ONNX's GRU/LSTM
  with sequence lengths;
- the decoder step goes through torch.export (`dynamo=True`), the recommended exporter.
Both target one opset (`OPSET`). The exporters' notices (deprecation, shape inference of the packed
sequence ops, torchvision not installed) say nothing a user can act on and are silenced here.

`compare` runs a model and its graphs on the same sources and greedy steps (with a `select` that
reorders and repeats rows between them) and returns the largest differences: nmt export checks
every export with it before it publishes the folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from nmt.model import Seq2Seq
from nmt.model.state import DecoderState
from nmt.tokenizer import BOS_ID, EOS_ID, N_SPECIAL, PAD_ID
from nmt_runtime.exported import ATTENTION, ENCODER_INPUTS, LOG_PROBS, PREV, ExportedModel, StateTensor, next_name

OPSET = 18  # both graphs; onnxruntime reads opset 18 since 1.14
TRACE_LENGTHS = (6, 3, 5)  # the sources the graphs are traced with (EOS added): 3 rows, src_len 7
CHECK_LENGTHS = (1, 8, 4, 2, 6)  # and checked with: another batch size and source length, padded
CHECK_SELECT = (4, 0, 0, 2, 1, 3)  # rows picked before the third checked step: reordered, one repeated, one more
CHECK_STEPS = 4


@dataclass(frozen=True)
class GraphTensor:
    """A state tensor of the graphs: what export.json says of it, and its dynamic axes."""

    spec: StateTensor
    src_axis: int | None  # the source-length axis, for the tensors made from the encoder memory

    def axes(self, rows: str) -> dict[int, str]:
        axes = {self.spec.rows_axis: rows}
        return axes if self.src_axis is None else {**axes, self.src_axis: "src_len"}


def state_layout(state: DecoderState) -> list[GraphTensor]:
    """The DecoderState's tensors in the graphs' order, with the axes `DecoderState.select` takes
    rows along (1 for the (layers, rows, hidden) h and c)."""
    layout = [GraphTensor(StateTensor("hidden", 1, True), None)]
    if state.cell is not None:
        layout.append(GraphTensor(StateTensor("cell", 1, True), None))
    layout += [GraphTensor(StateTensor("memory", 0, False), 1), GraphTensor(StateTensor("padding_bias", 0, False), 1)]
    layout += [GraphTensor(StateTensor(f"attention_cache_{i}", 0, False), 1) for i in range(len(state.attention_cache))]
    if state.feed is not None:
        layout.append(GraphTensor(StateTensor("feed", 0, True), None))
    return layout


def flatten(state: DecoderState) -> tuple[torch.Tensor, ...]:
    """The state's tensors in `state_layout`'s order."""
    parts = [state.hidden, state.cell, state.memory, state.padding_bias, *state.attention_cache, state.feed]
    return tuple(t for t in parts if t is not None)


def unflatten(layout: Sequence[GraphTensor], tensors: Sequence[torch.Tensor]) -> DecoderState:
    named = {g.spec.name: t for g, t in zip(layout, tensors)}
    cache = tuple(named[g.spec.name] for g in layout if g.spec.name.startswith("attention_cache_"))
    return DecoderState(named["hidden"], named["memory"], named["padding_bias"], cache, named.get("cell"),
                        named.get("feed"))


class EncoderGraph(nn.Module):
    """(src, src_lengths) → the initial state's tensors."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return flatten(self.model.encode(src, src_lengths))


class StepGraph(nn.Module):
    """(prev, *state) → log_probs, the tensors of the state that change, attention."""

    def __init__(self, model: Seq2Seq, layout: Sequence[GraphTensor]) -> None:
        super().__init__()
        self.model, self.layout = model, list(layout)

    def forward(self, prev: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        log_probs, after, attention = self.model.decode_step(prev, unflatten(self.layout, state))
        changed = [t for g, t in zip(self.layout, flatten(after)) if g.spec.changes]
        return (log_probs, *changed, attention)


def sources(lengths: Sequence[int], vocab: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random sources of these lengths (ids of text pieces, then EOS), padded: src (batch, max + 1)
    and src_lengths (batch,)."""
    g = torch.Generator().manual_seed(seed)
    src = torch.full((len(lengths), max(lengths) + 1), PAD_ID)
    for row, n in enumerate(lengths):
        src[row, :n] = torch.randint(N_SPECIAL, vocab, (n,), generator=g)
        src[row, n] = EOS_ID
    return src, torch.tensor(lengths) + 1


def export_graphs(model: Seq2Seq, encoder_file: Path, step_file: Path) -> list[GraphTensor]:
    """Write the model's two graphs (of the model in eval mode); returns the state's layout."""
    model.eval()
    src, lengths = sources(TRACE_LENGTHS, model.src_embed.weight.shape[0], seed=0)
    with torch.no_grad():
        state = model.encode(src, lengths)
    layout = state_layout(state)
    names = [g.spec.name for g in layout]
    changing = [next_name(g.spec.name) for g in layout if g.spec.changes]
    # the wrappers in eval mode too: the TorchScript exporter puts the module it is given back in
    # that module's mode afterwards, and a new wrapper's (training) would switch the model's dropout on
    with quiet(), torch.no_grad():
        torch.onnx.export(
            EncoderGraph(model).eval(), (src, lengths), str(encoder_file), dynamo=False, opset_version=OPSET,
            input_names=list(ENCODER_INPUTS), output_names=names,
            dynamic_axes={"src": {0: "batch", 1: "src_len"}, "src_lengths": {0: "batch"},
                          **{g.spec.name: g.axes("batch") for g in layout}},
        )
        rows, src_len = torch.export.Dim("rows"), torch.export.Dim("src_len")
        dims = {"rows": rows, "src_len": src_len}
        program = torch.onnx.export(
            StepGraph(model, layout).eval(), (torch.full((src.size(0),), BOS_ID), *flatten(state)), dynamo=True,
            opset_version=OPSET, input_names=[PREV, *names], output_names=[LOG_PROBS, *changing, ATTENTION],
            dynamic_shapes=({0: rows}, tuple({a: dims[n] for a, n in g.axes("rows").items()} for g in layout)),
            verbose=False,
        )
        program.save(str(step_file), external_data=False)
    return layout


def quantize_int8(file: Path) -> None:
    """The weights of the graph's matrix products (Linear layers) and LSTMs as int8, activations
    quantized on the fly (onnxruntime's dynamic quantization: no calibration data), written over the
    fp32 file. Embedding lookups and GRUs stay fp32: onnxruntime has no int8 GRU."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = file.with_name(f".{file.name}.int8")
    with quiet():
        quantize_dynamic(file, quantized, weight_type=QuantType.QInt8)
    os.replace(quantized, file)


@dataclass
class Differences:
    """The largest absolute differences between a model and its graphs (-inf where both are -inf)."""

    encoder: float = 0.0
    log_probs: float = 0.0
    attention: float = 0.0
    nan: bool = False  # whether the graphs gave a NaN log-probability


def compare(model: Seq2Seq, exported: ExportedModel, steps: int = CHECK_STEPS) -> Differences:
    """The model and its graphs on the same sources (`CHECK_LENGTHS`, seed 1) for `steps` greedy
    steps (the model's choice fed to both), rows reordered by `CHECK_SELECT` before the third."""
    src, lengths = sources(CHECK_LENGTHS, model.src_embed.weight.shape[0], seed=1)
    d = Differences()
    with torch.no_grad():
        state = model.encode(src, lengths)
        graph_state = exported.encode(src.numpy(), lengths.numpy())
        names = [s.name for s in graph_state.layout]
        d.encoder = max(_diff(t, graph_state.tensors[name]) for name, t in zip(names, flatten(state)))
        prev = torch.full((src.size(0),), BOS_ID)
        for step in range(steps):
            if step == 2:
                index = torch.tensor(CHECK_SELECT)
                state, graph_state, prev = state.select(index), graph_state.select(index.numpy()), prev[index]
            log_probs, state, attention = model.decode_step(prev, state)
            graph_log_probs, graph_state, graph_attention = exported.decode_step(prev.numpy(), graph_state)
            d.nan = d.nan or bool(np.isnan(graph_log_probs).any())
            d.log_probs = max(d.log_probs, _diff(log_probs, graph_log_probs))
            d.attention = max(d.attention, _diff(attention, graph_attention))
            prev = log_probs.argmax(-1)
    return d


def _diff(value: torch.Tensor, graph_value: np.ndarray) -> float:
    """max |a - b| over the finite entries; inf where the shapes or the -inf (padding) entries differ, or on a NaN."""
    a = value.numpy()
    if a.shape != graph_value.shape or not np.array_equal(np.isinf(a), np.isinf(graph_value)) \
            or np.isnan(graph_value).any():
        return float("inf")
    finite = np.isfinite(a)
    return float(np.abs(a[finite] - graph_value[finite]).max(initial=0.0))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence the exporters' and the quantizer's notices: Python warnings, their loggers (the
    quantizer logs on the root logger, which would install a handler on it) and the C++ lines
    torch writes straight to stderr (file descriptor 2), which are shown if the block fails."""
    root = logging.getLogger()
    loggers = [logging.getLogger("torch"), root]
    levels = [logger.level for logger in loggers]
    null = logging.NullHandler()
    root.addHandler(null)
    with warnings.catch_warnings(), tempfile.TemporaryFile() as captured:
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            captured.seek(0)
            os.write(2, captured.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            root.removeHandler(null)
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)
