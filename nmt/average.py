"""Checkpoint averaging: the mean of the weights at the last K validations.

Weights late in training wander around a minimum; their average often sits nearer its centre
and translates a little better than any one of them (Vaswani et al. 2017; Junczys-Dowmunt et al.
2016). The trainer keeps the weights of the last `train.keep_checkpoints` validations as
checkpoints/step_<N>.pt; `nmt average RUN --last K` averages the newest K into
checkpoints/averaged.pt and scores best.pt and the average on the dev set, so you see what it
gained (or lost) before you use it: `nmt evaluate RUN --checkpoint averaged`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nmt.checkpoint import load_checkpoint, save_checkpoint
from nmt.data import dev_corpus
from nmt.errors import NmtError
from nmt.evaluate import score
from nmt.rundir import RunDir
from nmt.translate import Translator


def average_state_dicts(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating-point tensors, summed in float64 and cast back to each
    tensor's dtype (a float32 sum of many checkpoints would round); other tensors (counters) are
    taken from the newest state. All states must hold the same keys and shapes."""
    if not states:
        raise ValueError("nothing to average")
    first = states[0]
    for state in states[1:]:
        if state.keys() != first.keys():
            raise ValueError(f"checkpoints hold different parameters: {sorted(state.keys() ^ first.keys())[:3]}")
    averaged = {}
    for key, value in first.items():
        shapes = {tuple(s[key].shape) for s in states}
        if len(shapes) > 1:
            raise ValueError(f"{key}: shapes differ between checkpoints: {sorted(shapes)}")
        if value.is_floating_point():
            total = torch.zeros(value.shape, dtype=torch.float64)
            for state in states:
                total += state[key].to(torch.float64)
            averaged[key] = (total / len(states)).to(value.dtype)
        else:
            averaged[key] = states[-1][key].clone()
    return averaged


@dataclass
class AverageReport:
    output: Path
    sources: list[Path]
    dev_sentences: int = 0
    best_bleu: float | None = None  # dev BLEU (greedy) of best.pt
    averaged_bleu: float | None = None

    def __str__(self) -> str:
        names = ", ".join(p.name for p in self.sources)
        lines = [f"averaged {len(self.sources)} checkpoints ({names}) into {self.output}"]
        if self.best_bleu is not None and self.averaged_bleu is not None:
            lines.append(
                f"dev BLEU (greedy, {self.dev_sentences} sentences): best.pt {self.best_bleu:.2f}, averaged "
                f"{self.averaged_bleu:.2f} ({self.averaged_bleu - self.best_bleu:+.2f})"
            )
        return "\n".join(lines)


def average_run(
    run_dir: str | Path, last: int, output: str | Path | None = None, overwrite: bool = False, dev: bool = True
) -> AverageReport:
    """Average a run's newest `last` step checkpoints into `output` (default checkpoints/averaged.pt);
    with `dev`, score best.pt and the average on the run's dev set with greedy decoding."""
    run = RunDir(run_dir).require()
    if last < 1:
        raise NmtError(f"--last must be at least 1, got {last}")
    found = run.step_checkpoints()
    if len(found) < last:
        raise NmtError(
            f"{run.checkpoints}: --last {last} needs {last} step checkpoints (step_<N>.pt), found {len(found)}; "
            f"train with train.keep_checkpoints: {last} (or more) to keep them"
        )
    out = Path(output) if output is not None else run.averaged
    if out.exists() and not overwrite:
        raise NmtError(f"{out}: exists; pass --overwrite to replace it, or --output elsewhere")
    sources = found[-last:]
    checkpoints = [load_checkpoint(p) for p in sources]
    vocabs = {repr(c.get("vocab")) for c in checkpoints}
    if len(vocabs) > 1:
        raise NmtError(f"{run.checkpoints}: the step checkpoints have different vocabularies ({', '.join(vocabs)})")
    try:
        weights = average_state_dicts([c["model"] for c in checkpoints])
    except (KeyError, ValueError) as e:
        raise NmtError(f"{run.checkpoints}: cannot average {sources[0].name}…{sources[-1].name} ({e})") from None
    payload: dict[str, Any] = {
        "model": weights,
        "vocab": checkpoints[-1]["vocab"],
        **({"architecture": checkpoints[-1]["architecture"]} if "architecture" in checkpoints[-1] else {}),
        "step": checkpoints[-1].get("step"),
        "score": None,
        "averaged_from": [p.name for p in sources],
    }
    save_checkpoint(out, payload)
    report = AverageReport(out, sources)
    if dev:
        dev = dev_corpus(run.load_config())  # the sentences validation scored
        src, ref = dev.src, dev.tgt
        report.dev_sentences = len(src)
        report.best_bleu = score(Translator.load(run.path, "best").translate(src, strategy="greedy"), ref).bleu
        report.averaged_bleu = score(Translator.load(run.path, str(out)).translate(src, strategy="greedy"), ref).bleu
    return report
