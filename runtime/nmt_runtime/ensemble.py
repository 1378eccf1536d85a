"""An ensemble of models decodes as one model: the search sees `encode` and `decode_step` only.

At every step each member gives its next-token log-probabilities for the same prefix, and the
ensemble's are the log of their mean probability (fairseq's rule):

    log p(y) = log( (1/N) Σ_i p_i(y) ) = logsumexp_i(log p_i(y)) − log N

Why the mean of probabilities rather than the mean of log-probabilities (Marian's weighted sum of
scores, a product of experts): the mean is itself a distribution (it sums to one, so scores,
length penalties and n-best lists mean what they mean for one model), and a token that one member
finds likely keeps real probability when another member is unsure of it, instead of one member
vetoing it. Members may differ in cell, attention, sizes and checkpoint; they must share the target
vocabulary (the Translators check both tokenizers by sha256) and read the same source ids.

Written on the array API, like the search: the members are nmt's torch models or the runtime's
exports (all of one kind).

The attention an ensemble returns is the mean of its members' weights (each sums to one over
the source, so the mean does too): the plots of an ensemble's translation show that mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import array_api_compat


@dataclass
class EnsembleState:
    """One state per member; `select` reorders each of them the same way."""

    states: tuple[Any, ...]

    def select(self, index: Any) -> "EnsembleState":
        return EnsembleState(tuple(s.select(index) for s in self.states))


class Ensemble:
    def __init__(self, members: Sequence[Any]) -> None:
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
        self.members = list(members)

    def encode(self, src: Any, src_lengths: Any) -> EnsembleState:
        return EnsembleState(tuple(m.encode(src, src_lengths) for m in self.members))

    def decode_step(self, prev_tokens: Any, state: EnsembleState) -> tuple[Any, EnsembleState, Any]:
        """prev_tokens (batch,) → log mean probability (batch, vocab), the next state, the mean
        attention (batch, src_len)."""
        steps = [m.decode_step(prev_tokens, s) for m, s in zip(self.members, state.states)]
        xp = array_api_compat.array_namespace(steps[0][0])
        # logsumexp over the members, folded pairwise: torch.logsumexp over a stacked (members, batch,
        # vocab) tensor reduces across the outer dimension, ~7x slower at beam 10 × 100 sentences × 8,000
        combined = xp.astype(steps[0][0], xp.float32, copy=False)  # (batch, vocab); logaddexp makes it fresh
        for log_probs, _, _ in steps[1:]:
            combined = xp.logaddexp(combined, xp.astype(log_probs, xp.float32, copy=False))
        combined = combined - math.log(len(steps))
        attention = xp.mean(xp.stack([xp.astype(a, xp.float32, copy=False) for _, _, a in steps]), axis=0)  # (batch, src_len)
        return combined, EnsembleState(tuple(s for _, s, _ in steps)), attention
