"""The one way nmt decodes: `decode(models, source ids, options)` → hypotheses, for torch models
(nmt) and ONNX exports (nmt-runtime) alike.

It is written once, on the Python array API (array-api-compat's namespace of the arrays the model
returns): numpy arrays for an export (nmt_runtime/exported.py), torch tensors, on any device, for
nmt's models (nmt/search.py runs it under torch.inference_mode). The one thing the array API
lacks is done per library: the top k of a row (torch.topk; in numpy, a sort of the few values
above a bound made of block maxima, see `topk`); sampling draws its uniforms from numpy for both. So a model and its export
decode by the same steps, and differ only where their log-probabilities do (in the last bits).

Validation, TensorBoard's samples, `Translator` (evaluate, translate, the prompt, `nmt average`'s
dev check), `nmt serve` and the runtime's translate, evaluate and serve all call `decode`; it
batches the sentences and runs `search` on each batch.

`search` is one loop for every strategy (`DecodeOptions.search`):

    beam    k live hypotheses a sentence, the best 2k of their k × vocab extensions ranked
    greedy  beam 1: one hypothesis, the best single extension (nothing else differs)
    sample  n_best independent hypotheses a sentence, each extended by a token drawn from
            p ∝ p_model^(1/temperature), restricted to top_k and then top_p

so a constraint or a model written for one works with all. The model is anything with
`encode(src, src_lengths) → state` and `decode_step(prev_tokens, state) → (log_probs, state,
attention)` whose state has `select(index)` (which reorders and prunes its rows), and whose
log_probs are a fresh, writable array that the search may overwrite: a `Seq2Seq`, or
an `Ensemble` of them (nmt_runtime/ensemble.py).

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
from one generator per hypothesis seeded by (seed, the sentence's ids, sample number): numpy's
PCG64, a uniform u per step, the token where the cumulative probability first exceeds u. What is
left is the arithmetic of the matmuls: the BLAS computes the tail rows of a matmul whose row count is
not a multiple of its kernel's block with another kernel, so a row's log-probabilities can differ in
the last bits with the rows beside it (measured: nn.Linear(256, 512) on 1, 2, 3 or 7 rows differs
from the same rows among 100 by up to 8e-7). On the toy test set, batch sizes 1, 7 and 100 give
identical translations, greedy, beam 5 and sampled, with scores within 1.6e-5 (tests/test_decode.py
bounds them at 1e-4); a translation can change only where two hypotheses tie to that precision.

Attention matrices come back as arrays of the model's library, on the CPU. The model should be in
eval mode (dropout off); `decode` does not switch it.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import array_api_compat
import numpy as np

from nmt_runtime.batches import source_batches
from nmt_runtime.decode_options import DecodeOptions
from nmt_runtime.ensemble import Ensemble
from nmt_runtime.tokenizer import BOS_ID, EOS_ID, PAD_ID

NEG_INF = float("-inf")
Array = Any  # a numpy array or a torch tensor: whatever the model returns


@dataclass
class Hypothesis:
    tokens: list[int]  # target ids, without BOS and without the final EOS
    score: float  # total log-probability (greedy, sample) / length-penalised score (beam)
    attention: Array | None = None  # (len(tokens)+1, src_len) incl. the EOS step, on the CPU; on request


def max_output_length(src_lengths: Sequence[int], ratio: float, extra: int) -> list[int]:
    """Most tokens (EOS not counted) each sentence may produce: floor(ratio * src_len) + extra."""
    return [math.floor(float(n) * ratio) + extra for n in src_lengths]


def length_penalty_factor(length: int, alpha: float) -> float:
    """GNMT's lp(len) = ((5 + len) / 6) ** alpha; `length` counts the EOS."""
    return ((5.0 + length) / 6.0) ** alpha


