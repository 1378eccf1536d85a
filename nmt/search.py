"""The one way nmt decodes: `decode(models, source ids, options)` → hypotheses.

Validation, TensorBoard's samples, `Translator` (evaluate, translate, the prompt, `nmt average`'s
dev check) and `nmt serve` all call `decode`; it batches the sentences and runs `search` on each
batch. `search` is one loop for every strategy (`DecodeOptions.search`):

    beam    k live hypotheses a sentence, the best 2k of their k × vocab extensions ranked
    greedy  beam 1: one hypothesis, the best single extension (nothing else differs)
    sample  n_best independent hypotheses a sentence, each extended by a token drawn from
            p ∝ p_model^(1/temperature), restricted to top_k and then top_p

so a constraint or a model written for one works with all. The model is anything with
`encode(src, src_lengths) → state` and `decode_step(prev_tokens, state) → (log_probs, state,
attention)` whose state has `select(index)` (which reorders and prunes its rows): a `Seq2Seq`, or
an `Ensemble` of them (nmt/ensemble.py).

Every unfinished sentence advances in one `decode_step` call per step; finished sentences' rows
are dropped (`select`), so later steps run on fewer rows.

Lengths. A sentence may emit at most `max_output_length` = floor(ratio * src_len) + extra tokens
before EOS (`src_len` as in `Batch.src_lengths`, the source EOS included); at that step EOS is the
only token allowed, so every output ends. Before `min_length` tokens EOS is banned (unless nothing
else is left). PAD and BOS are never produced; UNK is. With `no_repeat_ngram_size` n, a token that
would complete an n-gram the hypothesis already holds is banned.

Scores. Greedy and sample: the total log-probability under the model (untempered) of the tokens
and the EOS. Beam: that sum divided by GNMT's length penalty (Wu et al., 2016)

    lp(len) = ((5 + len) / 6) ** alpha        len = number of tokens + 1 (the EOS counts)

so alpha = 0 gives raw log-probabilities and larger alpha favours longer outputs.

Beam stopping rule (fairseq's): at each step the top 2k of the k * vocab extensions are ranked;
those ending in EOS among the first k ranks finish (scored with the penalty), the best k that do
not end in EOS stay live. A sentence is done once it has k finished hypotheses, or at its maximum
length (where the forced EOS finishes all its live ones). The returned n_best are the best of the
finished ones. With k = 1 one candidate suffices (an EOS finishes the sentence), which is greedy.

Batch invariance. Nothing a row computes reads another sentence's row: padding is masked in the
attention and packed away in the encoder, lengths and limits are per sentence, and sampling draws
from one generator per hypothesis seeded by (seed, the sentence's ids, sample number). What is
left is the arithmetic of the matmuls: the BLAS computes the tail rows of a matmul whose row count is
not a multiple of its kernel's block with another kernel, so a row's log-probabilities can differ in
the last bits with the rows beside it (measured: nn.Linear(256, 512) on 1, 2, 3 or 7 rows differs
from the same rows among 100 by up to 8e-7). On the toy test set, batch sizes 1, 7 and 100 give
identical translations, greedy, beam 5 and sampled, with scores within 1.6e-5 (tests/test_decode.py
bounds them at 1e-4); a translation can change only where two hypotheses tie to that precision.

`search` runs under `torch.inference_mode()`, so returned attention tensors are inference
tensors: read them freely, `.clone()` one outside inference mode before changing it in place. The
model should be in eval mode (dropout off); `decode` does not switch it.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from nmt.batching import eval_batches
from nmt_runtime.decode_options import DecodeOptions
from nmt.ensemble import Ensemble
from nmt.tokenizer import BOS_ID, EOS_ID, PAD_ID

NEG_INF = float("-inf")


@dataclass
class Hypothesis:
    tokens: list[int]  # target ids, without BOS and without the final EOS
    score: float  # total log-probability (greedy, sample) / length-penalised score (beam)
    attention: torch.Tensor | None = None  # (len(tokens)+1, src_len) incl. the EOS step; on request


def max_output_length(src_lengths: torch.Tensor, ratio: float, extra: int) -> torch.Tensor:
    """Most tokens (EOS not counted) each sentence may produce: floor(ratio * src_len) + extra."""
    return torch.floor(src_lengths.double() * ratio).long() + extra  # (batch,)


def length_penalty_factor(length: int, alpha: float) -> float:
    """GNMT's lp(len) = ((5 + len) / 6) ** alpha; `length` counts the EOS."""
    return ((5.0 + length) / 6.0) ** alpha


