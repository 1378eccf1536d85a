"""Subword regularization: a new segmentation of each training sentence every time it is drawn.

A unigram sentencepiece model can split "Straßenmusiker" in many ways; training on one fixed split
teaches the model that split only. Kudo (2018) samples a split per sentence and step instead, with
probability ∝ P(split)^alpha, from the model's n best: the model sees the same words cut in varied
pieces, which acts as a regularizer on small corpora. Evaluation and translation keep the best split.

sentencepiece can sample by itself (`enable_sampling=True`), but from a thread-local generator
seeded once per process, so a resumed run would draw other splits. Here the n best come from
sentencepiece and the draw is ours: a pure function of (seed, epoch, batch, sentence), so that
`--resume` continues the very same sequence of batches, and every rank draws the same global batch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nmt.tokenizer import UNK_ID, Tokenizer


class SubwordSampler:
    """Resegment a batch of sentences (ids of the best split) by sampling from their n best splits."""

    def __init__(self, src_tok: Tokenizer, tgt_tok: Tokenizer, alpha: float, nbest_size: int, seed: int) -> None:
        self.toks = {"src": src_tok, "tgt": tgt_tok}
        # log P(piece) of a unigram model: a split's log-probability is the sum over its pieces
        self.scores = {side: np.array([t.sp.get_score(i) for i in range(len(t))], dtype=np.float64)
                       for side, t in self.toks.items()}
        self.alpha = alpha
        self.nbest_size = nbest_size
        self.seed = seed

    def resample(self, side: str, sentences: Sequence[list[int]], epoch: int, batch: int) -> list[list[int]]:
        """One sampled split per sentence. A sentence with <unk> keeps its split: its text is not
        recoverable from the ids."""
        tok, scores = self.toks[side], self.scores[side]
        rng = np.random.default_rng([self.seed % 2**63, epoch, batch, 0 if side == "src" else 1])
        out = [list(s) for s in sentences]
        todo = [i for i, s in enumerate(sentences) if s and UNK_ID not in s]
        if not todo:
            return out
        texts = tok.sp.decode([list(sentences[i]) for i in todo])
        nbests = tok.sp.nbest_encode(texts, out_type=int, nbest_size=self.nbest_size)
        # every split of every sentence at once: log P(split) = the sum of its pieces' log P
        splits = [s for n in nbests for s in n]
        lengths = np.fromiter((len(s) for s in splits), dtype=np.int64, count=len(splits))
        flat = np.fromiter((i for s in splits for i in s), dtype=np.int64, count=int(lengths.sum()))
        logp = np.add.reduceat(scores[flat], np.concatenate([[0], np.cumsum(lengths)[:-1]]))
        # Gumbel-max: argmax(alpha * log P + Gumbel noise) is a draw ∝ P^alpha
        keys = self.alpha * logp + rng.gumbel(size=len(splits))
        first = 0
        for i, n in zip(todo, nbests):
            if n:
                out[i] = n[int(np.argmax(keys[first : first + len(n)]))]
            first += len(n)
        return out
