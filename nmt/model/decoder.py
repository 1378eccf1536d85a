"""The attention decoder: a GRU or LSTM (`model.rnn_type`) with an attention (`model.attention`).

At step t, with s_{t-1} the previous top-layer state, y_{t-1} the previous target token and
H the encoder states, one of two recurrences runs, chosen by the attention's
`reads_previous_state`:

Bahdanau (Bahdanau et al., 2015): attention reads the state before the RNN step

    c_t, a_t = attention(s_{t-1}, H)                        context and weights
    s_t      = RNN([emb(y_{t-1}) ; c_t], s_{t-1})
    o_t      = tanh(W_o [s_t ; c_t ; emb(y_{t-1})])         the "deep output" (size = embedding)

Luong (Luong et al., 2015): attention reads the state after the RNN step

    s_t      = RNN(emb(y_{t-1}), s_{t-1})
    c_t, a_t = attention(s_t, H)
    o_t      = h̃_t = tanh(W_c [c_t ; s_t])                  the attentional state (size = embedding)

and in both   p(y_t) = softmax(W_v o_t)                  W_v may be the target embedding table.

Dropout is applied to the readout's input. The RNN's state is h (GRU) or (h, c) (LSTM); the
bridge turns the encoder's final states into all of it. `_recur` is one step of the recurrence:
search calls it through `step`, and teacher forcing (`forward`) unrolls it over the target.

With input feeding (`model.input_feeding`, as Joey NMT and OpenNMT-py have it), the previous
output o_{t-1} (zeros at t = 1) joins the RNN's input, [emb(y_{t-1}) ; c_t ; o_{t-1}] or
[emb(y_{t-1}) ; o_{t-1}], so the model knows what it attended to and said at the last step.

The teacher-forced unroll (`unroll_path`) takes the fastest path this architecture supports, when
`fast` (config `model.fused_decoder`) is on:

- fused:    one GRU layer with Bahdanau: fused.py, the loop with the step-independent work taken out;
- sequence: Luong without input feeding: s_t does not depend on c_t, so one RNN call runs all
            steps, and the attention and readout take all steps in one batched matmul each;
- stepwise: the reference, `_recur` step by step as search runs it; everything else.

All three compute the same function up to rounding with the same parameters (tests hold them equal).
"""

from __future__ import annotations

import torch
from torch import nn