def decode(
    models: nn.Module | Sequence[nn.Module],
    src_ids: Sequence[list[int]],
    options: DecodeOptions,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    attention: bool = False,
) -> list[list[Hypothesis]]:
    """The n-best hypotheses of each source (a list of ids, without EOS), in input order.

    `models`: one model, or several (an ensemble: their next-token distributions are combined at
    every step, see nmt/ensemble.py). An empty source gets one empty hypothesis (score 0) without
    running the model. Sentences are decoded `batch_size` at a time, sorted by length.
    """
    if not isinstance(models, nn.Module):
        models = models[0] if len(models) == 1 else Ensemble(models)
    results: list[list[Hypothesis]] = [[Hypothesis([], 0.0)] for _ in src_ids]
    todo = [i for i, ids in enumerate(src_ids) if ids]
    with torch.inference_mode():
        for batch in eval_batches([src_ids[i] for i in todo], None, batch_size):
            # the lengths stay on the CPU, as packing wants
            hyps = search(models, batch.src.to(device), batch.src_lengths, options, attention)
            for j, nbest in zip(batch.indices, hyps):
                results[todo[j]] = nbest
    return results


def sample_seed(seed: int, src_ids: Sequence[int], n: int) -> int:
    """The seed of sample `n` of a sentence: a function of the sentence, not of its batch."""
    key = f"{seed}:{n}:{','.join(map(str, src_ids))}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def _repeated_ngrams(tokens: torch.Tensor, n: int, vocab: int) -> torch.Tensor:
    """(rows, vocab) True where the token would complete an n-gram the row already holds."""
    # tokens: (rows, L) with L >= n
    rows, L = tokens.shape
    windows = tokens.unfold(1, n, 1)  # (rows, L-n+1, n): every n-gram so far
    prefix = tokens[:, L - n + 1 :]  # (rows, n-1): what the next token would follow
    match = (windows[:, :, :-1] == prefix.unsqueeze(1)).all(2)  # (rows, L-n+1)
    ids = torch.where(match, windows[:, :, -1], vocab)  # (rows, L-n+1); non-matches: a spare column
    banned = torch.zeros(rows, vocab + 1, dtype=torch.bool, device=tokens.device)
    return banned.scatter_(1, ids, True)[:, :vocab]


def _constrain(log_probs: torch.Tensor, t: int, force_eos: torch.Tensor, tokens: torch.Tensor,
               options: DecodeOptions) -> torch.Tensor:
    """-inf for what may not come next: PAD and BOS; all but EOS at a row's maximum length; a
    repeated n-gram; EOS before min_length (unless nothing else is left)."""
    # log_probs: (rows, vocab); force_eos: (rows,) bool; tokens: (rows, t), each row's tokens so far
    vocab = torch.arange(log_probs.size(1), device=log_probs.device)
    banned = (vocab == PAD_ID) | (vocab == BOS_ID)  # (vocab,)
    banned = banned | (force_eos.unsqueeze(1) & (vocab != EOS_ID))  # (rows, vocab)
    n = options.no_repeat_ngram_size
    if n and t >= n:
        banned = banned | _repeated_ngrams(tokens, n, log_probs.size(1))
    log_probs = log_probs.masked_fill(banned, NEG_INF)
    if t < options.min_length:  # min_length <= every row's maximum, so no row is forced here
        no_eos = log_probs.index_fill(1, vocab[EOS_ID : EOS_ID + 1], NEG_INF)
        stuck = ~no_eos.isfinite().any(1, keepdim=True)  # (rows, 1): EOS is all that is left
        log_probs = torch.where(stuck, log_probs, no_eos)
    return log_probs


def _draw(log_probs: torch.Tensor, options: DecodeOptions, generators: list[torch.Generator]) -> torch.Tensor:
    """One token per row from p ∝ exp(log_probs / T), cut to top_k then top_p; row i draws with
    generators[i]. Returns (rows, 1)."""
    log_probs = log_probs.float()
    # the best token at 0 before dividing: a tiny temperature then sends the others to -inf, not to NaN
    logits = (log_probs - log_probs.amax(dim=1, keepdim=True)) / options.temperature  # (rows, vocab)
    if 0 < options.top_k < logits.size(1):
        kth = logits.topk(options.top_k, dim=1).values[:, -1:]  # (rows, 1)
        logits = logits.masked_fill(logits < kth, NEG_INF)
    if options.top_p < 1.0:
        sorted_logits, order = logits.sort(dim=1, descending=True)
        probs = sorted_logits.softmax(dim=1)
        outside = probs.cumsum(dim=1) - probs >= options.top_p  # the mass before it already reaches p
        logits = logits.scatter(1, order, sorted_logits.masked_fill(outside, NEG_INF))
    probs = logits.softmax(dim=1)
    # a diverged model's NaN rows cannot be sampled: they take their argmax (NaN first), as greedy would
    broken = ~probs.isfinite().all(dim=1, keepdim=True)  # (rows, 1)
    if broken.any():
        probs = torch.where(broken, F.one_hot(log_probs.argmax(dim=1), probs.size(1)).to(probs.dtype), probs)
    return torch.stack([torch.multinomial(p, 1, generator=g) for p, g in zip(probs, generators)])


