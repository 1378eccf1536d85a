"""scripts/report.py (make report): the JSON of a report, and the README's demo figures being the
committed report's (docs/report/demo.json)."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest
from helpers import ROOT, load_script, write_yaml

COMMITTED = ROOT / "docs" / "report" / "demo.json"
report_script = load_script("report.py")

# every key of a report and the type of its value
KEYS = {
    "command": str, "config": str, "date": str, "demo_figures": bool, "overrides": list, "run_dir": str,
    "samples": list, "wall_seconds": float, "wall_minutes": float,
    "git": {"commit": str, "dirty": bool, "dirty_files": list},
    "machine": {"cpu_count": int, "cpus_usable": int, "cpu_model": str, "torch_threads": int, "torch": str,
                "python": str, "platform": str, "load_average_start": list, "load_average_end": list},
    "train": {"steps": int, "epochs": int, "seconds": float, "minutes": float, "end_reason": str,
              "train_records": int, "tgt_tokens_per_s_median": float},
    "test": {"src": str, "ref": str, "beam": int, "sentences": int, "bleu": float, "bleu_text": str,
             "bleu_signature": str, "chrf": float, "chrf_text": str, "chrf_signature": str, "hypotheses": str},
}


def check_keys(report: dict, keys: dict, where: str = "report") -> None:
    assert set(report) == set(keys), where
    for key, kind in keys.items():
        if isinstance(kind, dict):
            check_keys(report[key], kind, f"{where}.{key}")
        else:
            value = report[key]
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else isinstance(value, kind)
            assert ok, (f"{where}.{key}", value)


def test_report_on_the_tiny_corpus_writes_every_key(make_config, tiny_corpus, tmp_path: Path, capsys) -> None:
    config = write_yaml(tmp_path / "tiny.yaml", make_config("unused"))
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("the king eats an apple .\nthe queen sees the book .\n", encoding="utf-8")
    out = tmp_path / "report" / "tiny.json"
    args = ["--config", str(config), "--run-dir", str(tmp_path / "report_run"), "--out", str(out),
            "--test-src", tiny_corpus["dev"] + ".en", "--test-ref", tiny_corpus["dev"] + ".fr",
            "--sentences", str(sentences), "--set", "train.max_steps=12", "--set", "train.log_every=4"]

    assert report_script.main(args) == 0  # in this process: torch is imported once (a subprocess takes 10 s more)
    stdout = capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    report = json.loads(text)
    assert text == json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"  # stable, sorted
    check_keys(report, KEYS)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert report["git"]["commit"] == head.stdout.strip()
    assert report["git"]["dirty"] == bool(report["git"]["dirty_files"])
    assert report["overrides"] == ["train.max_steps=12", "train.log_every=4"]
    assert report["demo_figures"] is False  # overrides: never to be taken for the demo's figures
    assert report["config"] == str(config) and report["run_dir"] == str(tmp_path / "report_run")
    assert report["command"].startswith("python scripts/report.py --config ") and "train.max_steps=12" in report["command"]
    tr = report["train"]
    assert tr["steps"] == 12 and tr["epochs"] >= 1 and tr["train_records"] == 3
    assert tr["end_reason"] == "reached train.max_steps=12"
    assert 0 < tr["seconds"] < report["wall_seconds"] and tr["tgt_tokens_per_s_median"] > 0
    assert report["test"]["sentences"] == 8 and report["test"]["beam"] == 5
    assert report["test"]["bleu_text"].startswith("BLEU = ") and "tok:13a" in report["test"]["bleu_signature"]
    assert 0 <= report["test"]["bleu"] <= 100 and 0 <= report["test"]["chrf"] <= 100
    assert [s["source"] for s in report["samples"]] == ["the king eats an apple .", "the queen sees the book ."]
    assert all(isinstance(s["translation"], str) for s in report["samples"])
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["torch_threads"] == 1  # tiny config: threads 1
    assert report["test"]["bleu_text"] in stdout and "not the demo's figures" in stdout


# until a report of the demo, made on a quiet machine, is committed, the README says its figures
# are older than make report, and these three have nothing to compare
needs_committed = pytest.mark.skipif(not COMMITTED.exists(), reason="no committed docs/report/demo.json yet: "
                                     "run `make report` on a quiet machine and commit it with the README's figures")


@needs_committed
def test_readme_states_the_committed_report() -> None:
    report = json.loads(COMMITTED.read_text(encoding="utf-8"))
    check_keys(report, KEYS)
    assert report["demo_figures"] and report["overrides"] == [], "the committed report must be of the demo"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert report_script.readme_problems(readme, report) == []
    assert "`make report` re-measures these figures into docs/report/demo.json" in readme
    assert "Another CPU prints other last digits" in " ".join(readme.split())  # the figures are this CPU's, and say so


def _doctored(report: dict, path: tuple[str, ...], value) -> dict:
    changed = copy.deepcopy(report)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


@pytest.mark.parametrize("path, value", [
    (("test", "bleu"), 12.34),
    (("test", "chrf"), 12.34),
    (("train", "seconds"), 999.0),
    (("train", "tgt_tokens_per_s_median"), 1234.0),
    (("git", "commit"), "0123456789abcdef0123456789abcdef01234567"),
    (("machine", "cpu_model"), "Intel Xeon"),
    (("machine", "cpu_count"), 16),
    (("samples", 0, "translation"), "le roi ne mange pas ."),
    (("demo_figures",), False),
])
@needs_committed
def test_readme_check_fails_when_readme_and_report_disagree(path, value) -> None:
    report = json.loads(COMMITTED.read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert report_script.readme_problems(readme, _doctored(report, path, value)) != []


@needs_committed
def test_readme_check_fails_on_a_doctored_readme() -> None:
    report = json.loads(COMMITTED.read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    bleu = f"test BLEU {report['test']['bleu']:.2f}"
    assert bleu in readme
    problems = report_script.readme_problems(readme.replace(bleu, "test BLEU 12.3"), report)
    assert problems and all(bleu in p for p in problems)
    sample = report["samples"][-1]["translation"]
    assert report_script.readme_problems(readme.replace(f"=>  {sample}", "=>  la reine est triste ."), report)
    cpu = report["machine"]["cpu_model"]
    assert report_script.readme_problems(readme.replace(f"-core {cpu}", "-core Intel Xeon"), report)


@needs_committed
def test_readme_check_fails_when_the_results_row_of_the_demo_differs() -> None:
    report = json.loads(COMMITTED.read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith(f"| `{report['config']}` |"))
    cells = report_script.results_row_cells(report)
    assert cells == ["5.1", "98.24", "99.19", "`4b9f7f9`, AMD EPYC"]  # the committed report, as the row writes it
    for cell in cells:
        doctored = readme.replace(row, row.replace(f"| {cell}", "| 0.00"))
        problems = report_script.readme_problems(doctored, report)
        assert problems and all("results row" in p for p in problems), cell
    assert report_script.readme_problems(readme.replace(row + "\n", ""), report)  # no row at all


def test_make_demo_and_the_report_translate_the_same_sentences() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"DEMO_SENTENCES := {report_script.DEMO_SENTENCES}" in makefile
    assert (ROOT / report_script.DEMO_SENTENCES).read_text(encoding="utf-8").count("\n") >= 3
