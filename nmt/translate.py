"""Translator: load a run directory and translate batches of sentences.

One code path serves a file, a pipe, the interactive prompt and Python:

    from nmt import Translator
    t = Translator.load("runs/toy")
    t.translate(["the king eats ."], beam=5)

`Translator.load([run1, run2])` (CLI: `--ensemble RUN2`) decodes with an ensemble of runs that
share their tokenizers (runtime/nmt_runtime/ensemble.py). Decode settings are DecodeOptions' names as keywords
(`beam=5`, `strategy="sample"`, `seed=1`, ...), on top of the first run's `decode.*`; decoding is
`nmt.search.decode`, the one path every command shares.

`Translator.load(run, quantize="int8")` (CLI: `--quantize int8`) decodes on the CPU with int8
weights in the Linear and RNN (GRU or LSTM) layers: faster, at a small cost in BLEU (see `quantize_int8`).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from nmt.config import Config
from nmt_runtime.decode_options import DecodeOptions
from nmt.cpu import flush_denormals
from nmt.errors import NmtError
from nmt.model import Seq2Seq, load_model
from nmt.rundir import RunDir
from nmt.search import Hypothesis, decode
from nmt.tokenizer import Tokenizer
from nmt_runtime.translator import (  # noqa: F401  (Translation, clean_input: nmt's names too)
    ExportTranslator, Translation, TranslatorBase, check_same_tokenizers, clean_input, is_export,
)


QUANTIZE_CHOICES = ("none", "int8")


def quantize_int8(model: Seq2Seq) -> Seq2Seq:
    """Dynamic int8 quantization of the model's nn.Linear, nn.GRU and nn.LSTM layers, for faster CPU decoding.

    Decoding on the CPU is bound by the matmuls of these layers. Dynamic quantization stores their
    weights as int8 (once, here) and quantizes the activations on the fly, per batch, from their
    observed range, so it needs no calibration data and no retraining; the matmuls then run in int8
    and the results come back as float. It exists for the CPU only (fbgemm/qnnpack kernels): a
    model on another device is refused. nn.Embedding is not quantized: a lookup, no matmul, so the
    tables stay float. With `model.tie_embeddings` the generator shares the target table's
    Parameter; the quantized generator packs its own int8 copy of it, and the embedding keeps the
    float Parameter, so lookups are unchanged. In place (the Linear and RNN modules are replaced);
    returns the model, in eval mode.
    """
    devices = sorted({str(p.device) for p in model.parameters()} - {"cpu"})
    if devices:
        raise NmtError(f"--quantize int8 runs on the CPU only, but the model is on {', '.join(devices)}; "
                       "use --quantize none there")
    with warnings.catch_warnings():
        # torch 2.13 marks torch.ao.quantization as deprecated (to move to torchao) in two notices, one
        # from Python and one from the C++ quantize_per_tensor it calls; the API still works, and a
        # user of `nmt translate` cannot act on them. Only these two messages are silenced, only here.
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated",
                                category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="torch.quantize_per_tensor, torch.quantize_per_channel",
                                category=UserWarning)
        model = torch.ao.quantization.quantize_dynamic(model, {nn.Linear, nn.GRU, nn.LSTM}, dtype=torch.qint8, inplace=True)
    return model.eval()  # the swapped-in Linear modules start in training mode


CHECKPOINT_NAME = re.compile(r"best|last|averaged|step_\d+")


def split_member(spec: str | Path, default: str) -> tuple[Path, str]:
    """'RUN' → (RUN, default); 'RUN:averaged' (best, last, averaged, step_N) → (RUN, averaged)."""
    text = str(spec)
    run, _, which = text.rpartition(":")
    if run and CHECKPOINT_NAME.fullmatch(which):
        return Path(run), which
    return Path(text), default


@dataclass
class Member:
    """One model of a Translator: where it came from, and the model."""

    run: RunDir
    checkpoint: Path
    model: Seq2Seq

    def info(self) -> dict[str, Any]:
        return {"run": str(self.run.path), "checkpoint": str(self.checkpoint),
                "architecture": self.model.architecture(),
                "parameters": sum(p.numel() for p in self.model.parameters())}


class Translator(TranslatorBase):
    """Translates with one run's model, or with an ensemble of runs' models (`load` with a list)
    that share both tokenizers. The first run's config gives the decode defaults, the source
    length limit and the languages. translate_full, translate and options: TranslatorBase's
    (nmt_runtime/translator.py), the same as an export's."""

    def __init__(self, members: list[Member], cfg: Config, src_tok: Tokenizer, tgt_tok: Tokenizer,
                 quantize: str = "none") -> None:
        super().__init__(src_tok, tgt_tok, cfg.decode.choices(), cfg.data.max_src_len, cfg.decode.batch_size,
                         (cfg.data.src_lang, cfg.data.tgt_lang), quantize)
        self.members, self.cfg = members, cfg

    model = property(lambda self: self.members[0].model)
    run = property(lambda self: self.members[0].run)
    checkpoint = property(lambda self: self.members[0].checkpoint)
    hyps_dir = property(lambda self: self.run.path / "hyps")
    n_models = property(lambda self: len(self.members))

    def models_label(self) -> str:
        return " + ".join(str(m.checkpoint) for m in self.members) + (", int8" if self.quantize == "int8" else "")

    @classmethod
    def load(cls, runs: str | Path | Sequence[str | Path], checkpoint: str = "best",
             quantize: str = "none") -> "Translator":
        """Load run directories' configs, tokenizers and checkpoints.

        `runs`: one run directory, or a list of them to decode as an ensemble (runtime/nmt_runtime/ensemble.py);
        each may end in ':best', ':last', ':averaged' or ':step_N' to name its checkpoint. Otherwise
        the first run takes `checkpoint` ('best', 'last', 'averaged', 'step_N' or a path) and the
        others take it too when it is a name, else 'best'. Members must have the same tokenizer
        files (sha256); their architectures, sizes and checkpoints may differ.

        quantize: "none" (default) or "int8", dynamic int8 weights for the Linear and RNN layers
        on the CPU (`quantize_int8`): faster decoding, BLEU may drop slightly.
        """
        if quantize not in QUANTIZE_CHOICES:
            raise NmtError(f"quantize must be one of {', '.join(QUANTIZE_CHOICES)}, got {quantize!r}")
        specs = [runs] if isinstance(runs, (str, Path)) else list(runs)
        if not specs:
            raise NmtError("Translator.load needs at least one run directory")
        others = checkpoint if CHECKPOINT_NAME.fullmatch(checkpoint) else "best"
        members: list[Member] = []
        for i, spec in enumerate(specs):
            path, which = split_member(spec, checkpoint if i == 0 else others)
            run = RunDir(path).require()
            if i == 0:
                cfg = run.load_config()
                src_tok, tgt_tok = run.load_tokenizers()
            else:
                _check_same_tokenizers(members[0].run, run)
            ckpt = run.checkpoint_path(which)
            model = load_model(run, run.load_config() if i else cfg, ckpt, len(src_tok), len(tgt_tok))
            members.append(Member(run, ckpt, quantize_int8(model) if quantize == "int8" else model))
        return cls(members, cfg, src_tok, tgt_tok, quantize)

    def threads_label(self) -> str:
        return f"{torch.get_num_threads()} threads"

    def _decode(self, src_ids: list[list[int]], options: DecodeOptions, attention: bool) -> list[list[Hypothesis]]:
        with flush_denormals():
            return decode([m.model for m in self.members], src_ids, options, self.batch_size, "cpu", attention)


