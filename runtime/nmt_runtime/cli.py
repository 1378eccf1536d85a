"""The `nmt-runtime` command: translate, evaluate and serve an `nmt export` folder without torch.

The front ends are nmt's: the decoding flags, the pipe filter, the prompt and the scores' print-out
live here and `nmt translate/evaluate/serve` (nmt/cli.py) run the same functions, so the two
commands behave alike. Mistakes in the user's input raise NmtError: one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

from nmt_runtime.decode_options import STRATEGIES
from nmt_runtime.errors import NmtError

LENGTH_PENALTY_HELP = ("GNMT's length penalty: beam scores are divided by ((5 + length) / 6)**ALPHA (default: "
                       "the run's decode.length_penalty; 0 = none, larger favours longer translations)")

FILTER_HELP = """\
On a terminal this is an interactive prompt: line editing and history (readline: arrows, Ctrl-R),
the translation (with --nbest N, the N best with their scores) and the time it took; Ctrl-D
leaves (exit 0), Ctrl-C too (exit 130). On a pipe or with --input it is a filter: exactly one
output line per input line, an empty line for an empty one, so outputs stay aligned with inputs.
With --nbest N, the N translations of a line are printed tab-separated as "score<TAB>translation"
pairs on that line.
"""

EPILOG_TRANSLATE = FILTER_HELP + """
examples:
  nmt-runtime translate toy-export
  echo "the king eats ." | nmt-runtime translate toy-export --beam 5
  nmt-runtime translate toy-export --input test.en --output test.hyp.fr --threads 2
  nmt-runtime translate a-export --ensemble b-export          two exports decoding as one
"""

EPILOG_EVALUATE = """\
examples:
  nmt-runtime evaluate toy-export --src data/toy/test.en --ref data/toy/test.fr --beam 5
"""

EPILOG_SERVE = """\
The model is loaded once, before the port opens. Concurrent requests are decoded together by one
worker (up to --max-batch sentences, waiting at most --max-wait-ms for more); a full queue answers
503 with Retry-After. SIGTERM or Ctrl-C lets the requests in flight finish and exits 0.

examples:
  nmt-runtime serve toy-export                           then open http://127.0.0.1:8000/
  curl -s localhost:8000/v1/translate -H 'content-type: application/json' -d '{"text": ["the king eats ."]}'
"""


def add_decode_options(p: argparse.ArgumentParser, nbest: bool = True, what: str = "",
                       ensemble_help: str = "") -> None:
    """The decoding flags of evaluate, translate and serve: DecodeOptions' names with dashes. Each
    defaults to the run's decode.* key; the ranges are checked by DecodeOptions, as for the config,
    the HTTP API and Python."""
    g = p.add_argument_group("decoding (default: the run's decode.* keys" + (f"; {what}" if what else "") + ")")
    g.add_argument("--strategy", choices=STRATEGIES, default=None,
                   help="beam search, greedy (beam 1) or sample (temperature, top-k, top-p; N samples with --nbest)")
    g.add_argument("--beam", type=int, default=None, help="beam size (1 = greedy)")
    if nbest:
        g.add_argument("--nbest", type=int, default=None, metavar="N",
                       help="the N best translations with their scores (beam: at most the beam; sample: N samples)")
    g.add_argument("--length-penalty", type=float, default=None, metavar="ALPHA", help=LENGTH_PENALTY_HELP)
    g.add_argument("--min-length", type=int, default=None, metavar="N", help="at least N tokens before the end")
    g.add_argument("--no-repeat-ngram", type=int, default=None, metavar="N",
                   help="no N-gram of tokens twice in a translation (0 = allowed)")
    g.add_argument("--temperature", type=float, default=None, metavar="T",
                   help="sample: p^(1/T) (below 1: closer to greedy; above 1: more varied)")
    g.add_argument("--top-k", type=int, default=None, metavar="K", help="sample from the K most probable tokens (0 = all)")
    g.add_argument("--top-p", type=float, default=None, metavar="P",
                   help="sample from the fewest most probable tokens that hold probability P (1 = all)")
    g.add_argument("--seed", type=int, default=None, metavar="S",
                   help="sample: the same seed and sentence give the same samples (default: new ones each run)")
    g.add_argument("--ensemble", nargs="+", default=[], metavar="MODEL2", help=ensemble_help or
                   "decode with these export folders too, combining their next-token distributions (log of the "
                   "mean probability); the tokenizers must be the same files")


# DecodeOptions' name of each decoding flag's dest
DECODE_FLAGS = {"strategy": "strategy", "beam": "beam", "nbest": "n_best", "length_penalty": "length_penalty",
                "min_length": "min_length", "no_repeat_ngram": "no_repeat_ngram_size", "temperature": "temperature",
                "top_k": "top_k", "top_p": "top_p", "seed": "seed"}


def decode_given(args: argparse.Namespace) -> dict[str, Any]:
    """The decoding flags given on the command line, by DecodeOptions' names."""
    return {option: getattr(args, dest) for dest, option in DECODE_FLAGS.items()
            if getattr(args, dest, None) is not None}


