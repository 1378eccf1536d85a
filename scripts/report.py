"""Re-measure the README's demo figures on this machine, into one JSON file: `make report`.

    python scripts/report.py [--out docs/report/demo.json] [--set KEY.PATH=VALUE ...]
                             [--config configs/toy.yaml] [--run-dir runs/report/toy]
                             [--test-src data/toy/test.en] [--test-ref data/toy/test.fr]
                             [--sentences configs/toy_demo_sentences.txt]
    python scripts/report.py --check-readme [README.md]     (no training: README vs. --out)

It does what `make demo` does, through nmt's own API:

1. trains the config into its own run directory (`run.dir` = --run-dir, an earlier report's run
   there is replaced, as `nmt train --overwrite` does), with the --set overrides;
2. evaluates `best.pt` on the test files with beam 5 (`nmt.evaluate`: sacreBLEU BLEU and chrF
   with their signatures, as `nmt evaluate` prints them);
3. translates the demo's sample sentences with beam 5 (the file that `make demo` pipes into
   `nmt translate`);
4. writes the JSON (pretty-printed, sorted keys) and prints a summary and the README's lines.

The figures: steps, completed epochs and training time are the trainer's own counters in
`checkpoints/last.pt` (`elapsed_s`: the wall-clock time of the training loop, its validations
included, which `train.max_minutes` limits; the "end" record of metrics.jsonl has the step and the
reason it stopped but not the time, and train.log has no timestamps); tokens/s is the median of
the "train" records of metrics.jsonl, the first left out (it includes the warm-up of the first
steps). `git.commit` and `git.dirty` are read before training: the code that was measured.
`demo_figures` is true only for the demo itself: the default config, test set and sentences, and
no --set; any other report says so, so it cannot be taken for the README's figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = "configs/toy.yaml"
DEFAULT_RUN_DIR = "runs/report/toy"
DEFAULT_TEST_SRC = "data/toy/test.en"
DEFAULT_TEST_REF = "data/toy/test.fr"
DEMO_SENTENCES = "configs/toy_demo_sentences.txt"  # also what `make demo` translates
DEFAULT_OUT = "docs/report/demo.json"
BEAM = 5


def git(*args: str) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"report: error: git {' '.join(args)} failed in {ROOT}: "
                         f"{getattr(e, 'stderr', '') or e}".strip())
    return proc.stdout


def git_state(out: Path) -> dict[str, Any]:
    """HEAD and the uncommitted changes (file by file), leaving out the report's own output file."""
    mine = str(out.resolve().relative_to(ROOT)) if out.resolve().is_relative_to(ROOT) else None
    changes = [line for line in git("status", "--porcelain", "--untracked-files=all").splitlines()
               if line.strip() and line[3:] != mine]
    return {"commit": git("rev-parse", "HEAD").strip(), "dirty": bool(changes), "dirty_files": changes}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages: above the CPU count, other work shared the cores."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []


def machine(load_start: list[float]) -> dict[str, Any]:
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu_model": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_start": load_start,
        "load_average_end": load_average(),
    }


