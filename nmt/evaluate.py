"""Score translations with sacrebleu: BLEU and chrF, with the signatures that make them comparable."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

from sacrebleu.metrics import BLEU, CHRF

from nmt.corpus import load_corpus, read_lines
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


def evaluate(
    run_dir: str | Path,
    src_file: str | Path | None = None,
    ref_file: str | Path | None = None,
    beam: int | None = None,
    checkpoint: str = "best",
    out: str | Path | None = None,
    quantize: str = "none",
    length_penalty: float | None = None,
) -> tuple[Scores, Path]:
    """Translate `src_file` with a run's model, score against `ref_file`, write the hypotheses.

    Without files, use the test set of the run's config (`data.test`, parallel or tsv).
    `quantize="int8"` decodes with dynamic int8 weights (`nmt.translate.quantize_int8`); the default
    hypotheses file then ends in .int8.hyp, so it does not replace the float model's. A given
    `length_penalty` (else the run's decode.length_penalty) puts .lpA in the name likewise.
    """
    translator = Translator.load(run_dir, checkpoint, quantize=quantize)
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
    hyps = translator.translate(src, beam=beam, length_penalty=length_penalty)
    decode_s = time.perf_counter() - t0
    beam_used = beam or translator.cfg.decode.beam_size
    suffix = "" if length_penalty is None else f".lp{length_penalty:g}"
    suffix += "" if quantize == "none" else f".{quantize}"
    out_path = Path(out) if out else translator.run.path / "hyps" / f"{name}.beam{beam_used}{suffix}.hyp"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("".join(h + "\n" for h in hyps), encoding="utf-8")
    return replace(score(hyps, ref), decode_s=decode_s), out_path