def decode(
    models: Any,
    src_ids: Sequence[list[int]],
    options: DecodeOptions,
    batch_size: int,
    arrays: Callable[[np.ndarray, np.ndarray], tuple[Array, Array]],
    attention: bool = False,
) -> list[list[Hypothesis]]:
    """The n-best hypotheses of each source (a list of ids, without EOS), in input order.

    `models`: one model, or a list of several (an ensemble: their next-token distributions are
    combined at every step, see nmt_runtime/ensemble.py). `arrays(src, src_lengths)` turns a
    batch's numpy ids (batch, src_len) and lengths (batch,) into what the model's `encode` takes
    (torch tensors on its device, say). An empty source gets one empty hypothesis (score 0)
    without running the model. Sentences are decoded `batch_size` at a time, sorted by length.
    """
    if isinstance(models, (list, tuple)):
        models = models[0] if len(models) == 1 else Ensemble(models)
    results: list[list[Hypothesis]] = [[Hypothesis([], 0.0)] for _ in src_ids]
    todo = [i for i, ids in enumerate(src_ids) if ids]
    for indices, src, lengths in source_batches([src_ids[i] for i in todo], batch_size):
        hyps = search(models, *arrays(src, lengths), options, attention)
        for j, nbest in zip(indices, hyps):
            results[todo[j]] = nbest
    return results


def sample_seed(seed: int, src_ids: Sequence[int], n: int) -> int:
    """The seed of sample `n` of a sentence: a function of the sentence, not of its batch."""
    key = f"{seed}:{n}:{','.join(map(str, src_ids))}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def _host(x: Array) -> np.ndarray:
    """A numpy view (or copy) of an array of either library, from any device."""
    return np.asarray(array_api_compat.to_device(x, "cpu"))


