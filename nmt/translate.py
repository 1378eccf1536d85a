"""Translator: load a run directory and translate batches of sentences.

One code path serves a file, a pipe, the interactive prompt and Python:

    from nmt import Translator
    t = Translator.load("runs/toy")
    t.translate(["the king eats ."], beam=5)

`Translator.load(run, quantize="int8")` (CLI: `--quantize int8`) decodes on the CPU with int8
weights in the Linear and RNN (GRU or LSTM) layers: faster, at a small cost in BLEU (see `quantize_int8`).
"""

from __future__ import annotations

import math
import numbers
import unicodedata
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from nmt.batching import eval_batches
from nmt.config import Config
from nmt.cpu import flush_denormals
from nmt.errors import NmtError
from nmt.model import Seq2Seq, load_model
from nmt.rundir import RunDir
from nmt.search import search
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


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise NmtError(f"{name} must be a whole number of at least 1, got {value!r}")
    return int(value)


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


class Translator:
    def __init__(self, model: Seq2Seq, cfg: Config, src_tok: Tokenizer, tgt_tok: Tokenizer, run: RunDir,
                 checkpoint: Path, quantize: str = "none") -> None:
        self.model, self.cfg, self.src_tok, self.tgt_tok = model, cfg, src_tok, tgt_tok
        self.run, self.checkpoint, self.quantize = run, checkpoint, quantize

    @classmethod
    def load(cls, run_dir: str | Path, checkpoint: str = "best", quantize: str = "none") -> "Translator":
        """Load a run directory's config, tokenizers and a checkpoint ('best', 'last' or a path).

        quantize: "none" (default) or "int8", dynamic int8 weights for the Linear and RNN layers
        on the CPU (`quantize_int8`): faster decoding, BLEU may drop slightly.
        """
        if quantize not in QUANTIZE_CHOICES:
            raise NmtError(f"quantize must be one of {', '.join(QUANTIZE_CHOICES)}, got {quantize!r}")
        run = RunDir(run_dir).require()
        cfg = run.load_config()
        src_tok, tgt_tok = run.load_tokenizers()
        path = run.checkpoint_path(checkpoint)
        model = load_model(run, cfg, path, len(src_tok), len(tgt_tok))
        if quantize == "int8":
            model = quantize_int8(model)
        return cls(model, cfg, src_tok, tgt_tok, run, path, quantize)

    def translate_full(
        self,
        sentences: list[str],
        beam: int | None = None,
        n_best: int = 1,
        length_penalty: float | None = None,
        attention: bool = False,
    ) -> list[list[Translation]]:
        """Translate; n-best lists with scores, pieces and (on request) attention matrices.

        Empty (or whitespace-only) inputs give one empty translation without running the model.
        Sources longer than the training limit (`data.max_src_len` pieces) are truncated to it.
        Arguments out of range (beam or n_best below 1, n_best above the beam, a negative
        length_penalty, a sentence that is not a string) raise NmtError.
        """
        dec = self.cfg.decode
        sentences = _sentences(sentences)
        beam = dec.beam_size if beam is None else _count(beam, "beam")
        n_best = _count(n_best, "n_best")
        if n_best > beam:
            raise NmtError(f"n_best ({n_best}) cannot exceed the beam size ({beam})")
        if length_penalty is None:
            length_penalty = dec.length_penalty
        elif (isinstance(length_penalty, bool) or not isinstance(length_penalty, numbers.Real)
              or not math.isfinite(length_penalty) or length_penalty < 0):
            raise NmtError(f"length_penalty must be a number of at least 0, got {length_penalty!r}")
        settings = replace(dec, beam_size=beam, n_best=n_best, length_penalty=float(length_penalty))
        cleaned = [clean_input(s) for s in sentences]
        limit = self.cfg.data.max_src_len
        src_ids = [ids[:limit] for ids in self.src_tok.encode_batch(cleaned)]
        results: list[list[Translation]] = [[Translation("", 0.0, [], [])] for _ in sentences]
        todo = [i for i, ids in enumerate(src_ids) if ids]
        with torch.inference_mode(), flush_denormals():
            for batch in eval_batches([src_ids[i] for i in todo], None, dec.batch_size):
                hyps = search(self.model, batch.src, batch.src_lengths, settings, return_attention=attention)
                for j, nbest in zip(batch.indices, hyps):
                    i = todo[j]
                    src_pieces = [self.src_tok.id_to_piece(t) for t in src_ids[i]]
                    results[i] = [
                        Translation(
                            self.tgt_tok.decode(h.tokens),
                            h.score,
                            src_pieces,
                            [self.tgt_tok.id_to_piece(t) for t in h.tokens],
                            h.attention,
                        )
                        for h in nbest
                    ]
        return results

    def translate(self, sentences: list[str], beam: int | None = None, **kwargs) -> list[str]:
        """Translate a list of sentences; one output string per input, in order."""
        return [nbest[0].text for nbest in self.translate_full(sentences, beam=beam, **kwargs)]