def training_figures(run_dir: Path) -> dict[str, Any]:
    """Steps, epochs, time and speed of a finished run, from its last.pt and metrics.jsonl."""
    from nmt.checkpoint import load_checkpoint
    from nmt.plots import read_metrics
    from nmt.rundir import RunDir

    run = RunDir(run_dir)
    trainer = load_checkpoint(run.checkpoint_path("last"))["trainer"]
    records = read_metrics(run.metrics)
    speeds = [r["tgt_tokens_per_s"] for r in records if r["event"] == "train"]
    ends = [r for r in records if r["event"] == "end"]
    return {
        "steps": trainer["step"],
        "epochs": trainer["stream"]["epoch"],  # completed epochs
        "seconds": round(trainer["elapsed_s"], 1),
        "minutes": round(trainer["elapsed_s"] / 60, 2),
        "end_reason": ends[-1]["reason"] if ends else None,
        "train_records": len(speeds),
        "tgt_tokens_per_s_median": statistics.median(speeds[1:] or speeds) if speeds else None,
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from nmt import Translator, train
    from nmt.corpus import read_lines
    from nmt.evaluate import evaluate

    t0 = time.time()
    state = git_state(Path(args.out))  # before anything runs: the code that is measured
    load_start = load_average()
    date = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    sentences = read_lines(args.sentences)
    run_dir = train(args.config, overrides=[f"run.dir={args.run_dir}", *args.overrides], overwrite=True)
    train_figures = training_figures(run_dir)
    scores, hyps, _ = evaluate(run_dir, args.test_src, args.test_ref, beam=BEAM)
    outputs = Translator.load(run_dir).translate(sentences, beam=BEAM)
    wall = time.time() - t0
    demo = (not args.overrides and args.config == DEFAULT_CONFIG and args.test_src == DEFAULT_TEST_SRC
            and args.test_ref == DEFAULT_TEST_REF and args.sentences == DEMO_SENTENCES)
    return {
        "command": shlex.join(["python", "scripts/report.py", *args.argv]),
        "date": date,
        "git": state,
        "machine": machine(load_start),
        "config": args.config,
        "overrides": args.overrides,
        "demo_figures": demo,
        "run_dir": str(run_dir),
        "train": train_figures,
        "test": {
            "src": args.test_src,
            "ref": args.test_ref,
            "beam": BEAM,
            "sentences": scores.n_sentences,
            "bleu": scores.bleu,
            "bleu_text": scores.bleu_text,
            "bleu_signature": scores.bleu_signature,
            "chrf": scores.chrf,
            "chrf_text": scores.chrf_text,
            "chrf_signature": scores.chrf_signature,
            "hypotheses": str(hyps),
        },
        "samples": [{"source": s, "translation": t} for s, t in zip(sentences, outputs)],
        "wall_seconds": round(wall, 1),
        "wall_minutes": round(wall / 60, 2),
    }


# ---------------------------------------------------------------- the README's wording of a report


def tokens_per_s(report: dict[str, Any]) -> str:
    """The speed as the README writes it: to the nearest hundred, e.g. "10,800"."""
    return f"{round(report['train']['tgt_tokens_per_s_median'], -2):,.0f}"


def output_block(report: dict[str, Any]) -> str:
    """What `make demo` prints, as the README shows it: BLEU and chrF with their signatures, then
    the sample translations (`source  =>  translation`)."""
    t = report["test"]
    lines = [t["bleu_text"], f"  signature: {t['bleu_signature']}", t["chrf_text"], f"  signature: {t['chrf_signature']}"]
    lines += [f"{s['source']}  =>  {s['translation']}" for s in report["samples"]]
    return "\n".join(lines)


def readme_phrases(report: dict[str, Any]) -> list[str]:
    """The phrases the README states about the demo (compared with whitespace collapsed, so that
    the README may wrap them across lines): the commit and the CPU that printed the figures, the
    training, and the scores."""
    tr, t, g, m = report["train"], report["test"], report["git"], report["machine"]
    dirty = " (with uncommitted changes)" if g["dirty"] else ""
    return [
        f"measured by `make report` at commit `{g['commit'][:7]}`{dirty} on a {m['cpu_count']}-core {m['cpu_model']}",
        f"training {tr['epochs']} epochs ({tr['steps']:,} steps) in {minutes(report)} minutes at ~{tokens_per_s(report)} "
        "target tokens/s",
        f"{report['wall_seconds'] / 60:.1f} minutes in all",
        f"test BLEU {t['bleu']:.2f}, chrF {t['chrf']:.2f} (beam {t['beam']})",
    ]


def minutes(report: dict[str, Any]) -> str:
    """The training time as the README writes it, in minutes to one decimal."""
    return f"{report['train']['seconds'] / 60:.1f}"


def results_row_cells(report: dict[str, Any]) -> list[str]:
    """What the README's results table holds in the demo config's row: the training minutes, BLEU
    and chrF as cells of their own, and the commit and CPU in one cell (e.g. "`4b9f7f9`, AMD EPYC")."""
    t = report["test"]
    return [minutes(report), f"{t['bleu']:.2f}", f"{t['chrf']:.2f}",
            f"`{report['git']['commit'][:7]}`, {report['machine']['cpu_model']}"]


def results_row_problems(readme: str, report: dict[str, Any]) -> list[str]:
    """What the row of the report's config in the README's results table (the line that starts
    with "| `CONFIG` |") does not state as the report says it."""
    start = f"| `{report['config']}` |"
    rows = [line for line in readme.splitlines() if line.startswith(start)]
    if len(rows) != 1:
        return [f"README has {len(rows)} results rows starting {start!r}; it should have one"]
    cells = [c.strip() for c in rows[0].strip().strip("|").split("|")]
    want = results_row_cells(report)
    missing = [w for w in want[:3] if w not in cells]
    if not any(c.startswith(want[3]) for c in cells):
        missing.append(want[3])
    return [f"README's results row of {report['config']} does not hold {w!r}: {rows[0]}" for w in missing]


def readme_problems(readme: str, report: dict[str, Any]) -> list[str]:
    """What the README does not state as the report says it (empty: they agree)."""
    problems = []
    if not report["demo_figures"]:
        problems.append(f"the report is not of the demo (overrides {report['overrides']}, config "
                        f"{report['config']}): it cannot be the README's figures")
    flat = " ".join(readme.split())
    problems += [f"README does not say: {p}" for p in readme_phrases(report) if " ".join(p.split()) not in flat]
    problems += results_row_problems(readme, report)
    block = output_block(report)
    rstripped = "\n".join(line.rstrip() for line in readme.splitlines())  # an editor may drop trailing blanks
    if "```\n" + "\n".join(line.rstrip() for line in block.splitlines()) + "\n```" not in rstripped:
        problems.append(f"README does not show the demo's output block:\n{block}")
    return problems


def summary(report: dict[str, Any], out: Path) -> str:
    tr, g = report["train"], report["git"]
    state = f"{len(g['dirty_files'])} uncommitted change(s)" if g["dirty"] else "clean tree"
    lines = [
        f"report: {out} (commit {g['commit'][:12]}, {state}; wall time {report['wall_minutes']:.2f} min)",
        f"training: {tr['steps']:,} steps, {tr['epochs']} epochs, {tr['minutes']:.2f} min, median "
        f"{tr['tgt_tokens_per_s_median']:,.0f} target tokens/s ({tr['end_reason']})",
        output_block(report),
    ]
    m = report["machine"]
    busiest = max(m["load_average_start"][:1] + m["load_average_end"][:1], default=0.0)
    if busiest > m["cpus_usable"] + 0.5:
        lines.append(f"note: the machine was busy (1-minute load average up to {busiest:.2f} on {m['cpus_usable']} "
                     "CPUs): the timings, and what max_minutes let the run train, are not a quiet machine's")
    if report["demo_figures"]:
        lines += ["README lines:", *readme_phrases(report),
                  "README results row cells: " + " | ".join(results_row_cells(report))]
    else:
        lines.append(f"not the demo's figures (overrides: {report['overrides']}, config: {report['config']})")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Re-measure the README's demo figures (make report) into a JSON file.",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--out", default=DEFAULT_OUT, help=f"the JSON file to write (default {DEFAULT_OUT})")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="a config override for training, as nmt train --set (repeatable); recorded, and the "
                        "report is then not the demo's")
    p.add_argument("--config", default=DEFAULT_CONFIG, help=f"training config (default {DEFAULT_CONFIG})")
    p.add_argument("--run-dir", default=DEFAULT_RUN_DIR,
                   help=f"the report's own run directory, replaced on each report (default {DEFAULT_RUN_DIR})")
    p.add_argument("--test-src", default=DEFAULT_TEST_SRC, help=f"test sources (default {DEFAULT_TEST_SRC})")
    p.add_argument("--test-ref", default=DEFAULT_TEST_REF, help=f"test references (default {DEFAULT_TEST_REF})")
    p.add_argument("--sentences", default=DEMO_SENTENCES,
                   help=f"the sample sentences, one a line (default {DEMO_SENTENCES}, as make demo)")
    p.add_argument("--check-readme", nargs="?", const="README.md", default=None, metavar="README",
                   help="train nothing: check that README (default README.md) states the figures of --out")
    argv = sys.argv[1:] if argv is None else argv
    args = p.parse_args(argv)
    args.argv = argv
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    if args.check_readme:
        report = json.loads(out.read_text(encoding="utf-8"))
        problems = readme_problems(Path(args.check_readme).read_text(encoding="utf-8"), report)
        print("\n".join(problems) or f"{args.check_readme} states the figures of {out}")
        return 1 if problems else 0
    from nmt.errors import NmtError

    try:
        report = measure(args)
    except NmtError as e:
        print(f"report: error: {e}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    print(summary(report, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
