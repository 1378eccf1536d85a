"""Bahdanau (additive) attention: score(s, h_j) = vᵀ tanh(W_q s + W_k h_j), masked over padding."""

from __future__ import annotations

import torch
from torch import nn


class BahdanauAttention(nn.Module):
    def __init__(self, key_size: int, query_size: int, attention_size: int) -> None:
        super().__init__()
        self.key_proj = nn.Linear(key_size, attention_size, bias=False)
        self.query_proj = nn.Linear(query_size, attention_size, bias=False)
        self.energy = nn.Linear(attention_size, 1, bias=False)

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        """W_k h_j for every source position, once per batch (not once per decoder step)."""
        return self.key_proj(memory)  # (batch, src_len, attn)

    def forward(
        self,
        query: torch.Tensor,  # (batch, query_size): the decoder's previous top state
        proj_keys: torch.Tensor,  # (batch, src_len, attn)
        memory: torch.Tensor,  # (batch, src_len, key_size): the encoder states
        mask: torch.Tensor,  # (batch, src_len): True on real source tokens
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.attend(self.query_proj(query), proj_keys, memory, mask)

    def attend(
        self,
        proj_query: torch.Tensor,  # (batch, attn): W_q s, already projected
        proj_keys: torch.Tensor,  # (batch, src_len, attn)
        memory: torch.Tensor,  # (batch, src_len, key_size)
        mask: torch.Tensor,  # (batch, src_len)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.energy(torch.tanh(proj_keys + proj_query.unsqueeze(1)))
        scores = scores.squeeze(2).masked_fill(~mask, float("-inf"))  # (batch, src_len)
        weights = torch.softmax(scores, dim=-1)  # (batch, src_len), exactly 0 on padding
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)  # (batch, key_size)
        return context, weights
