"""The `nmt` command: thin subcommands over the Python API.

Mistakes in the user's input raise NmtError: one line on stderr, exit code 2, no traceback
(`--debug` shows it). Anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from nmt.errors import NmtError
from nmt_runtime.cli import (  # the standard library only: the help costs no torch import
    FILTER_HELP, add_decode_options, add_serve_limits, add_serve_options, decode_given, guarded, positive,
)

QUANTIZE_CHOICES = ["none", "int8"]  # nmt.translate.QUANTIZE_CHOICES, not imported here: it loads torch

EPILOG_TRAIN = """\
examples:
  nmt train configs/toy.yaml
  nmt train configs/toy.yaml --set run.dir=runs/toy2 --set train.max_steps=2000
  nmt train configs/toy.yaml --resume          continue runs/toy from checkpoints/last.pt

--set KEY.PATH=VALUE overrides one config key (VALUE is read as YAML) and is checked like the
file. The run directory (run.dir) gets the resolved config, the tokenizer models, checkpoints,
metrics.jsonl and train.log: everything needed to translate without the original files.
"""

EPILOG_PREPARE = """\
examples:
  nmt prepare configs/multi30k_de_en.yaml                  then nmt train finds it and starts at once
  nmt prepare big.yaml --workers 8 --set data.prepared_dir=/scratch/nmt

The folder holds, per split and side, the ids of all sentences one after the other
(uint16 when the vocabulary fits), their offsets and lengths, the id counts, the two
sentencepiece models and manifest.json (sources with sha256, counts, format version).
It is written to a temporary folder and renamed, so a prepare that is killed leaves the
old complete copy or none. An edited corpus or other tokenizer settings get a new folder;
old ones stay until you delete them. Ctrl-C stops it (exit 130) with nothing torn.
"""

EPILOG_TRANSLATE = FILTER_HELP + """
examples:
  nmt translate runs/toy
  nmt translate runs/toy --beam 5 --nbest 3        prompt with the 3 best translations
  echo "the king eats ." | nmt translate runs/toy --beam 5
  nmt translate runs/toy --input test.en --output test.hyp.fr
  nmt translate runs/toy --checkpoint averaged     the weights made by nmt average
  nmt translate runs/toy --strategy sample --nbest 3 --seed 1      three samples a sentence, reproducible
  nmt translate runs/a --ensemble runs/b runs/c:averaged           three runs decoding as one
  nmt translate toy-export                          an export folder of nmt export (onnxruntime)
"""

EPILOG_SERVE = """\
The model is loaded once, before the port opens. Concurrent requests are decoded together by one
worker (up to --max-batch sentences, waiting at most --max-wait-ms for more); a full queue answers
503 with Retry-After. SIGTERM or Ctrl-C lets the requests in flight finish and exits 0.

examples:
  nmt serve runs/toy                                   then open http://127.0.0.1:8000/
  curl -s localhost:8000/v1/translate -H 'content-type: application/json' \\
       -d '{"text": ["the king eats ."], "n_best": 3, "attention": true}'
  curl -s 'localhost:8000/v1/embeddings/neighbors?word=king&side=src&k=5&checkpoint=init'
  nmt serve runs/toy --host 0.0.0.0 --port 8080 --quantize int8      reachable from other machines
"""

EPILOG_PLOT = """\
The curves come from RUN/metrics.jsonl, so this works while the run is still training (and
without TensorBoard). The train loss is label-smoothed (train.label_smoothing), the dev loss is
not, so the dev curve can lie below the train curve.

examples:
  nmt plot runs/toy                   writes runs/toy/curves.png
  nmt plot runs/toy toy_curves.png
"""

EPILOG_AVERAGE = """\
Weights late in training wander around a minimum; their mean often translates a little better
than any one of them. The trainer keeps the weights of the last K validations as
RUN/checkpoints/step_<N>.pt when the config sets train.keep_checkpoints: K (0, the default,
keeps none). This averages the newest K (in float64), writes the result, and translates the
dev set greedily with best.pt and with the average, so you see how much BLEU it changed.

examples:
  nmt train configs/toy.yaml --set train.keep_checkpoints=5
  nmt average runs/toy --last 5
  nmt evaluate runs/toy --checkpoint averaged
