"""Scoring with sacrebleu (BLEU and chrF, with the signatures that make them comparable), and
translating a test set to score it: what `nmt evaluate` and `nmt-runtime evaluate` both run."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sacrebleu.metrics import BLEU, CHRF

from nmt_runtime.decode_options import DecodeOptions
from nmt_runtime.errors import NmtError


@dataclass
class Scores:
    bleu: float
    chrf: float
    bleu_text: str  # e.g. "BLEU = 41.2 72.1/48.0/… (BP = 1.000 …)"
    chrf_text: str
    bleu_signature: str
    chrf_signature: str
    n_sentences: int
    decode_s: float | None = None  # wall-clock seconds of the decoding, when `evaluate` made them


def score(hypotheses: list[str], references: list[str]) -> Scores:
    """Corpus BLEU (13a tokenizer, cased) and chrF on detokenized text.

    `force=True` silences sacrebleu's "tokenized period" warning: nmt's outputs are always
    detokenized by sentencepiece, and some corpora (the toy one) write " ." on purpose.
    """
    bleu, chrf = BLEU(force=True), CHRF()
    b = bleu.corpus_score(hypotheses, [references])
    c = chrf.corpus_score(hypotheses, [references])
    return Scores(b.score, c.score, str(b), str(c), str(bleu.get_signature()), str(chrf.get_signature()),
                  len(hypotheses))


# file-name tags of options given beside the strategy: evaluate's default hypotheses file names them,
# so that another setting does not replace an earlier file
_TAGS = {"length_penalty": "lp", "min_length": "min", "no_repeat_ngram_size": "nr", "temperature": "t",
         "top_k": "k", "top_p": "p", "seed": "s", "max_len_ratio": "ratio", "max_len_extra": "extra"}


def _tag_value(value: Any) -> str:
    """A value as a file name shows it, exactly: 3, 0.9, 1e-05 (never rounded, so no two settings share a name)."""
    text = str(value) if isinstance(value, int) else repr(float(value))  # repr: the shortest exact form
    return text.removesuffix(".0")


def hypotheses_name(test: str, options: DecodeOptions, given: dict[str, Any], members: int, quantize: str) -> str:
    """e.g. test2016.beam5.hyp, test2016.beam5.lp0.6.hyp, test2016.sample.t0.7.s1.ens2.int8.hyp."""
    parts = [test, "sample" if options.search == "sample" else f"beam{options.beam}"]
    parts += [f"{tag}{_tag_value(given[name])}" for name, tag in _TAGS.items() if given.get(name) is not None]
    parts += [f"ens{members}"] if members > 1 else []
    parts += [quantize] if quantize != "none" else []
    return ".".join(parts + ["hyp"])


def read_test_set(src_file: str | Path, ref_file: str | Path) -> tuple[list[str], list[str]]:
    """The sources and references of a test set: aligned, not empty; each problem names the file."""
    from nmt_runtime.files import read_lines

    src, ref = read_lines(src_file), read_lines(ref_file)
    if len(src) != len(ref):
        raise NmtError(f"{src_file} has {len(src)} lines but {ref_file} has {len(ref)}")
    if not src:
        raise NmtError(f"{src_file}: empty file")
    return src, ref


def translate_and_score(translator: Any, src: list[str], ref: list[str], name: str, out_dir: Path,
                        out: str | Path | None, given: dict[str, Any], members: int) -> tuple[Scores, Path, DecodeOptions]:
    """Translate `src` (the best of each), write the hypotheses (`out`, else out_dir/`hypotheses_name`),
    score against `ref`; the scores carry the decoding's wall-clock seconds."""
    options = translator.options(**given)
    t0 = time.perf_counter()
    hyps = [nbest[0].text for nbest in translator.translate_full(src, options)]
    decode_s = time.perf_counter() - t0
    out_path = Path(out) if out else out_dir / hypotheses_name(name, options, given, members, translator.quantize)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    except OSError as e:
        raise NmtError(f"{out_path}: cannot write the hypotheses ({e.strerror})") from None
    return replace(score(hyps, ref), decode_s=decode_s), out_path, options