def load_translator(runs: str | Path | Sequence[str | Path], checkpoint: str = "best",
                    quantize: str = "none") -> TranslatorBase:
    """What `nmt translate/evaluate/serve` decode with: run directories' `Translator`, or, for
    folders of `nmt export`, the runtime's `ExportTranslator` (onnxruntime; the `export` extra)."""
    specs = [runs] if isinstance(runs, (str, Path)) else list(runs)
    exports = [is_export(Path(str(spec))) for spec in specs]
    if not any(exports):
        return Translator.load(specs if len(specs) > 1 else specs[0], checkpoint, quantize=quantize)
    if not all(exports):
        raise NmtError("an ensemble is all run directories or all export folders, not both: "
                       f"{', '.join(str(s) for s, e in zip(specs, exports) if not e)} is a run, "
                       f"{', '.join(str(s) for s, e in zip(specs, exports) if e)} an export")
    if checkpoint != "best":
        raise NmtError(f"--checkpoint {checkpoint}: an export folder holds the one checkpoint it was made from "
                       "(nmt export RUN OUT --checkpoint NAME chooses it)")
    if quantize != "none":
        raise NmtError(f"--quantize {quantize}: an export is quantized when it is made: nmt export RUN OUT --quantize int8")
    return ExportTranslator.load(specs)


def _check_same_tokenizers(first: RunDir, other: RunDir) -> None:
    """Ensemble members read and write the same ids: their tokenizer files must be the same bytes."""
    check_same_tokenizers((first.src_tokenizer, first.tgt_tokenizer), (other.src_tokenizer, other.tgt_tokenizer),
                          str(first.path))
