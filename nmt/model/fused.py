"""The fast path of the decoder's teacher-forced unroll, for one GRU layer with Bahdanau attention
(`model.fused_decoder`; `fused_supports` says which decoders take it, the others run the reference).

decoder.py's `Decoder._unroll` is the reference: at each step t it runs the attention on s_{t-1}
and one `nn.GRU` step on [emb(y_{t-1}) ; c_t]. That is many small kernels per step, each with
its own backward. `fused_unroll` computes the same function with the work that does not depend on
the recurrence taken out of the loop (gate order r, z, n, as nn.GRU):

1. The GRU's input gates are W_ih [emb(y_{t-1}) ; c_t] + b_ih. The emb(y_{t-1}) part is known
   for every step before the loop (teacher forcing): one matmul for all steps. Only W_ih,ctx c_t
   stays inside.
2. s_{t-1} enters two matmuls, the attention query W_q s_{t-1} and the GRU's hidden gates
   W_hh s_{t-1} + b_hh: one matmul with [W_q ; W_hh] gives both.
3. The weight gradients of the loop's two matmuls are computed once for all steps
   (`_WeightGradOnce`) instead of once a step.
4. So is the encoder memory's gradient from the contexts c_t = a_t H (`_MemoryGradOnce`): one
   batched matmul Aᵀ G over all steps instead of T outer products a_tᵀ g_t of the memory's size,
   each cast and accumulated.

Why it is exact: 1 and 2 regroup the same products (a matmul's rows are independent), and 3 and 4
are the linearity of the gradient, dL/dW = Σ_t g_tᵀ x_t, summed by one matmul instead of T small
ones and T accumulations. Only the order of floating-point sums changes, so the two paths agree up to
rounding (tests/test_fused.py holds them equal, outputs and gradients). Both paths use the same
modules (the decoder's `nn.GRU` and attention), so the parameters and the state-dict keys are the
same: a checkpoint loads either way.

A multi-layer decoder takes the reference: layer 2's inputs are layer 1's outputs of the same step,
so step 1 above only holds for the first layer, and nn.GRU applies the dropout between layers. An
LSTM (other gates) and Luong attention (it reads s_t, after the step) are not written here either.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nmt.model.attention import Attention, BahdanauAttention
from nmt.model.state import DecoderState

FUSED_SUPPORTS = "one GRU layer with Bahdanau attention"  # what `fused_unroll` implements and tests


def fused_supports(rnn: nn.Module, attention: Attention) -> bool:
    """Whether `fused_unroll` computes this decoder's unroll: exactly the `FUSED_SUPPORTS` case."""
    return type(rnn) is nn.GRU and rnn.num_layers == 1 and type(attention) is BahdanauAttention


class _WeightGradOnce(torch.autograd.Function):
    """Zeros (batch, steps, out) to add to x_t @ Wᵀ computed with a detached W at each step t of a
    loop: their backward gives W the gradient of all steps in one matmul, Σ_t g_tᵀ x_t, instead
    of one small matmul and one accumulation per step. `inputs` (the x_t, detached) is a list the
    loop fills during the forward pass; backward runs after it, so it is complete by then.

    Adding zeros leaves the forward values as they are; the gradient reaching the zeros of step t
    is g_t, the gradient of that step's matmul output, which is all W's gradient needs."""

    @staticmethod
    def forward(ctx: Any, weight: torch.Tensor, inputs: list[torch.Tensor], steps: tuple[int, int]) -> torch.Tensor:
        ctx.inputs, ctx.weight_dtype = inputs, weight.dtype
        # weight (..., out, in) → zeros (..., batch, steps, out)
        return weight.new_zeros(*weight.shape[:-2], *steps, weight.size(-2), dtype=_loop_dtype(weight))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        # leading dims (...): none for one weight (out, in); (2,) for fused_encoder.py's two directions
        x = torch.stack(ctx.inputs, -2).to(grad.dtype)  # (..., batch, steps, in)
        # as autocast's own matmul backward: the product in the low dtype, the gradient in W's dtype
        dw = grad.flatten(-3, -2).transpose(-1, -2) @ x.flatten(-3, -2)  # (..., out, in)
        return dw.to(ctx.weight_dtype), None, None


