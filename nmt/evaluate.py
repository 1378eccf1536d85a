"""Score translations with sacrebleu: BLEU and chrF, with the signatures that make them comparable."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from sacrebleu.metrics import BLEU, CHRF

from nmt.corpus import load_corpus, read_lines
from nmt_runtime.decode_options import DecodeOptions
from nmt.errors import NmtError
from nmt.translate import Translator


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


def evaluate(
    runs: str | Path | Sequence[str | Path],
    src_file: str | Path | None = None,
    ref_file: str | Path | None = None,
    checkpoint: str = "best",
    out: str | Path | None = None,
    quantize: str = "none",
    **given: Any,
) -> tuple[Scores, Path, DecodeOptions]:
    """Translate `src_file` with a run's model (or an ensemble's: a list of runs, as
    `Translator.load` takes), score against `ref_file`, write the hypotheses; returns the scores, the
    hypotheses file and the decode options used (the run's decode.* with `given` on top).

    Without files, use the test set of the run's config (`data.test`, parallel or tsv).
    `quantize="int8"` decodes with dynamic int8 weights (`nmt.translate.quantize_int8`). The default
    hypotheses file (RUN/hyps/) names the strategy, the options given, the ensemble size and the
    quantization (`hypotheses_name`), so it does not replace another setting's.
    """
    translator = Translator.load(runs, checkpoint, quantize=quantize)
    options = translator.options(**given)  # a bad option is refused before any work
    if src_file is None and ref_file is None:
        data = translator.cfg.data
        if not data.test:
            raise NmtError(f"{translator.run.config}: no 'data.test' in the run's config; pass --src and --ref")
        test = load_corpus(data.test, data, "test")
        src, ref, name = test.src, test.tgt, Path(data.test).name
    elif src_file is None or ref_file is None:
        raise NmtError("give both --src and --ref, or neither (to use the run's data.test)")
    else:
        src, ref, name = read_lines(src_file), read_lines(ref_file), Path(src_file).name
        if len(src) != len(ref):
            raise NmtError(f"{src_file} has {len(src)} lines but {ref_file} has {len(ref)}")
        if not src:
            raise NmtError(f"{src_file}: empty file")
    t0 = time.perf_counter()
    hyps = [nbest[0].text for nbest in translator.translate_full(src, options)]
    decode_s = time.perf_counter() - t0
    file_name = hypotheses_name(name, options, given, len(translator.members), quantize)
    out_path = Path(out) if out else translator.run.path / "hyps" / file_name
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    return replace(score(hyps, ref), decode_s=decode_s), out_path, options
