"""nmt/loss.py: the one-pass label-smoothed cross-entropy against F.cross_entropy (the reference)."""

from __future__ import annotations

import pytest
import torch

from nmt.loss import translation_loss
from nmt.tokenizer import PAD_ID


def loss_and_grad(logits: torch.Tensor, targets: torch.Tensor, eps: float, fused: bool, scale: float = 0.37):
    x = logits.detach().requires_grad_()
    loss = translation_loss(x, targets, eps, fused=fused)
    (loss * scale).backward()  # a gradient other than 1 reaches the loss, as loss / tokens does
    return loss, x.grad


@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("shape", [(7, 50), (3, 5, 50)])  # real tokens only, or (batch, tgt_len) with padding
def test_the_fused_loss_is_cross_entropys_loss_and_gradient(eps, shape):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(*shape, generator=g) * 3
    targets = torch.randint(4, 50, shape[:-1], generator=g)
    if len(shape) == 3:
        targets[0, 3:] = PAD_ID  # padding contributes nothing
    (ref, ref_grad), (loss, grad) = (loss_and_grad(logits, targets, eps, f) for f in (False, True))
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(grad, ref_grad, atol=1e-6, rtol=1e-5)
    if len(shape) == 3:
        assert torch.all(grad[0, 3:] == 0)


def test_the_fused_loss_of_bf16_logits_is_computed_in_fp32_and_returns_a_bf16_gradient():
    g = torch.Generator().manual_seed(1)
    logits = (torch.randn(6, 40, generator=g) * 3).to(torch.bfloat16)
    targets = torch.randint(4, 40, (6,), generator=g)
    ref, ref_grad = loss_and_grad(logits.float(), targets, 0.1, False)  # in fp32, as CPU autocast runs it
    loss, grad = loss_and_grad(logits, targets, 0.1, True)
    assert loss.dtype == torch.float32 and grad.dtype == torch.bfloat16
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(grad, ref_grad.to(torch.bfloat16))  # the fp32 gradient, rounded once
