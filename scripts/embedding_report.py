#!/usr/bin/env python3
"""What did a run's embedding tables learn? A Markdown report with the numbers of docs/embeddings.md.

    python scripts/embedding_report.py runs/toy --toy
    python scripts/embedding_report.py runs/multi30k_de_en --words Mann Frau Hund rot läuft

Sections:
  1. drift per validation, from the run's metrics.jsonl (logged by the trainer);
  2. nearest neighbours of --words (source side) before training (embeddings_init.pt) and after
     (the checkpoint);
  3. with --toy (a run on data/toy): analogy accuracy over every ordered couple of the toy
     corpus's gendered pairs, e.g. king − man + woman → queen, on both sides, top-1 and top-5,
     before and after; and how often a noun's 5 nearest neighbours are nouns.
Words are looked up as in `nmt embeddings` (a word split into pieces gets the mean of their rows);
an analogy whose expected answer is not one piece cannot be hit and is counted as a miss.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nmt.errors import NmtError  # noqa: E402
from nmt.lab.compare import single_piece  # noqa: E402
from nmt.lab.stats import analogy, neighbors, word_vector  # noqa: E402
from nmt.lab.tables import load_tables  # noqa: E402
from nmt.tokenizer import WORD_MARK, Tokenizer  # noqa: E402


def toy_grammar():
    spec = importlib.util.spec_from_file_location("make_toy_data", ROOT / "scripts" / "make_toy_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_toy_data"] = module
    spec.loader.exec_module(module)
    return module


def drift_table(run: Path) -> str:
    rows = ["| step | dev BLEU | src mean L2 | src rows moved | src mean cos | tgt mean L2 | tgt rows moved | tgt mean cos |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        if r.get("event") != "validation" or "embedding_drift" not in r:
            continue
        s, t = r["embedding_drift"]["src"], r["embedding_drift"]["tgt"]
        rows.append(f"| {r['step']} | {r['dev_bleu']:.1f} | {s['mean_l2']:.3f} | {100 * s['frac_moved']:.0f}% | "
                    f"{s['mean_cos']:.3f} | {t['mean_l2']:.3f} | {100 * t['frac_moved']:.0f}% | {t['mean_cos']:.3f} |")
    return "\n".join(rows)


def plot_drift(run: Path, out: Path) -> None:
    """Mean L2 drift of both tables and dev BLEU against the training step."""
    from nmt.plots import pyplot

    plt = pyplot()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    records = [r for r in records if r.get("event") == "validation" and "embedding_drift" in r]
    steps = [r["step"] for r in records]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for side, style in (("src", "-o"), ("tgt", "-s")):
        ax.plot(steps, [r["embedding_drift"][side]["mean_l2"] for r in records], style, label=f"{side} mean L2 from init")
    ax.set_xlabel("training step")
    ax.set_ylabel("mean L2 distance of rows from init")
    bleu = ax.twinx()
    bleu.plot(steps, [r["dev_bleu"] for r in records], "--", color="gray", label="dev BLEU (greedy)")
    bleu.set_ylabel("dev BLEU")
    lines = ax.get_lines() + bleu.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], loc="lower right", fontsize=8)
    ax.set_title(f"How far the embedding rows moved: {run.name}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def neighbour_table(words: list[str], init: torch.Tensor, trained: torch.Tensor, tok: Tokenizer, k: int = 5) -> str:
    rows = ["| word (pieces) | before training | after training |", "|---|---|---|"]
    for word in words:
        try:
            _, pieces = word_vector(word, trained, tok)
        except NmtError as e:
            rows.append(f"| {word} | {e} | |")
            continue
        cells = []
        for table in (init, trained):
            vec, _ = word_vector(word, table, tok)
            found = neighbors(vec, table, k, [i for _, i in pieces])
            cells.append(", ".join(f"{tok.id_to_piece(i)} {c:.2f}" for i, c in found))
        rows.append(f"| {word} ({' '.join(p for p, _ in pieces)}) | {cells[0]} | {cells[1]} |")
    return "\n".join(rows)


def analogy_accuracy(pairs: list[tuple[str, str]], table: torch.Tensor, tok: Tokenizer) -> dict:
    """Over ordered couples (i, j), i ≠ j: B_m − A_m + A_f → B_f and B_f − A_f + A_m → B_m."""
    top1 = top5 = total = unreachable = 0
    examples = []
    for i, (am, af) in enumerate(pairs):
        for j, (bm, bf) in enumerate(pairs):
            if i == j:
                continue
            for query, expected in (((bm, am, af), bf), ((bf, af, am), bm)):
                total += 1
                want = single_piece(expected, tok)
                if want is None:
                    unreachable += 1
                    continue
                found = [i_ for i_, _ in analogy(*query, table, tok, k=5)]
                top1 += found[:1] == [want]
                top5 += want in found
                if len(examples) < 3 and query[0] in ("king", "roi"):
                    examples.append(f"{query[0]} − {query[1]} + {query[2]} → "
                                    + ", ".join(tok.id_to_piece(x) for x in found[:3]) + f" (want {expected})")
    return {"top1": top1 / total, "top5": top5 / total, "total": total, "unreachable": unreachable,
            "examples": examples}


def gender_agreement(feminine: dict[str, bool], table: torch.Tensor, tok: Tokenizer) -> tuple[float, int]:
    """Among the noun neighbours of English nouns (5 nearest rows), the share whose French
    translation has the same grammatical gender as the query's; chance is about 50%."""
    same = total = 0
    for noun, fem in sorted(feminine.items()):
        i = single_piece(noun, tok)
        if i is None:
            continue
        for x, _ in neighbors(table[i], table, 5, [i]):
            name = tok.id_to_piece(x)
            if name.startswith(WORD_MARK) and name[1:] in feminine:
                same += feminine[name[1:]] == fem
                total += 1
    return same / max(total, 1), total


