"""nmt/model/dropout.py: nn.Dropout's function with the mask drawn as U < 1 − p."""

from __future__ import annotations

import pytest
import torch

from nmt.model.dropout import Dropout


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dropout_keeps_where_the_uniform_draw_is_below_1_minus_p_and_scales_like_native_dropout(dtype):
    x = torch.randn(40, 50).to(dtype).requires_grad_()
    torch.manual_seed(3)
    out = Dropout(0.3).train()(x)
    torch.manual_seed(3)
    mask = (torch.rand(40, 50) < 0.7).to(dtype)  # the same draw, by hand
    assert out.dtype == dtype and torch.equal(out, x.detach().mul(mask).mul_(1 / 0.7))  # native_dropout's order
    out.backward(torch.ones_like(out))
    assert torch.equal(x.grad, mask.mul(1 / 0.7))


def test_dropout_keeps_1_minus_p_of_the_elements_and_the_mean():
    torch.manual_seed(0)
    x = torch.ones(1000, 1000)
    out = Dropout(0.3).train()(x)
    kept = (out != 0).float().mean().item()
    assert abs(kept - 0.7) < 0.002  # 1e6 Bernoulli(0.7) draws: sd 0.00046
    assert abs(out.mean().item() - 1.0) < 0.004  # scaled by 1/(1 − p): the expectation is kept


def test_dropout_is_the_identity_in_eval_mode_and_at_p_0():
    x = torch.randn(5, 7)
    assert Dropout(0.5).eval()(x) is x and Dropout(0.0).train()(x) is x


def test_a_seeded_dropout_repeats_its_mask():
    x = torch.randn(30, 30)
    draws = []
    for _ in range(2):
        torch.manual_seed(7)
        draws.append(Dropout(0.5).train()(x))
    assert torch.equal(*draws)
