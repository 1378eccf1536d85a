"""What the decoder carries between steps, in a module of its own so that decoder.py and
fused.py (the fast training unroll) can both use it without importing each other."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class DecoderState:
    """The decoder's recurrent state and the encoder memory it attends over; `select` reorders
    the rows for beam search (and drops finished sentences)."""

    hidden: torch.Tensor  # (layers, batch, hidden)
    memory: torch.Tensor  # (batch, src_len, 2*enc_hidden)
    proj_keys: torch.Tensor  # (batch, src_len, attn): W_k h_j, computed once per batch
    mask: torch.Tensor  # (batch, src_len): True on real source tokens
    feed: torch.Tensor | None = None  # (batch, emb): o_{t-1}, with input feeding only

    def select(self, index: torch.Tensor) -> "DecoderState":
        return DecoderState(
            self.hidden.index_select(1, index),
            self.memory.index_select(0, index),
            self.proj_keys.index_select(0, index),
            self.mask.index_select(0, index),
            None if self.feed is None else self.feed.index_select(0, index),
        )

    def after_step(self, hidden: torch.Tensor, feed: torch.Tensor | None) -> "DecoderState":
        """The state after one step: a new hidden state (and o_t to feed, with input feeding),
        the same memory."""
        return DecoderState(hidden, self.memory, self.proj_keys, self.mask, feed)
