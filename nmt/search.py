"""Batched greedy and beam search over a `Seq2Seq` (or anything with its encode/decode_step).

Both searches advance every unfinished sentence of the batch in one `decode_step` call per step,
and drop the rows of finished sentences from the decoder state (`DecoderState.select`), so later
steps run on fewer rows.

Lengths. A sentence may emit at most `max_output_length` = floor(ratio * src_len) + extra tokens
before EOS (`src_len` as in `Batch.src_lengths`, the source EOS included); at that step EOS is the
only token allowed, so every output ends. PAD and BOS are never produced; UNK is.

Scores. Greedy: the total log-probability of the tokens and the EOS. Beam: that sum divided by
GNMT's length penalty (Wu et al., 2016)

    lp(len) = ((5 + len) / 6) ** alpha        len = number of tokens + 1 (the EOS counts)

so alpha = 0 gives raw log-probabilities and larger alpha favours longer outputs.

Beam stopping rule (fairseq's): at each step the top 2k of the k * vocab extensions are ranked;
those ending in EOS among the first k ranks finish (scored with the penalty), the best k that do
not end in EOS stay live. A sentence is done once it has k finished hypotheses, or at its maximum
length (where the forced EOS finishes all its live ones). The returned n_best are the best of the
finished ones. With k = 1 this is exactly greedy search.

Both run under `torch.inference_mode()`, so returned attention tensors are inference tensors:
read them freely, `.clone()` one outside inference mode before changing it in place. The model
should be in eval mode (dropout off); the searches do not switch it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from nmt.tokenizer import BOS_ID, EOS_ID, PAD_ID

if TYPE_CHECKING:
    from nmt.config import DecodeConfig

NEG_INF = float("-inf")


@dataclass
class Hypothesis:
    tokens: list[int]  # target ids, without BOS and without the final EOS
    score: float  # total log-probability (greedy) / length-penalised score (beam)
    attention: torch.Tensor | None = None  # (len(tokens)+1, src_len) incl. the EOS step; on request


def max_output_length(src_lengths: torch.Tensor, ratio: float, extra: int) -> torch.Tensor:
    """Most tokens (EOS not counted) each sentence may produce: floor(ratio * src_len) + extra."""
    return torch.floor(src_lengths.double() * ratio).long() + extra  # (batch,)


def length_penalty_factor(length: int, alpha: float) -> float:
    """GNMT's lp(len) = ((5 + len) / 6) ** alpha; `length` counts the EOS."""
    return ((5.0 + length) / 6.0) ** alpha


def _allowed(log_probs: torch.Tensor, force_eos: torch.Tensor) -> torch.Tensor:
    """Ban PAD and BOS everywhere, and everything but EOS on the rows in `force_eos`."""
    # log_probs: (rows, vocab); force_eos: (rows,) bool
    vocab = torch.arange(log_probs.size(1), device=log_probs.device)
    banned = (vocab == PAD_ID) | (vocab == BOS_ID)  # (vocab,)
    banned = banned | (force_eos.unsqueeze(1) & (vocab != EOS_ID))  # (rows, vocab)
    return log_probs.masked_fill(banned, NEG_INF)