from nmt.model.attention import make_attention, padding_bias
from nmt.model.cells import make_rnn, run_rnn, states_per_layer
from nmt.model.dropout import Dropout
from nmt.model.fused import FUSED_SUPPORTS, fused_supports, fused_unroll
from nmt.model.state import DecoderState, RnnState


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
        rnn_type: str = "gru",
        attention: str = "bahdanau",
    ) -> None:
        super().__init__()
        self.num_layers, self.hidden_size, self.emb_size = num_layers, hidden_size, emb_size
        self.input_feeding, self.fast = input_feeding, fused
        self.attention = make_attention(attention, memory_size, hidden_size, attention_size)
        self.attend_first = self.attention.reads_previous_state  # Bahdanau's recurrence, else Luong's
        rnn_input = emb_size + (memory_size if self.attend_first else 0) + (emb_size if input_feeding else 0)
        self.rnn = make_rnn(rnn_type, rnn_input, hidden_size, num_layers, dropout)
        self.states_per_layer = states_per_layer(self.rnn)  # 1: h (GRU); 2: h and c (LSTM)
        self.bridge = nn.Linear(memory_size, self.states_per_layer * num_layers * hidden_size)
        readout_input = hidden_size + memory_size + (emb_size if self.attend_first else 0)
        self.readout = nn.Linear(readout_input, emb_size)
        self.dropout = Dropout(dropout)

    @property
    def unroll_path(self) -> str:
        """The teacher-forced unroll this decoder takes: fused, sequence or stepwise (module docstring)."""
        if self.fast and fused_supports(self.rnn, self.attention):
            return "fused"
        if self.fast and not self.attend_first and not self.input_feeding:
            return "sequence"
        return "stepwise"

    def describe_unroll(self) -> str:
        """One line for the training log: the path taken and why."""
        path = self.unroll_path
        if path == "fused":
            return f"decoder unroll: fused (nmt/model/fused.py: {FUSED_SUPPORTS})"
        if path == "sequence":
            return "decoder unroll: sequence (one RNN call over all steps: Luong attention without input feeding)"
        why = "model.fused_decoder is false" if not self.fast else (
            f"the fast paths cover {FUSED_SUPPORTS}, and Luong attention without input feeding")
        return f"decoder unroll: stepwise (the reference; {why})"

    def init_state(self, memory: torch.Tensor, final: torch.Tensor, mask: torch.Tensor) -> DecoderState:
        """Bridge the encoder's final states into the decoder's initial state: h, and an LSTM's c."""
        batch, layers = final.size(0), self.num_layers
        states = torch.tanh(self.bridge(final))  # (batch, states*layers*hidden)
        states = states.view(batch, self.states_per_layer * layers, self.hidden_size).transpose(0, 1).contiguous()
        hidden, cell = (states[:layers], states[layers:]) if self.states_per_layer == 2 else (states, None)
        feed = final.new_zeros(batch, self.emb_size) if self.input_feeding else None  # o_0
        bias = padding_bias(mask, memory.dtype)  # (batch, src_len)
        return DecoderState(hidden, memory, bias, self.attention.precompute(memory), cell, feed)

    def _rnn_input(self, prev_emb: torch.Tensor, context: torch.Tensor | None, state: DecoderState) -> torch.Tensor:
        inputs = [prev_emb] if context is None else [prev_emb, context]
        return torch.cat(inputs if state.feed is None else [*inputs, state.feed], dim=-1)

    def _recur(
        self, prev_emb: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor, RnnState, torch.Tensor]:
        """One step of the recurrence: (s_t, c_t, the RNN's new state, attention weights)."""
        memory, cache, bias = state.memory, state.attention_cache, state.padding_bias
        if self.attend_first:  # Bahdanau: attend with s_{t-1}, then step
            context, weights = self.attention(state.hidden[-1], cache, memory, bias)
            out, rnn_state = run_rnn(self.rnn, self._rnn_input(prev_emb, context, state).unsqueeze(1), state.rnn_state)
            return out.squeeze(1), context, rnn_state, weights
        # Luong: step, then attend with s_t
        out, rnn_state = run_rnn(self.rnn, self._rnn_input(prev_emb, None, state).unsqueeze(1), state.rnn_state)
        s = out.squeeze(1)  # (batch, hidden)
        context, weights = self.attention(s, cache, memory, bias)
        return s, context, rnn_state, weights

    def _output(self, s: torch.Tensor, context: torch.Tensor, prev_emb: torch.Tensor) -> torch.Tensor:
        # works on (batch, ·) and on (batch, tgt_len, ·)
        parts = [s, context, prev_emb] if self.attend_first else [context, s]
        return torch.tanh(self.readout(self.dropout(torch.cat(parts, dim=-1))))

    def step(
        self, prev_emb: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """One decoding step for search: prev_emb (batch, emb) → o (batch, emb), state, weights."""
        s, context, rnn_state, weights = self._recur(prev_emb, state)
        o = self._output(s, context, prev_emb)
        return o, state.after_step(rnn_state, o if self.input_feeding else None), weights

    def forward(
        self, tgt_emb: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced unroll over the whole target.

        tgt_emb: (batch, tgt_len, emb), embeddings of BOS y_1 … y_{n}
        returns o: (batch, tgt_len, emb) and attention: (batch, tgt_len, src_len)
        """
        path = self.unroll_path
        if path == "fused":
            readout = (self.readout, self.dropout) if self.input_feeding else None
            states, contexts, attention, o = fused_unroll(self.rnn, self.attention, tgt_emb, state, readout)
        elif path == "sequence":
            states, _ = run_rnn(self.rnn, tgt_emb, state.rnn_state)  # (batch, tgt_len, hidden): every s_t at once
            contexts, attention = self.attention(states, state.attention_cache, state.memory, state.padding_bias)
            o = None
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
            s, context, rnn_state, weights = self._recur(emb_t, state)
            o = self._output(s, context, emb_t) if self.input_feeding else None
            state = state.after_step(rnn_state, o)
            states.append(s)
            contexts.append(context)
            attention.append(weights)
            outputs.append(o)
        o_all = torch.stack(outputs, 1) if self.input_feeding else None
        return torch.stack(states, 1), torch.stack(contexts, 1), torch.stack(attention, 1), o_all

    def extra_repr(self) -> str:
        return f"unroll={self.unroll_path}, input_feeding={self.input_feeding}"
