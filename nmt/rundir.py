"""A run directory is the unit users keep: everything to translate, evaluate or resume.

    runs/<name>/
      config.yaml            the resolved config (after --set overrides)
      tokenizer/src.model    sentencepiece models (the same model twice when joint)
      tokenizer/tgt.model
      checkpoints/last.pt    model + optimiser + schedule + RNG + data position + counters
      checkpoints/best.pt    model weights at the best dev score
      checkpoints/step_<N>.pt  weights at the last train.keep_checkpoints validations (for averaging)
      checkpoints/averaged.pt  the mean of the last K of them (`nmt average RUN --last K`)
      embeddings_init.pt     the embedding tables before the first step (for drift)
      token_counts.pt        how often each id occurs in the training data, per side
      metrics.jsonl          one JSON object per log/validation event
      train.log              what the console showed, without progress bars
      tensorboard/           TensorBoard events (with train.tensorboard: true)
      curves.png             training curves (`nmt plot RUN`)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from nmt.checkpoint import load_checkpoint
from nmt.config import Config, load_config
from nmt.errors import NmtError
from nmt.model import Seq2Seq
from nmt.tokenizer import Tokenizer


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    config = property(lambda self: self.path / "config.yaml")
    tokenizer_dir = property(lambda self: self.path / "tokenizer")
    src_tokenizer = property(lambda self: self.path / "tokenizer" / "src.model")
    tgt_tokenizer = property(lambda self: self.path / "tokenizer" / "tgt.model")
    checkpoints = property(lambda self: self.path / "checkpoints")
    last = property(lambda self: self.path / "checkpoints" / "last.pt")
    best = property(lambda self: self.path / "checkpoints" / "best.pt")
    averaged = property(lambda self: self.path / "checkpoints" / "averaged.pt")
    embeddings_init = property(lambda self: self.path / "embeddings_init.pt")
    token_counts = property(lambda self: self.path / "token_counts.pt")
    metrics = property(lambda self: self.path / "metrics.jsonl")
    log = property(lambda self: self.path / "train.log")
    tensorboard = property(lambda self: self.path / "tensorboard")
    curves = property(lambda self: self.path / "curves.png")

    def step_checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"step_{step}.pt"

    def step_checkpoints(self) -> list[Path]:
        """checkpoints/step_<N>.pt, oldest first."""
        found = [(int(p.stem[5:]), p) for p in self.checkpoints.glob("step_*.pt") if p.stem[5:].isdigit()]
        return [p for _, p in sorted(found)]

    def require(self) -> "RunDir":
        if not self.path.is_dir():
            raise NmtError(f"{self.path}: run directory not found")
        if not self.config.is_file():
            raise NmtError(f"{self.path}: not a run directory (no config.yaml)")
        return self

    def load_config(self) -> Config:
        return load_config(self.config)

    def load_tokenizers(self) -> tuple[Tokenizer, Tokenizer]:
        return Tokenizer.load(self.src_tokenizer), Tokenizer.load(self.tgt_tokenizer)

    def checkpoint_path(self, which: str = "best") -> Path:
        """'best', 'last', 'averaged', 'step_<N>' (files in checkpoints/) or a path to a checkpoint file."""
        if which in ("best", "last"):
            path = self.best if which == "best" else self.last
            if which == "best" and not path.is_file() and self.last.is_file():
                path = self.last  # killed before the first validation
            if not path.is_file():
                raise NmtError(f"{self.path}: run directory has no checkpoint (no {path.name}); train first")
            return path
        named = self.checkpoints / f"{which}.pt"
        if which == "averaged" or (which.startswith("step_") and which[5:].isdigit()):
            if not named.is_file():
                how = f"nmt average {self.path} --last K" if which == "averaged" else "train.keep_checkpoints"
                raise NmtError(f"{self.path}: no checkpoints/{named.name} (made by {how})")
            return named
        return Path(which)

    def append_metrics(self, record: dict[str, Any]) -> None:
        with self.metrics.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def build_model(cfg: Config, src_vocab: int, tgt_vocab: int) -> Seq2Seq:
    return Seq2Seq(cfg.model, src_vocab, tgt_vocab)


def load_model(run: RunDir, cfg: Config, ckpt_path: Path, src_vocab: int, tgt_vocab: int) -> Seq2Seq:
    """Build the run's model and load a checkpoint's weights, refusing ones of another shape."""
    ckpt = load_checkpoint(ckpt_path)
    vocab = ckpt.get("vocab", {})
    if vocab.get("src") != src_vocab or vocab.get("tgt") != tgt_vocab:
        raise NmtError(
            f"{ckpt_path}: checkpoint vocabulary sizes {vocab.get('src')}/{vocab.get('tgt')} do not "
            f"match the run's tokenizers {src_vocab}/{tgt_vocab}"
        )
    model = build_model(cfg, src_vocab, tgt_vocab)
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0][:160]
        raise NmtError(f"{ckpt_path}: checkpoint does not fit the model in {run.config} ({first})") from None
    model.eval()
    return model


def snapshot_embeddings(model: Seq2Seq) -> dict[str, torch.Tensor]:
    return {side: w.detach().clone() for side, w in model.embedding_tables().items()}


def count_tokens(examples: list[tuple[list[int], list[int]]], src_vocab: int, tgt_vocab: int) -> dict[str, torch.Tensor]:
    """How often each id occurs in the training pairs: {"src": (src_vocab,), "tgt": (tgt_vocab,)}."""
    src = torch.tensor([i for s, _ in examples for i in s], dtype=torch.long)
    tgt = torch.tensor([i for _, t in examples for i in t], dtype=torch.long)
    return {"src": torch.bincount(src, minlength=src_vocab), "tgt": torch.bincount(tgt, minlength=tgt_vocab)}