@torch.inference_mode()
def greedy_search(
    model: nn.Module,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    max_len_ratio: float = 1.5,
    max_len_extra: int = 10,
    return_attention: bool = False,
) -> list[list[Hypothesis]]:
    """Pick the most probable token at every step. src: (batch, src_len), src_lengths: (batch,) on
    the CPU. Returns one one-element list per sentence, in batch order."""
    batch, device = src.size(0), src.device
    src_lens = src_lengths.tolist()
    max_lens = max_output_length(src_lengths.cpu(), max_len_ratio, max_len_extra).tolist()
    results: list[list[Hypothesis]] = [[] for _ in range(batch)]
    if batch == 0:
        return results

    state = model.encode(src, src_lengths)
    alive = list(range(batch))  # sentence of each row
    limits = torch.tensor(max_lens, device=device)  # (rows,)
    scores = torch.zeros(batch, device=device)  # (rows,) log-probability so far
    tokens = torch.zeros(batch, 0, dtype=torch.long, device=device)  # (rows, t)
    attn_hist = torch.zeros(batch, 0, src.size(1), device=device)  # (rows, t, src_len)
    prev = torch.full((batch,), BOS_ID, dtype=torch.long, device=device)  # (rows,)

    for t in range(max(max_lens) + 1):
        log_probs, state, attn = model.decode_step(prev, state)  # (rows, vocab), (rows, src_len)
        log_probs = _allowed(log_probs, limits <= t)
        best, prev = log_probs.max(dim=-1)  # (rows,), (rows,)
        scores = scores + best
        tokens = torch.cat([tokens, prev.unsqueeze(1)], dim=1)
        if return_attention:
            attn_hist = torch.cat([attn_hist, attn.unsqueeze(1)], dim=1)

        done = prev == EOS_ID  # (rows,); a forced EOS counts too
        done_rows = done.nonzero().squeeze(1).tolist()
        if not done_rows:
            continue
        done_tokens, done_scores = tokens[done_rows].tolist(), scores[done_rows].tolist()
        for i, row in enumerate(done_rows):
            s = alive[row]
            att = attn_hist[row, :, : src_lens[s]].cpu() if return_attention else None
            results[s].append(Hypothesis(done_tokens[i][:-1], done_scores[i], att))

        # prune: later steps only run on the sentences still going
        keep = (~done).nonzero().squeeze(1)  # (rows_left,)
        if keep.numel() == 0:
            break
        state = state.select(keep)
        alive = [alive[r] for r in keep.tolist()]
        limits, scores, tokens, prev = limits[keep], scores[keep], tokens[keep], prev[keep]
        if return_attention:
            attn_hist = attn_hist[keep]
    return results


