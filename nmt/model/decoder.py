"""A GRU decoder with Bahdanau attention (Bahdanau et al., 2015).

At step t, with s_{t-1} the previous top-layer state and y_{t-1} the previous target token:

    c_t, a_t = attention(s_{t-1}, encoder states)          context and weights
    s_t      = GRU([emb(y_{t-1}) ; c_t], s_{t-1})
    o_t      = tanh(W_o [s_t ; c_t ; emb(y_{t-1})])         the "deep output" (size = embedding)
    p(y_t)   = softmax(W_v o_t)                            W_v may be the target embedding table

There is no input feeding (o_{t-1} is not fed back), so o_t for all steps is computed after the
recurrence in one batched matrix multiply. For training, a one-layer decoder also takes out of
the loop whatever does not depend on the recurrence: the GRU's input gates from emb(y_{t-1}) for
all steps at once, and inside the loop one matrix multiply of s_{t-1} with [W_q; W_hh] serves both
the attention query and the GRU's hidden gates; the weight gradients of the loop's matmuls are
computed once for all steps (`_unroll_fused`; `forward` says when it is used).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nmt.model.attention import BahdanauAttention


@dataclass
class DecoderState:
    """What the decoder needs between steps; `select` reorders it for beam search."""

    hidden: torch.Tensor  # (layers, batch, hidden)
    memory: torch.Tensor  # (batch, src_len, 2*enc_hidden)
    proj_keys: torch.Tensor  # (batch, src_len, attn)
    mask: torch.Tensor  # (batch, src_len)

    def select(self, index: torch.Tensor) -> "DecoderState":
        return DecoderState(
            self.hidden.index_select(1, index),
            self.memory.index_select(0, index),
            self.proj_keys.index_select(0, index),
            self.mask.index_select(0, index),
        )


class _WeightGradOnce(torch.autograd.Function):
    """Zeros (batch, steps, out) to add to x_t @ Wᵀ computed with a detached W at each step t of a
    loop: their backward gives W the gradient of all steps in one matmul, Σ_t g_tᵀ x_t, instead
    of one small matmul and one accumulation per step. `inputs` (the x_t, detached) is a list the
    loop fills during the forward pass; backward runs after it, so it is complete by then."""

    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor, inputs: list[torch.Tensor], steps: torch.Size) -> torch.Tensor:
        ctx.inputs, ctx.weight_dtype = inputs, weight.dtype
        # under autocast the loop's matmuls give the autocast dtype (bf16/fp16): the zeros match it,
        # so adding them changes no dtype, and their gradient arrives in that dtype
        device = weight.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else weight.dtype
        return weight.new_zeros(*steps, weight.size(0), dtype=dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        x = torch.stack(ctx.inputs, 1).to(grad.dtype)  # (batch, steps, in)
        # as autocast's own matmul backward: the product in the low dtype, the gradient in W's dtype
        return (grad.flatten(0, 1).t() @ x.flatten(0, 1)).to(ctx.weight_dtype), None, None  # (out, in)


class Decoder(nn.Module):
    def __init__(
        self,
        emb_size: int,
        memory_size: int,
        hidden_size: int,
        num_layers: int,
        attention_size: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.num_layers, self.hidden_size = num_layers, hidden_size
        self.attention = BahdanauAttention(memory_size, hidden_size, attention_size)
        self.rnn = nn.GRU(
            emb_size + memory_size,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.bridge = nn.Linear(memory_size, num_layers * hidden_size)
        self.readout = nn.Linear(hidden_size + memory_size + emb_size, emb_size)
        self.dropout = nn.Dropout(dropout)

    def init_state(self, memory: torch.Tensor, final: torch.Tensor, mask: torch.Tensor) -> DecoderState:
        """Bridge the encoder's final states into the decoder's initial state."""
        batch = final.size(0)
        hidden = torch.tanh(self.bridge(final))  # (batch, layers*hidden)
        hidden = hidden.view(batch, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()
        return DecoderState(hidden, memory, self.attention.project_keys(memory), mask)

    def _recur(
        self, prev_emb: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step of the recurrence: (s_t, c_t, new hidden, attention weights)."""
        context, weights = self.attention(state.hidden[-1], state.proj_keys, state.memory, state.mask)
        rnn_in = torch.cat([prev_emb, context], dim=-1).unsqueeze(1)  # (batch, 1, emb+mem)
        out, hidden = self.rnn(rnn_in, state.hidden)  # out: (batch, 1, hidden)
        return out.squeeze(1), context, hidden, weights

    def _output(self, s: torch.Tensor, context: torch.Tensor, prev_emb: torch.Tensor) -> torch.Tensor:
        # works on (batch, ·) and on (batch, tgt_len, ·)
        return torch.tanh(self.readout(self.dropout(torch.cat([s, context, prev_emb], dim=-1))))

    def forward(
        self, tgt_emb: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced unroll over the whole target.

        tgt_emb: (batch, tgt_len, emb), embeddings of BOS y_1 … y_{n}
        returns o: (batch, tgt_len, emb) and attention: (batch, tgt_len, src_len)
        """
        if self.num_layers == 1:
            states, contexts, attention = self._unroll_fused(tgt_emb, state)
        else:
            states, contexts, attention = self._unroll(tgt_emb, state)
        o = self._output(states, contexts, tgt_emb)
        return o, attention

    def _unroll(self, tgt_emb: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, ...]:
        """The recurrence step by step (`_recur`, as in search): s, c, a of every step."""
        states, contexts, attention = [], [], []
        # unbind, not tgt_emb[:, t]: the backward of each slice would fill a whole zero tensor
        for emb_t in tgt_emb.unbind(1):
            s, context, hidden, weights = self._recur(emb_t, state)
            state = DecoderState(hidden, state.memory, state.proj_keys, state.mask)
            states.append(s)
            contexts.append(context)
            attention.append(weights)
        return torch.stack(states, 1), torch.stack(contexts, 1), torch.stack(attention, 1)

    def _unroll_fused(self, tgt_emb: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, ...]:
        """The same recurrence for a one-layer GRU, with the work that does not depend on it
        taken out of the loop; a test checks it equals `_unroll`. Gate order r, z, n as nn.GRU."""
        rnn, att, emb_size, d = self.rnn, self.attention, tgt_emb.size(-1), self.hidden_size
        w_emb, w_ctx = rnn.weight_ih_l0[:, :emb_size], rnn.weight_ih_l0[:, emb_size:]
        gates_emb = F.linear(tgt_emb, w_emb, rnn.bias_ih_l0)  # (batch, tgt_len, 3*hidden), all steps
        w_h = torch.cat([att.query_proj.weight, rnn.weight_hh_l0])  # (attn + 3*hidden, hidden)
        b_h = F.pad(rnn.bias_hh_l0, (att.query_proj.weight.size(0), 0))  # no bias on the query
        h = state.hidden[0]  # (batch, hidden)
        # the two matmuls inside the loop use detached weights; their weight gradients come in
        # one matmul over all steps each, from the zeros added below (see _WeightGradOnce)
        h_inputs: list[torch.Tensor] = []  # s_{t-1} of every step, filled by the loop
        ctx_inputs: list[torch.Tensor] = []  # c_t of every step
        steps = tgt_emb.shape[:2]
        zeros_h = _WeightGradOnce.apply(w_h, h_inputs, steps)  # (batch, tgt_len, attn + 3*hidden)
        zeros_ctx = _WeightGradOnce.apply(w_ctx, ctx_inputs, steps)  # (batch, tgt_len, 3*hidden)
        w_h_fixed, w_ctx_fixed = w_h.detach(), w_ctx.detach()
        states, contexts, attention = [], [], []
        # unbind: one backward for all steps, see _unroll
        for gates_emb_t, zero_h, zero_ctx in zip(gates_emb.unbind(1), zeros_h.unbind(1), zeros_ctx.unbind(1)):
            h_inputs.append(h.detach())
            hw = F.linear(h, w_h_fixed, b_h) + zero_h  # (batch, attn + 3*hidden)
            query, gh = hw.split([w_h.size(0) - 3 * d, 3 * d], dim=-1)  # (batch, attn), (batch, 3*hidden)
            context, weights = att.attend(query, state.proj_keys, state.memory, state.mask)
            ctx_inputs.append(context.detach())
            gi = gates_emb_t + F.linear(context, w_ctx_fixed) + zero_ctx  # (batch, 3*hidden)
            # chunk, not slices: a slice's backward fills a zero tensor of the whole size
            (gi_r, gi_z, gi_n), (gh_r, gh_z, gh_n) = gi.chunk(3, dim=-1), gh.chunk(3, dim=-1)
            r, z = torch.sigmoid(gi_r + gh_r), torch.sigmoid(gi_z + gh_z)
            n = torch.tanh(gi_n + r * gh_n)
            h = n + z * (h - n)  # = (1 - z) * n + z * h
            states.append(h)
            contexts.append(context)
            attention.append(weights)
        return torch.stack(states, 1), torch.stack(contexts, 1), torch.stack(attention, 1)

    def step(
        self, prev_emb: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One decoding step for search: prev_emb (batch, emb) → o (batch, emb), state, weights."""
        s, context, hidden, weights = self._recur(prev_emb, state)
        new_state = DecoderState(hidden, state.memory, state.proj_keys, state.mask)
        return self._output(s, context, prev_emb), new_state, weights
