"""Source embeddings → a bidirectional GRU's states, one per source position."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class Encoder(nn.Module):
    """A multi-layer bidirectional GRU over packed sequences.

    Packing means padding never enters the recurrence: a sentence gives the same states alone
    or padded inside a batch.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.rnn = nn.GRU(
            input_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.output_size = 2 * hidden_size

    def forward(self, embedded: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # embedded: (batch, src_len, emb); lengths: (batch,) on the CPU
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, h_n = self.rnn(packed)  # h_n: (2*layers, batch, hidden), in input order
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=embedded.size(1))
        # outputs: (batch, src_len, 2*hidden), zeros on padding
        final = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (batch, 2*hidden): top layer, fwd ‖ bwd
        return outputs, final