def noun_neighbourhood(nouns: set[str], table: torch.Tensor, tok: Tokenizer) -> tuple[float, float, int]:
    """(share of single-piece nouns whose 5 neighbours are all nouns, mean noun share, nouns used)."""
    all_nouns, shares = 0, []
    for noun in sorted(nouns):
        i = single_piece(noun, tok)
        if i is None:
            continue
        found = neighbors(table[i], table, 5, [i])
        names = [tok.id_to_piece(x) for x, _ in found]
        is_noun = [n.startswith(WORD_MARK) and n[1:] in nouns for n in names]
        shares.append(sum(is_noun) / 5)
        all_nouns += all(is_noun)
    return all_nouns / len(shares), sum(shares) / len(shares), len(shares)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path)
    p.add_argument("--checkpoint", default="best")
    p.add_argument("--words", nargs="*", default=["king", "queen", "red", "eats"])
    p.add_argument("--toy", action="store_true", help="add the toy corpus's analogy and noun measurements")
    p.add_argument("--plot-drift", type=Path, metavar="PNG", help="also draw drift and dev BLEU against the step")
    args = p.parse_args(argv)
    if args.plot_drift:
        plot_drift(args.run, args.plot_drift)

    out = [f"## Embedding report: {args.run} ({args.checkpoint} checkpoint)", "", "### Drift per validation", "",
           drift_table(args.run), ""]
    init_src, tok_src = load_tables(args.run, "init", "src")
    src, _ = load_tables(args.run, args.checkpoint, "src")
    out += ["### Nearest neighbours (source side, cosine)", "", neighbour_table(args.words, init_src, src, tok_src), ""]

    if args.toy:
        toy = toy_grammar()
        init_tgt, tok_tgt = load_tables(args.run, "init", "tgt")
        tgt, _ = load_tables(args.run, args.checkpoint, "tgt")
        out += ["### Analogies over the gendered pairs (3CosAdd, inputs excluded)", "",
                "| side | tables | top-1 | top-5 | queries | answer not one piece |", "|---|---|---:|---:|---:|---:|"]
        examples = []
        for side, pairs, tables, tok in (
            ("src (en)", [(m, f) for m, f, _, _ in toy.GENDERED_PAIRS], (init_src, src), tok_src),
            ("tgt (fr)", [(m, f) for _, _, m, f in toy.GENDERED_PAIRS], (init_tgt, tgt), tok_tgt),
        ):
            for name, table in zip(("before", "after"), tables):
                acc = analogy_accuracy(pairs, table, tok)
                out.append(f"| {side} | {name} | {100 * acc['top1']:.1f}% | {100 * acc['top5']:.1f}% | "
                           f"{acc['total']} | {acc['unreachable']} |")
                if name == "after":
                    examples += acc["examples"]
        out += ["", "Examples (after training): " + "; ".join(examples), ""]
        nouns = {n.en_sg for n in toy.NOUNS.values()} | {n.en_pl for n in toy.NOUNS.values()}
        out += ["### Are a noun's nearest neighbours nouns? (source side, 5 neighbours)", "",
                "| tables | all 5 are nouns | mean share of nouns | nouns (single pieces) |", "|---|---:|---:|---:|"]
        for name, table in (("before", init_src), ("after", src)):
            every, share, n = noun_neighbourhood(nouns, table, tok_src)
            out.append(f"| {name} | {100 * every:.1f}% | {100 * share:.1f}% | {n} |")
        feminine = {n.en_sg: n.fem for n in toy.NOUNS.values()} | {n.en_pl: n.fem for n in toy.NOUNS.values()}
        out += ["", "### Do English nouns sit next to nouns of the same French gender? (source side)", "",
                "| tables | same French gender among noun neighbours | noun neighbours |", "|---|---:|---:|"]
        for name, table in (("before", init_src), ("after", src)):
            share, n = gender_agreement(feminine, table, tok_src)
            out.append(f"| {name} | {100 * share:.1f}% | {n} |")
        out.append("")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except NmtError as e:
        print(f"embedding_report: error: {e}", file=sys.stderr)
        sys.exit(2)
