"""Decoding speed of trained runs, side by side across code trees (before and after a change).

    python scripts/decode_bench.py RUN [RUN ...] [--trees TREE [TREE ...]] [--beams 1 5]
                                   [--rounds 3] [--threads 2] [--sentences N] [--src FILE]

For each round, run, beam and tree, in turn (so that a busy machine slows every tree alike), a fresh
`python` with PYTHONPATH=TREE loads the run with `nmt.Translator.load` (an API every tree has),
translates the first 16 sentences once untimed, then times `Translator.translate(sources, beam=B)`
over the source side of the run's `data.test` (or --src), in the run's `decode.batch_size`. Beam 1 is
greedy search. Model loading is not timed.

Printed: per run, beam and tree, the median sentences/s over the rounds (and each round), the
commit of each tree, and whether the trees' translations are identical (they should be, unless
the change meant to change them). Default --trees: this checkout alone.

Example (issue 29, before and after the one decoding path):

    git worktree add /tmp/before 7d9f531
    python scripts/decode_bench.py runs/toy runs/multi30k_de_en --trees /tmp/before .
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import hashlib, json, sys, time
import torch
args = json.loads(sys.argv[1])
torch.set_num_threads(args["threads"])
from nmt import Translator
from nmt.corpus import load_corpus, read_lines
t = Translator.load(args["run"])
if args["src"]:
    src = read_lines(args["src"])
else:
    data = t.cfg.data
    src = load_corpus(data.test, data, "test").src
if args["sentences"]:
    src = src[: args["sentences"]]
t.translate(src[:16], beam=args["beam"])  # warm-up: first calls allocate
t0 = time.perf_counter()
out = t.translate(src, beam=args["beam"])
seconds = time.perf_counter() - t0
digest = hashlib.sha256("\n".join(out).encode()).hexdigest()
print(json.dumps({"seconds": seconds, "sentences": len(src), "sha256": digest}))
"""


def commit(tree: Path) -> str:
    proc = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (proc.stdout.strip() or "?") + ("+changes" if dirty else "")


def measure(tree: Path, run: str, beam: int, args: argparse.Namespace) -> dict:
    payload = json.dumps({"run": run, "beam": beam, "threads": args.threads, "sentences": args.sentences,
                          "src": args.src})
    proc = subprocess.run([sys.executable, "-c", CHILD, payload], capture_output=True, text=True,
                          env={"PYTHONPATH": os.pathsep.join([str(tree.resolve()), str(tree.resolve() / "runtime")]),
                               "PATH": "/usr/bin:/bin"})
    if proc.returncode != 0:
        sys.exit(f"decode_bench: error: {tree} on {run} beam {beam} failed:\n{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--trees", nargs="+", type=Path, default=[Path(__file__).resolve().parent.parent],
                   help="checkouts of nmt to compare (default: this one)")
    p.add_argument("--beams", nargs="+", type=int, default=[1, 5], help="beam sizes (default 1 5; 1 = greedy)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (default 3); the median is reported")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--sentences", type=int, default=0, help="decode the first N sentences (default: all)")
    p.add_argument("--src", default=None, help="source sentences to decode instead of the run's data.test")
    args = p.parse_args(argv)
    results: dict[tuple[str, int, Path], list[dict]] = {}
    for _ in range(args.rounds):
        for run in args.runs:
            for beam in args.beams:
                for tree in args.trees:
                    results.setdefault((run, beam, tree), []).append(measure(tree, run, beam, args))
    commits = {tree: commit(tree) for tree in args.trees}
    print(f"threads {args.threads}, {args.rounds} rounds, trees in turn; sentences/s, median (each round)")
    for run in args.runs:
        for beam in args.beams:
            digests = set()
            for tree in args.trees:
                rounds = results[(run, beam, tree)]
                rates = [r["sentences"] / r["seconds"] for r in rounds]
                digests |= {r["sha256"] for r in rounds}
                each = ", ".join(f"{x:.1f}" for x in rates)
                print(f"{run}  beam {beam}  {commits[tree]:<16} {statistics.median(rates):8.1f}  ({each})"
                      f"  {rounds[0]['sentences']} sentences")
            same = "identical" if len(digests) == 1 else "DIFFER"
            print(f"{run}  beam {beam}  translations across trees and rounds: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
