"""What the decoder carries between steps, in a module of its own so that decoder.py and
fused.py (the fast training unroll) can both use it without importing each other.

Search needs one thing of it: `select`, which reorders (and prunes) the rows of every part, so
any cell and any attention work with any search."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nmt.model.attention import Cache

RnnState = torch.Tensor | tuple[torch.Tensor, torch.Tensor]  # a GRU's h, or an LSTM's (h, c)


@dataclass
class DecoderState:
    """The decoder's recurrent state and the encoder memory it attends over; `select` reorders
    the rows for beam search (and drops finished sentences)."""

    hidden: torch.Tensor  # (layers, batch, hidden): h
    memory: torch.Tensor  # (batch, src_len, 2*enc_hidden)
    padding_bias: torch.Tensor  # (batch, src_len): 0 on real source tokens, -inf on padding
    attention_cache: Cache  # each (batch, ...): the attention's precomputed keys, or ()
    cell: torch.Tensor | None = None  # (layers, batch, hidden): an LSTM's c; None for a GRU
    feed: torch.Tensor | None = None  # (batch, emb): the previous output, with input feeding only

    @property
    def rnn_state(self) -> RnnState:
        """The state as nn.GRU / nn.LSTM take it."""
        return self.hidden if self.cell is None else (self.hidden, self.cell)

    def select(self, index: torch.Tensor) -> "DecoderState":
        def rows(x: torch.Tensor | None, dim: int = 0) -> torch.Tensor | None:
            return None if x is None else x.index_select(dim, index)

        return DecoderState(
            rows(self.hidden, 1),
            rows(self.memory),
            rows(self.padding_bias),
            tuple(rows(x) for x in self.attention_cache),
            rows(self.cell, 1),
            rows(self.feed),
        )

    def after_step(self, rnn_state: RnnState, feed: torch.Tensor | None) -> "DecoderState":
        """The state after one step: the RNN's new state (and the output to feed, with input
        feeding), the same memory and attention cache."""
        hidden, cell = rnn_state if isinstance(rnn_state, tuple) else (rnn_state, None)
        return DecoderState(hidden, self.memory, self.padding_bias, self.attention_cache, cell, feed)
