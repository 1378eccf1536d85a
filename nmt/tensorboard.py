"""TensorBoard events of a training run (optional: `pip install 'nmt[tensorboard]'`).

With `train.tensorboard: true` the trainer writes RUN/tensorboard/events.out.tfevents.* through
`torch.utils.tensorboard.SummaryWriter`: the training loss, learning rate and speed at every log
line; dev loss, perplexity, BLEU and chrF, the embedding drift and attention heatmaps of the
first dev sentences at every validation. `tensorboard --logdir runs/` then shows runs side by
side. The same numbers are in metrics.jsonl, which `nmt plot` draws without TensorBoard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nmt.errors import NmtError
from nmt.search import Hypothesis
from nmt.tokenizer import Tokenizer

HINT = "train.tensorboard: true needs the tensorboard package: pip install 'nmt[tensorboard]'"
HEATMAPS = 3  # dev sentences whose attention is drawn at every validation


def require_tensorboard() -> None:
    """Fail before training starts, not at the first log line, when tensorboard is missing."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise NmtError(HINT) from None


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


class TensorBoardLog:
    """Turns the trainer's metrics records into TensorBoard scalars, and draws attention heatmaps."""

    def __init__(
        self,
        log_dir: str | Path,
        src_tok: Tokenizer,
        tgt_tok: Tokenizer,
        dev_src_ids: list[list[int]],
        resume_step: int | None = None,
    ) -> None:
        """resume_step: the step a resumed run continues from; events a killed session wrote after it
        are dropped (purge_step), so the curves read like one run, as metrics.jsonl does."""
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir), purge_step=None if resume_step is None else resume_step + 1)
        self.src_tok, self.tgt_tok = src_tok, tgt_tok
        # the dev sentences whose attention is drawn: the trainer translates them at each validation
        self.dev_src_ids = [ids for ids in dev_src_ids if ids][:HEATMAPS]

    def log(self, record: dict[str, Any], translations: list[Hypothesis] | None = None) -> None:
        """Write one metrics.jsonl record; a validation with the greedy `translations` (with
        attention) of `dev_src_ids` also gets their attention heatmaps."""
        step, add = record["step"], self.writer.add_scalar
        if record["event"] == "train":
            add("train/loss", record["loss"], step)
            add("train/lr", record["lr"], step)
            add("train/tgt_tokens_per_s", record["tgt_tokens_per_s"], step)
        elif record["event"] == "validation":
            for key in ("loss", "ppl", "bleu", "chrf"):
                add(f"dev/{key}", record[f"dev_{key}"], step)
            for side, drift in record.get("embedding_drift", {}).items():
                for key in ("mean_l2", "mean_cos"):
                    if drift.get(key) is not None:
                        add(f"embedding_drift/{side}_{key}", drift[key], step)
            if translations is not None:
                self.heatmaps(translations, step)
            self.writer.flush()  # a validation is worth seeing now, not at the next flush_secs

    def heatmaps(self, translations: list[Hypothesis], step: int) -> None:
        """The attention of the translations of `dev_src_ids`, as images."""
        for i, (src_ids, hyp) in enumerate(zip(self.dev_src_ids, translations)):
            self._heatmap(f"attention/dev_{i + 1}", src_ids, hyp.tokens, hyp.attention, step)

    def _heatmap(self, tag: str, src_ids: list[int], tgt_ids: list[int], attention: torch.Tensor,
                 step: int) -> None:
        if _has_matplotlib():  # labelled with the pieces
            from nmt.plots import attention_figure

            src = [self.src_tok.id_to_piece(t) for t in src_ids]
            tgt = [self.tgt_tok.id_to_piece(t) for t in tgt_ids]
            title = f"{self.src_tok.decode(src_ids)}\n→ {self.tgt_tok.decode(tgt_ids)}"
            self.writer.add_figure(tag, attention_figure(src, tgt, attention, title), step)
        else:  # the bare matrix: target steps down, source pieces across
            self.writer.add_image(tag, attention.float().clamp(0, 1).unsqueeze(0), step, dataformats="CHW")

    def close(self) -> None:
        self.writer.close()