def guarded(run: Callable[[], int], args: argparse.Namespace, prog: str, label: str | None = None) -> int:
    """A command's exit code: run(), or 2 with the user's mistake in one line (`label: error: ...`;
    the traceback with --debug), 0 on a closed pipe, 130 on Ctrl-C."""
    try:
        return run()
    except NmtError as e:
        if args.debug:
            raise
        if not getattr(e, "quiet", False):
            print(f"{label or prog}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def positive(value: int | None, flag: str) -> None:
    if value is not None and value < 1:
        raise NmtError(f"{flag} must be at least 1, got {value}")


def add_serve_options(p: argparse.ArgumentParser) -> None:
    """Where `serve` listens."""
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free one, printed)")


def add_serve_limits(p: argparse.ArgumentParser) -> None:
    """`serve`'s dynamic batching and the limits of a request (nmt_runtime/serve.py's Limits)."""
    from nmt_runtime.batcher import Batching  # the standard library only

    g = p.add_argument_group("dynamic batching")
    g.add_argument("--max-batch", type=int, default=Batching.max_batch,
                   help=f"sentences decoded together at most (default {Batching.max_batch})")
    g.add_argument("--max-wait-ms", type=float, default=Batching.max_wait_ms,
                   help=f"how long the decoder waits for more requests once one is in "
                        f"(default {Batching.max_wait_ms:g})")
    g.add_argument("--max-queue", type=int, default=Batching.max_queue,
                   help=f"requests waiting at most; more get 503 (default {Batching.max_queue})")
    g.add_argument("--no-batching", action="store_true", help="decode each request alone, one after the other")
    g = p.add_argument_group("limits per request (a refusal is a 4xx with a JSON error)")
    g.add_argument("--max-sentences", type=int, default=64, help="sentences (default 64)")
    g.add_argument("--max-chars", type=int, default=1000, help="characters per sentence (default 1000)")
    g.add_argument("--max-body-bytes", type=int, default=1 << 20, help="body size (default 1 MiB)")
    g.add_argument("--max-beam", type=int, default=16, help="beam size, and samples with --strategy sample (default 16)")
    g.add_argument("--timeout", type=float, default=30.0, help="seconds queued and decoding; then 503 (default 30)")


def check_serve_flags(args: argparse.Namespace) -> None:
    """The serve flags' ranges, checked before the model is loaded."""
    for name in ("max_batch", "max_queue", "max_sentences", "max_chars", "max_body_bytes", "max_beam"):
        positive(getattr(args, name), "--" + name.replace("_", "-"))
    if not 0 < args.timeout < float("inf"):  # a NaN fails both
        raise NmtError(f"--timeout must be a finite number of seconds above 0, got {args.timeout}")
    if not 0 <= args.max_wait_ms < float("inf"):
        raise NmtError(f"--max-wait-ms must be a finite number of at least 0, got {args.max_wait_ms}")
    if not 0 <= args.port <= 65535:
        raise NmtError(f"--port must be between 0 and 65535, got {args.port}")


