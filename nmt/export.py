"""nmt export: a run as a folder that translates without torch (nmt-runtime, runtime/).

`export_run(RUN, OUT)` loads the run as `Translator.load` does (config, tokenizers, checkpoint) and
writes OUT: the encoder and one decoder step as ONNX graphs (nmt/export_graphs.py), the two
sentencepiece models byte for byte, the embedding tables (and token counts) as .npy, and
export.json, which describes all of it and holds every file's sha256. The folder's layout and
version are nmt_runtime/exported.py's, which loads it.

Nothing is published that has not been checked: the folder is written under a temporary name next
to OUT, loaded with the runtime's own checks, run in onnxruntime against the torch model
(`export_graphs.compare`; log-probabilities within `LOG_PROBS_BOUND` in fp32), and only then
renamed to OUT. A failure leaves no OUT and no half-written one. An existing OUT is replaced only
when it is an nmt export, with `overwrite`, and holds nothing but the files an export writes.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import nmt
from nmt.checkpoint import _umask, load_checkpoint, step_and_score
from nmt.config import ModelConfig
from nmt.errors import NmtError
from nmt.export_graphs import OPSET, CHECK_LENGTHS, CHECK_STEPS, Differences, compare, export_graphs, quantize_int8
from nmt.token_counts import load_counts
from nmt.model import Seq2Seq
from nmt.tokenizer import SPECIAL_IDS
from nmt.translate import QUANTIZE_CHOICES, Translator
from nmt_runtime.files import file_sha256, swap_in
from nmt_runtime.exported import (COUNT_FILES, ENCODER_FILE, EXPORT_FILES, EXPORT_VERSION, FORMAT, EXPORT_JSON,
                                  SIDES, SPECIAL_NAMES, STEP_FILE, TABLE_FILES, TOKENIZER_FILES, ExportedModel,
                                  StateTensor, load_export)

LOG_PROBS_BOUND = 1e-4  # fp32 graphs against torch: larger is a bug in the export, not a rounding
NEEDS = ("onnx", "onnxscript", "onnxruntime")  # the `export` extra
# the choices of model.* keys that export (each tested, tests/test_export.py); another is refused
# in one line naming it, until its graphs are tested too
EXPORTS = {"rnn_type": ("gru", "lstm"), "attention": ("bahdanau", "luong_general", "luong_dot")}
SIZES = ("embedding_size", "encoder_hidden_size", "encoder_layers", "decoder_hidden_size", "decoder_layers",
         "attention_size", "input_feeding", "tie_embeddings")  # export.json's architecture, beside `EXPORTS`' keys


class ExportCheckFailed(RuntimeError):
    """The graphs do not compute what the model computes: a bug in the export, not the user's input."""


