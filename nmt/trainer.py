"""The training loop: teacher forcing, label-smoothed loss, Adam, clipping, a learning-rate
schedule, validation with BLEU, early stopping, checkpoints and logs.

Everything a resumed run needs lives in `Trainer.state_dict()`: model, optimiser, schedule,
early-stopping state, counters, the data stream's position and every RNG state.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import torch
from tqdm import tqdm

from nmt.batching import Batch, BatchStream, Example, eval_batches
from nmt.checkpoint import atomic_write, load_checkpoint, save_checkpoint
from nmt.cpu import flush_denormals
from nmt.distributed import Dist, resolve_device
from nmt.config import Config, TrainConfig, load_config, save_config
from nmt.corpus import Corpus, corpus_paths, load_corpus
from nmt.embedding_lab import drift_summary
from nmt.errors import NmtError
from nmt.evaluate import score
from nmt.loss import translation_loss
from nmt.model import Seq2Seq, build_model, snapshot_embeddings
from nmt.pretrained import apply_pretrained
from nmt.rundir import NewRun, RunDir, count_tokens, start_run_dir
from nmt.search import greedy_search
from nmt.tensorboard import TensorBoardLog, require_tensorboard
from nmt.tokenizer import Tokenizer, train_tokenizer

# Keys that may differ between a run's saved config and the config given with --resume.
RESUME_SAFE_KEYS = {
    "run.dir",  # a run directory may be moved or copied and resumed there
    "train.max_steps",
    "train.max_epochs",
    "train.max_minutes",
    "train.patience",
    "train.max_skipped_steps",
    "train.validate_every",
    "train.log_every",
    "train.save_every",
    "train.keep_checkpoints",
    "train.progress",
    "train.tensorboard",
    "train.threads",
    "train.device",  # a run trained on a GPU may go on on a CPU, and back
    "train.precision",
    "train.dev_max_sentences",
    "model.fused_decoder",  # the same function and weights either way, up to rounding
    "decode.beam_size",
    "decode.length_penalty",
    "decode.max_len_ratio",
    "decode.max_len_extra",
    "decode.batch_size",
    "decode.n_best",
}


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


class LRSchedule:
    """Learning rate = lr × warmup × decay × plateau reductions.

    - warmup: linear from lr/warmup_steps to lr over `warmup_steps` steps (any schedule);
    - inverse_sqrt: after warmup, lr × sqrt(warmup / step);
    - plateau: after `plateau_patience` validations without a better dev score, multiply by
      `plateau_factor`, never below `min_lr`.
    Early stopping is separate (see Trainer), so it works whatever the schedule.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.scale = 1.0
        self.best: float | None = None
        self.bad_validations = 0

    def lr(self, step: int) -> float:  # step: 1-based number of the update about to happen
        cfg = self.cfg
        lr = cfg.lr
        if cfg.warmup_steps and step < cfg.warmup_steps:
            lr *= step / cfg.warmup_steps
        elif cfg.schedule == "inverse_sqrt" and cfg.warmup_steps:
            lr *= math.sqrt(cfg.warmup_steps / step)
        return max(lr * self.scale, cfg.min_lr) if self.scale < 1.0 else lr

    def on_validation(self, score: float) -> bool:
        """Record a dev score (higher is better); True when the rate was just reduced."""
        if self.cfg.schedule != "plateau":
            return False
        if self.best is None or score > self.best:
            self.best, self.bad_validations = score, 0
            return False
        self.bad_validations += 1
        if self.bad_validations > self.cfg.plateau_patience:
            self.scale *= self.cfg.plateau_factor
            self.bad_validations = 0
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "best": self.best, "bad_validations": self.bad_validations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale, self.best, self.bad_validations = state["scale"], state["best"], state["bad_validations"]


