"""Translator: load a run directory and translate batches of sentences.

One code path serves a file, a pipe, the interactive prompt and Python:

    from nmt import Translator
    t = Translator.load("runs/toy")
    t.translate(["the king eats ."], beam=5)

`Translator.load([run1, run2])` (CLI: `--ensemble RUN2`) decodes with an ensemble of runs that
share their tokenizers (nmt/ensemble.py). Decode settings are DecodeOptions' names as keywords
(`beam=5`, `strategy="sample"`, `seed=1`, ...), on top of the first run's `decode.*`; decoding is
`nmt.search.decode`, the one path every command shares.

`Translator.load(run, quantize="int8")` (CLI: `--quantize int8`) decodes on the CPU with int8
weights in the Linear and RNN (GRU or LSTM) layers: faster, at a small cost in BLEU (see `quantize_int8`).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
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
from nmt.search import decode
from nmt.tokenizer import Tokenizer


@dataclass
class Translation:
    text: str
    score: float
    src_pieces: list[str]
    tgt_pieces: list[str]
    attention: torch.Tensor | None = None  # (len(tgt_pieces)+1, len(src_pieces)+1), EOS rows/cols included


def clean_input(line: str) -> str:
    """Drop control and format characters (keep tabs/spaces as spaces); collapse whitespace."""
    chars = [" " if ch.isspace() else ch for ch in line if ch.isspace() or unicodedata.category(ch)[0] != "C"]
    return " ".join("".join(chars).split())


def _sentences(sentences: object) -> list[str]:
    if isinstance(sentences, (str, bytes)):
        raise NmtError(f"sentences must be a list of strings, got one {type(sentences).__name__}; "
                       "wrap it in a list: [sentence]")
    try:
        sentences = list(sentences)  # type: ignore[call-overload]
    except TypeError:
        raise NmtError(f"sentences must be a list of strings, got {type(sentences).__name__}") from None
    for i, s in enumerate(sentences):
        if not isinstance(s, str):
            raise NmtError(f"sentences[{i}] is {type(s).__name__}, not a string")
    return sentences


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


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


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


class Translator:
    """Translates with one run's model, or with an ensemble of runs' models (`load` with a list)
    that share both tokenizers. The first run's config gives the decode defaults, the source
    length limit and the languages."""

    def __init__(self, members: list[Member], cfg: Config, src_tok: Tokenizer, tgt_tok: Tokenizer,
                 quantize: str = "none") -> None:
        self.members, self.cfg, self.src_tok, self.tgt_tok, self.quantize = members, cfg, src_tok, tgt_tok, quantize
        self.choices = cfg.decode.choices()  # what the run's decode.* chooses: the first layer of every call
        self.defaults = DecodeOptions.resolve(self.choices)

    model = property(lambda self: self.members[0].model)
    run = property(lambda self: self.members[0].run)
    checkpoint = property(lambda self: self.members[0].checkpoint)

    @classmethod
    def load(cls, runs: str | Path | Sequence[str | Path], checkpoint: str = "best",
             quantize: str = "none") -> "Translator":
        """Load run directories' configs, tokenizers and checkpoints.

        `runs`: one run directory, or a list of them to decode as an ensemble (nmt/ensemble.py);
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

    def options(self, *layers: dict[str, Any], **given: Any) -> DecodeOptions:
        """The run's decode.* choices, then each layer's (a server's flags, say), then `given`, on
        top of one another (`DecodeOptions.resolve`; None: not chosen). A bad value raises NmtError
        (DecodeOptionError) naming the option."""
        return DecodeOptions.resolve(self.choices, *layers, given)

    def translate_full(
        self,
        sentences: list[str],
        options: DecodeOptions | None = None,
        attention: bool = False,
        **given: Any,
    ) -> list[list[Translation]]:
        """Translate; n-best lists with scores, pieces and (on request) attention matrices.

        `options` (else the run's defaults) with `given` on top: the names of DecodeOptions
        (beam, n_best, length_penalty, strategy, temperature, top_k, top_p, seed,
        min_length, no_repeat_ngram_size, ...). Empty (or whitespace-only) inputs give one empty
        translation without running the model. Sources longer than the training limit
        (`data.max_src_len` pieces) are truncated to it. A bad option or a sentence that is not a
        string raises NmtError.
        """
        options = self.options(**given) if options is None else options.given(**given) if given else options
        sentences = _sentences(sentences)
        limit = self.cfg.data.max_src_len
        src_ids = [ids[:limit] for ids in self.src_tok.encode_batch([clean_input(s) for s in sentences])]
        models = [m.model for m in self.members]
        with flush_denormals():
            hyps = decode(models, src_ids, options, self.cfg.decode.batch_size, "cpu", attention)
        results = []
        for ids, nbest in zip(src_ids, hyps):
            src_pieces = [self.src_tok.id_to_piece(t) for t in ids]
            results.append([Translation(self.tgt_tok.decode(h.tokens), h.score, src_pieces,
                                        [self.tgt_tok.id_to_piece(t) for t in h.tokens], h.attention)
                            for h in nbest])
        return results

    def translate(self, sentences: list[str], **given: Any) -> list[str]:
        """Translate a list of sentences; one output string per input, in order (the best of each)."""
        return [nbest[0].text for nbest in self.translate_full(sentences, **given)]


def _check_same_tokenizers(first: RunDir, other: RunDir) -> None:
    """Ensemble members read and write the same ids: their tokenizer files must be the same bytes."""
    for ours, theirs in ((first.src_tokenizer, other.src_tokenizer), (first.tgt_tokenizer, other.tgt_tokenizer)):
        if not theirs.is_file():
            raise NmtError(f"{theirs}: missing; every ensemble member needs the tokenizers of {first.path}")
        if file_sha256(theirs) != file_sha256(ours):
            raise NmtError(f"{theirs}: differs from {ours} (sha256); ensemble members must share both tokenizers "
                           "(train them on the same data with the same tokenizer settings)")
