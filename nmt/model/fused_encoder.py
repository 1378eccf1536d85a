"""The fast path of the encoder in training, for one bidirectional GRU layer (`model.fused_encoder`;
`fused_encoder_supports` says which encoders take it, the others and search run the reference).

encoder.py's reference packs the batch and calls nn.GRU. On a CPU that costs a training step
more than its matmuls: the packed GRU's backward fills and adds a zero tensor of the whole input
projection at every time step (the backward of a slice), and CPU autocast leaves a packed GRU in
fp32, so a bf16 run's encoder never got bf16 matmuls. `fused_encode` computes the same function
with PyTorch ops, as fused.py does for the decoder (gate order r, z, n, as nn.GRU):

1. The input gates W_ih x_t + b_ih of every step, both directions, in one matmul each before
   the loop.
2. The backward direction reads each sentence reversed within its length (padding stays at the
   end), so both directions step forward together: one batched matmul (2, batch, hidden) ×
   (2, hidden, 3·hidden) a step for the hidden gates.
3. A sentence's state stops changing at its last real token (a mask), so padding never enters
   the recurrence, as with packing; outputs on padding are zeros, as pad_packed_sequence gives.
4. The hidden weights' gradient comes once for all steps (fused.py's `_WeightGradOnce`).

Why it is exact: the same products, regrouped (a matmul's rows are independent), and the
linearity of the gradient. tests/test_fused_encoder.py holds it to the packed nn.GRU, outputs,
final states and gradients, in fp32 and under autocast. It uses the GRU's own parameters, so
checkpoints load either way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nmt.model.fused import _fixed, _WeightGradOnce

FUSED_ENCODER_SUPPORTS = "one bidirectional GRU layer"  # what `fused_encode` implements and tests


def fused_encoder_supports(rnn: nn.Module) -> bool:
    """Whether `fused_encode` computes this RNN: exactly the `FUSED_ENCODER_SUPPORTS` case."""
    return type(rnn) is nn.GRU and rnn.num_layers == 1 and rnn.bidirectional and rnn.batch_first


def _reverse_index(lengths: torch.Tensor, src_len: int) -> torch.Tensor:
    """(batch, src_len): position t of each sentence read backwards within its length, padding in place."""
    t = torch.arange(src_len, device=lengths.device).unsqueeze(0)  # (1, src_len)
    last = lengths.unsqueeze(1) - 1  # (batch, 1)
    return torch.where(t <= last, last - t, t)


def fused_encode(rnn: nn.GRU, embedded: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The packed bidirectional `rnn` on `embedded` (batch, src_len, emb) with `lengths` (batch,):
    outputs (batch, src_len, 2·hidden), zeros on padding, and h_n (2, batch, hidden) as nn.GRU's."""
    batch, src_len, emb = embedded.shape
    d = rnn.hidden_size
    lengths = lengths.to(embedded.device)
    rev = _reverse_index(lengths, src_len)  # (batch, src_len)
    reversed_emb = embedded.gather(1, rev.unsqueeze(-1).expand(-1, -1, emb))
    gates_in = torch.stack([F.linear(embedded, rnn.weight_ih_l0, rnn.bias_ih_l0),
                            F.linear(reversed_emb, rnn.weight_ih_l0_reverse, rnn.bias_ih_l0_reverse)])
    # gates_in: (2, batch, src_len, 3*hidden), forward and backward direction
    w_hh = torch.stack([rnn.weight_hh_l0, rnn.weight_hh_l0_reverse])  # (2, 3*hidden, hidden)
    b_hh = torch.stack([rnn.bias_hh_l0, rnn.bias_hh_l0_reverse])  # (2, 3*hidden)
    h_inputs: list[torch.Tensor] = []  # h_{t-1} of every step, (2, batch, hidden), filled by the loop
    zeros = _WeightGradOnce.apply(w_hh, h_inputs, (batch, src_len))  # (2, batch, src_len, 3*hidden)
    # added once for all steps, then in each step's GEMM (baddbmm): b_hh, and the input gates of r
    # and z, which enter as gi + gh (n's as gi_n + r * gh_n, so they stay apart)
    gi_rz, gi_n_all = gates_in.split([2 * d, d], dim=-1)
    bias = zeros + b_hh.to(zeros.dtype)[:, None, None] + F.pad(gi_rz, (0, d))  # (2, batch, src_len, 3*hidden)
    w_hh_fixed = _fixed(w_hh).transpose(1, 2)  # (2, hidden, 3*hidden)
    valid = (torch.arange(src_len, device=embedded.device) < lengths.unsqueeze(1)).unsqueeze(-1)  # (batch, src_len, 1)
    h = embedded.new_zeros(2, batch, d, dtype=gates_in.dtype)
    outputs = []
    for gi_n, bias_t, valid_t in zip(gi_n_all.unbind(2), bias.unbind(2), valid.unbind(1)):
        h_inputs.append(h.detach())
        g = torch.baddbmm(bias_t, h, w_hh_fixed)  # (2, batch, 3*hidden): [gi_rz + gh_rz ; gh_n]
        g_rz, gh_n = g.split([2 * d, d], dim=-1)
        r, z = torch.sigmoid(g_rz).chunk(2, dim=-1)
        n = torch.tanh(gi_n + r * gh_n)
        new = n + z * (h - n)  # (2, batch, hidden)
        h = torch.where(valid_t, new, h)  # a finished sentence keeps its last state
        outputs.append(torch.where(valid_t, new, 0.0))
    out = torch.stack(outputs, 2)  # (2, batch, src_len, hidden)
    backward = out[1].gather(1, rev.unsqueeze(-1).expand(-1, -1, d))  # back in source order
    return torch.cat([out[0], backward], dim=-1), h
