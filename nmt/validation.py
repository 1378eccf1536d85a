"""Validation: the dev loss of teacher forcing and the BLEU/chrF of greedy translations of the
dev set, as one result. What follows from it (best checkpoint, early stopping, learning-rate
reductions, logs) is the trainer's to decide.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from nmt.batching import eval_batches
from nmt.config import DecodeConfig
from nmt.data import DevSet
from nmt.evaluate import Scores, score
from nmt.loss import batch_loss
from nmt.model import Seq2Seq
from nmt.search import Hypothesis, decode
from nmt.tokenizer import Tokenizer


@dataclass
class ValidationResult:
    loss: float  # dev cross-entropy per target token (no label smoothing)
    scores: Scores  # BLEU and chrF of the greedy translations
    seconds: float

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.loss, 50))  # capped: an untrained model's loss may overflow exp


def greedy_decode(model: Seq2Seq, src_ids: list[list[int]], decode_cfg: DecodeConfig, device: torch.device,
                  attention: bool = False) -> list[Hypothesis]:
    """The greedy translation of each sentence (ids), in input order, with the config's length
    limits, min_length and n-gram blocking (its sampling settings do not apply); `model` is the bare
    Seq2Seq (not a DDP wrapper) in eval mode, on `device`."""
    options = decode_cfg.options().given(strategy="greedy")
    return [nbest[0] for nbest in decode(model, src_ids, options, decode_cfg.batch_size, device, attention)]


@torch.inference_mode()
def validate(model: Seq2Seq, dev: DevSet, tgt_tok: Tokenizer, decode: DecodeConfig,
             device: torch.device) -> ValidationResult:
    """Dev loss and greedy BLEU/chrF of `model` (left in eval mode)."""
    model.eval()
    t0 = time.time()
    nll, n_tokens = 0.0, 0
    for batch in eval_batches(dev.src_ids, dev.tgt_ids, decode.batch_size):
        batch = batch.to(device)
        nll += batch_loss(model, batch, 0.0).item()
        n_tokens += batch.n_tgt_tokens
    hypotheses = [tgt_tok.decode(h.tokens) for h in greedy_decode(model, dev.src_ids, decode, device)]
    return ValidationResult(nll / n_tokens, score(hypotheses, dev.references), time.time() - t0)