class _MemoryGradOnce(torch.autograd.Function):
    """Zeros (batch, steps, memory) to add to the contexts c_t = a_t H of a loop that reads a
    detached memory H: their backward gives H its gradient of all steps in one batched matmul,
    Σ_t a_tᵀ g_t = Aᵀ G, from the attention weights a_t (detached) that the loop appends to
    `weights` (as `_WeightGradOnce`, per sentence)."""

    @staticmethod
    def forward(ctx: Any, memory: torch.Tensor, weights: list[torch.Tensor], steps: tuple[int, int]) -> torch.Tensor:
        ctx.weights, ctx.memory_dtype = weights, memory.dtype
        return memory.new_zeros(*steps, memory.size(-1), dtype=_loop_dtype(memory))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        a = torch.stack(ctx.weights, 1).to(grad.dtype)  # (batch, steps, src_len)
        return torch.bmm(a.transpose(1, 2), grad).to(ctx.memory_dtype), None, None  # (batch, src_len, memory)


def _loop_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype of the loop's matmul outputs: autocast's where it is on (bf16/fp16), else x's. The
    zeros of the two functions above are made in it, so adding them changes no dtype, and their
    gradient arrives in it."""
    device = x.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype


def _fixed(x: torch.Tensor) -> torch.Tensor:
    """`x` detached, in the dtype the loop's matmuls run in (`_loop_dtype`): cast once, not at every step."""
    return x.detach().to(_loop_dtype(x))


