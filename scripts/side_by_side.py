"""nmt against Joey NMT 2.3.0 on Multi30k de→en, one after the other on this machine, alternating.

    python scripts/side_by_side.py [--pairs 3] [--joey-minutes 3] [--steps 60]
                                   [--decode-minutes 10] [--work /tmp/sbs] [--json OUT]

Training speed, `--pairs` times (Joey first in odd pairs, nmt first in even ones, so that a
drifting machine favours neither):
- Joey: `bash ../shared/bench/joey_multi30k.sh WORK/joeyN MIN` (sentencepiece 8000 a side, the
  GRU architecture of configs/bench_multi30k.yaml with Joey's input feeding, 64 sentences a batch,
  `--joey-minutes` of training); its figure is the median "Tokens per Sec" of its training log
  (target tokens, validation time left out);
- nmt: `python scripts/benchmark.py configs/bench_multi30k.yaml --steps N --threads 2` in four
  variants (VARIANTS): as the config is (fp32, no input feeding), with `--set
  model.input_feeding=true` (Joey's recurrence), and both again with `--precision bf16` (autocast:
  the matmuls in bf16, which pays where the CPU has bf16 units), and as the config is with
  `--precision auto` (what `train.precision: auto` picks on this machine, measured afresh; the
  pick is printed); its figure is target tokens/s over the timed steps. The first nmt run of the whole script also gets `--matmul`, for torch.matmul's
  fp32 and bf16 GFLOP/s on this machine.

Decoding, once, if `--decode-minutes` > 0: both sides trained for the same budget, then beam 5 on
test2016 with start-up counted on both sides (process start to the hypotheses written):
- Joey: `joey_multi30k.sh WORK/joey_decode MIN`; its report's decode wall time of `best.ckpt`;
- nmt: `nmt train configs/bench_multi30k.yaml --set model.input_feeding=true --set
  train.max_minutes=MIN` (the same architecture), then `nmt evaluate RUN --beam 5` timed as a
  process, three times, with and without `--quantize int8` alternating; the median of each.

It prints a table and writes the JSON (default WORK/side_by_side.json): the commit, the machine,
every command and figure. Run it on an otherwise idle machine. How long: about 9 minutes a pair
with the defaults (--steps 60), plus twice `--decode-minutes` and a few minutes for the decoding.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import report  # scripts/report.py: the commit and machine facts, as the other reports record them

ROOT = Path(__file__).resolve().parent.parent
JOEY = ROOT.parent / "shared" / "bench" / "joey_multi30k.sh"
CONFIG = "configs/bench_multi30k.yaml"
FEEDING = "model.input_feeding=true"
# name → (--set overrides, --precision)
VARIANTS: dict[str, tuple[list[str], str]] = {
    "nmt": ([], "fp32"),
    "nmt_feeding": ([FEEDING], "fp32"),
    "nmt_bf16": ([], "bf16"),
    "nmt_bf16_feeding": ([FEEDING], "bf16"),
    "nmt_auto": ([], "auto"),
}


def run(cmd: list[str], log: Path) -> float:
    """Run `cmd` from the repository root, its output into `log`; the wall seconds. A failure
    stops the script with the log's tail."""
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    with log.open("w", encoding="utf-8") as f:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "".join(log.read_text(encoding="utf-8", errors="replace").splitlines(True)[-15:])
        raise SystemExit(f"side_by_side: error: exit {proc.returncode} from {' '.join(cmd)}; {log}:\n{tail}")
    return seconds


def joey(work: Path, name: str, minutes: float) -> dict[str, Any]:
    out = work / name
    if out.exists():
        shutil.rmtree(out)  # made by this script in an earlier run
    run(["bash", str(JOEY), str(out), str(minutes)], work / f"{name}.log")
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def nmt_bench(work: Path, name: str, steps: int, overrides: list[str], precision: str, matmul: bool) -> dict[str, Any]:
    out = work / f"{name}.json"
    cmd = [sys.executable, "scripts/benchmark.py", CONFIG, "--steps", str(steps), "--threads", "2",
           "--decode-sentences", "1", "--precision", precision, "--json", str(out)]
    cmd += [a for o in overrides for a in ("--set", o)] + (["--matmul"] if matmul else [])
    run(cmd, work / f"{name}.log")
    result = json.loads(out.read_text(encoding="utf-8"))
    if matmul:
        lines = (work / f"{name}.log").read_text(encoding="utf-8").splitlines()
        result["matmul"] = [line for line in lines if line.startswith("torch.matmul")]
    return result