@torch.inference_mode()
def beam_search(
    model: nn.Module,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    beam_size: int = 5,
    length_penalty: float = 1.0,
    n_best: int = 1,
    max_len_ratio: float = 1.5,
    max_len_extra: int = 10,
    return_attention: bool = False,
) -> list[list[Hypothesis]]:
    """Beam search with GNMT's length penalty (alpha = `length_penalty`).

    src: (batch, src_len), src_lengths: (batch,) on the CPU. Returns, per sentence in batch order,
    its `n_best` finished hypotheses, best first (fewer only when fewer exist, e.g. a maximum
    length of 0).
    """
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best ({n_best}) must be between 1 and beam_size ({beam_size})")
    k, alpha = beam_size, length_penalty
    batch, src_len, device = src.size(0), src.size(1), src.device
    src_lens = src_lengths.tolist()
    max_lens = max_output_length(src_lengths.cpu(), max_len_ratio, max_len_extra).tolist()
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    if batch == 0:
        return finished

    # rows are (sentence, beam) pairs, sentence-major: row = a * k + beam
    state = model.encode(src, src_lengths)
    state = state.select(torch.arange(batch, device=device).repeat_interleave(k))
    alive = list(range(batch))  # sentence of each group of k rows
    limits = torch.tensor(max_lens, device=device)  # (A,)
    scores = torch.full((batch, k), NEG_INF, device=device)  # (A, k) log-probability so far
    scores[:, 0] = 0.0  # one live hypothesis to start with, so step 0 makes no beam copies
    tokens = torch.zeros(batch, k, 0, dtype=torch.long, device=device)  # (A, k, t)
    attn_hist = torch.zeros(batch, k, 0, src_len, device=device)  # (A, k, t, src_len)
    prev = torch.full((batch * k,), BOS_ID, dtype=torch.long, device=device)  # (A*k,)

    for t in range(max(max_lens) + 1):
        log_probs, state, attn = model.decode_step(prev, state)  # (A*k, vocab), (A*k, src_len)
        A, vocab = scores.size(0), log_probs.size(1)
        log_probs = _allowed(log_probs, (limits <= t).repeat_interleave(k))
        attn = attn.view(A, k, src_len)

        # the best 2k extensions of each sentence's k hypotheses; at most k of them end in EOS
        cand = scores.unsqueeze(2) + log_probs.view(A, k, vocab)  # (A, k, vocab)
        top_scores, top_ids = cand.view(A, k * vocab).topk(min(2 * k, k * vocab), dim=1)  # (A, 2k)
        origin = top_ids // vocab  # (A, 2k) the beam each candidate extends
        next_tokens = top_ids % vocab  # (A, 2k)
        is_eos = next_tokens == EOS_ID

        # 1. EOS candidates among the first k ranks finish
        fin = is_eos[:, :k] & top_scores[:, :k].isfinite()  # (A, k)
        fin_a, fin_j = fin.nonzero(as_tuple=True)  # (F,), (F,)
        if fin_a.numel() > 0:
            fin_beam = origin[fin_a, fin_j]  # (F,)
            fin_tokens = tokens[fin_a, fin_beam].tolist()  # F lists of t tokens
            lp = length_penalty_factor(t + 1, alpha)  # t tokens + EOS
            fin_scores = (top_scores[fin_a, fin_j] / lp).tolist()
            if return_attention:  # (F, t+1, src_len): the history, then this (EOS) step
                fin_attn = torch.cat(
                    [attn_hist[fin_a, fin_beam], attn[fin_a, fin_beam].unsqueeze(1)], dim=1
                )
            for i, a in enumerate(fin_a.tolist()):
                s = alive[a]
                att = fin_attn[i, :, : src_lens[s]].cpu() if return_attention else None
                finished[s].append(Hypothesis(fin_tokens[i], fin_scores[i], att))

        # 2. the best k candidates that do not end in EOS stay live (stable sort keeps score order)
        live = torch.sort(is_eos.int(), dim=1, stable=True).indices[:, :k]  # (A, k) ranks
        scores = top_scores.gather(1, live)  # (A, k)
        beams = origin.gather(1, live)  # (A, k)
        prev = next_tokens.gather(1, live)  # (A, k)
        a_idx = torch.arange(A, device=device).unsqueeze(1)  # (A, 1)
        tokens = torch.cat([tokens[a_idx, beams], prev.unsqueeze(2)], dim=2)  # (A, k, t+1)
        if return_attention:  # (A, k, t+1, src_len)
            attn_hist = torch.cat([attn_hist[a_idx, beams], attn[a_idx, beams].unsqueeze(2)], dim=2)
        rows = a_idx * k + beams  # (A, k) the state rows they extend

        # 3. sentences with k finished hypotheses, or at their maximum length, are done
        done = [len(finished[s]) >= k or max_lens[s] <= t for s in alive]
        keep_list = [a for a, d in enumerate(done) if not d]
        if not keep_list:
            break
        keep = torch.tensor(keep_list, device=device)  # (A',)
        state = state.select(rows[keep].view(-1))  # reorder by back-pointer and prune, in one go
        alive = [alive[a] for a in keep_list]
        limits, scores, tokens, prev = limits[keep], scores[keep], tokens[keep], prev[keep].view(-1)
        if return_attention:
            attn_hist = attn_hist[keep]

    return [sorted(hyps, key=lambda h: -h.score)[:n_best] for hyps in finished]


def search(
    model: nn.Module,
    src: torch.Tensor,
    src_lengths: torch.Tensor,
    cfg: DecodeConfig,
    return_attention: bool = False,
) -> list[list[Hypothesis]]:
    """Decode with a DecodeConfig (or anything with its fields): greedy when beam_size is 1
    (scores are then raw log-probabilities), beam search otherwise."""
    if cfg.beam_size == 1:
        if cfg.n_best != 1:
            raise ValueError(f"n_best ({cfg.n_best}) must be between 1 and beam_size (1)")
        return greedy_search(
            model, src, src_lengths, cfg.max_len_ratio, cfg.max_len_extra, return_attention
        )
    return beam_search(
        model,
        src,
        src_lengths,
        beam_size=cfg.beam_size,
        length_penalty=cfg.length_penalty,
        n_best=cfg.n_best,
        max_len_ratio=cfg.max_len_ratio,
        max_len_extra=cfg.max_len_extra,
        return_attention=return_attention,
    )