"""

QUANTIZE_HELP = ("none (default) or int8: dynamic int8 weights for Linear, GRU and LSTM layers on CPU; "
                 "faster, BLEU may drop slightly")

CHECKPOINT_HELP = ("'best' (default), 'last', 'averaged' (made by nmt average), 'step_N' (kept by "
                   "train.keep_checkpoints) or a checkpoint path")

ENSEMBLE_HELP = ("decode with these runs too, combining their next-token distributions (log of the mean "
                 "probability); RUN:averaged (best, last, step_N) names a checkpoint; the tokenizers must be "
                 "the same files (export folders: with export folders only)")

RUN_HELP = "run directory, or an export folder made by nmt export (decoded with onnxruntime)"


EPILOG_EMBEDDINGS = """\
nn.Embedding is a lookup table: row n of a (vocab × dim) matrix is the vector of vocabulary id n.
The rows are trainable parameters, so every row whose id occurs in the training data moves,
while rows never seen keep their random initial values (unless train.weight_decay > 0 shrinks
them): the vectors do change during training.
These actions show how, on one side (--side src|tgt) of one checkpoint of a run (--checkpoint);
both options go before the action or after it (after it wins when given twice).

Rows belong to sentencepiece pieces, not words: "▁king" starts a word, "s" continues one. A word
kept whole uses its one row; a word split into several pieces gets the MEAN of their rows (a
simple stand-in: the model composes pieces in context, it never stores one vector for such a
word). Every action prints the pieces it used. An argument that starts with "▁" is a piece name.
In a word vocabulary (tokenizer.type: word) every row is a word, and is shown as the word ("king").

examples:
  nmt embeddings runs/toy neighbors king
  nmt embeddings runs/toy analogy king man woman
  nmt embeddings runs/toy --side tgt neighbors reine -k 5
  nmt embeddings runs/toy drift                      init → best: which rows moved, which did not
  nmt embeddings runs/toy export --format word2vec toy.src.vec
  nmt embeddings runs/toy export --format word2vec toy.tgt.vec --side tgt
  nmt embeddings runs/toy export --format tsv projector/
  nmt embeddings runs/toy plot toy.png --words king queen man woman cat dog
  nmt embeddings runs/toy movie toy.gif --words king queen man woman cat dog
  nmt embeddings runs/toy compare-word2vec --analogies data/toy/analogies.en.txt \
      --classes data/toy/classes.en.tsv         is the trained table anything like word2vec?
"""


EPILOG_EXPORT = """\
OUT gets the encoder and one decoder step as ONNX graphs (encoder.onnx, decoder_step.onnx; any
batch size and source length), the run's two sentencepiece models (src.model, tgt.model), the
embedding tables as .npy (and the token counts, when the run has them), and export.json: languages,
vocabularies, special ids, architecture, decode defaults, the nmt version and commit, and the
sha256 of every file. Before OUT appears, the graphs are run in onnxruntime against the torch model
(log-probabilities within 1e-4 in fp32); a failed export leaves nothing behind.

The folder translates without torch: pip install ./runtime (numpy, onnxruntime, sentencepiece),
then nmt-runtime translate OUT, or in Python nmt_runtime.exported.load_export(OUT).

examples:
  nmt export runs/toy exports/toy
  nmt-runtime translate exports/toy                      as nmt translate runs/toy, without torch
  nmt export runs/toy exports/toy-int8 --quantize int8   smaller and faster on CPUs, BLEU may drop slightly
  nmt export runs/toy exports/toy --checkpoint averaged --overwrite
