"""Optimisation: Adam, the learning-rate schedules, the "best so far" tracker that the plateau
schedule and early stopping share, and one training update (forward, loss, backward, step).

The trainer and the benchmark run the same `update`, so the benchmark times what training does.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from nmt.batching import Batch
from nmt.config import TrainConfig
from nmt.loss import batch_loss


class Plateau:
    """The best dev score so far (higher is better) and the validations since it last improved."""

    def __init__(self) -> None:
        self.best: float | None = None
        self.bad = 0

    def observe(self, score: float) -> bool:
        """Record a score; True when it is a new best."""
        if self.best is None or score > self.best:
            self.best, self.bad = score, 0
            return True
        self.bad += 1
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_validations": self.bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad = state["best"], state["bad_validations"]


class LRSchedule:
    """Learning rate = lr × warmup × decay × plateau reductions.

    - warmup: linear from lr/warmup_steps to lr over `warmup_steps` steps (any schedule);
    - inverse_sqrt: after warmup, lr × sqrt(warmup / step);
    - linear: lr × (1 - the fraction of the budget used) / decay_fraction, at most lr, down to
      `min_lr`, the budget being `max_steps` or `max_minutes`, whichever runs out first. A run that
      knows its budget ends at a low rate instead of stopping at full speed (Li et al. 2020,
      "Budgeted training"); with `decay_fraction` < 1 it keeps the full rate until the last part of
      the budget (warmup-stable-decay, Hägele et al. 2024). With `max_minutes` the rate follows the
      clock, so two runs of one config differ;
    - plateau: after `plateau_patience` validations without a better dev score, multiply by
      `plateau_factor`, never below `min_lr`.
    Early stopping is separate (the trainer's), so it works whatever the schedule.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.scale = 1.0
        self.plateau = Plateau()  # validations since the best, or since the last reduction

    def lr(self, step: int, elapsed_s: float = 0.0) -> float:
        """The rate of update `step` (1-based), `elapsed_s` seconds of training into the run."""
        cfg = self.cfg
        lr = cfg.lr
        ramp = step / cfg.warmup_steps if cfg.warmup_steps and step < cfg.warmup_steps else 1.0
        if cfg.schedule == "linear":  # the lower of the ramp and the decay: no jump where they meet
            decay = (1.0 - self.budget_used(step, elapsed_s)) / cfg.decay_fraction
            return lr * min(ramp, 1.0, max(decay, cfg.min_lr / cfg.lr))
        if ramp < 1.0:
            lr *= ramp
        elif cfg.schedule == "inverse_sqrt" and cfg.warmup_steps:
            lr *= math.sqrt(cfg.warmup_steps / step)
        return max(lr * self.scale, cfg.min_lr) if self.scale < 1.0 else lr

    def budget_used(self, step: int, elapsed_s: float) -> float:
        """The fraction (0..1) of train.max_steps or train.max_minutes used, whichever is more."""
        cfg = self.cfg
        used = [step / cfg.max_steps] if cfg.max_steps else []
        if cfg.max_minutes:
            used.append(elapsed_s / (cfg.max_minutes * 60))
        return min(max(used, default=0.0), 1.0)

    def on_validation(self, score: float) -> bool:
        """Record a dev score (higher is better); True when the rate was just reduced."""
        if self.cfg.schedule != "plateau" or self.plateau.observe(score):
            return False
        if self.plateau.bad > self.cfg.plateau_patience:
            self.scale *= self.cfg.plateau_factor
            self.plateau.bad = 0
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, **self.plateau.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale = state["scale"]
        self.plateau.load_state_dict(state)


def make_optimizer(model: torch.nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
    """Adam; the fused implementation (one kernel for all parameters, also on CPUs) costs a third
    of the for-loop one's time, which was ~6% of a CPU training step."""
    return torch.optim.Adam(model.parameters(), lr=tc.lr, betas=tuple(tc.adam_betas),
                            weight_decay=tc.weight_decay, fused=True)


class UpdateResult(NamedTuple):
    loss: torch.Tensor  # the summed loss of the batch (a 0-dim tensor)
    applied: bool  # False: a non-finite loss or gradient, so the weights were left as they were


def update(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: Batch,
    lr: float,
    tc: TrainConfig,
    autocast_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
) -> UpdateResult:
    """One training update: teacher-forced forward (under autocast when `autocast_dtype` is set),
    label-smoothed loss, backward of the loss / `batch.norm_tokens` (per target token; under DDP
    per token of the global batch), clipping, optimiser step. When the loss or the gradient is
    not finite no update is made, and `applied` says so (the caller counts and reports it); with
    fp16's `scaler`, the scaler skips such steps itself and lowers its scale."""
    model.train()
    for group in optimizer.param_groups:
        group["lr"] = lr
    with torch.autocast(batch.src.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        loss = batch_loss(model, batch, tc.label_smoothing)  # in fp32 (nmt/loss.py)
    norm = batch.norm_tokens if batch.norm_tokens is not None else batch.n_tgt_tokens
    optimizer.zero_grad(set_to_none=True)
    # every rank runs backward, even on a bad loss: DDP's gradient all-reduce needs them all
    scaled = loss / norm
    (scaler.scale(scaled) if scaler is not None else scaled).backward()
    if scaler is not None:
        scaler.unscale_(optimizer)
    if tc.clip_grad_norm > 0:
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_grad_norm)
    else:
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])
    # the gradients are all-reduced by now, so every rank takes the same decision
    applied = bool(torch.isfinite(loss)) and bool(torch.isfinite(grad_norm))
    if scaler is not None:
        scaler.step(optimizer)  # skips the step itself on a non-finite gradient
        scaler.update()
    elif applied:
        optimizer.step()
    return UpdateResult(loss, applied)
