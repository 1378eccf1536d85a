"""The training loop: steps, when to validate, when to save, when to stop, signals, and what the
processes of a DDP run agree on. Data (nmt/data.py), the update and its schedule (nmt/optim.py),
validation (nmt/validation.py) and the run directory (nmt/rundir.py) live in their own modules.

Everything a resumed run needs lives in `Trainer.state_dict()`: model, optimiser, schedule,
early-stopping state, counters, the data stream's position and every RNG state.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import torch
from tqdm import tqdm

from nmt.batching import Batch
from nmt.checkpoint import atomic_write, load_checkpoint, save_checkpoint
from nmt.config import Config, load_config, resume_changes, resume_safe_keys, save_config
from nmt.corpus import corpus_paths
from nmt.cpu import flush_denormals
from nmt.data import FINGERPRINT_PREFIX, DevSet, training_data
from nmt.dataset import Dataset
from nmt_runtime.files import file_sha256
from nmt.distributed import Dist, resolve_device
from nmt.drift import drift_summary
from nmt.errors import NmtError
from nmt.model import Seq2Seq, build_model, check_architecture, snapshot_embeddings
from nmt.optim import LRSchedule, Plateau, make_optimizer, update
from nmt.precision import AUTOCAST_DTYPES, LEGACY, PrecisionCache, cache_key, choose_precision, time_steps, upcoming_batches
from nmt.prepare import prepare
from nmt.pretrained import apply_pretrained
from nmt.rundir import NewRun, RunDir, RunLock, start_run_dir
from nmt.runlog import RunLog
from nmt.tensorboard import TensorBoardLog, require_tensorboard
from nmt_runtime.tokenizer import SIDES
from nmt.snapshots import drop_after as drop_snapshots_after, save_snapshot, snapshot_ids, snapshot_path
from nmt.validation import greedy_decode, validate

def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


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


@contextmanager
def _catch_signals() -> Iterator[list[int]]:
    """SIGINT/SIGTERM only note the signal; the loop stops at the end of the step and saves."""
    caught: list[int] = []
    old = {s: signal.signal(s, lambda signum, _frame: caught.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


class _Window:
    """Loss, target tokens and training seconds since the last log line."""

    def __init__(self) -> None:
        self.loss, self.tokens, self.seconds = 0.0, 0, 0.0

    def add(self, loss: float, tokens: int, seconds: float) -> None:
        self.loss += loss
        self.tokens += tokens
        self.seconds += seconds


@dataclass
class Progress:
    """Where the run stands: the counters that last.pt keeps for a resumed run, saved and restored
    through this class alone, so a new counter is one field here (a checkpoint from before it
    restores the field's default). The keys in the checkpoint are those older nmt wrote.

    Scores are "higher is better" (BLEU, or −loss). `stopping` drives early stopping and sees only
    the validations every validate_every steps, so a run stopped and resumed off that grid takes
    the same decisions as an uninterrupted one; `best_checkpoint` is the score of
    checkpoints/best.pt, which any validation may replace."""

    step: int = 0
    last_validated_step: int = -1
    elapsed_s: float = 0.0  # training wall-clock time over all sessions of this run
    skipped_steps: int = 0  # updates skipped for a non-finite gradient (their steps still count)
    skips_in_a_row: int = 0
    stopping: Plateau = field(default_factory=Plateau)
    best_checkpoint: Plateau = field(default_factory=Plateau)

    def _counters(self) -> list[str]:
        return [f.name for f in fields(self) if not isinstance(getattr(self, f.name), Plateau)]

    def state_dict(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in self._counters()},
                "best_score": self.stopping.best, "bad_validations": self.stopping.bad,
                "best_saved_score": self.best_checkpoint.best}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """From last.pt's "trainer" section (which holds more than these counters)."""
        defaults = Progress()
        for name in self._counters():
            setattr(self, name, saved.get(name, getattr(defaults, name)))
        self.stopping.load_state_dict({"best": saved["best_score"], "bad_validations": saved["bad_validations"]})
        self.best_checkpoint.best = saved["best_saved_score"]


class Trainer:
    """One process's part of a training: built in named steps (data, model, optimiser, restore,
    DDP, outputs), then `train()` runs the loop until a limit, early stopping or a signal."""

    def __init__(
        self, cfg: Config, run: RunDir, resume: bool, where: str = "config", dist: Dist | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.cfg, self.run, self.tc, self.where = cfg, run, cfg.train, where
        self.dist = dist or Dist()
        self.device = device or torch.device("cpu")
        self.log = RunLog(run, self.dist.is_main)  # train.log opens once the trainer is built
        self.progress = Progress()
        self.recorded_precision: str | None = None  # what a resumed run chose when it started
        self._setup_data(resume)
        self._setup_model(resume)
        self._setup_optimiser()
        self._restore(resume)
        self._choose_precision()
        self._distribute(resume)
        self._open_outputs(resume)

    # ------------------------------------------------------------------ set-up

    def _setup_data(self, resume: bool) -> None:
        """The prepared dataset, the run's tokenizers, the training stream and the dev set. Rank 0
        prepares the corpus (or finds it prepared) and puts its tokenizers into the run directory;
        every rank maps the same prepared files, so the OS shares their pages."""
        folder = self.dist.on_main(lambda: self._prepare())
        if not (folder / "manifest.json").is_file():
            raise NmtError(f"{folder}: rank 0 prepared the data there, but this machine does not see it; set "
                           f"'data.prepared_dir' to a folder all machines share, or run nmt prepare {self.where} "
                           "on each machine first")
        self.dataset = Dataset(folder)
        self.dist.on_main(lambda: self._tokenizers(resume) and None)
        self.src_tok, self.tgt_tok = self.run.load_tokenizers()
        cfg = self.cfg
        self.data = training_data(cfg, self.dataset, self.where)
        self.info(self.data.describe())
        if cfg.tokenizer.sampling_alpha:
            self.info(f"subword sampling: each training sentence split anew, from its {cfg.tokenizer.nbest_size} best "
                      f"splits with probability ∝ P^{cfg.tokenizer.sampling_alpha} (dev and test: the best split)")
        self.dev = DevSet.load(cfg, self.dataset)
        self.stream = self.data.stream(cfg, self.dist.rank, self.dist.world_size)
        self.token_counts = self.data.token_counts()  # for the embedding drift logged at every validation
        n = self.tc.embedding_snapshots  # the rows kept at every validation (nmt/snapshots.py)
        self.snapshot_ids = {side: snapshot_ids(self.token_counts[side], n) for side in SIDES} if n else None

    def _setup_model(self, resume: bool) -> None:
        """The model, built from the seed (so every rank and every rerun builds the same), with
        pretrained embedding tables in a new run (a resumed run gets its tables from last.pt)."""
        torch.manual_seed(self.tc.seed)
        random.seed(self.tc.seed)
        self.model: Seq2Seq = build_model(self.cfg, len(self.src_tok), len(self.tgt_tok))
        if not resume:
            for report in apply_pretrained(self.model, self.cfg.model, self.src_tok, self.tgt_tok):
                self.info(str(report))
        self.model.to(self.device)
        n_params = sum(p.numel() for p in self.model.parameters())
        n_trainable = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        self.info(f"model: {n_params:,} parameters ({n_trainable:,} trainable); vocab src {len(self.src_tok)} "
                  f"tgt {len(self.tgt_tok)}")
        self.info(self.model.encoder.describe())
        self.info(self.model.decoder.describe_unroll())

    def _setup_optimiser(self) -> None:
        """The optimiser over the model on its device, the learning-rate schedule, and fp16's
        loss scaler: what `update` needs, all of it in last.pt."""
        self.optimizer = make_optimizer(self.model, self.tc)
        self.schedule = LRSchedule(self.tc)
        # `auto` never picks fp16, so the configured value says whether there is a scaler
        self.scaler = torch.amp.GradScaler(self.device.type) if self.tc.precision == "fp16" else None

    def _restore(self, resume: bool) -> None:
        """A resumed run continues from last.pt exactly (weights, optimiser, counters, data
        position, random states); either way the embedding tables from before the first step are
        kept, to log their drift."""
        if resume:
            self.load_state_dict(load_checkpoint(self.run.checkpoint_path("last")))
            self.info(f"resumed from {self.run.last} at step {self.progress.step}, epoch {self.stream.epoch}")
            self.initial_tables = torch.load(self.run.embeddings_init, weights_only=True)
        else:
            self.initial_tables = {side: t.cpu() for side, t in snapshot_embeddings(self.model).items()}

    def _choose_precision(self) -> None:
        """`train.precision`, with `auto` resolved (nmt/precision.py): kept from a resumed run, else
        measured by rank 0 on the batches this rank is about to train on, the same for every rank."""
        choice = self.dist.on_main(lambda: choose_precision(
            self.tc.precision, self.device, self.recorded_precision,
            key=lambda: cache_key(self.cfg.model, {"src": len(self.src_tok), "tgt": len(self.tgt_tok)}, self.tc,
                                  self.dist.world_size),
            measure=lambda: time_steps(self.model, upcoming_batches(self.stream, self.device), self.tc),
            cache=PrecisionCache()))
        self.precision, self.autocast_dtype = choice.precision, AUTOCAST_DTYPES[choice.precision]
        self.info(f"precision: {choice.precision} ({choice.why})")

    def _distribute(self, resume: bool) -> None:
        """Under DDP the model trains wrapped: DDP makes rank 0's weights everyone's (so it comes
        after `_restore`) and averages the gradients in backward."""
        self.train_model: torch.nn.Module = self.model
        if self.dist.active:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_model = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            if not resume:  # each rank its own dropout masks
                torch.manual_seed(self.tc.seed + self.dist.rank)

    def info(self, msg: str, console: bool = True) -> None:
        self.log.info(msg, console)

    def _prepare(self) -> Path:
        """The prepared dataset's folder: found, or made now (as `nmt prepare` does)."""
        result = prepare(self.cfg, self.where, say=self.info)
        train = result.dataset.manifest["splits"]["train"]
        self.info(f"training corpus: {train['pairs']} pairs ({train['empty_dropped']} with an empty side skipped); "
                  f"prepared data {result.dataset.path}{'' if result.prepared else ' (found)'}")
        return result.dataset.path

    def _tokenizers(self, resume: bool) -> None:
        """A new run gets the prepared dataset's sentencepiece models in its run directory (a
        resumed run has them: the fingerprint in last.pt says whether they are the same)."""
        if not resume:
            self.run.tokenizer_dir.mkdir(parents=True, exist_ok=True)
            for side, path in (("src", self.run.src_tokenizer), ("tgt", self.run.tgt_tokenizer)):
                shutil.copyfile(self.dataset.path / f"{side}.model", path)

    def _record_dataset(self) -> None:
        """RUN/prepared.json: which prepared dataset the run reads (rewritten only when it moved)."""
        m = self.dataset.manifest
        record = {"path": str(self.dataset.path.resolve()), "key": m["key"], "sources": m["sources"],
                  "tokenizers_sha256": m["tokenizers_sha256"]}
        text = json.dumps(record, indent=1) + "\n"
        path = self.run.prepared
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            atomic_write(path, lambda f: f.write(text.encode("utf-8")))

    def _open_outputs(self, resume: bool) -> None:
        """Rank 0 alone writes into the run directory: the start files, train.log, TensorBoard."""
        self.tensorboard: TensorBoardLog | None = None
        if not self.dist.is_main:
            return
        self._record_dataset()
        if resume:
            self.log.drop_after(self.progress.step)
            drop_snapshots_after(self.run.snapshots, self.progress.step)  # the resumed run makes them again
        else:
            torch.save(self.initial_tables, self.run.embeddings_init)
            torch.save(self.token_counts, self.run.token_counts)
        self.log.open()
        if self.tc.tensorboard:
            self.tensorboard = TensorBoardLog(self.run.tensorboard, self.src_tok, self.tgt_tok, self.dev.src_ids,
                                              self.progress.step if resume else None)

    def close(self) -> None:
        self.log.close()
        if self.tensorboard is not None:
            self.tensorboard.close()

    # ------------------------------------------------------------------ state

    def state_dict(self, rng_states: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Everything to continue exactly; `rng_states`: every rank's (this process's by default)."""
        rng_states = rng_states or [_rng_state(self.device)]
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            **self._describe_weights(),
            "trainer": {
                **self.progress.state_dict(),
                "data_fingerprint": self.data.fingerprint,
                "schedule": self.schedule.state_dict(),
                "stream": self.stream.state_dict(),
                "rng_torch": rng_states[0]["torch"],
                "rng_python": rng_states[0]["python"],
                "rng_cuda": rng_states[0].get("cuda"),
                "rng_ranks": rng_states if self.dist.active else None,  # each rank's dropout stream
                "world_size": self.dist.world_size,
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "precision": self.precision,  # what `auto` chose, so that a resumed run keeps it
            },
        }

    def _check_legacy_tokenizers(self) -> None:
        """A run from before prepared data trained its own tokenizers: resume only if the prepared
        data was encoded with the same ones (always so below tokenizer.max_sentences lines)."""
        sha = self.dataset.manifest["tokenizers_sha256"]
        for side, path in (("src", self.run.src_tokenizer), ("tgt", self.run.tgt_tokenizer)):
            if file_sha256(path) != sha[side]:
                raise NmtError(
                    f"{path}: the run's tokenizer differs from the one its prepared data {self.dataset.path} "
                    "was encoded with (the run is from an older nmt, which sampled the tokenizer's text "
                    "differently); resuming would feed it other ids: finish it with the nmt it started "
                    "with, or start a new run"
                )

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a `state_dict()` (last.pt), after checking that it continues this run."""
        t = state["trainer"]
        saved = t.get("data_fingerprint")  # absent in checkpoints of older nmt
        if saved is not None and not saved.startswith(FINGERPRINT_PREFIX):
            self._check_legacy_tokenizers()
            self.info(f"{self.run.last}: saved by an nmt before prepared data; its training data cannot be "
                      "checked, and from here on its batches come in the new order")
        elif saved is not None and saved != self.data.fingerprint:
            d = self.cfg.data
            files = " and ".join(str(p) for p in corpus_paths(d.train, d))
            raise NmtError(
                f"{files}: the training data differs from the data that {self.run.path} was trained on "
                f"(fingerprint {saved[len(FINGERPRINT_PREFIX):][:12]}, now "
                f"{self.data.fingerprint[len(FINGERPRINT_PREFIX):][:12]}); resuming would not "
                "continue the same run: restore the original files, or start a new run (--overwrite)"
            )
        world_size = t.get("world_size", 1)
        if world_size != self.dist.world_size:
            how = "nmt train CONFIG --resume" if world_size == 1 else f"torchrun with {world_size} processes in all"
            raise NmtError(
                f"{self.run.last}: the run was trained by {world_size} process(es) and this is "
                f"{self.dist.world_size}; the batches and random streams depend on it: resume with {how}"
            )
        check_architecture(state, self.model, self.run.last, self.run.config)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and t.get("scaler"):
            self.scaler.load_state_dict(t["scaler"])
        self.progress.load_state_dict(t)
        self.recorded_precision = t.get("precision", LEGACY)  # absent in checkpoints of older nmt
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

    def _describe_weights(self) -> dict[str, Any]:
        """What every checkpoint says of its weights: the vocabulary sizes and the architecture, which
        loading checks (nmt/model/build.py)."""
        return {"vocab": {"src": len(self.src_tok), "tgt": len(self.tgt_tok)},
                "architecture": self.model.architecture()}

    def _weights(self, score: float | None) -> dict[str, Any]:
        """What best.pt and step_<N>.pt hold: the weights, without what only a resume needs."""
        return {"model": self.model.state_dict(), **self._describe_weights(), "step": self.progress.step,
                "score": score}

    def save_step(self, score: float) -> None:
        """Keep this validation's weights as checkpoints/step_<N>.pt and only the newest K of them."""
        keep = self.tc.keep_checkpoints
        if not keep:
            return
        save_checkpoint(self.run.step_checkpoint(self.progress.step), self._weights(score))
        for old in self.run.step_checkpoints()[:-keep]:
            old.unlink()

    # ------------------------------------------------------------------ steps

    def train_step(self, batch: Batch) -> tuple[float, int]:
        """One update on this rank's shard; returns its summed loss and target tokens."""
        batch = batch.to(self.device)
        lr = self.schedule.lr(self.progress.step + 1, self.progress.elapsed_s)
        result = update(self.train_model, self.optimizer, batch, lr, self.tc, self.autocast_dtype, self.scaler)
        value = result.loss.item()
        (bad,) = self.dist.any(not math.isfinite(value))  # stop together, whichever rank saw it
        if bad:
            raise NmtError(
                f"training loss became {value if not math.isfinite(value) else 'not finite on another rank'} "
                f"at step {self.progress.step + 1}; {self._kept()}. Lower 'train.lr' or set 'train.clip_grad_norm'"
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
        p = self.progress
        if not skipped:
            p.skips_in_a_row = 0
            return
        p.skipped_steps += 1
        p.skips_in_a_row += 1
        scale = f"; fp16 loss scale now {self.scaler.get_scale():g}" if self.scaler is not None else ""
        self.info(f"step {p.step + 1}: update skipped, the gradient is not finite ({p.skipped_steps} "
                  f"skipped so far{scale})")
        if p.skips_in_a_row >= self.tc.max_skipped_steps:
            first = p.step + 2 - p.skips_in_a_row
            raise NmtError(
                f"the gradient was not finite in {p.skips_in_a_row} updates in a row (steps {first}-"
                f"{p.step + 1}; 'train.max_skipped_steps' is {self.tc.max_skipped_steps}), so the "
                f"weights stopped changing; {self._kept()}. Lower 'train.lr', set 'train.clip_grad_norm', "
                "or use 'train.precision: fp32'"
            )

    # ------------------------------------------------------------------ validation

    def validate(self, final: bool = False) -> dict[str, Any]:
        """Validate, keep best.pt and step checkpoints, log. A `final` validation (at a stop off
        the validate_every grid) may update best.pt but not early stopping or the schedule."""
        dec, p = self.cfg.decode, self.progress
        result = validate(self.model, self.dev, self.tgt_tok, dec, self.device)
        metric = result.scores.bleu if self.tc.early_stopping_metric == "bleu" else -result.loss
        improved = p.best_checkpoint.observe(metric)
        reduced = False
        if not final:
            p.stopping.observe(metric)
            reduced = self.schedule.on_validation(metric)
        p.last_validated_step = p.step
        drift = {
            side: drift_summary(self.initial_tables[side], table.detach().float().cpu(), self.token_counts[side])
            for side, table in self.model.embedding_tables().items()
        }
        record = {
            "event": "validation",
            "step": p.step,
            "epoch": self.stream.epoch,
            "dev_loss": round(result.loss, 4),
            "dev_ppl": round(result.perplexity, 3),
            "dev_bleu": round(result.scores.bleu, 2),
            "dev_chrf": round(result.scores.chrf, 2),
            "best": improved,
            "lr": self.schedule.lr(p.step + 1, p.elapsed_s),
            "seconds": round(result.seconds, 1),
            "embedding_drift": drift,
        }
        self.log.record(record)
        if self.snapshot_ids is not None:
            save_snapshot(snapshot_path(self.run.snapshots, p.step), p.step, self.model.embedding_tables(),
                          self.snapshot_ids)
        if self.tensorboard is not None:
            sources = self.tensorboard.dev_src_ids
            self.tensorboard.log(record, greedy_decode(self.model, sources, dec, self.device, attention=True))
        self.info(
            f"validation at step {p.step}: dev loss {result.loss:.3f} ppl {record['dev_ppl']:.2f} "
            f"BLEU {result.scores.bleu:.2f} (greedy){' *best*' if improved else ''}"
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
            save_checkpoint(self.run.best, self._weights(p.best_checkpoint.best))
        self.save_step(metric)
        return record

    def validate_on_main(self, final: bool = False) -> None:
        """Rank 0 validates (and may write best.pt) while the others wait; then every rank takes
        the decisions that follow from it (early stopping, learning rate) from rank 0."""
        p = self.progress

        def run() -> dict[str, Any]:
            self.validate(final)
            return {"stopping": p.stopping.state_dict(), "best_saved_score": p.best_checkpoint.best,
                    "last_validated_step": p.last_validated_step, "schedule": self.schedule.state_dict()}

        decided = self.dist.on_main(run)
        p.stopping.load_state_dict(decided["stopping"])
        p.best_checkpoint.best, p.last_validated_step = decided["best_saved_score"], decided["last_validated_step"]
        self.schedule.load_state_dict(decided["schedule"])

    # ------------------------------------------------------------------ loop

    def _total_steps(self) -> int | None:
        limits = [self.tc.max_steps] if self.tc.max_steps else []
        if self.tc.max_epochs:
            limits.append(self.tc.max_epochs * self.stream.batches_per_epoch())
        return min(limits) if limits else None

    def _limit_reached(self) -> str | None:
        tc = self.tc
        if tc.max_steps and self.progress.step >= tc.max_steps:
            return f"reached train.max_steps={tc.max_steps}"
        if tc.max_epochs and self.stream.epoch >= tc.max_epochs:
            return f"reached train.max_epochs={tc.max_epochs}"
        return None

    def _log_train(self, window: _Window, bar: tqdm) -> None:
        """The log line of the last `log_every` steps: the loss and tokens of all ranks, the time of
        this one (they run in step)."""
        loss, tokens = self.dist.sum(window.loss, window.tokens)
        p = self.progress
        record = {
            "event": "train",
            "step": p.step,
            "epoch": self.stream.epoch,
            "loss": round(loss / tokens, 4),
            "lr": self.schedule.lr(p.step, p.elapsed_s),
            "tgt_tokens_per_s": round(tokens / window.seconds, 1),
            "skipped_steps": p.skipped_steps,
        }
        self.log.record(record)
        if self.tensorboard is not None:
            self.tensorboard.log(record)
        bar.set_postfix(loss=f"{record['loss']:.3f}", tok_s=f"{record['tgt_tokens_per_s']:.0f}",
                        lr=f"{record['lr']:.1e}", ep=self.stream.epoch)
        self.info(f"step {p.step} epoch {self.stream.epoch} loss {record['loss']:.3f} "
                  f"lr {record['lr']:.2e} tok/s {record['tgt_tokens_per_s']:.0f}", console=bar.disable)

    def train(self) -> None:
        tc, p = self.tc, self.progress
        stop_reason = None
        # the bar only on a terminal; in a log file (CI, nohup) the log lines say the same
        show_bar = tc.progress and sys.stderr.isatty() and self.dist.is_main
        bar = tqdm(total=self._total_steps(), initial=p.step, disable=not show_bar, unit="step",
                   dynamic_ncols=True, mininterval=0.5)
        window = _Window()
        session_t0, elapsed_before = time.time(), p.elapsed_s
        with _catch_signals() as caught:
            try:
                while (stop_reason := self._limit_reached()) is None:
                    t0 = time.time()
                    batch, _ = self.stream.next_batch()
                    window.add(*self.train_step(batch), time.time() - t0)  # validations do not count
                    p.step += 1
                    p.elapsed_s = elapsed_before + time.time() - session_t0
                    bar.update(1)
                    if p.step % tc.log_every == 0:
                        self._log_train(window, bar)
                        window = _Window()
                    if p.step % tc.validate_every == 0:
                        self.validate_on_main()
                        self.save_last()
                        if tc.patience and p.stopping.bad >= tc.patience:
                            stop_reason = f"early stopping: no better dev score in {tc.patience} validations"
                    elif p.step % tc.save_every == 0:
                        self.save_last()
                    # the ranks agree on the clock (the slowest rank's), so that they stop together
                    # and the linear schedule gives each the same rate
                    p.elapsed_s, signalled = self.dist.max(p.elapsed_s, float(bool(caught)))
                    time_up, stop_now = bool(tc.max_minutes and p.elapsed_s >= tc.max_minutes * 60), bool(signalled)
                    if stop_now:
                        self.save_last()
                        name = signal.Signals(caught[0]).name if caught else "a signal to another rank"
                        raise NmtError(f"interrupted by {name} at step {p.step}; saved {self.run.last}. "
                                       f"Continue with: nmt train {self.run.config} --resume")
                    if stop_reason or time_up:
                        stop_reason = stop_reason or f"reached train.max_minutes={tc.max_minutes:g}"
                        break
            finally:
                bar.close()
        self._finish(stop_reason)

    def _finish(self, stop_reason: str) -> None:
        p = self.progress
        if p.last_validated_step != p.step:
            self.validate_on_main(final=True)
        self.save_last()
        self.info(f"stopped at step {p.step}: {stop_reason}; best dev score {p.best_checkpoint.best:.2f} "
                  f"in {self.run.best}")
        end: dict[str, Any] = {"event": "end", "step": p.step, "reason": stop_reason}
        if self.device.type == "cuda":
            end["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20)
            self.info(f"peak GPU memory (rank 0): {end['peak_gpu_mib']:,} MiB allocated by torch")
        self.log.record(end)


def _check_resume(cfg: Config, run: RunDir) -> None:
    """A run to resume has last.pt, and `cfg` changes none of the keys that must stay."""
    if not run.last.is_file():
        raise NmtError(f"{run.path}: no checkpoints/last.pt to resume from")
    changed = resume_changes(run.load_config(), cfg)
    if changed:
        diff = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changed)
        raise NmtError(
            f"{run.config}: the config differs from the run's on keys that cannot change on resume: "
            f"{diff} (safe to change: {', '.join(sorted(resume_safe_keys()))})"
        )


def _prepare_run_dir(cfg: Config, run: RunDir, resume: bool, overwrite: bool,
                     config_path: Path | None) -> tuple[RunLock, NewRun | None]:
    """Lock the run directory (one trainer at a time, refused before anything is touched), then
    check a run to resume, or start a new run directory (None when resuming)."""
    if resume:
        run.require()
        lock = RunLock(run.path).take()
        try:
            _check_resume(cfg, run)
        except BaseException:
            lock.release()
            raise
        return lock, None  # config.yaml gets the new safe values once the trainer is built (see _train_in())
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
    return new_run.lock, new_run


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
        path = _train(cfg, where, dist, device, resume, overwrite)
        # a rank that tears the group down while another still talks to it can abort at exit
        # ("terminate called without an active exception"): leave together
        dist.barrier()
        return path
    finally:
        dist.close()


def _train(cfg: Config, where: str, dist: Dist, device: torch.device, resume: bool, overwrite: bool) -> Path:
    run = RunDir(cfg.run.dir)
    config_path = None if where == "config" else Path(where)
    # rank 0 alone holds the run directory's lock (the other ranks' copy holds nothing), to the end
    lock, new_run = dist.on_main(lambda: _prepare_run_dir(cfg, run, resume, overwrite, config_path))
    try:
        _train_in(cfg, run, where, dist, device, resume, new_run)
    finally:
        lock.release()
    return run.path


def _train_in(cfg: Config, run: RunDir, where: str, dist: Dist, device: torch.device, resume: bool,
              new_run: NewRun | None) -> None:
    """Build the trainer in the prepared run directory and train."""
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
            trainer.close()


__all__ = ["train", "Trainer"]
