"""Source embeddings → a bidirectional RNN's states (GRU or LSTM, `model.rnn_type`), one per source position."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.model.cells import make_rnn, run_rnn
from nmt.model.fused_encoder import FUSED_ENCODER_SUPPORTS, fused_encode, fused_encoder_supports


class Encoder(nn.Module):
    """A multi-layer bidirectional GRU or LSTM over packed sequences.

    Packing means padding never enters the recurrence: a sentence gives the same states alone
    or padded inside a batch. In training, with `fast` (config `model.fused_encoder`), one GRU
    layer takes fused_encoder.py's path, the same function faster.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int, dropout: float, rnn_type: str = "gru",
        fused: bool = True,
    ) -> None:
        super().__init__()
        self.rnn = make_rnn(rnn_type, input_size, hidden_size, num_layers, dropout, bidirectional=True)
        self.output_size = 2 * hidden_size
        self.fast = fused

    @property
    def takes_fused(self) -> bool:
        """Whether training runs fused_encoder.py's path (search never does)."""
        return self.fast and fused_encoder_supports(self.rnn)

    def describe(self) -> str:
        """One line for the training log: the path training takes and why."""
        if self.takes_fused:
            return f"encoder in training: fused (nmt/model/fused_encoder.py: {FUSED_ENCODER_SUPPORTS})"
        why = "model.fused_encoder is false" if not self.fast else f"the fast path covers {FUSED_ENCODER_SUPPORTS}"
        return f"encoder in training: packed nn.{type(self.rnn).__name__} (the reference; {why})"

    def forward(self, embedded: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # embedded: (batch, src_len, emb); lengths: (batch,) on the CPU
        if self.training and self.takes_fused:
            outputs, h_n = fused_encode(self.rnn, embedded, lengths)  # (2, batch, hidden): fwd, bwd
        else:
            packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
            packed_out, last = run_rnn(self.rnn, packed)  # GRU: h_n; LSTM: (h_n, c_n)
            h_n = last[0] if isinstance(last, tuple) else last  # (2*layers, batch, hidden), in input order
            outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=embedded.size(1))
        # outputs: (batch, src_len, 2*hidden), zeros on padding
        final = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # (batch, 2*hidden): top layer, fwd ‖ bwd
        return outputs, final
