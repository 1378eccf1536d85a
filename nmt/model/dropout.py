"""Dropout whose mask is drawn from uniform numbers: `nn.Dropout`'s function, drawn faster on some CPUs.

nn.Dropout draws its mask with `bernoulli_`, which uses MKL's vectorised generator on Intel CPUs
only; elsewhere (an AMD EPYC, say) it draws element by element, and on a Multi30k training step
it took 5-6% of the time (docs/results.md, "Speed: where a step's time goes"). Keeping an element when U < 1 − p, U uniform on [0, 1),
is the same Bernoulli(1 − p) draw, and `torch.rand` fills 2.3 M numbers 2.6× faster than
`bernoulli_` there. The rest is native_dropout's arithmetic: x · mask · 1/(1 − p), in x's dtype,
and the gradient mask · 1/(1 − p). Only the random numbers differ from nn.Dropout's (they come
from the same generator, so a seeded run repeats itself and resumes exactly). On a GPU it is
F.dropout, whose fused kernel draws and applies the mask at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Dropout(nn.Module):
    """Zero each element with probability p in training (and scale the rest by 1/(1 − p)); identity in eval."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability {p} is not in [0, 1)")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":  # a GPU draws and applies the mask in one fused kernel
            return F.dropout(x, self.p, training=True)
        keep = 1.0 - self.p
        mask = (torch.rand(x.shape, device=x.device) < keep).to(x.dtype)  # Bernoulli(1 − p), one per element
        return x.mul(mask).mul_(1.0 / keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"
