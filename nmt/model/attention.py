"""Attention: which source positions the decoder reads at a step, behind one interface.

An attention module

- computes what it needs from the encoder memory once per batch, `precompute(memory) → cache`:
  a tuple of (batch, ...) tensors (projected keys, or nothing). The decoder state holds the cache
  without knowing its contents; beam search reorders it row by row (`DecoderState.select`).
- scores a query against that cache, `score(query, cache, memory) → (batch, steps, src_len)`; `forward`
  adds the padding bias (`padding_bias`: 0 on real tokens, −inf on padding, made once per batch),
  takes the softmax and the weighted sum of the memory (the same for all).
- says which decoder state it reads, `reads_previous_state`: Bahdanau's query is s_{t-1}, before
  the RNN step; Luong's is s_t, after it (the decoder runs the matching recurrence, decoder.py).

A new attention is one class here and one entry in `ATTENTIONS` (and its name in the config's
`model.attention` choices, which tests/test_architectures.py holds equal to `ATTENTIONS`).

    bahdanau       score(s, h_j) = vᵀ tanh(W_q s + W_k h_j)     (Bahdanau et al., 2015), query s_{t-1}
    luong_general  score(s, h_j) = sᵀ W_a h_j                   (Luong et al., 2015), query s_t
    luong_dot      score(s, h_j) = sᵀ h_j                       needs decoder size = encoder memory size
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from nmt.errors import NmtError

Cache = tuple[torch.Tensor, ...]  # each (batch, ...): what `precompute` made of the memory


class Attention(nn.Module):
    """The interface: `precompute` once per batch, then `forward` (or `score`) once per decoder step."""

    reads_previous_state: ClassVar[bool]  # query s_{t-1} (True) or s_t (False)

    def precompute(self, memory: torch.Tensor) -> Cache:
        return ()

    def score(self, query: torch.Tensor, cache: Cache, memory: torch.Tensor) -> torch.Tensor:
        """query (batch, steps, query_size) → unnormalised scores (batch, steps, src_len)."""
        raise NotImplementedError

    def forward(
        self,
        query: torch.Tensor,  # (batch, query_size) or (batch, steps, query_size): top-layer state(s)
        cache: Cache,
        memory: torch.Tensor,  # (batch, src_len, key_size): the encoder states
        bias: torch.Tensor,  # (batch, src_len): 0 on real source tokens, -inf on padding (`padding_bias`)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The context (batch[, steps], key_size) and the weights (batch[, steps], src_len), exactly 0
        on padding. A query of several steps is scored in one go (the decoder's sequence unroll)."""
        one_step = query.dim() == 2
        scores = self.score(query.unsqueeze(1) if one_step else query, cache, memory)  # (batch, steps, src_len)
        context, weights = self.weigh(scores, memory, bias)
        return (context.squeeze(1), weights.squeeze(1)) if one_step else (context, weights)

    @staticmethod
    def weigh(scores: torch.Tensor, memory: torch.Tensor, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Softmax over (batch, steps, src_len) scores with padding biased out, and the contexts
        (batch, steps, key_size)."""
        weights = torch.softmax(scores + bias.unsqueeze(1).to(scores.dtype), dim=-1)
        return torch.bmm(weights, memory), weights


def padding_bias(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """mask (batch, src_len), True on real source tokens → a bias (batch, src_len) of 0 there and −inf
    on padding. Added to the scores before the softmax it gives the same weights as masking them
    (exactly 0 on padding), and made once per batch it saves every decoder step a masked_fill and its
    backward."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, float("-inf"))


class BahdanauAttention(Attention):
    """Additive: score(s, h_j) = vᵀ tanh(W_q s + W_k h_j), W_k h_j computed once per batch."""

    reads_previous_state = True

    def __init__(self, key_size: int, query_size: int, attention_size: int) -> None:
        super().__init__()
        self.key_proj = nn.Linear(key_size, attention_size, bias=False)
        self.query_proj = nn.Linear(query_size, attention_size, bias=False)
        self.energy = nn.Linear(attention_size, 1, bias=False)

    def precompute(self, memory: torch.Tensor) -> Cache:
        return (self.key_proj(memory),)  # (batch, src_len, attn)

    def score(self, query: torch.Tensor, cache: Cache, memory: torch.Tensor) -> torch.Tensor:
        return self.score_projected(self.query_proj(query), cache)

    def score_projected(self, proj_query: torch.Tensor, cache: Cache) -> torch.Tensor:
        """Scores from W_q s already computed, (batch, steps, attn) (fused.py computes it in one
        matmul with the GRU's hidden gates)."""
        (proj_keys,) = cache  # (batch, src_len, attn)
        energies = torch.tanh(proj_keys.unsqueeze(1) + proj_query.unsqueeze(2))  # (batch, steps, src_len, attn)
        return self.energy(energies).squeeze(3)  # (batch, steps, src_len)


class LuongGeneralAttention(Attention):
    """Multiplicative: score(s, h_j) = sᵀ W_a h_j, with W_a h_j (batch, src_len, query) computed once."""

    reads_previous_state = False

    def __init__(self, key_size: int, query_size: int, attention_size: int) -> None:
        super().__init__()
        self.key_proj = nn.Linear(key_size, query_size, bias=False)  # W_a; attention_size is not used

    def precompute(self, memory: torch.Tensor) -> Cache:
        return (self.key_proj(memory),)  # (batch, src_len, query)

    def score(self, query: torch.Tensor, cache: Cache, memory: torch.Tensor) -> torch.Tensor:
        return torch.bmm(query, cache[0].transpose(1, 2))  # (batch, steps, src_len)


class LuongDotAttention(Attention):
    """Dot product: score(s, h_j) = sᵀ h_j; no parameters, no cache; the sizes must agree."""

    reads_previous_state = False

    def __init__(self, key_size: int, query_size: int, attention_size: int) -> None:
        super().__init__()
        if key_size != query_size:
            raise NmtError(
                f"'model.attention' luong_dot compares decoder states of size {query_size} with encoder "
                f"states of size {key_size}; set 'model.decoder_hidden_size' to 2 × 'model.encoder_hidden_size'"
            )

    def score(self, query: torch.Tensor, cache: Cache, memory: torch.Tensor) -> torch.Tensor:
        return torch.bmm(query, memory.transpose(1, 2))  # (batch, steps, src_len)


# the one place that maps `model.attention` names to classes
ATTENTIONS: dict[str, type[Attention]] = {
    "bahdanau": BahdanauAttention,
    "luong_general": LuongGeneralAttention,
    "luong_dot": LuongDotAttention,
}


def make_attention(name: str, key_size: int, query_size: int, attention_size: int) -> Attention:
    if name not in ATTENTIONS:
        raise NmtError(f"key 'model.attention' is {name!r}; choose one of {', '.join(ATTENTIONS)}")
    return ATTENTIONS[name](key_size, query_size, attention_size)
