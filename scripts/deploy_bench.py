"""A trained run against its ONNX export: equality, footprint, start-up and speed (issue 31's figures).

    python scripts/deploy_bench.py RUN --src SRC --ref REF [--threads 1 2] [--rounds 2]
                                   [--work /tmp/deploy_bench] [--footprint] [--json OUT]

1. Exports RUN twice with `nmt export` (fp32 and `--quantize int8`) into WORK.
2. Equality, in this process: the run's torch model and its fp32 export translate SRC greedily and
   with beam 5 (`Translator` and `ExportTranslator`, the same search); the share of identical
   translations, both BLEU scores, and for every sentence that differs the two hypotheses with the
   torch model's score of each (a gap of ~1e-5 is a tie broken by float rounding).
3. Speed: beam-5 sentences/s over SRC (model loading not counted) and BLEU, for torch fp32, torch
   `--quantize int8`, ONNX fp32 and ONNX int8, at each of `--threads`, each in a fresh process,
   `--rounds` times in alternating order; the median of the rounds.
4. Start-up: the wall time from process start to the first translation printed, for `nmt translate
   RUN` and `nmt-runtime translate EXPORT` with one sentence piped in; three times each, the median.
   With `--footprint`, nmt-runtime's runs in the torch-free environment of 5.
5. With `--footprint`: two fresh virtual environments in WORK, one with `pip install ./runtime` only,
   one with `pip install -c constraints.txt .` (nmt and the CPU torch wheel): their size on disk.

It prints a table and writes the JSON (default WORK/deploy_bench.json): the commit, the machine,
every command and figure. Run it on an otherwise idle machine. `--equality-only`: steps 1 and 2.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # report.py beside it, also when imported by a test
import report  # noqa: E402  scripts/report.py: the commit and machine facts, as the other reports record them

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("torch_fp32", "torch_int8", "onnx_fp32", "onnx_int8")
PROBE = "ein mann fährt fahrrad ."


def run(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def load(variant: str, run_dir: str, work: Path, threads: int) -> Any:
    """The translator of a variant, decoding on `threads` threads."""
    if variant.startswith("torch"):
        import torch

        from nmt.translate import Translator

        torch.set_num_threads(threads)
        return Translator.load(run_dir, quantize=variant.split("_")[1].replace("fp32", "none"))
    from nmt_runtime.translator import ExportTranslator

    return ExportTranslator.load(work / variant, threads=threads)


def one(args: argparse.Namespace) -> None:
    """--one VARIANT: beam-5 speed and BLEU of one variant, as one JSON line (run in a fresh process)."""
    from nmt_runtime.files import read_lines
    from nmt_runtime.scoring import score

    translator = load(args.one, args.run, Path(args.work), args.one_threads)
    src, ref = read_lines(args.src), read_lines(args.ref)
    translator.translate(src[:8], beam=5)  # warm-up
    t0 = time.perf_counter()
    hyps = translator.translate(src, beam=5)
    seconds = time.perf_counter() - t0
    print(json.dumps({"sentences_per_s": len(src) / seconds, "seconds": seconds, "bleu": score(hyps, ref).bleu}))


def export(run_dir: str, work: Path) -> dict[str, Any]:
    from nmt.export import export_run

    out = {}
    for variant, quantize in (("onnx_fp32", "none"), ("onnx_int8", "int8")):
        t0 = time.perf_counter()
        export_run(run_dir, work / variant, quantize=quantize, overwrite=True)
        size = sum(p.stat().st_size for p in (work / variant).iterdir())
        out[variant] = {"seconds": round(time.perf_counter() - t0, 1), "bytes": size,
                        "command": f"nmt export {run_dir} {work / variant}" + (" --quantize int8" if quantize == "int8" else "")}
    return out


def equality(run_dir: str, work: Path, src: list[str], ref: list[str]) -> dict[str, Any]:
    """Torch's and the export's translations of src, greedy and beam 5."""
    import torch

    from nmt.translate import Translator
    from nmt_runtime.scoring import score
    from nmt_runtime.translator import ExportTranslator

    torch.set_num_threads(2)
    ours, theirs = Translator.load(run_dir), ExportTranslator.load(work / "onnx_fp32", threads=2)
    out: dict[str, Any] = {}
    for name, given in (("greedy", {"strategy": "greedy"}), ("beam5", {"beam": 5})):
        a = ours.translate_full(src, **given)
        b = theirs.translate_full(src, **given)
        differ = [i for i, (x, y) in enumerate(zip(a, b)) if x[0].text != y[0].text]
        out[name] = {
            "sentences": len(src), "identical": len(src) - len(differ),
            "identical_pct": 100 * (len(src) - len(differ)) / len(src),
            "bleu_torch": score([x[0].text for x in a], ref).bleu, "bleu_onnx": score([y[0].text for y in b], ref).bleu,
            "max_score_gap": max((abs(x[0].score - y[0].score) for x, y in zip(a, b)), default=0.0),
            "differences": [{"line": i + 1, "source": src[i], "torch": a[i][0].text, "onnx": b[i][0].text,
                             "torch_score": a[i][0].score, "onnx_score": b[i][0].score} for i in differ],
        }
    return out


def speed(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    figures: dict[str, dict[str, list[dict[str, float]]]] = {v: {str(t): [] for t in args.threads} for v in VARIANTS}
    for r in range(args.rounds):
        order = VARIANTS if r % 2 == 0 else tuple(reversed(VARIANTS))
        for threads in args.threads:
            for variant in order:
                cmd = [sys.executable, __file__, args.run, "--src", args.src, "--ref", args.ref, "--work", str(work),
                       "--one", variant, "--one-threads", str(threads)]
                line = run(cmd, cwd=ROOT).stdout.strip().splitlines()[-1]
                figures[variant][str(threads)].append(json.loads(line))
                print(f"  round {r + 1} {variant} {threads} thread(s): {line}", flush=True)
    return {v: {t: {"sentences_per_s": statistics.median(x["sentences_per_s"] for x in runs),
                    "bleu": runs[0]["bleu"], "rounds": runs} for t, runs in by_t.items()}
            for v, by_t in figures.items()}


def startup(run_dir: str, work: Path, runtime_python: str) -> dict[str, Any]:
    """Process start to the first translation printed, three times each, the median."""
    cmds = {"nmt translate RUN": [sys.executable, "-m", "nmt", "translate", run_dir],
            "nmt-runtime translate EXPORT": [runtime_python, "-m", "nmt_runtime.cli", "translate",
                                             str(work / "onnx_fp32")]}
    out = {}
    for _ in range(3):
        for name, cmd in cmds.items():
            t0 = time.perf_counter()
            proc = run(cmd, input=PROBE + "\n", cwd=work)
            out.setdefault(name, {"command": " ".join(cmd), "seconds": [], "output": proc.stdout.strip()})
            out[name]["seconds"].append(time.perf_counter() - t0)
    for v in out.values():
        v["median_s"] = statistics.median(v["seconds"])
    return out


def du(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def footprint(work: Path) -> dict[str, Any]:
    """Fresh virtual environments: the runtime alone, and nmt with the CPU torch wheel."""
    out = {}
    for name, pip_args in (("nmt-runtime", [str(ROOT / "runtime")]),
                           ("nmt + torch (CPU)", ["-c", str(ROOT / "constraints.txt"), str(ROOT)])):
        venv = work / ("venv-runtime" if name == "nmt-runtime" else "venv-nmt")
        shutil.rmtree(venv, ignore_errors=True)
        run([sys.executable, "-m", "venv", str(venv)])
        t0 = time.perf_counter()
        run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", *pip_args])
        has_torch = subprocess.run([str(venv / "bin" / "python"), "-c", "import torch"], capture_output=True).returncode == 0
        out[name] = {"bytes": du(venv), "install_s": round(time.perf_counter() - t0, 1), "torch_importable": has_torch,
                     "command": f"python -m venv V && V/bin/pip install {' '.join(pip_args)}", "python": str(venv / "bin" / "python")}
    return out


def table(result: dict[str, Any]) -> str:
    lines = []
    for name, e in result["equality"].items():
        lines.append(f"equality {name}: {e['identical']}/{e['sentences']} identical ({e['identical_pct']:.2f}%), "
                     f"BLEU torch {e['bleu_torch']:.2f} onnx {e['bleu_onnx']:.2f}, max score gap {e['max_score_gap']:.2e}")
    if "speed" not in result:
        return "\n".join(lines)
    threads = list(next(iter(result["speed"].values())))
    lines.append("| | " + " | ".join(f"beam 5, {t} thread(s), sentences/s" for t in threads) + " | BLEU |")
    lines.append("|---|" + "---:|" * (len(threads) + 1))
    for v, by_t in result["speed"].items():
        lines.append(f"| {v} | " + " | ".join(f"{by_t[t]['sentences_per_s']:.1f}" for t in threads)
                     + f" | {by_t[threads[0]]['bleu']:.2f} |")
    for name, s in result["startup"].items():
        lines.append(f"start to first translation, {name}: {s['median_s']:.2f} s")
    for name, f in result.get("footprint", {}).items():
        lines.append(f"environment {name}: {f['bytes'] / 2**20:,.0f} MiB (torch importable: {f['torch_importable']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run")
    p.add_argument("--src", required=True)
    p.add_argument("--ref", required=True)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--work", default="/tmp/deploy_bench")
    p.add_argument("--footprint", action="store_true", help="also build the two environments and measure them")
    p.add_argument("--equality-only", action="store_true", help="export and compare translations only (no speed)")
    p.add_argument("--json", default=None)
    p.add_argument("--one", choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--one-threads", type=int, default=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        one(args)
        return 0
    from nmt_runtime.files import read_lines

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    load_start = report.load_average()
    result: dict[str, Any] = {"command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
                              "git": report.git_state(work), "run": args.run, "src": args.src}
    print("exporting", flush=True)
    result["export"] = export(args.run, work)
    print("equality", flush=True)
    result["equality"] = equality(args.run, work, read_lines(args.src), read_lines(args.ref))
    if args.equality_only:
        args.footprint, args.threads, args.rounds = False, [], 0
    if args.footprint:
        print("footprint", flush=True)
        result["footprint"] = footprint(work)
    runtime_python = result.get("footprint", {}).get("nmt-runtime", {}).get("python", sys.executable)
    if not args.equality_only:
        print("start-up", flush=True)
        result["startup"] = startup(args.run, work, runtime_python)
        print("speed", flush=True)
        result["speed"] = speed(args, work)
    result["machine"] = report.machine(load_start)
    out = Path(args.json) if args.json else work / "deploy_bench.json"
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table(result))
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