@torch.inference_mode()
def search(
    model: nn.Module,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    options: DecodeOptions,
    return_attention: bool = False,
) -> list[list[Hypothesis]]:
    """Decode one batch. src: (batch, src_len), src_lengths: (batch,) on the CPU. Returns, per
    sentence in batch order, its n_best hypotheses, best first (fewer only when fewer exist, e.g.
    beam search with a maximum length of 0). Sample n of a sentence draws with the seed
    `sample_seed(options.seed, the sentence's ids, n)`; a fresh base seed for the batch when
    options.seed is None."""
    how = options.search
    k = options.beam if how == "beam" else 1  # rows (live hypotheses) of a group
    n_groups = options.n_best if how == "sample" else 1  # groups of a sentence: its samples
    c = 2 * k if k > 1 else 1  # candidates ranked per group and step (at most k × vocab)
    alpha = options.length_penalty if how == "beam" else 0.0
    batch, src_len, device = src.size(0), src.size(1), src.device
    if batch == 0:
        return []
    src_lens = src_lengths.tolist()
    max_lens = max_output_length(src_lengths.cpu(), options.max_len_ratio, options.max_len_extra).tolist()
    G = batch * n_groups
    sentence = [s for s in range(batch) for _ in range(n_groups)]  # the sentence of each group
    finished: list[list[Hypothesis]] = [[] for _ in range(G)]  # by group

    # rows are (group, beam) pairs, group-major: row = a * k + beam
    state = model.encode(src, src_lengths)
    if G * k > batch:
        state = state.select(torch.arange(batch, device=device).repeat_interleave(n_groups * k))
    alive = list(range(G))  # the group of each k rows
    limits = torch.tensor([max_lens[s] for s in sentence], device=device)  # (A,)
    scores = torch.full((G, k), NEG_INF, device=device)  # (A, k) log-probability so far
    scores[:, 0] = 0.0  # one live hypothesis to start with, so step 0 makes no beam copies
    tokens = torch.zeros(G, k, 0, dtype=torch.long, device=device)  # (A, k, t)
    attn_hist = torch.zeros(G, k, 0, src_len, device=device)  # (A, k, t, src_len)
    prev = torch.full((G * k,), BOS_ID, dtype=torch.long, device=device)  # (A*k,)
    generators: list[torch.Generator] = []
    if how == "sample":
        base = options.seed if options.seed is not None else random.SystemRandom().randrange(2**63)
        generators = [torch.Generator(device).manual_seed(sample_seed(base, src[s, : src_lens[s] - 1].tolist(), n))
                      for s in range(batch) for n in range(n_groups)]

    for t in range(max(max_lens) + 1):
        log_probs, state, attn = model.decode_step(prev, state)  # (A*k, vocab), (A*k, src_len)
        A, vocab = scores.size(0), log_probs.size(1)
        at_limit = limits <= t  # (A,): EOS is all these groups may say now
        force_eos = at_limit.repeat_interleave(k) if k > 1 else at_limit  # (A*k,)
        log_probs = _constrain(log_probs, t, force_eos, tokens.view(A * k, t), options)
        attn = attn.view(A, k, src_len)

        # the candidates of each group: (A, c) scores, the beam each extends, the token
        if how == "sample":  # k = 1, c = 1
            next_tokens = _draw(log_probs, options, generators)  # (A, 1)
            top_scores = scores + log_probs.gather(1, next_tokens)  # (A, 1)
            origin = torch.zeros_like(next_tokens)
        else:
            cand = scores.unsqueeze(2) + log_probs.view(A, k, vocab)  # (A, k, vocab)
            top_scores, top_ids = cand.view(A, k * vocab).topk(min(c, k * vocab), dim=1)  # (A, c)
            origin = top_ids // vocab  # (A, c)
            next_tokens = top_ids % vocab  # (A, c)
        # at a group's maximum length EOS was the only finite choice; say so outright, so that a NaN
        # from a diverged model (NaN + -inf is NaN, and topk may rank any NaN first) ends it too
        next_tokens = torch.where(at_limit.unsqueeze(1), EOS_ID, next_tokens)  # (A, c)
        is_eos = next_tokens == EOS_ID

        # 1. EOS candidates among the first k ranks finish (not those of dead beams, at -inf; a NaN
        #    from a diverged model does, so that every sentence still gets its hypothesis)
        fin = is_eos[:, :k] & ~top_scores[:, :k].isneginf()  # (A, k)
        fin_a, fin_j = fin.nonzero(as_tuple=True)  # (F,), (F,)
        if fin_a.numel() > 0:
            fin_beam = origin[fin_a, fin_j]  # (F,)
            fin_tokens = tokens[fin_a, fin_beam].tolist()  # F lists of t tokens
            lp = length_penalty_factor(t + 1, alpha)  # t tokens + EOS
            fin_scores = (top_scores[fin_a, fin_j] / lp).tolist()
            if return_attention:  # (F, t+1, src_len): the history, then this (EOS) step
                fin_attn = torch.cat([attn_hist[fin_a, fin_beam], attn[fin_a, fin_beam].unsqueeze(1)], dim=1)
            for i, a in enumerate(fin_a.tolist()):
                att = fin_attn[i, :, : src_lens[sentence[alive[a]]]].cpu() if return_attention else None
                finished[alive[a]].append(Hypothesis(fin_tokens[i], fin_scores[i], att))

        # 2. the best k candidates that do not end in EOS stay live (stable sort keeps score order);
        #    with c = k (greedy, sample) that is every candidate: an EOS one is finished, and dropped below
        if c > k:
            live = torch.sort(is_eos.int(), dim=1, stable=True).indices[:, :k]  # (A, k) ranks
            scores, beams, prev = top_scores.gather(1, live), origin.gather(1, live), next_tokens.gather(1, live)
        else:
            scores, beams, prev = top_scores, origin, next_tokens
        a_idx = torch.arange(A, device=device).unsqueeze(1)  # (A, 1)
        if k > 1:  # reorder by back-pointer
            tokens = tokens[a_idx, beams]
        tokens = torch.cat([tokens, prev.unsqueeze(2)], dim=2)  # (A, k, t+1)
        if return_attention:  # (A, k, t+1, src_len)
            if k > 1:
                attn_hist, attn = attn_hist[a_idx, beams], attn[a_idx, beams]
            attn_hist = torch.cat([attn_hist, attn.unsqueeze(2)], dim=2)

        # 3. groups with k finished hypotheses, or at their maximum length, are done
        keep_list = [a for a, g in enumerate(alive) if len(finished[g]) < k and max_lens[sentence[g]] > t]
        if not keep_list:
            break
        if k > 1 or len(keep_list) < A:
            keep = torch.tensor(keep_list, device=device)  # (A',)
            rows = (a_idx * k + beams)[keep].view(-1)  # the state rows they extend
            state = state.select(rows)  # reorder by back-pointer and prune, in one go
            alive = [alive[a] for a in keep_list]
            limits, scores, tokens, prev = limits[keep], scores[keep], tokens[keep], prev[keep]
            if return_attention:
                attn_hist = attn_hist[keep]
            if generators:
                generators = [generators[a] for a in keep_list]
        prev = prev.reshape(-1)

    by_sentence: list[list[Hypothesis]] = [[] for _ in range(batch)]
    for g, hyps in enumerate(finished):
        by_sentence[sentence[g]].extend(hyps)
    return [sorted(hyps, key=lambda h: -h.score)[: options.n_best] for hyps in by_sentence]


def greedy_search(model: nn.Module, src: torch.Tensor, src_lengths: torch.Tensor, max_len_ratio: float = 1.5,
                  max_len_extra: int = 10, return_attention: bool = False) -> list[list[Hypothesis]]:
    """`search` with strategy greedy: the most probable token at every step."""
    options = DecodeOptions(strategy="greedy", beam=1, max_len_ratio=max_len_ratio, max_len_extra=max_len_extra)
    return search(model, src, src_lengths, options, return_attention)


def beam_search(model: nn.Module, src: torch.Tensor, src_lengths: torch.Tensor, beam_size: int = 5,
                length_penalty: float = 1.0, n_best: int = 1, max_len_ratio: float = 1.5, max_len_extra: int = 10,
                return_attention: bool = False) -> list[list[Hypothesis]]:
    """`search` with strategy beam (beam 1 is greedy search: its scores are then not length-penalised)."""
    options = DecodeOptions(beam=beam_size, length_penalty=length_penalty, n_best=n_best,
                            max_len_ratio=max_len_ratio, max_len_extra=max_len_extra)
    return search(model, src, src_lengths, options, return_attention)
