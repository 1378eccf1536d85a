"""A GRU decoder with Bahdanau attention (Bahdanau et al., 2015).

At step t, with s_{t-1} the previous top-layer state and y_{t-1} the previous target token:

    c_t, a_t = attention(s_{t-1}, encoder states)          context and weights
    s_t      = GRU([emb(y_{t-1}) ; c_t], s_{t-1})
    o_t      = tanh(W_o [s_t ; c_t ; emb(y_{t-1})])         the "deep output" (size = embedding)
    p(y_t)   = softmax(W_v o_t)                            W_v may be the target embedding table

`_recur` is that recurrence, one step: search calls it through `step`, and teacher forcing
(`forward`) unrolls it over the target (`_unroll`). Without input feeding, o_t for all steps is
computed after the recurrence in one batched matrix multiply.

With input feeding (`model.input_feeding`, as Joey NMT and OpenNMT-py have it), the previous
output o_{t-1} (zeros at t = 1) joins the GRU's input, s_t = GRU([emb(y_{t-1}) ; c_t ; o_{t-1}],
s_{t-1}), so the model knows what it attended to and said at the last step. o_t then has to be
computed inside the recurrence, one step at a time.

The switch `fused` (config `model.fused_decoder`) lets a one-layer decoder's teacher-forced
unroll take the fast path of fused.py instead: the same function up to rounding, with the same
parameters.
"""

from __future__ import annotations

import torch
from torch import nn

from nmt.model.attention import BahdanauAttention
from nmt.model.fused import fused_unroll
from nmt.model.state import DecoderState


class Decoder(nn.Module):
    def __init__(
        self,
        emb_size: int,
        memory_size: int,
        hidden_size: int,
        num_layers: int,
        attention_size: int,
        dropout: float,
        fused: bool = True,
        input_feeding: bool = False,
    ) -> None:
        super().__init__()
        self.num_layers, self.hidden_size, self.emb_size = num_layers, hidden_size, emb_size
        # fused.py's unroll is written for one GRU layer; with more, the reference runs
        self.fused = fused and num_layers == 1
        self.input_feeding = input_feeding
        self.attention = BahdanauAttention(memory_size, hidden_size, attention_size)
        self.rnn = nn.GRU(
            emb_size + memory_size + (emb_size if input_feeding else 0),
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
        feed = final.new_zeros(batch, self.emb_size) if self.input_feeding else None  # o_0
        return DecoderState(hidden, memory, self.attention.project_keys(memory), mask, feed)

    def _recur(
        self, prev_emb: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step of the recurrence: (s_t, c_t, new hidden, attention weights)."""
        context, weights = self.attention(state.hidden[-1], state.proj_keys, state.memory, state.mask)
        inputs = [prev_emb, context] if state.feed is None else [prev_emb, context, state.feed]
        rnn_in = torch.cat(inputs, dim=-1).unsqueeze(1)  # (batch, 1, emb+mem[+emb])
        out, hidden = self.rnn(rnn_in, state.hidden)  # out: (batch, 1, hidden)
        return out.squeeze(1), context, hidden, weights

    def _output(self, s: torch.Tensor, context: torch.Tensor, prev_emb: torch.Tensor) -> torch.Tensor:
        # works on (batch, ·) and on (batch, tgt_len, ·)
        return torch.tanh(self.readout(self.dropout(torch.cat([s, context, prev_emb], dim=-1))))

    def step(
        self, prev_emb: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One decoding step for search: prev_emb (batch, emb) → o (batch, emb), state, weights."""
        s, context, hidden, weights = self._recur(prev_emb, state)
        o = self._output(s, context, prev_emb)
        return o, state.after_step(hidden, o if self.input_feeding else None), weights

    def forward(
        self, tgt_emb: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced unroll over the whole target.

        tgt_emb: (batch, tgt_len, emb), embeddings of BOS y_1 … y_{n}
        returns o: (batch, tgt_len, emb) and attention: (batch, tgt_len, src_len)
        """
        if self.fused:
            readout = (self.readout, self.dropout) if self.input_feeding else None
            states, contexts, attention, o = fused_unroll(self.rnn, self.attention, tgt_emb, state, readout)
        else:
            states, contexts, attention, o = self._unroll(tgt_emb, state)
        if o is None:  # no input feeding: o of all steps in one batched matmul
            o = self._output(states, contexts, tgt_emb)
        return o, attention

    def _unroll(
        self, tgt_emb: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The reference: `_recur` step by step, as search runs it. s, c, a of every step:
        (batch, tgt_len, hidden), (batch, tgt_len, memory), (batch, tgt_len, src_len); and with
        input feeding o (batch, tgt_len, emb), which the recurrence needs (else None)."""
        states, contexts, attention, outputs = [], [], [], []
        # unbind, not tgt_emb[:, t]: the backward of each slice would fill a whole zero tensor
        for emb_t in tgt_emb.unbind(1):
            s, context, hidden, weights = self._recur(emb_t, state)
            o = self._output(s, context, emb_t) if self.input_feeding else None
            state = state.after_step(hidden, o)
            states.append(s)
            contexts.append(context)
            attention.append(weights)
            outputs.append(o)
        o_all = torch.stack(outputs, 1) if self.input_feeding else None
        return torch.stack(states, 1), torch.stack(contexts, 1), torch.stack(attention, 1), o_all

    def extra_repr(self) -> str:
        return f"fused={self.fused}, input_feeding={self.input_feeding}"