def topk(x: Array, k: int) -> tuple[Array, Array]:
    """The k largest of each row of x (rows, n), best first: (values, indices). A NaN ranks first,
    as torch.topk ranks it; numpy breaks exact ties by the lower index."""
    if array_api_compat.is_torch_array(x):
        return x.topk(k, dim=1)
    rows, n = x.shape
    # each of the k best block maxima is a value >= tau, so the k largest of a row are >= tau: only those
    # few candidates are sorted (numpy's argpartition over a beam's k * vocab row is ~5x slower)
    maxima = np.maximum.reduceat(x, np.arange(0, n, -(-n // min(max(n // 8, 1), 64))), axis=1)  # (rows, blocks)
    if maxima.shape[1] >= k and not np.isnan(maxima).any():
        tau = np.partition(maxima, maxima.shape[1] - k, axis=1)[:, maxima.shape[1] - k]  # (rows,)
        keep = x >= tau[:, None]
        low = tau == NEG_INF  # fewer than k finite values: the finite ones and the first k columns
        if low.any():
            keep[low] = (x[low] != NEG_INF) | (np.arange(n) < k)
        r, col = np.nonzero(keep)  # row-major: by row, then by column
        order = np.lexsort((col, -x[r, col], r))  # by row, value (descending), column
        starts = np.searchsorted(r[order], np.arange(rows))
        pick = order[starts[:, None] + np.arange(k)]  # (rows, k)
        return x[r[pick], col[pick]], col[pick]
    # few columns, or a NaN (a diverged model): a stable sort of the whole row
    idx = np.argsort(-np.where(np.isnan(x), np.inf, x), axis=1, kind="stable")[:, :k]
    return np.take_along_axis(x, idx, 1), idx


def _repeated_ngrams(xp: Any, tokens: Array, n: int, vocab: int) -> Array:
    """(rows, vocab) True where the token would complete an n-gram the row already holds."""
    # tokens: (rows, L) with L >= n
    rows, L = tokens.shape
    windows = xp.stack([tokens[:, i : L - n + 1 + i] for i in range(n)], axis=2)  # (rows, L-n+1, n): every n-gram
    prefix = tokens[:, L - n + 1 :]  # (rows, n-1): what the next token would follow
    match = xp.all(windows[:, :, :-1] == prefix[:, None, :], axis=2)  # (rows, L-n+1)
    ids = xp.where(match, windows[:, :, -1], vocab)  # (rows, L-n+1); non-matches: a spare column
    banned = xp.zeros((rows, vocab + 1), dtype=xp.bool, device=array_api_compat.device(tokens))
    banned[xp.arange(rows, device=array_api_compat.device(tokens))[:, None], ids] = True
    return banned[:, :vocab]


def _constrain(xp: Any, log_probs: Array, t: int, force_eos: Array, tokens: Array, options: DecodeOptions) -> Array:
    """-inf for what may not come next: PAD and BOS; all but EOS at a row's maximum length; a
    repeated n-gram; EOS before min_length (unless nothing else is left). Writes into log_probs (the
    model's fresh output: a pass over rows × vocab less per step than a mask would take)."""
    # log_probs: (rows, vocab); force_eos: (rows,) bool; tokens: (rows, t), each row's tokens so far
    log_probs[:, PAD_ID] = NEG_INF
    log_probs[:, BOS_ID] = NEG_INF
    if bool(xp.any(force_eos)):
        eos = log_probs[force_eos, EOS_ID]  # (forced,), a copy
        log_probs[force_eos, :] = NEG_INF
        log_probs[force_eos, EOS_ID] = eos
    n = options.no_repeat_ngram_size
    if n and t >= n:
        log_probs = xp.where(_repeated_ngrams(xp, tokens, n, log_probs.shape[1]), NEG_INF, log_probs)
    if t < options.min_length:  # min_length <= every row's maximum, so no row is forced here
        vocab = xp.arange(log_probs.shape[1], device=array_api_compat.device(log_probs))
        no_eos = xp.where(vocab == EOS_ID, NEG_INF, log_probs)
        stuck = ~xp.any(xp.isfinite(no_eos), axis=1, keepdims=True)  # (rows, 1): EOS is all that is left
        log_probs = xp.where(stuck, log_probs, no_eos)
    return log_probs


def _softmax(xp: Any, x: Array) -> Array:
    e = xp.exp(x - xp.max(x, axis=1, keepdims=True))
    return e / xp.sum(e, axis=1, keepdims=True)


def _draw(xp: Any, log_probs: Array, options: DecodeOptions, generators: list[np.random.Generator]) -> Array:
    """One token per row from p ∝ exp(log_probs / T), cut to top_k then top_p; row i draws a
    uniform from generators[i]. Returns (rows, 1)."""
    log_probs = xp.astype(log_probs, xp.float32, copy=False)
    # the best token at 0 before dividing: a tiny temperature then sends the others to -inf, not to NaN
    logits = (log_probs - xp.max(log_probs, axis=1, keepdims=True)) / options.temperature  # (rows, vocab)
    if 0 < options.top_k < logits.shape[1]:
        kth = topk(logits, options.top_k)[0][:, -1:]  # (rows, 1)
        logits = xp.where(logits < kth, NEG_INF, logits)
    if options.top_p < 1.0:
        order = xp.argsort(logits, axis=1, descending=True, stable=True)
        sorted_logits = xp.take_along_axis(logits, order, axis=1)
        probs = _softmax(xp, sorted_logits)
        outside = xp.cumulative_sum(probs, axis=1) - probs >= options.top_p  # the mass before it reaches p
        kept = xp.where(outside, NEG_INF, sorted_logits)
        logits = xp.empty_like(logits)
        logits[xp.arange(logits.shape[0], device=array_api_compat.device(logits))[:, None], order] = kept
    probs = _host(_softmax(xp, logits)).astype(np.float64)  # (rows, vocab)
    cdf = np.cumsum(probs, axis=1)  # (rows, vocab); u * total falls in a token's own step of it
    u = np.array([g.random() for g in generators]) * cdf[:, -1]  # (rows,)
    tokens = np.sum(cdf <= u[:, None], axis=1)  # the token whose step of the cdf holds u (searchsorted, right)
    # a diverged model's NaN rows cannot be sampled: they take their argmax (NaN first), as greedy would
    broken = ~np.isfinite(cdf[:, -1])
    if broken.any():
        tokens[broken] = np.argmax(_host(log_probs)[broken], axis=1)
    return xp.asarray(tokens, dtype=xp.int64, device=array_api_compat.device(log_probs))[:, None]


def search(model: Any, src: Array, src_lengths: Array, options: DecodeOptions,
           return_attention: bool = False) -> list[list[Hypothesis]]:
    """Decode one batch. src: (batch, src_len), src_lengths: (batch,) as the model's `encode` takes
    them. Returns, per sentence in batch order, its n_best hypotheses, best first (fewer only when
    fewer exist, e.g. beam search with a maximum length of 0). Sample n of a sentence draws with
    the seed `sample_seed(options.seed, the sentence's ids, n)`; a fresh base seed for the batch
    when options.seed is None."""
    xp = array_api_compat.array_namespace(src)
    device = array_api_compat.device(src)
    how = options.search
    k = options.beam if how == "beam" else 1  # rows (live hypotheses) of a group
    n_groups = options.n_best if how == "sample" else 1  # groups of a sentence: its samples
    c = 2 * k if k > 1 else 1  # candidates ranked per group and step (at most k × vocab)
    alpha = options.length_penalty if how == "beam" else 0.0
    batch, src_len = src.shape
    if batch == 0:
        return []
    src_lens = [int(n) for n in _host(src_lengths)]
    max_lens = max_output_length(src_lens, options.max_len_ratio, options.max_len_extra)
    G = batch * n_groups
    sentence = [s for s in range(batch) for _ in range(n_groups)]  # the sentence of each group
    finished: list[list[Hypothesis]] = [[] for _ in range(G)]  # by group

    # rows are (group, beam) pairs, group-major: row = a * k + beam
    state = model.encode(src, src_lengths)
    if G * k > batch:
        state = state.select(xp.repeat(xp.arange(batch, device=device), n_groups * k))
    alive = list(range(G))  # the group of each k rows
    limits = xp.asarray([max_lens[s] for s in sentence], device=device)  # (A,)
    scores = xp.full((G, k), NEG_INF, dtype=xp.float32, device=device)  # (A, k) log-probability so far
    scores[:, 0] = 0.0  # one live hypothesis to start with, so step 0 makes no beam copies
    tokens = xp.zeros((G, k, 0), dtype=xp.int64, device=device)  # (A, k, t)
    attn_hist = xp.zeros((G, k, 0, src_len), dtype=xp.float32, device=device)  # (A, k, t, src_len)
    prev = xp.full((G * k,), BOS_ID, dtype=xp.int64, device=device)  # (A*k,)
    generators: list[np.random.Generator] = []
    if how == "sample":
        base = options.seed if options.seed is not None else random.SystemRandom().randrange(2**63)
        ids = _host(src)
        generators = [np.random.default_rng(sample_seed(base, ids[s, : src_lens[s] - 1].tolist(), n))
                      for s in range(batch) for n in range(n_groups)]

    for t in range(max(max_lens) + 1):
        log_probs, state, attn = model.decode_step(prev, state)  # (A*k, vocab), (A*k, src_len)
        A, vocab = scores.shape[0], log_probs.shape[1]
        at_limit = limits <= t  # (A,): EOS is all these groups may say now
        force_eos = xp.repeat(at_limit, k) if k > 1 else at_limit  # (A*k,)
        log_probs = _constrain(xp, log_probs, t, force_eos, xp.reshape(tokens, (A * k, t)), options)
        attn = xp.reshape(attn, (A, k, src_len))

        # the candidates of each group: (A, c) scores, the beam each extends, the token
        if how == "sample":  # k = 1, c = 1
            next_tokens = _draw(xp, log_probs, options, generators)  # (A, 1)
            top_scores = scores + xp.take_along_axis(log_probs, next_tokens, axis=1)  # (A, 1)
            origin = xp.zeros_like(next_tokens)
        else:
            cand = scores[:, :, None] + xp.reshape(log_probs, (A, k, vocab))  # (A, k, vocab)
            top_scores, top_ids = topk(xp.reshape(cand, (A, k * vocab)), min(c, k * vocab))  # (A, c)
            origin = top_ids // vocab  # (A, c)
            next_tokens = top_ids % vocab  # (A, c)
        # at a group's maximum length EOS was the only finite choice; say so outright, so that a NaN
        # from a diverged model (NaN + -inf is NaN, and topk may rank any NaN first) ends it too
        next_tokens = xp.where(at_limit[:, None], EOS_ID, next_tokens)  # (A, c)
        is_eos = next_tokens == EOS_ID

        # 1. EOS candidates among the first k ranks finish (not those of dead beams, at -inf; a NaN
        #    from a diverged model does, so that every sentence still gets its hypothesis)
        fin = is_eos[:, :k] & (top_scores[:, :k] != NEG_INF)  # (A, k)
        fin_a, fin_j = xp.nonzero(fin)  # (F,), (F,)
        if fin_a.shape[0] > 0:
            fin_beam = origin[fin_a, fin_j]  # (F,)
            fin_tokens = tokens[fin_a, fin_beam].tolist()  # F lists of t tokens
            lp = length_penalty_factor(t + 1, alpha)  # t tokens + EOS
            fin_scores = (top_scores[fin_a, fin_j] / lp).tolist()
            if return_attention:  # (F, t+1, src_len): the history, then this (EOS) step
                fin_attn = xp.concat([attn_hist[fin_a, fin_beam], attn[fin_a, fin_beam][:, None, :]], axis=1)
            for i, a in enumerate(fin_a.tolist()):
                att = None
                if return_attention:
                    att = array_api_compat.to_device(fin_attn[i, :, : src_lens[sentence[alive[a]]]], "cpu")
                finished[alive[a]].append(Hypothesis(fin_tokens[i], fin_scores[i], att))

        # 2. the best k candidates that do not end in EOS stay live (stable sort keeps score order);
        #    with c = k (greedy, sample) that is every candidate: an EOS one is finished, and dropped below
        if c > k:
            live = xp.argsort(xp.astype(is_eos, xp.int32), axis=1, stable=True)[:, :k]  # (A, k) ranks
            scores, beams, prev = (xp.take_along_axis(x, live, axis=1) for x in (top_scores, origin, next_tokens))
        else:
            scores, beams, prev = top_scores, origin, next_tokens
        a_idx = xp.arange(A, device=device)[:, None]  # (A, 1)
        if k > 1:  # reorder by back-pointer
            tokens = tokens[a_idx, beams]
        tokens = xp.concat([tokens, prev[:, :, None]], axis=2)  # (A, k, t+1)
        if return_attention:  # (A, k, t+1, src_len)
            if k > 1:
                attn_hist, attn = attn_hist[a_idx, beams], attn[a_idx, beams]
            attn_hist = xp.concat([attn_hist, xp.astype(attn, xp.float32, copy=False)[:, :, None, :]], axis=2)

        # 3. groups with k finished hypotheses, or at their maximum length, are done
        keep_list = [a for a, g in enumerate(alive) if len(finished[g]) < k and max_lens[sentence[g]] > t]
        if not keep_list:
            break
        if k > 1 or len(keep_list) < A:
            keep = xp.asarray(keep_list, dtype=xp.int64, device=device)  # (A',)
            rows = xp.reshape((a_idx * k + beams)[keep], (-1,))  # the state rows they extend
            state = state.select(rows)  # reorder by back-pointer and prune, in one go
            alive = [alive[a] for a in keep_list]
            limits, scores, tokens, prev = limits[keep], scores[keep], tokens[keep], prev[keep]
            if return_attention:
                attn_hist = attn_hist[keep]
            if generators:
                generators = [generators[a] for a in keep_list]
        prev = xp.reshape(prev, (-1,))

    by_sentence: list[list[Hypothesis]] = [[] for _ in range(batch)]
    for g, hyps in enumerate(finished):
        by_sentence[sentence[g]].extend(hyps)
    return [sorted(hyps, key=lambda h: -h.score)[: options.n_best] for hyps in by_sentence]
