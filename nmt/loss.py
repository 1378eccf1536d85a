"""Logits → label-smoothed cross-entropy, summed over real (non-padding) target tokens.

Two implementations of one function, behind `fused`: `F.cross_entropy` (the reference) and
`_SmoothedCrossEntropy`, which writes the gradient in one pass from the saved log-probabilities,
p − (1 − ε)·onehot − ε/V, instead of the NLL's and the smoothing term's gradients over the whole
(tokens × vocabulary) logits, their sum, and log_softmax's backward of it. The
output layer and its loss were a fifth of a Multi30k training step; tests/test_loss.py holds the
two equal, loss and gradient.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from nmt.batching import Batch
from nmt.tokenizer import PAD_ID


class _SmoothedCrossEntropy(torch.autograd.Function):
    """Σ_i over real tokens of −(1 − ε) log p_{i,t_i} − ε mean_c log p_{i,c}: torch's label-smoothed
    cross-entropy, computed in fp32 whatever the logits' dtype."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, targets: torch.Tensor, eps: float) -> torch.Tensor:
        logp = torch.log_softmax(logits.float(), dim=-1)  # (tokens, vocab); the one pass over the logits
        padding = targets == PAD_ID  # (tokens,)
        rows = -logp.gather(1, targets.unsqueeze(1)).squeeze(1)
        if eps:
            rows = (1 - eps) * rows - eps * logp.mean(dim=-1)
        ctx.save_for_backward(logp, targets, padding)
        ctx.eps, ctx.logits_dtype = eps, logits.dtype
        return rows.masked_fill(padding, 0.0).sum()  # padding rows count 0, whatever their logits

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        logp, targets, padding = ctx.saved_tensors
        eps = ctx.eps
        p = logp.exp()  # softmax, (tokens, vocab): the gradient is p − (1 − ε)·onehot − ε/V
        if eps:
            p.sub_(eps / logp.size(1))
        p.scatter_add_(1, targets.unsqueeze(1), logp.new_full((len(targets), 1), eps - 1))
        p.mul_(grad)
        p[padding] = 0.0  # no gradient from padding
        return p.to(ctx.logits_dtype), None, None


def batch_loss(model: torch.nn.Module, batch: Batch, label_smoothing: float) -> torch.Tensor:
    """A batch's summed loss under teacher forcing, from the logits of its real target tokens only:
    the output layer and the loss are a fifth of a training step, and padding owes them nothing."""
    real = batch.tgt_out != PAD_ID  # (batch, tgt_len)
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in, real)  # (tokens, tgt_vocab)
    return translation_loss(logits, batch.tgt_out[real], label_smoothing)


def translation_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float,
                     fused: bool = True) -> torch.Tensor:
    """Summed loss over the batch; padding positions contribute nothing.

    logits: (..., vocab), targets: (...): (batch, tgt_len, vocab) and (batch, tgt_len), or the real
    tokens only, (tokens, vocab) and (tokens,). Smoothing spreads `label_smoothing` of the
    probability mass uniformly over the vocabulary (torch's definition). The sum (not the mean)
    lets the trainer normalise by tokens across gradient steps and ranks. `fused`: the one-pass
    implementation (module docstring); False: F.cross_entropy.
    """
    flat, target = logits.reshape(-1, logits.size(-1)), targets.reshape(-1)
    if fused:
        return _SmoothedCrossEntropy.apply(flat, target, label_smoothing)
    return F.cross_entropy(flat, target, ignore_index=PAD_ID, label_smoothing=label_smoothing, reduction="sum")
