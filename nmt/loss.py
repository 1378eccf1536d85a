"""Logits → label-smoothed cross-entropy, summed over real (non-padding) target tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nmt.tokenizer import PAD_ID


def translation_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """Summed loss over the batch; padding positions contribute nothing.

    logits: (batch, tgt_len, vocab), targets: (batch, tgt_len). Smoothing spreads
    `label_smoothing` of the probability mass uniformly over the vocabulary (torch's definition).
    The sum (not the mean) lets the trainer normalise by tokens across gradient steps and ranks.
    """
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)),
        targets.reshape(-1),
        ignore_index=PAD_ID,
        label_smoothing=label_smoothing,
        reduction="sum",
    )