def export_run(run: str | Path, out: str | Path, checkpoint: str = "best", quantize: str = "none",
               overwrite: bool = False) -> Path:
    """Export a run's checkpoint ('best', 'last', 'averaged', 'step_N' or a path; RUN:NAME names it
    too) into the folder `out`; quantize 'int8' quantizes the graphs' weights. Returns `out`."""
    if quantize not in QUANTIZE_CHOICES:
        raise NmtError(f"quantize is {quantize!r}; choose one of {', '.join(QUANTIZE_CHOICES)}")
    if any(importlib.util.find_spec(name) is None for name in NEEDS):
        raise NmtError("nmt export needs onnx and onnxruntime: pip install 'nmt[export]'")
    out = Path(out)
    check_out(out, overwrite)
    translator = Translator.load(run, checkpoint)
    check_exportable(translator.model.cfg, translator.run.config)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; give it the mode of other folders
    except OSError as e:
        raise NmtError(f"{out.parent}: cannot write there ({e.strerror})") from None
    try:
        write_export(tmp, translator, quantize)
        publish(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def check_exportable(cfg: ModelConfig, config: Path) -> None:
    """Refuse, naming the key, an architecture whose graphs are not known to export."""
    for key in Seq2Seq.ARCHITECTURE:
        value = getattr(cfg, key)
        if value not in EXPORTS.get(key, ()):
            raise NmtError(f"model.{key}: {value} does not export yet ({config}; nmt export supports "
                           f"{', '.join(EXPORTS.get(key, ()))})")


def is_earlier_export(folder: Path) -> bool:
    """Whether `folder` holds an export nmt made (an export.json of its format, any version), which
    --overwrite may replace. (nmt_runtime.translator.is_export: any folder with an export.json, which the
    loader then checks.)"""
    try:
        meta = json.loads((folder / EXPORT_JSON).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def check_out(out: Path, overwrite: bool) -> None:
    """OUT may be new, an empty folder, or (with `overwrite`) an earlier export holding only the
    files an export writes: nothing that nmt did not make is ever deleted."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise NmtError(f"{out}: exists and is not a folder; choose another OUT")
    if Path.cwd().resolve().is_relative_to(out.resolve()):
        raise NmtError(f"{out}: is the working directory or a folder above it; choose another OUT")
    if not any(out.iterdir()):
        return
    if not is_earlier_export(out):
        raise NmtError(f"{out}: exists and is not an nmt export (no {EXPORT_JSON} of format {FORMAT!r}); "
                       "nmt export writes a new folder or replaces an earlier export: choose another OUT")
    if not overwrite:
        raise NmtError(f"{out}: holds an nmt export already; add --overwrite to replace it")
    foreign = [p for p in sorted(out.iterdir()) if p.name not in EXPORT_FILES or p.is_symlink() or not p.is_file()]
    if foreign:
        raise NmtError(f"{out}: --overwrite refuses to replace it: {foreign[0]} is not a file nmt export writes, "
                       "and replacing the export would delete it; move it out, or choose another OUT")


def publish(tmp: Path, out: Path, overwrite: bool) -> None:
    """Rename the finished folder to OUT; an earlier export there is moved aside first and deleted last."""
    check_out(out, overwrite)  # again: the export took a while
    swap_in(tmp, out, out.with_name(f".{out.name}.replaced-{os.getpid()}"))


def write_export(folder: Path, translator: Translator, quantize: str) -> None:
    """Every file of the export, checked (`verify`), into `folder`."""
    model = translator.model
    toks = {"src": translator.src_tok, "tgt": translator.tgt_tok}
    tables = model.embedding_tables()
    for side in SIDES:
        (folder / TOKENIZER_FILES[side]).write_bytes(toks[side].model_proto)
        np.save(folder / TABLE_FILES[side], tables[side].detach().float().cpu().numpy())
        counts = load_counts(translator.run.path, side, len(toks[side]))
        if counts is not None:
            np.save(folder / COUNT_FILES[side], counts.numpy().astype(np.int64))
    layout = export_graphs(model, folder / ENCODER_FILE, folder / STEP_FILE)
    specs = [g.spec for g in layout]
    fp32 = None
    if quantize == "int8":  # the fp32 graphs are checked before they are quantized
        fp32 = verify(model, ExportedModel.from_files(folder / ENCODER_FILE, folder / STEP_FILE, specs), strict=True)
        for name in (ENCODER_FILE, STEP_FILE):
            quantize_int8(folder / name)
    meta = describe(translator, quantize, specs, folder)
    write_meta(folder, meta)
    try:
        exported = load_export(folder)
    except NmtError as e:
        raise ExportCheckFailed(f"the export fails the runtime's own checks: {e}") from None
    d = verify(model, exported.model, strict=quantize == "none")
    meta["verification"] = verification(d, fp32)
    write_meta(folder, meta)


def verify(model: Seq2Seq, exported: ExportedModel, strict: bool) -> Differences:
    """The graphs against the model; `strict` (fp32): within `LOG_PROBS_BOUND`, else only without NaN."""
    d = compare(model, exported)
    if d.nan or (strict and max(d.encoder, d.log_probs, d.attention) > LOG_PROBS_BOUND):
        raise ExportCheckFailed(f"the exported graphs do not compute what the model does (max |difference|: "
                                f"encoder {d.encoder:.2e}, log-probabilities {d.log_probs:.2e}, attention "
                                f"{d.attention:.2e}; bound {LOG_PROBS_BOUND:.0e}; NaN: {d.nan})")
    return d


def verification(d: Differences, fp32: Differences | None) -> dict[str, Any]:
    """What export.json records of the check: the sources, the steps and the largest differences."""
    record: dict[str, Any] = {"sources": len(CHECK_LENGTHS), "steps": CHECK_STEPS,
                              "max_abs_diff": {"encoder": d.encoder, "log_probs": d.log_probs, "attention": d.attention},
                              "bound": LOG_PROBS_BOUND}
    if fp32 is not None:  # int8: the quantized graphs are not held to the bound, the fp32 ones were
        record["fp32_max_abs_diff"] = {"encoder": fp32.encoder, "log_probs": fp32.log_probs, "attention": fp32.attention}
    return record


def describe(translator: Translator, quantize: str, state: list[StateTensor], folder: Path) -> dict[str, Any]:
    """export.json (without the verification, which comes after it is written)."""
    import onnxruntime
    import torch

    model, cfg = translator.model, translator.cfg
    ckpt = load_checkpoint(translator.checkpoint)
    step, score = step_and_score(ckpt)
    files = sorted(p.name for p in folder.iterdir())
    return {
        "format": FORMAT,
        "export_version": EXPORT_VERSION,
        "nmt": {"version": nmt.__version__, "commit": source_commit()},
        "torch": torch.__version__,
        "languages": {"src": cfg.data.src_lang, "tgt": cfg.data.tgt_lang},
        "vocab": {"src": len(translator.src_tok), "tgt": len(translator.tgt_tok)},
        "special_ids": dict(zip(SPECIAL_NAMES, SPECIAL_IDS)),
        "architecture": {**model.architecture(), **{key: getattr(cfg.model, key) for key in SIZES},
                         "share_src_tgt": cfg.model.embeddings.share_src_tgt,
                         "embedding_scale": cfg.model.embeddings.scale},
        "decode": cfg.decode.choices(),  # a layer for DecodeOptions.resolve, as Translator uses it
        "batch_size": cfg.decode.batch_size,  # sentences decoded together (decode.batch_size)
        "max_src_len": cfg.data.max_src_len,
        "quantize": quantize,
        "opset": OPSET,
        "onnxruntime": onnxruntime.__version__,
        "state": [s.as_dict() for s in state],
        "source": {"run": str(translator.run.path.resolve()), "checkpoint": str(translator.checkpoint.resolve()),
                   "step": step, "dev_score": score,
                   "dev_metric": cfg.train.early_stopping_metric},
        "files": {name: file_sha256(folder / name) for name in files if name != EXPORT_JSON},
    }


def write_meta(folder: Path, meta: dict[str, Any]) -> None:
    (folder / EXPORT_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def source_commit() -> str | None:
    """The commit of the nmt source tree (git rev-parse HEAD) when it is a git checkout, else None."""
    root = Path(nmt.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        proc = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def summary(out: Path) -> str:
    """What `nmt export` prints: the folder, each file and its size, the check's figures, what to run next."""
    meta = json.loads((out / EXPORT_JSON).read_text(encoding="utf-8"))
    source, v = meta["source"], meta["verification"]
    weights = "fp32" if meta["quantize"] == "none" else meta["quantize"]
    lines = [f"wrote {out} ({meta['languages']['src']}→{meta['languages']['tgt']}, {weights} graphs, "
             f"opset {meta['opset']}; from {source['checkpoint']}, step {source['step']}):"]
    for name in sorted([*meta["files"], EXPORT_JSON]):
        lines.append(f"  {name:<20} {_size((out / name).stat().st_size):>9}")
    diff = v["max_abs_diff"]
    lines.append(f"checked in onnxruntime {meta['onnxruntime']} against torch ({v['sources']} random sources, "
                 f"{v['steps']} greedy steps): max |difference| log-probabilities {diff['log_probs']:.1e}, "
                 f"attention {diff['attention']:.1e}, encoder {diff['encoder']:.1e}"
                 + (f" (bound {v['bound']:.0e})" if meta["quantize"] == "none" else
                    f" (int8; the fp32 graphs: {v['fp32_max_abs_diff']['log_probs']:.1e}, bound {v['bound']:.0e})"))
    lines.append(f"translate with: nmt-runtime translate {out}")
    return "\n".join(lines)


def _size(n: float) -> str:
    if n < 1000:
        return f"{n:.0f} B"
    return f"{n / 1e3:.1f} kB" if n < 1e6 else f"{n / 1e6:.1f} MB"
