"""The recurrent cell (`model.rnn_type`): the one place that maps its config names to torch modules.

A GRU carries one state tensor h per layer, an LSTM two, (h, c). nn.GRU and nn.LSTM take and
return their state in these forms, so the encoder and decoder stay cell-agnostic: they build the
cell here and hand its state back to it. The decoder keeps an LSTM's c beside h in its state
(`DecoderState.cell`), so beam search reorders both.

The encoder and decoder call their RNN through `run_rnn`, for one exception: under CPU autocast
torch sends nn.LSTM to oneDNN in the low dtype, and oneDNN has no fp16 LSTM on CPUs without fp16
units ("could not create a primitive descriptor for the LSTM forward propagation primitive", seen
on an AMD EPYC with AVX512-BF16), so under fp16, and under bf16 on a CPU without bf16 units (which
`train.precision: auto` never picks, and where the same is to be expected), the LSTM runs in fp32,
as autocast runs nn.GRU on the CPU anyway.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nmt.cpu import has_bf16_units
from nmt.errors import NmtError

CELLS: dict[str, type[nn.RNNBase]] = {"gru": nn.GRU, "lstm": nn.LSTM}


def make_rnn(
    rnn_type: str, input_size: int, hidden_size: int, num_layers: int, dropout: float, bidirectional: bool = False
) -> nn.RNNBase:
    """A batch-first multi-layer RNN of the named cell; dropout between layers only (none with one)."""
    if rnn_type not in CELLS:
        raise NmtError(f"key 'model.rnn_type' is {rnn_type!r}; choose one of {', '.join(CELLS)}")
    return CELLS[rnn_type](
        input_size,
        hidden_size,
        num_layers=num_layers,
        batch_first=True,
        bidirectional=bidirectional,
        dropout=dropout if num_layers > 1 else 0.0,
    )


def states_per_layer(rnn: nn.Module) -> int:
    """How many (layers, batch, hidden) tensors the cell carries: 1 for a GRU (h), 2 for an LSTM (h, c)."""
    return 2 if isinstance(rnn, nn.LSTM) else 1


def lstm_in_fp32() -> bool:
    """Whether CPU autocast is on at a dtype whose LSTM kernel this CPU lacks (module docstring)."""
    if not torch.is_autocast_enabled("cpu"):
        return False
    dtype = torch.get_autocast_dtype("cpu")
    return dtype == torch.float16 or (dtype == torch.bfloat16 and not has_bf16_units())


def run_rnn(rnn: nn.Module, inputs: Any, state: Any = None) -> tuple[Any, Any]:
    """`rnn(inputs, state)`: (outputs, new state), with an LSTM in fp32 where `lstm_in_fp32`."""
    if isinstance(rnn, nn.LSTM) and lstm_in_fp32():
        if state is not None:
            state = tuple(s.float() for s in state)
        with torch.autocast("cpu", enabled=False):
            return rnn(inputs.float(), state)
    return rnn(inputs, state)