def fused_unroll(
    rnn: nn.GRU,
    att: BahdanauAttention,
    tgt_emb: torch.Tensor,
    state: DecoderState,
    readout: tuple[nn.Linear, nn.Module] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """`Decoder._unroll` for a one-layer `rnn`, faster: s, c, a of every step, and o with input feeding.

    tgt_emb: (batch, tgt_len, emb); returns s (batch, tgt_len, hidden), c (batch, tgt_len, memory),
    a (batch, tgt_len, src_len) and o (batch, tgt_len, emb) or None. `readout` (the decoder's
    readout layer and its dropout) means input feeding: o_t = tanh(W_o dropout([s_t ; c_t ;
    emb(y_{t-1})])) is computed in the loop and fed to the next step's GRU input beside c_{t+1}.
    """
    emb_size, d = tgt_emb.size(-1), rnn.hidden_size
    # w_ctx: the GRU input weights of c_t (and of o_{t-1} with input feeding), the recurrent inputs
    w_emb, w_ctx = rnn.weight_ih_l0[:, :emb_size], rnn.weight_ih_l0[:, emb_size:]
    gates_emb = F.linear(tgt_emb, w_emb, rnn.bias_ih_l0)  # (batch, tgt_len, 3*hidden), all steps
    w_h = torch.cat([att.query_proj.weight, rnn.weight_hh_l0])  # (attn + 3*hidden, hidden)
    b_h = F.pad(rnn.bias_hh_l0, (att.query_proj.weight.size(0), 0))  # no bias on the query
    h = state.hidden[0]  # (batch, hidden)
    # the matmuls inside the loop use detached weights; their weight gradients come in one
    # matmul over all steps each, from the zeros added below (see _WeightGradOnce)
    h_inputs: list[torch.Tensor] = []  # s_{t-1} of every step, filled by the loop
    ctx_inputs: list[torch.Tensor] = []  # c_t (and o_{t-1}) of every step
    steps = tgt_emb.shape[:2]
    zeros_h = _WeightGradOnce.apply(w_h, h_inputs, steps)  # (batch, tgt_len, attn + 3*hidden)
    # b_h joins those zeros once for all steps, in their dtype: one broadcast add, and one sum for
    # its gradient, instead of a bias (and under autocast a cast of it) in every step's matmul
    bias_h = zeros_h + b_h.to(zeros_h.dtype)  # (batch, tgt_len, attn + 3*hidden)
    zeros_ctx = _WeightGradOnce.apply(w_ctx, ctx_inputs, steps)  # (batch, tgt_len, 3*hidden)
    # under autocast the detached weights are cast to its dtype here, once: autocast would cast
    # them at every step (it caches the casts of parameters only, and these are slices and a cat)
    w_h_fixed, w_ctx_fixed = _fixed(w_h).t(), _fixed(w_ctx).t()  # (hidden, attn + 3*hidden), (in, 3*hidden)
    # the contexts read a detached memory; its gradient comes from these zeros (see _MemoryGradOnce)
    weights_of_steps: list[torch.Tensor] = []  # a_t of every step, filled by the loop
    zeros_mem = _MemoryGradOnce.apply(state.memory, weights_of_steps, steps)  # (batch, tgt_len, memory)
    memory_fixed = _fixed(state.memory)  # (batch, src_len, memory)
    if readout is not None:
        layer, dropout = readout
        out_inputs: list[torch.Tensor] = []  # dropout([s_t ; c_t ; emb(y_{t-1})]) of every step
        zeros_out = _WeightGradOnce.apply(layer.weight, out_inputs, steps).unbind(1)  # (batch, emb) a step
        w_out_fixed, feed = _fixed(layer.weight), state.feed
    states, contexts, attention, outputs = [], [], [], []
    # unbind, not [:, t]: one backward for all steps (a slice's would fill a whole zero tensor)
    # the input gates' step-independent part and the zeros, added once for all steps: each step's
    # matmuls then add them in their GEMM (addmm), not in kernels of their own
    gates_in = gates_emb + zeros_ctx  # (batch, tgt_len, 3*hidden)
    for t, (emb_t, gates_in_t, bias_t, zero_mem) in enumerate(
        zip(tgt_emb.unbind(1), gates_in.unbind(1), bias_h.unbind(1), zeros_mem.unbind(1))
    ):
        h_inputs.append(h.detach())
        hw = torch.addmm(bias_t, h, w_h_fixed)  # (batch, attn + 3*hidden)
        query, gh = hw.split([w_h.size(0) - 3 * d, 3 * d], dim=-1)  # (batch, attn), (batch, 3*hidden)
        context, weights = att.weigh(att.score_projected(query.unsqueeze(1), state.attention_cache), memory_fixed,
                                     state.padding_bias)
        weights = weights.squeeze(1)  # (batch, src_len)
        weights_of_steps.append(weights.detach())
        context = context.squeeze(1) + zero_mem  # (batch, mem)
        rnn_in = context if readout is None else torch.cat([context, feed], dim=-1)  # (batch, mem[+emb])
        ctx_inputs.append(rnn_in.detach())
        gi = torch.addmm(gates_in_t, rnn_in, w_ctx_fixed)  # (batch, 3*hidden)
        # split, not slices: a slice's backward fills a zero tensor of the whole size
        (gi_rz, gi_n), (gh_rz, gh_n) = gi.split([2 * d, d], dim=-1), gh.split([2 * d, d], dim=-1)
        r, z = torch.sigmoid(gi_rz + gh_rz).chunk(2, dim=-1)  # the reset and update gates in one kernel
        n = torch.tanh(gi_n + r * gh_n)
        h = n + z * (h - n)  # = (1 - z) * n + z * h
        states.append(h)
        contexts.append(context)
        attention.append(weights)
        if readout is not None:  # o_t, as Decoder._output computes it, to feed the next step
            x = dropout(torch.cat([h, context, emb_t], dim=-1))  # (batch, hidden+mem+emb)
            out_inputs.append(x.detach())
            feed = torch.tanh(F.linear(x, w_out_fixed, layer.bias) + zeros_out[t])  # (batch, emb)
            outputs.append(feed)
    o = torch.stack(outputs, 1) if readout is not None else None
    return torch.stack(states, 1), torch.stack(contexts, 1), torch.stack(attention, 1), o
