"""Tests for scripts/data_bench.py, its pure parts only: size lists, the generated corpus (the same
bytes for the same seed, aligned files, the variety the benchmark relies on) and its cache. The
measurements run nmt on large corpora for minutes; they are not run here."""

from __future__ import annotations

import pytest

from helpers import assert_error, load_script, ok, run_script, snapshot

bench = load_script("data_bench.py")
SMALL = 2000  # training pairs of the corpora made here
EVAL = 50


def make(work, seed: int = 7, pairs: int = SMALL):
    return bench.ensure_corpus(work, pairs, seed, eval_pairs=EVAL, say=lambda msg: None)


def files(corpus) -> dict[str, bytes]:
    return {f"{split}.{lang}": (corpus.path / f"{split}.{lang}").read_bytes()
            for split in ("train", "dev", "test") for lang in ("en", "fr")}


@pytest.mark.parametrize("text, pairs", [
    ("100k", 100_000), ("1M", 1_000_000), ("10M", 10_000_000), ("2000", 2000), ("20K", 20_000),
    ("1.5M", 1_500_000), ("2.5k", 2500), (" 1m ", 1_000_000),
])
def test_sizes(text: str, pairs: int) -> None:
    assert bench.parse_size(text) == pairs


@pytest.mark.parametrize("text", ["", "k", "M", "abc", "0", "0k", "-5", "1.2345k", "1.5", "1G", "nan", "inf",
                                  "100k,", ",1M", "100k,,1M"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(bench.BenchError, match="^--sizes: bad"):
        bench.parse_sizes(text)


def test_size_lists_keep_their_order() -> None:
    assert bench.parse_sizes("100k,1M,10M") == [100_000, 1_000_000, 10_000_000]
    assert bench.parse_sizes("1M,20k") == [1_000_000, 20_000]
    assert [bench.size_label(n) for n in (100_000, 1_000_000, 1_500_000, 2500)] == ["100k", "1M", "1500k", "2500"]


def test_workers() -> None:
    assert bench.parse_workers("1,2") == [1, 2]
    for bad in ("", "0", "1,x", "1,,2", "-1"):
        with pytest.raises(bench.BenchError, match="^--workers: bad"):
            bench.parse_workers(bad)


def test_a_bad_size_is_one_line_before_any_work(tmp_path) -> None:
    proc = run_script("data_bench.py", "--sizes", "1G", "--work", tmp_path / "work", timeout=60)
    assert_error(proc, "--sizes", "'1G'", prefix=r"data_bench: error: ")
    assert not (tmp_path / "work").exists()


def test_help_says_what_is_measured_and_how_long() -> None:
    text = ok(run_script("data_bench.py", "--help", timeout=60))
    for phrase in ("nmt prepare", "RssAnon", "VmHWM", "torchrun", "tens of minutes", "--skip-ddp"):
        assert phrase in text, phrase


def test_the_same_seed_gives_the_same_bytes(tmp_path) -> None:
    a, b = make(tmp_path / "a"), make(tmp_path / "b")
    other = make(tmp_path / "c", seed=8)
    assert files(a) == files(b)
    assert files(a)["train.en"] != files(other)["train.en"]
    assert files(a)["dev.en"] != files(a)["train.en"][: len(files(a)["dev.en"])]  # dev is no prefix of train


def test_the_files_are_aligned_and_varied(tmp_path) -> None:
    corpus = make(tmp_path)
    counts = {name: bench.count_lines(corpus.path / name) for name in files(corpus)}
    assert counts == {"train.en": SMALL, "train.fr": SMALL, "dev.en": EVAL, "dev.fr": EVAL,
                      "test.en": EVAL, "test.fr": EVAL}
    en = (corpus.path / "train.en").read_text(encoding="utf-8").split("\n")[:-1]
    fr = (corpus.path / "train.fr").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(en) == len(fr) == SMALL
    assert any(not e or not f for e, f in zip(en, fr))  # empty sides, for prepare to skip
    assert sum(len(e.split()) > 60 for e in en) >= SMALL * bench.P_LONG / 2  # past the length filter
    assert sum(any(c.isdigit() for c in e) for e in en) >= SMALL * bench.P_NUMERAL / 2
    assert any(" ( quatre" in f for f in fr)  # spelled digits
    numbered = [(e, f) for e, f in zip(en, fr) if e.endswith(" ) .") and e.split()[-3].isdigit()]
    assert numbered and all(e.split()[-3] == f.split()[-3] for e, f in numbered)  # the same number
    assert len(set(en)) > SMALL * 0.8


def test_a_generated_corpus_is_reused(tmp_path) -> None:
    first = make(tmp_path)
    before = snapshot(first.path)
    again = make(tmp_path)
    assert (first.reused, again.reused) == (False, True)
    assert again.path == first.path and again.bytes == first.bytes
    assert snapshot(again.path) == before  # not rewritten
    assert make(tmp_path, seed=8).path != first.path  # another seed: another corpus
    assert not make(tmp_path, pairs=SMALL + 1).reused


def test_a_killed_generation_is_not_reused(tmp_path) -> None:
    final = tmp_path / "corpora" / bench.corpus_name(SMALL, 7)
    torn = final.with_name(final.name + ".tmp-999999999")  # no such process
    torn.mkdir(parents=True)
    (torn / "train.en").write_text("half a\n", encoding="utf-8")
    final.mkdir()  # a folder without corpus.json (the last file written) is not a corpus
    (final / "train.en").write_text("torn\n", encoding="utf-8")
    corpus = make(tmp_path)
    assert not corpus.reused and corpus.path == final
    assert not torn.exists()
    assert files(corpus) == files(make(tmp_path / "fresh"))
    assert sorted(p.name for p in final.parent.iterdir()) == [final.name]


def test_the_config_is_the_toy_one_on_the_generated_files(tmp_path) -> None:
    from nmt.config import load_config

    corpus = make(tmp_path)
    path, prepared, run_dir = bench.write_config(tmp_path, corpus)
    cfg, toy = load_config(path), load_config(bench.TOY_CONFIG)
    assert cfg.model == toy.model and cfg.tokenizer == toy.tokenizer and cfg.train == toy.train
    assert (cfg.data.train, cfg.data.dev, cfg.data.test) == tuple(str(corpus.path / s) for s in ("train", "dev", "test"))
    assert cfg.data.prepared_dir == str(prepared) and prepared.is_relative_to(tmp_path)
    assert cfg.run.dir == str(run_dir) and run_dir.is_relative_to(tmp_path)
