"""Source embeddings → a bidirectional RNN's states (GRU or LSTM, `model.rnn_type`), one per source position."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.model.cells import make_rnn, run_rnn


class Encoder(nn.Module):
    """A multi-layer bidirectional GRU or LSTM over packed sequences.

    Packing means padding never enters the recurrence: a sentence gives the same states alone
    or padded inside a batch.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int, dropout: float, rnn_type: str = "gru"
    ) -> None:
        super().__init__()
        self.rnn = make_rnn(rnn_type, input_size, hidden_size, num_layers, dropout, bidirectional=True)
        self.output_size = 2 * hidden_size

    def forward(self, embedded: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # embedded: (batch, src_len, emb); lengths: (batch,) on the CPU
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_out, last = run_rnn(self.rnn, packed)  # GRU: h_n; LSTM: (h_n, c_n)
        h_n = last[0] if isinstance(last, tuple) else last  # (2*layers, batch, hidden), in input order
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=embedded.size(1))
        # outputs: (batch, src_len, 2*hidden), zeros on padding
        final = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (batch, 2*hidden): top layer, fwd ‖ bwd
        return outputs, final