def serve_translator(translator: Any, args: argparse.Namespace, make_app: Callable[..., Any]) -> int:
    """`serve`: the app `make_app(translator, limits, batching, decode)` on --host/--port until SIGTERM."""
    from nmt_runtime.batcher import Batching
    from nmt_runtime.serve import Limits, serve

    given = decode_given(args)
    options = translator.options(given)
    rows = options.n_best if options.search == "sample" else options.beam
    if rows > args.max_beam:
        what = f"--nbest {rows} (samples)" if options.search == "sample" else f"the beam {rows}"
        raise NmtError(f"{what} exceeds --max-beam {args.max_beam}")
    limits = Limits(args.max_sentences, args.max_chars, args.max_body_bytes, args.max_beam, args.timeout)
    batching = Batching(not args.no_batching, args.max_batch, args.max_wait_ms, args.max_queue)
    app = make_app(translator, limits, batching, given)
    print(f"loaded {translator.models_label()} ({translator.src_lang}→{translator.tgt_lang}, "
          f"quantize {translator.quantize}); decoding by default: {options.describe()}; dynamic batching "
          f"{'off' if args.no_batching else f'up to {args.max_batch} sentences, {args.max_wait_ms:g} ms wait'}")
    return serve(app, args.host, args.port)


def format_nbest(nbest: list, n: int) -> str:
    if n == 1 or not nbest[0].src_pieces:  # an empty input line stays an empty output line
        return nbest[0].text
    return "\t".join(f"{h.score:.4f}\t{h.text}" for h in nbest)


Plot = Callable[[Any, str, int], None]  # (the best translation, the source line, its number) → draws it


def translate_lines(translator: Any, options: Any, input: str | None, output: str | None, interactive: bool,
                    plot: Plot | None = None) -> int:
    """`translate`: the prompt on a terminal (or with `interactive`), else a filter of --input or stdin
    to --output or stdout, one line for one line."""
    from nmt_runtime.files import decode_utf8, read_lines, split_lines

    if interactive or (input is None and sys.stdin.isatty()):
        return prompt(translator, options, plot)
    lines = read_lines(input) if input else split_lines(decode_utf8(sys.stdin.buffer.read(), "<stdin>"))
    results = translator.translate_full(lines, options, attention=plot is not None)
    if plot is not None:
        for i, (line, nbest) in enumerate(zip(lines, results), start=1):
            plot(nbest[0], line, i)
    out_text = "".join(format_nbest(nbest, options.n_best) + "\n" for nbest in results)
    if output:
        try:
            Path(output).write_text(out_text, encoding="utf-8")
        except OSError as e:
            raise NmtError(f"{output}: cannot write ({e.strerror})") from None
    else:
        sys.stdout.write(out_text)
    return 0


def prompt(translator: Any, options: Any, plot: Plot | None = None) -> int:
    """The interactive prompt. Ctrl-D leaves with exit 0, Ctrl-C (at the prompt or while
    translating) with 130, the shell's code for an interrupt; neither shows a traceback."""
    try:
        import readline  # noqa: F401  (line editing and history for input())
    except ImportError:  # no readline (Windows): plain input()
        pass
    src, tgt = translator.src_lang, translator.tgt_lang
    nbest = options.n_best
    print(f"nmt {src}→{tgt} ({translator.models_label()}), {options.describe()}. Type a sentence and press Enter; "
          "↑/↓ recalls earlier ones; Ctrl-D or Ctrl-C quits.", file=sys.stderr)
    count = 0
    try:
        while True:
            try:
                line = input(f"{src}> ")
            except EOFError:
                print(file=sys.stderr)
                return 0
            if not line.strip():
                continue
            t0 = time.time()
            results = translator.translate_full([line], options, attention=plot is not None)[0]
            for h in results:
                prefix = f"{tgt}: " if nbest == 1 else f"{tgt} ({h.score:.3f}): "
                print(prefix + h.text, flush=True)
            print(f"  [{time.time() - t0:.2f}s]", file=sys.stderr)
            if plot is not None:
                count += 1
                plot(results[0], line, count)
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


def print_scores(scores: Any, out: Path, options: Any, models: str, settings: str, threads: str) -> None:
    """What `evaluate` prints: the scores with their signatures, then the settings that made them."""
    print(f"{scores.bleu_text}")
    print(f"  signature: {scores.bleu_signature}")
    print(f"{scores.chrf_text}")
    print(f"  signature: {scores.chrf_signature}")
    print(f"sentences: {scores.n_sentences}  {models}  {settings}  hypotheses: {out}")
    print(f"decode: {options.describe()}")
    print(f"decoding: {scores.decode_s:.2f} s, {scores.n_sentences / scores.decode_s:,.1f} sentences/s "
          f"({threads}; model loading not counted)")