def speed_pairs(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    pairs = []
    for i in range(1, args.pairs + 1):
        pair: dict[str, Any] = {"pair": i, "order": "joey first" if i % 2 else "nmt first"}

        def nmt_side() -> None:
            for name, (overrides, precision) in VARIANTS.items():
                matmul = i == 1 and name == "nmt"
                pair[name] = nmt_bench(work, f"{name}{i}", args.steps, overrides, precision, matmul)

        def joey_side() -> None:
            pair["joey"] = joey(work, f"joey{i}", args.joey_minutes)

        for side in ((joey_side, nmt_side) if i % 2 else (nmt_side, joey_side)):
            side()
        j = pair["joey"]["tokens_per_sec_joey_median"]
        pair["ratios"] = {name: pair[name]["train_tgt_tokens_per_s"] / j for name in VARIANTS}
        print(f"pair {i}: Joey {j:,.0f} target tokens/s; " + ", ".join(
            f"{name} {pair[name]['train_tgt_tokens_per_s']:,.0f} ({r:.2f}×)" for name, r in pair["ratios"].items())
            + f"; auto picked {pair['nmt_auto']['precision']} ({pair['nmt_auto']['auto']['why']})", flush=True)
        pairs.append(pair)
    return pairs


def bleu_of(log: Path) -> float:
    match = re.search(r"^BLEU = ([\d.]+)", log.read_text(encoding="utf-8"), re.M)
    if not match:
        raise SystemExit(f"side_by_side: error: no BLEU line in {log}")
    return float(match.group(1))


def decoding(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    minutes = args.decode_minutes
    joey_report = joey(work, "joey_decode", minutes)
    joey_test = next(t for t in joey_report["tests"] if t["label"] == "best")
    run_dir = work / "nmt_decode"
    run([sys.executable, "-m", "nmt", "train", CONFIG, "--overwrite", "--set", f"run.dir={run_dir}",
         "--set", FEEDING, "--set", f"train.max_minutes={minutes}"], work / "nmt_decode_train.log")
    times: dict[str, list[float]] = {"none": [], "int8": []}
    bleu: dict[str, float] = {}
    for i in range(3):
        for quantize in ("none", "int8") if i % 2 == 0 else ("int8", "none"):
            log = work / f"nmt_decode_{quantize}_{i}.log"
            times[quantize].append(run([sys.executable, "-m", "nmt", "evaluate", str(run_dir), "--beam", "5",
                                        "--quantize", quantize], log))
            bleu[quantize] = bleu_of(log)
    n = 1000  # test2016
    return {
        "minutes": minutes,
        "joey": {"decode_wall_s": joey_test["decode_wall_s"], "bleu": joey_test["sacrebleu"], "steps": joey_report["steps"]},
        "nmt": {q: {"decode_wall_s": times[q], "median_s": statistics.median(times[q]), "bleu": bleu[q],
                    "sents_per_s": n / statistics.median(times[q])} for q in times},
        "joey_sents_per_s": n / joey_test["decode_wall_s"],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=3, help="alternating speed pairs (default 3)")
    p.add_argument("--joey-minutes", type=float, default=3, help="Joey's training budget in a speed pair (default 3)")
    p.add_argument("--steps", type=int, default=60, help="nmt benchmark's timed steps (default 60)")
    p.add_argument("--decode-minutes", type=float, default=10,
                   help="training budget of each side for the decoding comparison; 0 skips it (default 10)")
    p.add_argument("--work", type=Path, default=Path("/tmp/sbs"), help="where the runs go (default /tmp/sbs)")
    p.add_argument("--json", type=Path, default=None, help="the results (default WORK/side_by_side.json)")
    args = p.parse_args(argv)
    if args.pairs < 0 or args.joey_minutes <= 0 or args.steps < 1 or args.decode_minutes < 0:
        p.error("--pairs must be >= 0, --joey-minutes > 0, --steps >= 1, --decode-minutes >= 0")
    if not JOEY.is_file():
        p.error(f"{JOEY} is missing: the Joey NMT benchmark lives in ../shared/bench")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    out = (args.json or work / "side_by_side.json").resolve()
    load_start = report.load_average()
    results: dict[str, Any] = {"script": "scripts/side_by_side.py", "argv": sys.argv[1:], "git": report.git_state(out),
                               "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    results["pairs"] = speed_pairs(args, work)
    if args.decode_minutes:
        results["decoding"] = decoding(args, work)
    results["machine"] = report.machine(load_start)
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print()
    print("| pair | order | Joey target tokens/s | " + " | ".join(f"{name} | ratio" for name in VARIANTS) + " |")
    print("|---:|---|---:|" + "---:|---:|" * len(VARIANTS))
    for p in results["pairs"]:
        print(f"| {p['pair']} | {p['order']} | {p['joey']['tokens_per_sec_joey_median']:,.0f} | " + " | ".join(
            f"{p[name]['train_tgt_tokens_per_s']:,.0f} | {p['ratios'][name]:.2f}" for name in VARIANTS) + " |")
    for p in results["pairs"]:
        print(f"pair {p['pair']}: auto picked {p['nmt_auto']['precision']} ({p['nmt_auto']['auto']['why']})")
    for p in results["pairs"][:1]:
        for line in p["nmt"].get("matmul", []):
            print(line)
        print("nmt step GFLOP/s (analytical): " + ", ".join(
            f"{name} {p[name]['train_gflops_per_s']:.1f}" for name in VARIANTS))
    if "decoding" in results:
        d = results["decoding"]
        print(f"beam 5 on test2016 after {d['minutes']} training minutes each, start-up included: "
              f"Joey {d['joey']['decode_wall_s']:.1f} s ({d['joey_sents_per_s']:.1f} sents/s, BLEU {d['joey']['bleu']}); "
              + "; ".join(f"nmt {q} {v['median_s']:.1f} s ({v['sents_per_s']:.1f} sents/s, BLEU {v['bleu']})"
                          for q, v in d["nmt"].items()))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