"""


def _add_debug(p: argparse.ArgumentParser, top: bool = False) -> None:
    # SUPPRESS on subcommands, so that `nmt --debug train ...` is not reset by the subparser
    p.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="show full tracebacks for errors")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nmt",
        description="Train GRU/LSTM attention translation models, score them with BLEU, translate.",
        epilog="Run 'nmt SUBCOMMAND --help' for the options of each subcommand.",
    )
    _add_debug(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    p = sub.add_parser("train", help="train a model from a YAML config", epilog=EPILOG_TRAIN,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Train a model from a YAML config into its run directory.")
    p.add_argument("config", help="YAML config file (see configs/ and docs/reference/config.md)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a config key, e.g. --set train.max_steps=500 (repeatable)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the run in run.dir from its last checkpoint")
    group.add_argument("--overwrite", action="store_true", help="delete an existing run.dir and start over")
    _add_debug(p)

    p = sub.add_parser("prepare", help="tokenize a config's corpus once into memory-mapped arrays (train does it too)",
                       description="Train the config's sentencepiece models on a sample of the training text and "
                                   "encode train, dev and test in worker processes into numpy arrays in "
                                   "data.prepared_dir (default ~/.cache/nmt/prepared), in a folder named by a hash "
                                   "of the corpus files and the tokenizer settings. nmt train reads them; runs on "
                                   "the same corpus share them. Preparing what is already prepared does nothing.",
                       epilog=EPILOG_PREPARE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="YAML config file (its data and tokenizer sections)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a config key, as for nmt train (repeatable)")
    p.add_argument("--workers", type=int, default=None,
                   help="processes that read and encode the text (default: the number of cores, at most one "
                        "per 50,000-line chunk of the training files)")
    p.add_argument("--force", action="store_true",
                   help="prepare again even if a prepared copy is there (it is replaced only once the new one is whole)")
    _add_debug(p)

    p = sub.add_parser("evaluate", help="translate a test set and print BLEU and chrF",
                       description="Translate --src with a run's model, score against --ref with sacrebleu "
                                   "(BLEU, 13a tokenizer, cased; chrF), print the scores with their "
                                   "signatures and write the hypotheses to a file. Without --src/--ref, "
                                   "use the test set named in the run's config (data.test).")
    p.add_argument("run", help="run directory (the run.dir of a training config), or an export folder of nmt export")
    p.add_argument("--src", default=None, help="source sentences, one a line (default: the run's data.test)")
    p.add_argument("--ref", default=None, help="reference translations, one a line, aligned with --src")
    p.add_argument("--checkpoint", default="best", help=CHECKPOINT_HELP)
    p.add_argument("--out", default=None,
                   help="where to write the hypotheses (default RUN/hyps/SRC.beamK.hyp, for an export hyps/EXPORT-NAME/ here; "
                        "the name also says "
                        "--strategy sample, the decoding flags given (SRC.beamK.lpALPHA.hyp), --ensemble "
                        "(.ensN) and --quantize int8 (.int8), so another setting does not replace it)")
    p.add_argument("--quantize", choices=QUANTIZE_CHOICES, default="none", help=QUANTIZE_HELP)
    add_decode_options(p, nbest=False, ensemble_help=ENSEMBLE_HELP)
    _add_debug(p)

    p = sub.add_parser("translate", help="translate at a prompt, or filter lines from stdin/--input",
                       description="Translate sentences with a trained run.", epilog=EPILOG_TRANSLATE,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help=RUN_HELP)
    p.add_argument("--input", default=None, help="read sentences from this file instead of stdin")
    p.add_argument("--output", default=None, help="write translations to this file instead of stdout")
    p.add_argument("--checkpoint", default="best", help=CHECKPOINT_HELP)
    p.add_argument("--quantize", choices=QUANTIZE_CHOICES, default="none", help=QUANTIZE_HELP)
    p.add_argument("--interactive", action="store_true", help="force the prompt even when stdin is not a terminal")
    p.add_argument("--attention-plots", metavar="DIR", default=None,
                   help="write one attention heatmap PNG per sentence into DIR (0001.png, … in input order; "
                        "needs matplotlib; with --ensemble, the mean of the members' weights)")
    add_decode_options(p, ensemble_help=ENSEMBLE_HELP)
    _add_debug(p)

    p = sub.add_parser("serve", help="a JSON API and a web page for a trained run (needs the serve extra)",
                       description="Serve a trained run over HTTP: POST /v1/translate, GET /v1/info, "
                                   "GET /v1/embeddings/neighbors, GET /health, the page at /, API docs at /docs.",
                       epilog=EPILOG_SERVE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help=RUN_HELP)
    add_serve_options(p)
    p.add_argument("--checkpoint", default="best", help=CHECKPOINT_HELP)
    p.add_argument("--quantize", choices=QUANTIZE_CHOICES, default="none", help=QUANTIZE_HELP)
    add_decode_options(p, what="the defaults of requests, which may choose their own", ensemble_help=ENSEMBLE_HELP)
    add_serve_limits(p)
    _add_debug(p)

    p = sub.add_parser("plot", help="draw training curves from a run's metrics log (needs matplotlib)",
                       description="Draw a run's training curves into a PNG: train and dev loss, dev BLEU\n"
                                   "(greedy) and chrF, the learning rate, and the embedding drift (mean L2\n"
                                   "distance from the initial rows and mean cosine to them, per side) over\n"
                                   "training steps. Needs matplotlib (pip install 'nmt[plots]').",
                       epilog=EPILOG_PLOT, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory")
    p.add_argument("out", nargs="?", default=None, metavar="OUT.png", help="the image to write (default RUN/curves.png)")
    _add_debug(p)

    p = sub.add_parser("average", help="average the last K checkpoints into one; compare its dev BLEU with best.pt",
                       description="Average the weights of a run's newest K step checkpoints\n"
                                   "(RUN/checkpoints/step_<N>.pt) into one checkpoint, and report the dev\n"
                                   "BLEU (greedy) of best.pt and of the average.",
                       epilog=EPILOG_AVERAGE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory")
    p.add_argument("--last", type=int, required=True, metavar="K", help="how many of the newest step checkpoints")
    p.add_argument("--output", default=None, metavar="PATH",
                   help="where to write the average (default RUN/checkpoints/averaged.pt, which "
                        "--checkpoint averaged then names)")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists")
    p.add_argument("--no-dev", action="store_true", help="skip the dev BLEU comparison")
    _add_debug(p)

    p = sub.add_parser("export", help="write a run as ONNX graphs and files that translate without torch (nmt-runtime)",
                       description="Export a run's model, tokenizers and embedding tables into the folder OUT,\n"
                                   "for nmt-runtime (numpy, onnxruntime and sentencepiece; no torch). Needs the\n"
                                   "export extra: pip install 'nmt[export]'.",
                       epilog=EPILOG_EXPORT, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="run directory")
    p.add_argument("out", metavar="OUT", help="the folder to write (new, empty, or an earlier export with --overwrite)")
    p.add_argument("--checkpoint", default="best", help=CHECKPOINT_HELP)
    p.add_argument("--quantize", default="none", metavar="none|int8",
                   help="none (default) or int8: onnxruntime's dynamic quantization, int8 weights in the Linear "
                        "and LSTM layers (GRUs and embeddings stay fp32)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT if it holds an earlier export (and nothing else)")
    _add_debug(p)

    _add_embeddings_parser(sub)
    return parser


def _add_table_options(p: argparse.ArgumentParser, top: bool = False) -> None:
    """--side and --checkpoint, which `nmt embeddings` takes before the action and each action after
    it. On the actions the default is SUPPRESS (as in _add_debug), so that an action does not reset
    a value given before it; given in both places, the one after the action wins."""
    p.add_argument("--side", choices=["src", "tgt"], default="src" if top else argparse.SUPPRESS,
                   help="the source (encoder input) or target (decoder input) table (default src)")
    p.add_argument("--checkpoint", default="best" if top else argparse.SUPPRESS,
                   help="'best' (default), 'last', 'averaged', 'step_N', 'init' (the tables before the first step) "
                        "or a checkpoint path")


def _add_embeddings_parser(sub: argparse._SubParsersAction) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    mean_note = ("A word split into several pieces is the mean of its piece rows (printed); "
                 "an argument starting with ▁ is taken as a piece name.")
    p = sub.add_parser("embeddings", help="inspect what nn.Embedding learned: neighbours, analogies, drift, exports",
                       description="Inspect a run's embedding tables (nn.Embedding rows).",
                       epilog=EPILOG_EMBEDDINGS, formatter_class=raw)
    p.add_argument("run", help="run directory")
    _add_table_options(p, top=True)
    _add_debug(p)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    a = actions.add_parser("neighbors", help="the rows nearest to a word by cosine similarity",
                           description="The k rows most similar to WORD's vector by cosine similarity, with "
                                       "their ids, cosines and training counts. " + mean_note + " The specials "
                                       "(<pad> <unk> <s> </s>) and WORD's own pieces are left out.")
    a.add_argument("word", help="a word (e.g. king) or a piece (e.g. ▁king)")
    a.add_argument("-k", type=int, default=10, help="how many neighbours (default 10)")
    _add_table_options(a)
    _add_debug(a)

    a = actions.add_parser("analogy", help="A − B + C (king − man + woman ≈ queen?)",
                           description="3CosAdd analogy: the rows nearest by cosine to unit(A) − unit(B) + "
                                       "unit(C), the pieces of A, B and C left out (as gensim's most_similar("
                                       "positive=[A, C], negative=[B])). " + mean_note)
    a.add_argument("a", metavar="A", help="e.g. king")
    a.add_argument("b", metavar="B", help="e.g. man (subtracted)")
    a.add_argument("c", metavar="C", help="e.g. woman")
    a.add_argument("-k", type=int, default=5, help="how many answers (default 5)")
    _add_table_options(a)
    _add_debug(a)

    a = actions.add_parser("drift", help="how far each row moved during training",
                           description="Compare the table at two checkpoints (default: init, before the "
                                       "first step, to --checkpoint, i.e. best): the N rows that moved most and "
                                       "least, with the L2 distance, the cosine to the starting row and the "
                                       "training count, and a summary (mean_l2, median_l2, frac_moved, mean_cos; "
                                       "with counts mean_l2_seen, mean_l2_unseen, spearman_l2_freq). Rows of ids "
                                       "that never occur in the training data do not move (unless "
                                       "train.weight_decay > 0).")
    a.add_argument("--from", dest="start", default="init", metavar="CKPT",
                   help="'init' (default), 'best', 'last' or a checkpoint path")
    a.add_argument("--to", dest="end", default=None, metavar="CKPT",
                   help="'best', 'last', 'init' or a path (default: --checkpoint, i.e. best)")
    a.add_argument("-n", type=int, default=15, help="rows to list at each end (default 15)")
    _add_table_options(a)
    _add_debug(a)

    a = actions.add_parser("export", help="write the table for gensim (word2vec) or the TensorBoard projector (tsv)",
                           description="word2vec: OUT is a text file ('N D' header, then 'piece v1 … vD'), "
                                       "loadable with gensim KeyedVectors.load_word2vec_format(OUT, binary=False). "
                                       "tsv: OUT is a folder that receives vectors.tsv and metadata.tsv (piece, id, "
                                       "count) for https://projector.tensorflow.org. Tokens are sentencepiece "
                                       "pieces with the ▁ word-start marker kept (look up 'king' as '▁king'); the "
                                       "specials are skipped.")
    a.add_argument("--format", choices=["word2vec", "tsv"], default="word2vec", help="default word2vec")
    a.add_argument("out", metavar="OUT", help="output file (word2vec) or folder (tsv)")
    _add_table_options(a)
    _add_debug(a)

    a = actions.add_parser("plot", help="2-D PCA picture of words, initial vs trained (needs matplotlib)",
                           description="Draw the chosen words' vectors in 2-D (PCA), the initial table (init) "
                                       "left and --checkpoint right, each panel with its own PCA. " + mean_note +
                                       " Without --words: the 20 most frequent whole-word pieces. Needs "
                                       "matplotlib (pip install matplotlib, or pip install 'nmt[plots]').")
    a.add_argument("out", metavar="OUT.png", help="the image to write")
    a.add_argument("--words", nargs="+", default=None, metavar="WORD", help="the words to draw (at least 3)")
    _add_table_options(a)
    _add_debug(a)


    a = actions.add_parser("movie", help="the chosen words' rows moving over the run's validations, as a GIF",
                           description="Draw the chosen words' rows in 2-D at every validation of the run, one frame "
                                       "each, from the snapshots training keeps (RUN/snapshots/, the "
                                       "'train.embedding_snapshots' most frequent pieces of each side). One projection "
                                       "for all frames, a PCA fitted on the snapshot rows at the start and at every "
                                       "validation, so that motion in the picture is motion in the table; each word's "
                                       "row before the first step is marked, with its path so far. A second panel "
                                       "shows word2vec trained on the same text (gensim). " + mean_note + " Needs "
                                       "matplotlib, and gensim for the word2vec panel (pip install 'nmt[plots,word2vec]').")
    a.add_argument("out", metavar="OUT.gif", help="the GIF to write")
    a.add_argument("--words", nargs="+", default=None, metavar="WORD",
                   help="the words to draw (at least 2; default: the 12 most frequent whole words)")
    a.add_argument("--fps", type=float, default=2.0, help="frames a second (default 2)")
    a.add_argument("--no-word2vec", action="store_true", help="leave out the word2vec panel (and gensim)")
    _add_table_options(a)
    _add_debug(a)

    a = actions.add_parser("compare-word2vec", help="the table next to word2vec trained on the same text (needs gensim)",
                           description="Train word2vec (gensim, skip-gram, the table's dimension) on this side of the "
                                       "run's training pairs, tokenized as the run (its prepared data), and compare it "
                                       "with the trained table (--checkpoint) and the initial one: neighbour overlap, "
                                       "rank correlation of cosines, an orthogonal Procrustes map, analogies "
                                       "(--analogies) and word classes (--classes). Every figure names the tokens it "
                                       "used. Needs gensim: pip install 'nmt[word2vec]'.")
    a.add_argument("--top", type=int, default=1000, metavar="N",
                   help="the N most frequent pieces are the queries and the Procrustes tokens (default 1000)")
    a.add_argument("-k", type=int, default=10, help="nearest neighbours compared (default 10)")
    a.add_argument("--sample", type=int, default=300, metavar="M",
                   help="the M most frequent pieces whose pairwise cosines are correlated (default 300)")
    a.add_argument("--epochs", type=int, default=10, help="word2vec epochs (default 10)")
    a.add_argument("--window", type=int, default=5, help="word2vec context window (default 5)")
    a.add_argument("--seed", type=int, default=1, help="word2vec seed (default 1; one worker thread, so reproducible)")
    a.add_argument("--analogies", metavar="FILE", default=None,
                   help="analogy queries, one 'a b c d' a line (a - b + c = d; word2vec's questions-words.txt "
                        "format); data/toy/analogies.en.txt and .fr.txt for the toy corpus")
    a.add_argument("--classes", metavar="FILE", default=None,
                   help="word classes, 'word<TAB>class[<TAB>group]' a line; data/toy/classes.en.tsv and .fr.tsv for the "
                        "toy corpus (class noun/adjective/verb, group the French gender)")
    a.add_argument("--json", dest="json_out", metavar="OUT", default=None, help="also write every figure to OUT")
    a.add_argument("--plot", dest="plot_out", metavar="OUT.png", default=None,
                   help="also draw --words in the three tables, 2-D PCA each (needs matplotlib)")
    a.add_argument("--words", nargs="+", default=None, metavar="WORD",
                   help="the words of --plot (default: the 20 most frequent whole words)")
    _add_table_options(a)
    _add_debug(a)


def cmd_train(args: argparse.Namespace) -> int:
    from nmt import train

    run_dir = train(args.config, overrides=args.overrides, resume=args.resume, overwrite=args.overwrite)
    print(f"run directory: {run_dir}", file=sys.stderr)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # a torchrun rank, its training done and saved
        # gloo's threads can outlive destroy_process_group and abort the interpreter's teardown
        # ("terminate called without an active exception", about 1 two-rank run in 40 here), which
        # torchrun reports as a failed run: with every file closed, leave without that teardown
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from nmt.config import load_config
    from nmt.prepare import prepare

    positive(args.workers, "--workers")
    cfg = load_config(args.config, args.overrides)
    say = lambda line: print(line, file=sys.stderr)  # noqa: E731 (progress on stderr, the result on stdout)
    result = prepare(cfg, args.config, workers=args.workers, force=args.force, say=say)
    m = result.dataset.manifest
    splits = ", ".join(f"{name} {info['pairs']:,}" for name, info in m["splits"].items())
    verb = f"prepared in {result.seconds:.1f}s" if result.prepared else "already prepared, nothing to do"
    print(f"{result.dataset.path}: {verb} (pairs: {splits}; vocab {m['vocab']['src']}/{m['vocab']['tgt']}; "
          f"{m['workers']} worker(s) made it)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from nmt.evaluate import evaluate_with
    from nmt.translate import ExportTranslator, load_translator
    from nmt_runtime.cli import print_scores

    runs = [args.run, *args.ensemble]
    translator = load_translator(runs, args.checkpoint, quantize=args.quantize)
    scores, out, options = evaluate_with(translator, args.src, args.ref, out=args.out, **decode_given(args))
    if isinstance(translator, ExportTranslator):
        models, settings = f"export: {translator.models_label()}", f"quantize: {translator.quantize}"
    else:
        models, settings = f"run: {' + '.join(map(str, runs))}", f"checkpoint: {args.checkpoint}  quantize: {args.quantize}"
    print_scores(scores, out, options, models, settings, translator.threads_label())
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from nmt.translate import load_translator
    from nmt_runtime.cli import translate_lines

    translator = load_translator([args.run, *args.ensemble], args.checkpoint, quantize=args.quantize)
    options = translator.options(**decode_given(args))
    plot = None
    if args.attention_plots:
        from nmt.plots import plot_attention, pyplot

        pyplot()  # fail now, with the install hint, rather than after translating
        plots = Path(args.attention_plots)
        try:
            plots.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise NmtError(f"{plots}: cannot create the folder ({e.strerror})") from None

        def plot(best, source: str, number: int) -> None:
            """The attention heatmap of one translation (nothing for an empty input line)."""
            if best.attention is not None and best.src_pieces:
                path = plots / f"{number:04d}.png"
                plot_attention(best.src_pieces, best.tgt_pieces, best.attention, path, f"{source}\n→ {best.text}")
                if interactive:
                    print(f"  attention: {path}", file=sys.stderr)

    interactive = args.interactive or (args.input is None and sys.stdin.isatty())
    return translate_lines(translator, options, args.input, args.output, interactive, plot)


def cmd_plot(args: argparse.Namespace) -> int:
    from nmt.plots import plot_curves, pyplot, read_metrics
    from nmt.rundir import RunDir

    run = RunDir(args.run).require()
    pyplot()  # the install hint before reading anything
    records = read_metrics(run.metrics)
    out = plot_curves(records, args.out or run.curves, title=str(run.path))
    n_val = sum(r["event"] == "validation" for r in records)
    print(f"wrote {out} ({len(records)} records, {n_val} validations, up to step {records[-1]['step']})")
    return 0


def cmd_average(args: argparse.Namespace) -> int:
    from nmt.average import average_run

    print(average_run(args.run, args.last, args.output, args.overwrite, dev=not args.no_dev))
    return 0


def cmd_embeddings(args: argparse.Namespace) -> int:
    from nmt.lab.report import Lab

    positive(getattr(args, "k", None), "-k")
    positive(getattr(args, "n", None), "-n")
    if args.action == "movie":  # from the snapshots, not a checkpoint's table
        from nmt.lab.movie import write_movie

        print(write_movie(args.run, args.out, args.words, args.side, not args.no_word2vec, args.fps))
        return 0
    lab = Lab(args.run, args.side, args.checkpoint)
    if args.action == "neighbors":
        print(lab.neighbors(args.word, args.k))
    elif args.action == "analogy":
        print(lab.analogy(args.a, args.b, args.c, args.k))
    elif args.action == "drift":
        print(lab.drift(args.start, args.end, args.n))
    elif args.action == "export":
        print(lab.export(args.format, args.out))
    elif args.action == "compare-word2vec":
        from nmt.lab.compare import Word2VecSettings

        for flag in ("top", "sample", "epochs", "window"):
            positive(getattr(args, flag), f"--{flag}")
        settings = Word2VecSettings(dim=lab.table.shape[1], window=args.window, epochs=args.epochs, seed=args.seed)
        print(lab.compare_word2vec(settings, args.top, args.k, args.sample, args.analogies, args.classes,
                                   args.json_out, args.plot_out, args.words))
    else:
        print(lab.plot(args.out, args.words))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from nmt_runtime.cli import check_serve_flags, serve_translator

    check_serve_flags(args)
    from nmt.translate import ExportTranslator, load_translator

    translator = load_translator([args.run, *args.ensemble], args.checkpoint, quantize=args.quantize)
    if isinstance(translator, ExportTranslator):
        from nmt.serve import export_app as make_app
    else:
        from nmt.serve import create_app as make_app
    return serve_translator(translator, args, make_app)


def cmd_export(args: argparse.Namespace) -> int:
    from nmt.export import export_run, summary

    print(summary(export_run(args.run, args.out, args.checkpoint, args.quantize, args.overwrite)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"train": cmd_train, "prepare": cmd_prepare, "evaluate": cmd_evaluate, "translate": cmd_translate,
                "plot": cmd_plot, "average": cmd_average, "embeddings": cmd_embeddings, "serve": cmd_serve,
                "export": cmd_export}
    rank = os.environ.get("RANK", "0") if os.environ.get("WORLD_SIZE", "1") != "1" else "0"

    def run() -> int:
        from nmt.torch_version import require_torch

        require_torch()
        return handlers[args.command](args)

    # rank 0's error echoed on another rank (NmtError.quiet) is not said twice;
    # KeyboardInterrupt: outside the training loop, which saves and says how to resume
    return guarded(run, args, f"nmt {args.command}", f"nmt {args.command}{'' if rank == '0' else f' [rank {rank}]'}")


if __name__ == "__main__":
    sys.exit(main())