def cmd_translate(args: argparse.Namespace) -> int:
    from nmt_runtime.translator import ExportTranslator

    translator = ExportTranslator.load([args.export, *args.ensemble], threads=args.threads)
    options = translator.options(**decode_given(args))
    return translate_lines(translator, options, args.input, args.output, args.interactive)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from nmt_runtime.scoring import read_test_set, translate_and_score
    from nmt_runtime.translator import ExportTranslator

    translator = ExportTranslator.load([args.export, *args.ensemble], threads=args.threads)
    given = decode_given(args)
    translator.options(**given)  # a bad option is refused before any work
    src, ref = read_test_set(args.src, args.ref)
    scores, out, options = translate_and_score(translator, src, ref, Path(args.src).name, translator.hyps_dir,
                                               args.out, given, translator.n_models)
    print_scores(scores, out, options, f"export: {translator.models_label()}", f"quantize: {translator.quantize}",
                 translator.threads_label())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    check_serve_flags(args)
    from nmt_runtime.serve import export_app
    from nmt_runtime.translator import ExportTranslator

    translator = ExportTranslator.load([args.export, *args.ensemble], threads=args.threads)
    return serve_translator(translator, args, export_app)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("export", help="an export folder (made by nmt export RUN OUT)")
    p.add_argument("--threads", type=int, default=None,
                   help="onnxruntime's threads (default: onnxruntime's choice, one a core)")
    p.add_argument("--debug", action="store_true", help="show full tracebacks for errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nmt-runtime",
        description="Translate with an nmt export (ONNX graphs and sentencepiece models) without torch: "
                    "numpy, onnxruntime and sentencepiece.",
        epilog="An export folder is made where nmt is installed: nmt export RUN OUT. "
               "Run 'nmt-runtime SUBCOMMAND --help' for the options of each subcommand.")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser("translate", help="translate at a prompt, or filter lines from stdin/--input",
                       description="Translate sentences with an export.", epilog=EPILOG_TRANSLATE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_common(p)
    p.add_argument("--input", default=None, help="read sentences from this file instead of stdin")
    p.add_argument("--output", default=None, help="write translations to this file instead of stdout")
    p.add_argument("--interactive", action="store_true", help="force the prompt even when stdin is not a terminal")
    add_decode_options(p)
    p = sub.add_parser("evaluate", help="translate a test set and print BLEU and chrF",
                       description="Translate --src with an export, score against --ref with sacrebleu (BLEU, "
                                   "13a tokenizer, cased; chrF), print the scores with their signatures and write "
                                   "the hypotheses to a file.", epilog=EPILOG_EVALUATE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_common(p)
    p.add_argument("--src", required=True, help="source sentences, one a line")
    p.add_argument("--ref", required=True, help="reference translations, one a line, aligned with --src")
    p.add_argument("--out", default=None, help="where to write the hypotheses (default hyps/EXPORT-NAME/SRC.beamK.hyp in the "
                                               "working folder, named like nmt evaluate's; the export is left as it is)")
    add_decode_options(p, nbest=False)
    p = sub.add_parser("serve", help="a JSON API and a web page for an export (needs the serve extra)",
                       description="Serve an export over HTTP: POST /v1/translate, GET /v1/info, "
                                   "GET /v1/embeddings/neighbors, GET /health, the page at /, API docs at /docs; "
                                   "the same API, limits and page as nmt serve.",
                       epilog=EPILOG_SERVE, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_common(p)
    add_serve_options(p)
    add_decode_options(p, what="the defaults of requests, which may choose their own")
    add_serve_limits(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"translate": cmd_translate, "evaluate": cmd_evaluate, "serve": cmd_serve}

    def run() -> int:
        if args.threads is not None and args.threads < 1:
            raise NmtError(f"--threads must be at least 1, got {args.threads}")
        return handlers[args.command](args)

    return guarded(run, args, f"nmt-runtime {args.command}")


if __name__ == "__main__":
    sys.exit(main())
