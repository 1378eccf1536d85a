"""An `nmt export` folder, loaded and checked: the model as two onnxruntime sessions, the tokenizers
and the embedding tables, with numpy, onnxruntime and sentencepiece only (no torch).

    OUT/
      export.json         what the folder is: format, version, languages, vocabularies, special ids,
                          architecture, decode defaults, the state's layout, the sha256 of every file
      encoder.onnx        src (batch, src_len) int64, src_lengths (batch,) int64 → the initial state
      decoder_step.onnx   prev (rows,) int64 + the state → log_probs (rows, tgt_vocab) float32,
                          next_<name> for each state tensor that changes, attention (rows, src_len)
      src.model, tgt.model              the run's sentencepiece models, byte for byte
      src_embeddings.npy, tgt_embeddings.npy   (vocab, dim) float32: the tables, for neighbours
      src_counts.npy, tgt_counts.npy    (vocab,) int64: how often each id was seen in training (optional)

The model speaks the protocol of the search (`encode` → state, `decode_step`, `state.select`), on
numpy arrays. The state is whatever tensors the architecture carries (an LSTM's cell, an attention's
cache, input feeding's previous output), listed in export.json's "state" with the axis of their rows,
so that this file knows no architecture.

`load_export` refuses, in one NmtError line naming the file, anything that would otherwise fail
later or translate wrongly: a missing or altered file, an unknown format or version, a tokenizer
that does not fit the graphs, a graph this onnxruntime cannot load. nmt/export.py (which writes the
folder) takes its names and version from here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import sentencepiece as spm

from nmt_runtime.decode_options import DecodeOptions
from nmt_runtime.errors import NmtError
from nmt_runtime.files import file_sha256
from nmt_runtime.tokenizer import SIDES

FORMAT = "nmt-export"
EXPORT_VERSION = 1  # what nmt export writes
READS_VERSIONS = (1,)  # what this runtime reads
EXPORT_JSON = "export.json"
ENCODER_FILE = "encoder.onnx"
STEP_FILE = "decoder_step.onnx"
SRC_TOKENIZER, TGT_TOKENIZER = "src.model", "tgt.model"
TOKENIZER_FILES = {"src": SRC_TOKENIZER, "tgt": TGT_TOKENIZER}
TABLE_FILES = {"src": "src_embeddings.npy", "tgt": "tgt_embeddings.npy"}
COUNT_FILES = {"src": "src_counts.npy", "tgt": "tgt_counts.npy"}  # optional
REQUIRED_FILES = (ENCODER_FILE, STEP_FILE, *TOKENIZER_FILES.values(), *TABLE_FILES.values())
EXPORT_FILES = (*REQUIRED_FILES, *COUNT_FILES.values(), EXPORT_JSON)  # every file nmt export writes

# the graphs' input and output names besides the state's
ENCODER_INPUTS = ("src", "src_lengths")
PREV, LOG_PROBS, ATTENTION = "prev", "log_probs", "attention"
SPECIAL_NAMES = ("pad", "unk", "bos", "eos")  # export.json's special_ids, in sentencepiece's getters' order


def next_name(name: str) -> str:
    """The step graph's output for a state tensor that changes (an ONNX graph cannot reuse the input's name)."""
    return f"next_{name}"


@dataclass(frozen=True)
class StateTensor:
    """One tensor of the decoder state: its name in both graphs, the axis of its rows (1 for
    (layers, rows, hidden) tensors, else 0) and whether a step changes it."""

    name: str
    rows_axis: int
    changes: bool

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "rows_axis": self.rows_axis, "changes": self.changes}


@dataclass(frozen=True)
class ExportState:
    """The decoder state as numpy arrays, by name (`layout` says each one's rows axis)."""

    layout: tuple[StateTensor, ...]
    tensors: dict[str, np.ndarray]

    @property
    def rows(self) -> int:
        first = self.layout[0]
        return self.tensors[first.name].shape[first.rows_axis]

    def select(self, index: np.ndarray) -> "ExportState":
        """Rows `index` (int64, (rows',)) of every tensor, in that order: beam search reorders,
        repeats and drops rows (finished sentences) with it."""
        index = np.asarray(index, dtype=np.int64)
        return ExportState(self.layout, {s.name: np.take(self.tensors[s.name], index, axis=s.rows_axis)
                                         for s in self.layout})


class ExportedModel:
    """The two graphs as onnxruntime sessions, behind the search's protocol (`encode`, `decode_step`)."""

    def __init__(self, encoder: Any, step: Any, layout: Sequence[StateTensor]) -> None:
        self.encoder, self.step, self.layout = encoder, step, tuple(layout)
        self.changing = tuple(s.name for s in self.layout if s.changes)

    @classmethod
    def from_files(cls, encoder: Path, step: Path, layout: Sequence[StateTensor], threads: int | None = None,
                   made_with: str | None = None) -> "ExportedModel":
        """Sessions on the two graph files, their inputs and outputs checked against `layout`."""
        model = cls(_session(encoder, threads, made_with), _session(step, threads, made_with), layout)
        names = [s.name for s in model.layout]
        _check_names(encoder, "inputs", [i.name for i in model.encoder.get_inputs()], list(ENCODER_INPUTS))
        _check_names(encoder, "outputs", [o.name for o in model.encoder.get_outputs()], names)
        _check_names(step, "inputs", [i.name for i in model.step.get_inputs()], [PREV, *names])
        _check_names(step, "outputs", [o.name for o in model.step.get_outputs()],
                     [LOG_PROBS, *map(next_name, model.changing), ATTENTION])
        return model

    @property
    def tgt_vocab(self) -> int | str:
        """The size of log_probs' last axis as the step graph declares it."""
        return self.step.get_outputs()[0].shape[-1]

    def encode(self, src: np.ndarray, src_lengths: np.ndarray) -> ExportState:
        """src (batch, src_len) int64 ids, EOS included and 0-padded; src_lengths (batch,) → the initial state."""
        feeds = {"src": np.ascontiguousarray(src, dtype=np.int64),
                 "src_lengths": np.ascontiguousarray(src_lengths, dtype=np.int64)}
        outputs = self.encoder.run(None, feeds)
        return ExportState(self.layout, {s.name: x for s, x in zip(self.layout, outputs)})

    def decode_step(self, prev: np.ndarray, state: ExportState) -> tuple[np.ndarray, ExportState, np.ndarray]:
        """prev (rows,) int64 → log_probs (rows, tgt_vocab) float32, the next state, attention (rows, src_len)."""
        feeds = {PREV: np.ascontiguousarray(prev, dtype=np.int64), **state.tensors}
        log_probs, *changed, attention = self.step.run(None, feeds)
        return log_probs, ExportState(self.layout, {**state.tensors, **dict(zip(self.changing, changed))}), attention


@dataclass
class Export:
    """A checked export folder: `meta` is its export.json, `model` the graphs."""

    path: Path
    meta: dict[str, Any]
    model: ExportedModel
    protos: dict[str, bytes]  # the sentencepiece models by side, as read (and checked)
    _tables: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    src_tok_path = property(lambda self: self.path / TOKENIZER_FILES["src"])
    tgt_tok_path = property(lambda self: self.path / TOKENIZER_FILES["tgt"])

    def tokenizer_proto(self, side: str) -> bytes:
        """A side's sentencepiece model (for SentencePieceProcessor(model_proto=...))."""
        return self.protos[_side(side)]

    def tables(self, side: str) -> np.ndarray:
        """A side's embedding table (vocab, dim) float32, rows by id (read once)."""
        if _side(side) not in self._tables:
            self._tables[side] = np.load(self.path / TABLE_FILES[side], allow_pickle=False)
        return self._tables[side]

    def counts(self, side: str) -> np.ndarray | None:
        """How often each id of a side occurs in the training data (vocab,), or None when the run had no counts."""
        name = COUNT_FILES[_side(side)]
        return np.load(self.path / name, allow_pickle=False) if name in self.meta["files"] else None


def load_export(path: str | Path, threads: int | None = None) -> Export:
    """Read and check an export folder; `threads`: onnxruntime's intra-op threads (None: its default)."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise NmtError(f"threads must be a whole number of at least 1 (or None: onnxruntime's default), got {threads!r}")
    path = Path(path)
    meta = read_meta(path)
    files = meta["files"]
    unlisted = [name for name in REQUIRED_FILES if name not in files]
    if unlisted:
        raise NmtError(f"{path / EXPORT_JSON}: lists no {unlisted[0]}; the export is incomplete, export the run again")
    for name, digest in files.items():
        _check_file(path, name, digest)
    protos = {side: (path / TOKENIZER_FILES[side]).read_bytes() for side in SIDES}
    for side in SIDES:
        _check_tokenizer(path / TOKENIZER_FILES[side], protos[side], meta, side)
        _check_rows(path / TABLE_FILES[side], meta, side, np.float32, 2)
        if COUNT_FILES[side] in files:
            _check_rows(path / COUNT_FILES[side], meta, side, np.int64, 1)
    layout = [StateTensor(**s) for s in meta["state"]]
    model = ExportedModel.from_files(path / ENCODER_FILE, path / STEP_FILE, layout, threads, meta.get("onnxruntime"))
    if model.tgt_vocab != meta["vocab"]["tgt"]:
        raise NmtError(f"{path / STEP_FILE}: gives log-probabilities over {model.tgt_vocab} target ids, but "
                       f"{EXPORT_JSON} says vocab.tgt is {meta['vocab']['tgt']}; export the run again")
    return Export(path, meta, model, protos)


def read_meta(path: Path) -> dict[str, Any]:
    """export.json, checked to be an nmt export of a version this runtime reads, with the keys it needs."""
    file = path / EXPORT_JSON
    if not path.is_dir():
        raise NmtError(f"{path}: not found (an export folder, made by nmt export RUN {path})")
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NmtError(f"{file}: missing; {path} is not an nmt export (made by nmt export RUN OUT)") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise NmtError(f"{file}: not readable JSON ({str(e).splitlines()[0]})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise NmtError(f"{file}: format is {got!r}, not {FORMAT!r}; not an nmt export")
    version = meta.get("export_version")
    if version not in READS_VERSIONS:
        raise NmtError(f"{file}: export_version {version!r}; this nmt-runtime reads version "
                       f"{', '.join(map(str, READS_VERSIONS))}: use the nmt-runtime that matches the nmt that made it, "
                       "or export the run again")
    try:
        _check_meta(meta)
    except (KeyError, TypeError, ValueError) as e:
        raise NmtError(f"{file}: not a valid export description ({e})") from None
    return meta


def _check_meta(meta: dict[str, Any]) -> None:
    """The keys and types the loader relies on (KeyError, TypeError or ValueError when one is wrong)."""
    if not isinstance(meta["files"], dict) or not all(isinstance(d, str) for d in meta["files"].values()):
        raise TypeError("'files' must map file names to sha256 digests")
    for name in meta["files"]:
        if not isinstance(name, str) or name not in EXPORT_FILES or name == EXPORT_JSON:
            raise ValueError(f"'files' names {name!r}, which is not a file of an export")
    for side in SIDES:
        if not isinstance(meta["vocab"][side], int):
            raise TypeError(f"vocab.{side} must be a whole number")
    if not isinstance(meta["special_ids"], dict) or sorted(meta["special_ids"]) != sorted(SPECIAL_NAMES) \
            or not all(_count(i, 0) for i in meta["special_ids"].values()):
        raise ValueError(f"special_ids must map {', '.join(SPECIAL_NAMES)} to ids")
    for key in ("max_src_len", "batch_size"):
        if not _count(meta[key], 1):
            raise ValueError(f"'{key}' must be a whole number of at least 1, got {meta[key]!r}")
    for key, names in (("languages", SIDES), ("architecture", ("rnn_type", "attention")), ("source", ("checkpoint",))):
        if not isinstance(meta[key], dict) or not all(isinstance(meta[key][n], str) for n in names):
            raise TypeError(f"'{key}' must hold {', '.join(names)} as text")
    if not isinstance(meta["decode"], dict):
        raise TypeError("'decode' must map decode options to values")
    try:
        DecodeOptions.resolve(meta["decode"])
    except NmtError as e:
        raise ValueError(f"'decode': {e}") from None
    if not isinstance(meta["state"], list) or not meta["state"]:
        raise TypeError("'state' must be a list of the state's tensors")
    for s in meta["state"]:
        if set(s) != {"name", "rows_axis", "changes"} or s["rows_axis"] not in (0, 1):
            raise ValueError(f"a 'state' entry is {s!r}; each is {{name, rows_axis: 0 or 1, changes}}")


def _count(value: Any, least: int) -> bool:
    """A whole number (not a bool) of at least `least`."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _check_file(path: Path, name: str, digest: str) -> None:
    file = path / name
    if not file.is_file():
        raise NmtError(f"{file}: missing ({EXPORT_JSON} lists it); copy the whole export folder, "
                       "or export the run again")
    if file_sha256(file) != digest:
        raise NmtError(f"{file}: sha256 does not match {EXPORT_JSON}; the file was changed or damaged after the export")


def _check_tokenizer(file: Path, proto: bytes, meta: dict[str, Any], side: str) -> None:
    """The sentencepiece model has the vocabulary the graphs were made for, and the special ids."""
    try:
        sp = spm.SentencePieceProcessor(model_proto=proto)
    except (RuntimeError, OSError):
        raise NmtError(f"{file}: not a valid sentencepiece model") from None
    if sp.get_piece_size() != meta["vocab"][side]:
        raise NmtError(f"{file}: has {sp.get_piece_size()} pieces, but the graphs were made for {meta['vocab'][side]} "
                       f"{side} ids ({EXPORT_JSON} vocab.{side}); it is not the tokenizer of this export")
    ids = [sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id()]
    want = [meta["special_ids"][name] for name in SPECIAL_NAMES]
    if ids != want:
        raise NmtError(f"{file}: special ids (pad, unk, bos, eos) are {ids}, the graphs were made for {want}")


def _check_rows(file: Path, meta: dict[str, Any], side: str, dtype: type, ndim: int) -> None:
    """A table (or counts) .npy has one row per id of the side's vocabulary."""
    try:
        array = np.load(file, mmap_mode="r", allow_pickle=False)  # the header only
    except (OSError, ValueError) as e:
        raise NmtError(f"{file}: not a readable .npy array ({str(e).splitlines()[0]})") from None
    if array.ndim != ndim or array.dtype != dtype or array.shape[0] != meta["vocab"][side]:
        raise NmtError(f"{file}: {array.dtype} array of shape {array.shape}, expected {np.dtype(dtype)} with "
                       f"{meta['vocab'][side]} rows ({EXPORT_JSON} vocab.{side})")


def _check_names(file: Path, what: str, got: list[str], want: list[str]) -> None:
    if got != want:
        raise NmtError(f"{file}: its {what} are {', '.join(got)}; {EXPORT_JSON} says {', '.join(want)}")


def _session(file: Path, threads: int | None, made_with: str | None) -> Any:
    """An onnxruntime session on the CPU; a graph it cannot load (an opset newer than it knows, say) in one line."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise NmtError("an nmt export runs on onnxruntime, which is not installed: pip install onnxruntime") from None
    options = ort.SessionOptions()
    options.inter_op_num_threads = 1
    if threads is not None:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # errors only: its warnings are about graph optimisations
    try:
        return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 (onnxruntime raises its own types for a bad graph)
        made = f"; the export was made with onnxruntime {made_with}" if made_with else ""
        raise NmtError(f"{file}: onnxruntime {ort.__version__} cannot load it ({_reason(e)}){made}") from None


def _reason(error: Exception) -> str:
    """onnxruntime's error in one line, without its code, the file's name and the C++ source location."""
    text = " ".join(str(error).split())
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    text = re.sub(r"^Load model from .*? failed: ?", "", text)
    text = re.sub(r"^/\S+:\d+ (?:[^()]*\([^()]*\) )?", "", text)  # "/onnxruntime_src/...h:46 void f(...) "
    text = text or type(error).__name__
    return text if len(text) <= 400 else text[:399] + "…"


def _side(side: str) -> str:
    if side not in SIDES:
        raise NmtError(f"side must be 'src' or 'tgt', got {side!r}")
    return side
