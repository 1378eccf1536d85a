"""`nmt evaluate`: translate a test set with a run (or an export folder, or an ensemble) and score
it with sacrebleu (nmt_runtime/scoring.py, which `nmt-runtime evaluate` runs too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from nmt.corpus import load_corpus
from nmt.errors import NmtError
from nmt.translate import Translator, TranslatorBase, load_translator
from nmt_runtime.decode_options import DecodeOptions
from nmt_runtime.scoring import (  # noqa: F401  (Scores, hypotheses_name, score: nmt's names too)
    Scores, hypotheses_name, read_test_set, score, translate_and_score,
)


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
    `Translator.load` takes; or export folders of `nmt export`, see `load_translator`), score against `ref_file`, write the hypotheses; returns the scores, the
    hypotheses file and the decode options used (the run's decode.* with `given` on top).

    Without files, use the test set of the run's config (`data.test`, parallel or tsv).
    `quantize="int8"` decodes with dynamic int8 weights (`nmt.translate.quantize_int8`). The default
    hypotheses file (RUN/hyps/; for an export hyps/EXPORT-NAME/ in the working folder) names the strategy, the options given, the ensemble size and the
    quantization (`hypotheses_name`), so it does not replace another setting's.
    """
    return evaluate_with(load_translator(runs, checkpoint, quantize=quantize), src_file, ref_file, out, **given)


def evaluate_with(translator: TranslatorBase, src_file: str | Path | None = None, ref_file: str | Path | None = None,
                  out: str | Path | None = None, **given: Any) -> tuple[Scores, Path, DecodeOptions]:
    """`evaluate` with a translator already loaded (a run's, or an export's)."""
    translator.options(**given)  # a bad option is refused before any work
    if src_file is None and ref_file is None:
        if not isinstance(translator, Translator):
            raise NmtError(f"{translator.models_label()}: an export folder names no test set; pass --src and --ref")
        data = translator.cfg.data
        if not data.test:
            raise NmtError(f"{translator.run.config}: no 'data.test' in the run's config; pass --src and --ref")
        test = load_corpus(data.test, data, "test")
        src, ref, name = test.src, test.tgt, Path(data.test).name
    elif src_file is None or ref_file is None:
        raise NmtError("give both --src and --ref, or neither (to use the run's data.test)")
    else:
        (src, ref), name = read_test_set(src_file, ref_file), Path(src_file).name
    return translate_and_score(translator, src, ref, name, translator.hyps_dir, out, given, translator.n_models)