def encode_pairs(
    corpus: Corpus, src_tok: Tokenizer, tgt_tok: Tokenizer, max_src: int, max_tgt: int
) -> tuple[list[Example], dict[str, int]]:
    """Tokenize a corpus and drop pairs over the length limits; return the drop counts."""
    src_ids, tgt_ids = src_tok.encode_batch(corpus.src), tgt_tok.encode_batch(corpus.tgt)
    examples, too_long_src, too_long_tgt = [], 0, 0
    for s, t in zip(src_ids, tgt_ids):
        if len(s) > max_src:
            too_long_src += 1
        elif len(t) > max_tgt:
            too_long_tgt += 1
        else:
            examples.append((s, t))
    return examples, {"too_long_src": too_long_src, "too_long_tgt": too_long_tgt}


def data_fingerprint(examples: list[Example]) -> str:
    """sha256 of the training pairs' ids in corpus order: what the saved stream position (epoch,
    batch) refers to, so a resumed run can refuse training data that changed since the save."""
    return hashlib.sha256(json.dumps(examples, separators=(",", ":")).encode()).hexdigest()


def train_tokenizers(cfg: Config, train: Corpus, where: str = "config") -> tuple[Tokenizer, Tokenizer]:
    """The run's sentencepiece models (one joint model twice, or one per side), in memory."""
    tk = cfg.tokenizer
    common: dict[str, Any] = dict(
        model_type=tk.type,
        character_coverage=tk.character_coverage,
        max_sentences=tk.max_sentences,
        hard_vocab_limit=tk.hard_vocab_limit,
        seed=cfg.train.seed,
    )
    if tk.joint:
        tok = train_tokenizer(train.src + train.tgt, tk.src_vocab_size,
                              vocab_key=f"{where}: key 'tokenizer.src_vocab_size'", **common)
        return tok, tok
    return (
        train_tokenizer(train.src, tk.src_vocab_size, vocab_key=f"{where}: key 'tokenizer.src_vocab_size'", **common),
        train_tokenizer(train.tgt, tk.tgt_vocab_size, vocab_key=f"{where}: key 'tokenizer.tgt_vocab_size'", **common),
    )


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
        logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
        loss = translation_loss(logits.float(), batch.tgt_out, tc.label_smoothing)
    norm = batch.norm_tokens if batch.norm_tokens is not None else batch.n_tgt_tokens
    optimizer.zero_grad(set_to_none=True)
    # every rank runs backward, even on a bad loss: DDP's gradient all-reduce needs them all
    scaled = loss / norm
    (scaler.scale(scaled) if scaler is not None else scaled).backward()
    if scaler is not None:
        scaler.unscale_(optimizer)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if tc.clip_grad_norm > 0:
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_grad_norm)
    else:
        grad_norm = torch.nn.utils.get_total_norm(grads)
    # the gradients are all-reduced by now, so every rank takes the same decision
    applied = bool(torch.isfinite(loss)) and bool(torch.isfinite(grad_norm))
    if scaler is not None:
        scaler.step(optimizer)  # skips the step itself on a non-finite gradient
        scaler.update()
    elif applied:
        optimizer.step()
    return UpdateResult(loss, applied)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def _config_diff(old: dict, new: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b, path = old.get(key), new.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _config_diff(a, b, path + ".")
        elif a != b:
            diffs.append((path, a, b))
    return diffs


class Trainer:
    def __init__(
        self, cfg: Config, run: RunDir, resume: bool, where: str = "config", dist: Dist | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.cfg, self.run, self.tc, self.where = cfg, run, cfg.train, where
        self.dist = dist or Dist()
        self.device = device or torch.device("cpu")
        self.autocast_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.tc.precision]
        self.scaler = torch.amp.GradScaler(self.device.type) if self.tc.precision == "fp16" else None
        # train.log is opened once the trainer is built: a resume refused here (other data, a torn
        # checkpoint) leaves the run directory unchanged
        self.log_file: Any = None
        self._log_lines: list[str] = []
        d = cfg.data
        train_corpus = load_corpus(d.train, d, "training")
        self.info(f"training corpus: {len(train_corpus)} pairs ({train_corpus.empty_dropped} with an empty "
                  "side skipped)")
        # rank 0 trains the tokenizers into the run directory; every rank then reads the same files
        self.dist.on_main(lambda: self._tokenizers(train_corpus, resume) and None)
        self.src_tok, self.tgt_tok = self.run.load_tokenizers()
        self.train_examples = self._training_examples(train_corpus)
        self.data_fingerprint = data_fingerprint(self.train_examples)
        self.dev = load_corpus(cfg.data.dev, cfg.data, "dev")
        if self.tc.dev_max_sentences:
            n = self.tc.dev_max_sentences
            self.dev = Corpus(self.dev.src[:n], self.dev.tgt[:n], "dev")
        self.dev_src_ids = self.src_tok.encode_batch(self.dev.src)
        self.dev_tgt_ids = self.tgt_tok.encode_batch(self.dev.tgt)

        torch.manual_seed(self.tc.seed)
        random.seed(self.tc.seed)
        self.model: Seq2Seq = build_model(cfg, len(self.src_tok), len(self.tgt_tok))
        if not resume:  # a resumed run gets its tables from the checkpoint
            for report in apply_pretrained(self.model, cfg.model, self.src_tok, self.tgt_tok):
                self.info(str(report))
        self.model.to(self.device)
        self.optimizer = make_optimizer(self.model, self.tc)
        self.schedule = LRSchedule(self.tc)
        self.stream = BatchStream(self.train_examples, self.tc.batch_tokens, self.tc.batch_size, self.tc.seed,
                                  self.dist.rank, self.dist.world_size)
        self.step = 0
        # Scores are "higher is better" (BLEU, or −loss). best_score and bad_validations drive
        # early stopping and come only from validations every validate_every steps, so a run
        # stopped and resumed off that grid takes the same decisions as an uninterrupted one;
        # best_saved_score is the score of checkpoints/best.pt, which any validation may replace.
        self.best_score: float | None = None
        self.bad_validations = 0
        self.best_saved_score: float | None = None
        self.last_validated_step = -1
        self.skipped_steps = 0  # updates skipped for a non-finite gradient (their steps still count)
        self.skips_in_a_row = 0
        self.elapsed_s = 0.0  # training wall-clock time over all sessions of this run
        n_params = sum(p.numel() for p in self.model.parameters())
        n_trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        self.info(f"model: {n_params:,} parameters ({n_trainable:,} trainable); vocab src {len(self.src_tok)} "
                  f"tgt {len(self.tgt_tok)}")
        # for the embedding drift logged at every validation: the tables before the first step
        # and how often each id occurs in training
        self.token_counts = count_tokens(self.train_examples, len(self.src_tok), len(self.tgt_tok))
        if resume:
            self.load_state_dict(load_checkpoint(run.checkpoint_path("last")))
            self.info(f"resumed from {run.last} at step {self.step}, epoch {self.stream.epoch}")
            self.initial_tables = torch.load(run.embeddings_init, weights_only=True)
        else:
            self.initial_tables = {side: t.cpu() for side, t in snapshot_embeddings(self.model).items()}
        # DDP makes rank 0's weights everyone's and averages the gradients in backward
        self.train_model: torch.nn.Module = self.model
        if self.dist.active:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            if not resume:  # each rank its own dropout masks
                torch.manual_seed(self.tc.seed + self.dist.rank)
        self.tensorboard = None
        if self.dist.is_main:  # only rank 0 writes into the run directory
            if resume:
                self._drop_metrics_after(self.step)
            else:
                torch.save(self.initial_tables, run.embeddings_init)
                torch.save(self.token_counts, run.token_counts)
            self.log_file = run.log.open("a", encoding="utf-8")
            self.log_file.write("".join(line + "\n" for line in self._log_lines))
            self.log_file.flush()
            if self.tc.tensorboard:
                self.tensorboard = TensorBoardLog(run.tensorboard, self.src_tok, self.tgt_tok, self.dev_src_ids,
                                                  cfg.decode, self.step if resume else None)

    # ------------------------------------------------------------------ set-up

    def _drop_metrics_after(self, step: int) -> None:
        """On resume, forget the events a killed session logged past the checkpoint's step: the
        resumed run logs those steps again, and metrics.jsonl should read like one run."""
        path = self.run.metrics
        if not path.is_file():
            return
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if json.loads(line).get("step", 0) <= step]
        if len(kept) != len(lines):
            atomic_write(path, lambda f: f.write("".join(line + "\n" for line in kept).encode("utf-8")))

    def info(self, msg: str, console: bool = True) -> None:
        """A line for train.log and (unless the progress bar already shows it) the console; rank 0's only."""
        if not self.dist.is_main:
            return
        if console:
            tqdm.write(msg, file=sys.stderr)  # logs on stderr (unbuffered), like the progress bar
        if self.log_file is None:
            self._log_lines.append(msg)
            return
        self.log_file.write(msg + "\n")
        self.log_file.flush()

    def _tokenizers(self, train: Corpus, resume: bool) -> tuple[Tokenizer, Tokenizer]:
        """Train the sentencepiece models into the run directory (or load them on resume)."""
        if resume:
            return self.run.load_tokenizers()
        tk = self.cfg.tokenizer
        t0 = time.time()
        src_tok, tgt_tok = train_tokenizers(self.cfg, train, self.where)
        self.run.tokenizer_dir.mkdir(parents=True, exist_ok=True)
        src_tok.save(self.run.src_tokenizer)
        tgt_tok.save(self.run.tgt_tokenizer)
        self.info(f"tokenizer: sentencepiece {tk.type}, {'joint ' if tk.joint else ''}vocab "
                  f"{len(src_tok)}/{len(tgt_tok)} ({time.time() - t0:.1f}s)")
        return src_tok, tgt_tok

    def _training_examples(self, train: Corpus) -> list[Example]:
        d = self.cfg.data
        examples, dropped = encode_pairs(train, self.src_tok, self.tgt_tok, d.max_src_len, d.max_tgt_len)
        self.info(
            f"length filter: kept {len(examples)} pairs; dropped {dropped['too_long_src']} with source "
            f"> {d.max_src_len} pieces and {dropped['too_long_tgt']} with target > {d.max_tgt_len}"
        )
        if not examples:
            raise NmtError(
                f"{d.train}: the length filter removed every pair; raise 'data.max_src_len' / "
                f"'data.max_tgt_len' in {self.where}"
            )
        return examples

    # ------------------------------------------------------------------ state

    def state_dict(self, rng_states: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Everything to continue exactly; `rng_states`: every rank's (this process's by default)."""
        rng_states = rng_states or [_rng_state(self.device)]
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "vocab": {"src": len(self.src_tok), "tgt": len(self.tgt_tok)},
            "trainer": {
                "step": self.step,
                "best_score": self.best_score,
                "bad_validations": self.bad_validations,
                "best_saved_score": self.best_saved_score,
                "last_validated_step": self.last_validated_step,
                "elapsed_s": self.elapsed_s,
                "skipped_steps": self.skipped_steps,
                "skips_in_a_row": self.skips_in_a_row,
                "data_fingerprint": self.data_fingerprint,
                "schedule": self.schedule.state_dict(),
                "stream": self.stream.state_dict(),
                "rng_torch": rng_states[0]["torch"],
                "rng_python": rng_states[0]["python"],
                "rng_cuda": rng_states[0].get("cuda"),
                "rng_ranks": rng_states if self.dist.active else None,  # each rank's dropout stream
                "world_size": self.dist.world_size,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state["trainer"].get("data_fingerprint")  # absent in checkpoints of older nmt
        if saved is not None and saved != self.data_fingerprint:
            d = self.cfg.data
            files = d.train if d.format == "tsv" else f"{d.train}.{d.src_lang} and {d.train}.{d.tgt_lang}"
            raise NmtError(
                f"{files}: the training data differs from the data that {self.run.path} was trained on "
                f"(sha256 of its pairs {saved[:12]}, now {self.data_fingerprint[:12]}); resuming would not "
                "continue the same run: restore the original files, or start a new run (--overwrite)"
            )
        t = state["trainer"]
        world_size = t.get("world_size", 1)
        if world_size != self.dist.world_size:
            how = "nmt train CONFIG --resume" if world_size == 1 else f"torchrun with {world_size} processes in all"
            raise NmtError(
                f"{self.run.last}: the run was trained by {world_size} process(es) and this is "
                f"{self.dist.world_size}; the batches and random streams depend on it: resume with {how}"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and t.get("scaler"):
            self.scaler.load_state_dict(t["scaler"])
        self.step, self.best_score = t["step"], t["best_score"]
        self.bad_validations, self.last_validated_step = t["bad_validations"], t["last_validated_step"]
        self.elapsed_s, self.best_saved_score = t["elapsed_s"], t["best_saved_score"]
        self.skipped_steps, self.skips_in_a_row = t.get("skipped_steps", 0), t.get("skips_in_a_row", 0)
        self.schedule.load_state_dict(t["schedule"])
        self.stream.load_state_dict(t["stream"])
        ranks = t.get("rng_ranks")
        _set_rng_state(ranks[self.dist.rank] if ranks else
                       {"torch": t["rng_torch"], "python": t["rng_python"], "cuda": t.get("rng_cuda")}, self.device)

    def save_last(self) -> None:
        """Every rank calls this at the same step (it gathers their random states); rank 0 writes."""
        rng_states = self.dist.gather(_rng_state(self.device))
        if self.dist.is_main:
            save_checkpoint(self.run.last, self.state_dict(rng_states))

    def _weights(self, score: float | None) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "vocab": {"src": len(self.src_tok), "tgt": len(self.tgt_tok)},
                "step": self.step, "score": score}

    def save_best(self) -> None:
        save_checkpoint(self.run.best, self._weights(self.best_saved_score))

    def save_step(self, score: float) -> None:
        """Keep this validation's weights as checkpoints/step_<N>.pt and only the newest K of them."""
        keep = self.tc.keep_checkpoints
        if not keep:
            return
        save_checkpoint(self.run.step_checkpoint(self.step), self._weights(score))
        for old in self.run.step_checkpoints()[:-keep]:
            old.unlink()

    # ------------------------------------------------------------------ steps

    def train_step(self, batch: Batch) -> tuple[float, int]:
        """One update on this rank's shard; returns its summed loss and target tokens."""
        batch = batch.to(self.device)
        result = update(self.train_model, self.optimizer, batch, self.schedule.lr(self.step + 1), self.tc,
                        self.autocast_dtype, self.scaler)
        value = result.loss.item()
        (bad,) = self.dist.any(not math.isfinite(value))  # stop together, whichever rank saw it
        if bad:
            raise NmtError(
                f"training loss became {value if not math.isfinite(value) else 'not finite on another rank'} "
                f"at step {self.step + 1}; {self._kept()}. Lower 'train.lr' or set 'train.clip_grad_norm'"
            )
        self._count_skip(not result.applied)  # the same on every rank: the gradients are all-reduced
        if batch.is_filler:
            return 0.0, 0
        return value, batch.n_tgt_tokens

    def _kept(self) -> str:
        return (f"the last good checkpoint {self.run.last} is kept" if self.run.last.is_file()
                else "no checkpoint was saved before it")

    def _count_skip(self, skipped: bool) -> None:
        """A finite loss with a non-finite gradient leaves the weights as they were: count it, say
        it, and stop after `train.max_skipped_steps` such updates in a row."""
        if not skipped:
            self.skips_in_a_row = 0
            return
        self.skipped_steps += 1
        self.skips_in_a_row += 1
        scale = f"; fp16 loss scale now {self.scaler.get_scale():g}" if self.scaler is not None else ""
        self.info(f"step {self.step + 1}: update skipped, the gradient is not finite ({self.skipped_steps} "
                  f"skipped so far{scale})")
        if self.skips_in_a_row >= self.tc.max_skipped_steps:
            first = self.step + 2 - self.skips_in_a_row
            raise NmtError(
                f"the gradient was not finite in {self.skips_in_a_row} updates in a row (steps {first}-"
                f"{self.step + 1}; 'train.max_skipped_steps' is {self.tc.max_skipped_steps}), so the "
                f"weights stopped changing; {self._kept()}. Lower 'train.lr', set 'train.clip_grad_norm', "
                "or use 'train.precision: fp32'"
            )

    @torch.inference_mode()
    def validate(self, final: bool = False) -> dict[str, Any]:
        """Dev loss, perplexity and greedy BLEU; keep best.pt. A `final` validation (at a stop off
        the validate_every grid) may update best.pt but not early stopping or the schedule."""
        self.model.eval()
        t0 = time.time()
        nll, n_tokens = 0.0, 0
        hyps: list[str] = [""] * len(self.dev_src_ids)
        dec = self.cfg.decode
        for batch in eval_batches(self.dev_src_ids, self.dev_tgt_ids, dec.batch_size):
            batch = batch.to(self.device)
            logits, _ = self.model(batch.src, batch.src_lengths, batch.tgt_in)
            nll += translation_loss(logits, batch.tgt_out, 0.0).item()
            n_tokens += batch.n_tgt_tokens
            results = greedy_search(self.model, batch.src, batch.src_lengths, dec.max_len_ratio, dec.max_len_extra)
            for i, nbest in zip(batch.indices, results):
                hyps[i] = self.tgt_tok.decode(nbest[0].tokens)
        loss = nll / n_tokens
        scores = score(hyps, self.dev.tgt)
        bleu = scores.bleu
        metric = bleu if self.tc.early_stopping_metric == "bleu" else -loss
        improved = self.best_saved_score is None or metric > self.best_saved_score
        if improved:
            self.best_saved_score = metric
        reduced = False
        if not final:
            if self.best_score is None or metric > self.best_score:
                self.best_score, self.bad_validations = metric, 0
            else:
                self.bad_validations += 1
            reduced = self.schedule.on_validation(metric)
        self.last_validated_step = self.step
        drift = {
            side: drift_summary(self.initial_tables[side], table.detach().float().cpu(), self.token_counts[side])
            for side, table in self.model.embedding_tables().items()
        }
        record = {
            "event": "validation",
            "step": self.step,
            "epoch": self.stream.epoch,
            "dev_loss": round(loss, 4),
            "dev_ppl": round(math.exp(min(loss, 50)), 3),
            "dev_bleu": round(bleu, 2),
            "dev_chrf": round(scores.chrf, 2),
            "best": improved,
            "lr": self.schedule.lr(self.step + 1),
            "seconds": round(time.time() - t0, 1),
            "embedding_drift": drift,
        }
        self.run.append_metrics(record)
        if self.tensorboard is not None:
            self.tensorboard.log(record, self.model)
        self.info(
            f"validation at step {self.step}: dev loss {loss:.3f} ppl {record['dev_ppl']:.2f} "
            f"BLEU {bleu:.2f} (greedy){' *best*' if improved else ''}"
            f"{'; learning rate reduced to ' + format(record['lr'], '.2e') if reduced else ''}"
        )
        for side, d in drift.items():
            self.info(
                f"  {side} embeddings vs. init: mean L2 {_fmt(d['mean_l2'])} (median {_fmt(d['median_l2'])}), "
                f"{_pct(d['frac_moved'])} of rows moved, mean cos {_fmt(d['mean_cos'])}; rows of "
                f"unseen tokens moved {_fmt(d['mean_l2_unseen'])}, seen {_fmt(d['mean_l2_seen'])}; "
                f"rank corr. with frequency {_fmt(d['spearman_l2_freq'])}"
            )
        if improved:
            self.save_best()
        self.save_step(metric)
        return record

    def validate_on_main(self, final: bool = False) -> None:
        """Rank 0 validates (and may write best.pt) while the others wait; then every rank takes
        the decisions that follow from it (early stopping, learning rate) from rank 0."""
        def run() -> dict[str, Any]:
            self.validate(final)
            return {"best_score": self.best_score, "bad_validations": self.bad_validations,
                    "best_saved_score": self.best_saved_score, "last_validated_step": self.last_validated_step,
                    "schedule": self.schedule.state_dict()}

        decided = self.dist.on_main(run)
        self.best_score, self.bad_validations = decided["best_score"], decided["bad_validations"]
        self.best_saved_score, self.last_validated_step = decided["best_saved_score"], decided["last_validated_step"]
        self.schedule.load_state_dict(decided["schedule"])

    # ------------------------------------------------------------------ loop

    def _total_steps(self) -> int | None:
        per_epoch = self.stream.batches_per_epoch()
        limits = []
        if self.tc.max_steps:
            limits.append(self.tc.max_steps)
        if self.tc.max_epochs:
            limits.append(self.tc.max_epochs * per_epoch)
        return min(limits) if limits else None

    def train(self) -> None:
        tc = self.tc
        stop_reason = None
        interrupted: list[int] = []

        def on_signal(signum: int, _frame: Any) -> None:
            interrupted.append(signum)

        old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        total = self._total_steps()
        # the bar only on a terminal; in a log file (CI, nohup) the log lines say the same
        show_bar = tc.progress and sys.stderr.isatty() and self.dist.is_main
        bar = tqdm(total=total, initial=self.step, disable=not show_bar, unit="step", dynamic_ncols=True,
                   mininterval=0.5)
        window_loss, window_tokens, window_s = 0.0, 0, 0.0
        session_t0, elapsed_before = time.time(), self.elapsed_s
        try:
            while stop_reason is None:
                if tc.max_steps and self.step >= tc.max_steps:
                    stop_reason = f"reached train.max_steps={tc.max_steps}"
                    break
                if tc.max_epochs and self.stream.epoch >= tc.max_epochs:
                    stop_reason = f"reached train.max_epochs={tc.max_epochs}"
                    break
                t0 = time.time()
                batch, _ = self.stream.next_batch()
                loss, n_tokens = self.train_step(batch)
                window_s += time.time() - t0  # training time only: validations do not count
                self.step += 1
                self.elapsed_s = elapsed_before + time.time() - session_t0
                window_loss += loss
                window_tokens += n_tokens
                bar.update(1)
                if self.step % tc.log_every == 0:
                    # the loss and tokens of all ranks; the time of this one (they run in step)
                    window_loss, window_tokens = self.dist.sum(window_loss, window_tokens)
                    record = {
                        "event": "train",
                        "step": self.step,
                        "epoch": self.stream.epoch,
                        "loss": round(window_loss / window_tokens, 4),
                        "lr": self.schedule.lr(self.step),
                        "tgt_tokens_per_s": round(window_tokens / window_s, 1),
                        "skipped_steps": self.skipped_steps,
                    }
                    if self.dist.is_main:
                        self.run.append_metrics(record)
                    if self.tensorboard is not None:
                        self.tensorboard.log(record)
                    bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tgt_tokens_per_s']:.0f}",
                                    lr=f"{record['lr']:.1e}", ep=self.stream.epoch)
                    self.info(f"step {self.step} epoch {self.stream.epoch} loss {record['loss']:.3f} "
                              f"lr {record['lr']:.2e} tok/s {record['tgt_tokens_per_s']:.0f}", console=not show_bar)
                    window_loss, window_tokens, window_s = 0.0, 0, 0.0
                if self.step % tc.validate_every == 0:
                    self.validate_on_main()
                    self.save_last()
                    if tc.patience and self.bad_validations >= tc.patience:
                        stop_reason = f"early stopping: no better dev score in {tc.patience} validations"
                elif self.step % tc.save_every == 0:
                    self.save_last()
                time_up, stop_now = self.dist.any(
                    bool(tc.max_minutes and self.elapsed_s >= tc.max_minutes * 60), bool(interrupted)
                )
                if time_up:
                    stop_reason = stop_reason or f"reached train.max_minutes={tc.max_minutes:g}"
                if stop_now:
                    self.save_last()
                    name = signal.Signals(interrupted[0]).name if interrupted else "a signal to another rank"
                    raise NmtError(
                        f"interrupted by {name} at step {self.step}; saved {self.run.last}. "
                        f"Continue with: nmt train {self.run.config} --resume"
                    )
        finally:
            bar.close()
            for s, h in old_handlers.items():
                signal.signal(s, h)
        if self.last_validated_step != self.step:
            self.validate_on_main(final=True)
        self.save_last()
        self.info(f"stopped at step {self.step}: {stop_reason}; best dev score {self.best_saved_score:.2f} "
                  f"in {self.run.best}")
        end: dict[str, Any] = {"event": "end", "step": self.step, "reason": stop_reason}
        if self.device.type == "cuda":
            end["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20)
            self.info(f"peak GPU memory (rank 0): {end['peak_gpu_mib']:,} MiB allocated by torch")
        if self.dist.is_main:
            self.run.append_metrics(end)


def _prepare_run_dir(cfg: Config, run: RunDir, resume: bool, overwrite: bool,
                     config_path: Path | None) -> NewRun | None:
    """Check a run to resume, or start a new run directory (None when resuming)."""
    if resume:
        run.require()
        if not run.last.is_file():
            raise NmtError(f"{run.path}: no checkpoints/last.pt to resume from")
        saved = run.load_config().to_dict()
        changed = [
            (k, a, b) for k, a, b in _config_diff(saved, cfg.to_dict()) if k not in RESUME_SAFE_KEYS
        ]
        if changed:
            diff = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changed)
            raise NmtError(
                f"{run.config}: the config differs from the run's on keys that cannot change on resume: "
                f"{diff} (safe to change: {', '.join(sorted(RESUME_SAFE_KEYS))})"
            )
        return None  # config.yaml gets the new safe values once the trainer is built (see train())
    d, e = cfg.data, cfg.model.embeddings
    reads = [p for spec in (d.train, d.dev, d.test) if spec for p in corpus_paths(spec, d)]
    reads += [Path(f) for f in (e.pretrained_src, e.pretrained_tgt, config_path) if f]
    new_run = start_run_dir(run, overwrite, keep=reads)
    try:
        run.checkpoints.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run.config)
    except BaseException:
        new_run.failed()
        raise
    return new_run


