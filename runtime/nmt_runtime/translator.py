"""Translators: sentences in, n-best translations out, over the one search.

`TranslatorBase` is what every front end uses (the CLI's translate and evaluate, the prompt, the
server): text cleaning, tokenizing, the source length limit, decode options over the model's
defaults, pieces and attention per hypothesis. Its `_decode` runs the search; a subclass says on
what: `ExportTranslator` (here) on ONNX exports with onnxruntime, nmt's `Translator`
(nmt/translate.py) on torch models of run directories.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nmt_runtime.decode_options import DecodeOptions
from nmt_runtime.errors import NmtError
from nmt_runtime.files import file_sha256
from nmt_runtime.search import Hypothesis, decode
from nmt_runtime.tokenizer import SIDES, Tokenizer


@dataclass
class Translation:
    text: str
    score: float
    src_pieces: list[str]
    tgt_pieces: list[str]
    attention: Any = None  # (len(tgt_pieces)+1, len(src_pieces)+1), EOS rows/cols included: numpy or torch


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


class TranslatorBase:
    """Translate with `_decode`, the decode defaults `choices` (the run's decode.*), sources cut to
    `max_src_len` pieces, `batch_size` sentences decoded together."""

    def __init__(self, src_tok: Tokenizer, tgt_tok: Tokenizer, choices: dict[str, Any], max_src_len: int,
                 batch_size: int, languages: tuple[str, str], quantize: str = "none") -> None:
        self.src_tok, self.tgt_tok, self.max_src_len, self.batch_size = src_tok, tgt_tok, max_src_len, batch_size
        self.src_lang, self.tgt_lang = languages
        self.quantize = quantize
        self.choices = choices  # what the run's decode.* chooses: the first layer of every call
        self.defaults = DecodeOptions.resolve(self.choices)

    hyps_dir: Path  # where `evaluate` writes its hypotheses by default
    n_models: int  # more than one: an ensemble

    def models_label(self) -> str:
        """What decodes, for the prompt's and the server's first line."""
        raise NotImplementedError

    def threads_label(self) -> str:
        """How many threads decode, for the figures `evaluate` prints."""
        raise NotImplementedError

    def _decode(self, src_ids: list[list[int]], options: DecodeOptions, attention: bool) -> list[list[Hypothesis]]:
        raise NotImplementedError

    def options(self, *layers: dict[str, Any], **given: Any) -> DecodeOptions:
        """The run's decode.* choices, then each layer's (a server's flags, say), then `given`, on
        top of one another (`DecodeOptions.resolve`; None: not chosen). A bad value raises NmtError
        (DecodeOptionError) naming the option."""
        return DecodeOptions.resolve(self.choices, *layers, given)

    def translate_full(self, sentences: list[str], options: DecodeOptions | None = None, attention: bool = False,
                       **given: Any) -> list[list[Translation]]:
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
        limit = self.max_src_len
        src_ids = [ids[:limit] for ids in self.src_tok.encode_batch([clean_input(s) for s in sentences])]
        hyps = self._decode(src_ids, options, attention)
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


def check_same_tokenizers(first: tuple[Path, Path], other: tuple[Path, Path], first_name: str) -> None:
    """Ensemble members read and write the same ids: their tokenizer files must be the same bytes."""
    for ours, theirs in zip(first, other):
        if not theirs.is_file():
            raise NmtError(f"{theirs}: missing; every ensemble member needs the tokenizers of {first_name}")
        if file_sha256(theirs) != file_sha256(ours):
            raise NmtError(f"{theirs}: differs from {ours} (sha256); ensemble members must share both tokenizers "
                           "(train them on the same data with the same tokenizer settings)")


def is_export(path: Path) -> bool:
    """Whether `path` is an `nmt export` folder (it holds export.json), not a run directory."""
    from nmt_runtime.exported import EXPORT_JSON

    return (path / EXPORT_JSON).is_file()


def _numpy_arrays(src: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return src, lengths


class ExportTranslator(TranslatorBase):
    """Translates with one `nmt export` folder's ONNX graphs (onnxruntime, numpy), or with several
    exports' as an ensemble (`load` with a list) that share both tokenizers. The first export's
    export.json gives the decode defaults, the source length limit and the languages."""

    def __init__(self, exports: list[Any], src_tok: Tokenizer, tgt_tok: Tokenizer, threads: int | None = None) -> None:
        meta = exports[0].meta
        super().__init__(src_tok, tgt_tok, dict(meta["decode"]), int(meta["max_src_len"]),
                         int(meta.get("batch_size", 64)), (meta["languages"]["src"], meta["languages"]["tgt"]),
                         meta.get("quantize", "none"))
        self.exports, self.threads = exports, threads
        # an export is what is deployed, maybe read-only: hypotheses go to hyps/EXPORT-NAME/ in the working folder
        self.hyps_dir = Path("hyps") / exports[0].path.resolve().name
        self.n_models = len(exports)

    @classmethod
    def load(cls, paths: str | Path | Sequence[str | Path], threads: int | None = None) -> "ExportTranslator":
        """Load and verify export folders (nmt_runtime/exported.py); a list decodes as an ensemble.
        `threads`: onnxruntime's intra-op threads (None: onnxruntime's default, one a core)."""
        from nmt_runtime.exported import SRC_TOKENIZER, TGT_TOKENIZER, load_export

        folders = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
        if not folders:
            raise NmtError("ExportTranslator.load needs at least one export folder")
        exports = [load_export(f, threads=threads) for f in folders]
        toks = [(f / SRC_TOKENIZER, f / TGT_TOKENIZER) for f in folders]
        for other in toks[1:]:
            check_same_tokenizers(toks[0], other, str(folders[0]))
        first = exports[0]  # its tokenizers as load_export read and checked them
        src_tok, tgt_tok = (Tokenizer(first.tokenizer_proto(side), path) for side, path in zip(SIDES, toks[0]))
        return cls(exports, src_tok, tgt_tok, threads)

    @property
    def export(self) -> Any:
        return self.exports[0]

    def models_label(self) -> str:
        return " + ".join(str(e.path) for e in self.exports)

    def threads_label(self) -> str:
        return f"{self.threads} threads" if self.threads else "onnxruntime's default threads"

    def info(self) -> dict[str, Any]:
        """The export's part of GET /v1/info (nmt_runtime/serve.py adds the settings)."""
        meta, source = self.export.meta, self.export.meta["source"]
        return {
            "languages": {"src": self.src_lang, "tgt": self.tgt_lang},
            "vocab": {"src": len(self.src_tok), "tgt": len(self.tgt_tok)},
            "word_level": {"src": self.src_tok.word_level, "tgt": self.tgt_tok.word_level},
            "export": str(self.export.path),
            "checkpoint": {"path": source["checkpoint"], "step": source.get("step"),
                           "dev_score": source.get("dev_score"), "dev_metric": source.get("dev_metric")},
            "architecture": {key: meta["architecture"][key] for key in ("rnn_type", "attention")},
            "quantize": self.quantize,
            "members": [{"export": str(e.path), "run": e.meta["source"].get("run"), "checkpoint": e.meta["source"]["checkpoint"],
                         "architecture": e.meta["architecture"]} for e in self.exports],
            "decode": {"max_src_pieces": self.max_src_len},
        }

    def neighbours(self) -> Any:
        """/v1/embeddings/neighbors over the first export's tables: the one checkpoint it was made from."""
        from nmt_runtime.neighbours import Neighbours, Table

        name = Path(self.export.meta["source"]["checkpoint"]).stem  # best, last, averaged, step_N
        tokenizers = {"src": self.src_tok, "tgt": self.tgt_tok}

        def load(checkpoint: str, side: str) -> Table:
            return Table(self.export.tables(side), tokenizers[side], self.export.counts(side))

        return Neighbours((name,), load)

    def _decode(self, src_ids: list[list[int]], options: DecodeOptions, attention: bool) -> list[list[Hypothesis]]:
        return decode([e.model for e in self.exports], src_ids, options, self.batch_size, _numpy_arrays, attention)
