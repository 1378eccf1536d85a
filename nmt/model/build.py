"""Making a model from a config, and loading a checkpoint's weights into one: the model package
owns its construction, so that the trainer, the translator and the scripts build it one way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nmt.checkpoint import load_checkpoint
from nmt.config import Config
from nmt.errors import NmtError
from nmt.model.seq2seq import Seq2Seq
from nmt.rundir import RunDir


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
    check_architecture(ckpt, model, ckpt_path, run.config)
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0][:160]
        raise NmtError(f"{ckpt_path}: checkpoint does not fit the model in {run.config} ({first})") from None
    model.eval()
    return model


def check_architecture(ckpt: dict[str, Any], model: Seq2Seq, ckpt_path: Path, config_path: Path | str) -> None:
    """Refuse a checkpoint of another architecture in one line that names the key. A checkpoint made
    before checkpoints named their architecture is GRU with Bahdanau (the defaults)."""
    recorded = ckpt.get("architecture", {})
    if not isinstance(recorded, dict):
        raise NmtError(f"{ckpt_path}: not an nmt checkpoint (its 'architecture' is {type(recorded).__name__}, "
                       "not a mapping)")
    saved = {**Seq2Seq.ARCHITECTURE, **recorded}
    for key, value in model.architecture().items():
        if saved.get(key) != value:
            raise NmtError(
                f"{ckpt_path}: the checkpoint is a model with 'model.{key}: {saved.get(key)}', but "
                f"{config_path} says {value!r}; a checkpoint loads only into its own architecture"
            )


def snapshot_embeddings(model: Seq2Seq) -> dict[str, torch.Tensor]:
    """A copy of the embedding tables by side (embeddings_init.pt: the tables before the first step)."""
    return {side: w.detach().clone() for side, w in model.embedding_tables().items()}