def train(
    config: str | Path | dict | Config,
    overrides: list[str] | dict | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> Path:
    """Train from a config (YAML path, dict or Config); return the run directory."""
    cfg = config if isinstance(config, Config) else load_config(config, overrides)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    where = "config" if isinstance(config, (dict, Config)) else str(config)
    if cfg.train.tensorboard:
        require_tensorboard()  # before the run directory is touched
    dist = Dist.from_env()  # several processes when started by torchrun
    device = resolve_device(cfg.train.device, dist.local_rank, where)
    dist.init(device)
    try:
        return _train(cfg, where, dist, device, resume, overwrite)
    finally:
        dist.close()


def _train(cfg: Config, where: str, dist: Dist, device: torch.device, resume: bool, overwrite: bool) -> Path:
    run = RunDir(cfg.run.dir)
    config_path = None if where == "config" else Path(where)
    new_run = dist.on_main(lambda: _prepare_run_dir(cfg, run, resume, overwrite, config_path))
    with flush_denormals():
        try:
            trainer = Trainer(cfg, run, resume, where, dist, device)
        except BaseException:
            if new_run is not None and dist.is_main:  # nothing was trained: undo the start
                new_run.failed()
            raise
        if new_run is not None and dist.is_main:
            new_run.started()  # the run this one replaces (--overwrite) can go now
        if resume and dist.is_main:  # the new safe values (e.g. max_steps); a rename, so a kill cannot tear it
            tmp = run.path / ".config.yaml.tmp"
            save_config(cfg, tmp)
            os.replace(tmp, run.config)
            stale = sorted(run.checkpoints.glob(".*.tmp"))  # a save cut short by a kill
            for path in stale:
                path.unlink(missing_ok=True)
            if stale:
                trainer.info(f"removed {len(stale)} temporary file(s) left in {run.checkpoints} by an "
                             "interrupted save")
        try:
            trainer.train()
        finally:
            if trainer.log_file is not None:
                trainer.log_file.close()
            if trainer.tensorboard is not None:
                trainer.tensorboard.close()
    return run.path


__all__ = ["train", "Trainer", "LRSchedule", "encode_pairs", "make_optimizer", "update", "UpdateResult", "RESUME_SAFE_KEYS"]
