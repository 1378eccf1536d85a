"""Tests for scripts/make_toy_data.py, which generates the toy corpus in data/toy/."""

from __future__ import annotations

import importlib.util
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make_toy_data.py"
SMALL = {"train": 300, "dev": 50, "test": 50}


def _load_script():
    spec = importlib.util.spec_from_file_location("make_toy_data", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


mtd = _load_script()


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[tuple[str, str]]]:
    return mtd.generate(mtd.DEFAULT_SEED)


def test_same_seed_same_output_and_other_seed_differs() -> None:
    first = mtd.generate(7, sizes=SMALL)
    assert first == mtd.generate(7, sizes=SMALL)
    assert first != mtd.generate(8, sizes=SMALL)
    assert {k: len(v) for k, v in first.items()} == SMALL


def test_written_files_are_the_generated_corpus(corpus, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(mtd, "generate", lambda seed, sizes=None: corpus)
    assert mtd.main(["--out", str(tmp_path)]) == 0
    for name, data in (mtd.corpus_files(corpus) | mtd.lexicon_files()).items():
        assert (tmp_path / name).read_bytes() == data, name


def test_check_flag(corpus, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(mtd, "generate", lambda seed, sizes=None: corpus)
    for name, data in (mtd.corpus_files(corpus) | mtd.lexicon_files()).items():
        (tmp_path / name).write_bytes(data)
    assert mtd.main(["--check", "--out", str(tmp_path)]) == 0
    (tmp_path / "dev.fr").write_bytes(b"autre chose .\n")
    assert mtd.main(["--check", "--out", str(tmp_path)]) == 1


def test_sizes_lengths_and_splits(corpus) -> None:
    assert {k: len(v) for k, v in corpus.items()} == {"train": 20000, "dev": 1000, "test": 1000}
    english = [en for pairs in corpus.values() for en, _ in pairs]
    assert len(set(english)) == len(english), "duplicate English sentences"
    train = {en for en, _ in corpus["train"]}
    dev = {en for en, _ in corpus["dev"]}
    test = {en for en, _ in corpus["test"]}
    assert not (dev & train) and not (test & train) and not (dev & test)
    for pairs in corpus.values():
        for en, fr in pairs:
            for sentence in (en, fr):
                assert 3 <= len(sentence.split()) <= 25, sentence
                assert sentence.endswith(" .") and sentence == sentence.lower()
                assert "  " not in sentence and "\n" not in sentence
    for name, data in mtd.corpus_files(corpus).items():
        assert len(data) < 1024 * 1024, name


def test_french_is_a_function_of_english(corpus) -> None:
    for pairs in corpus.values():
        for en, fr in pairs:
            assert mtd.translate_sentence(en) == fr, en


def test_gendered_pairs(corpus) -> None:
    pairs = mtd.GENDERED_PAIRS
    assert len(pairs) >= 10
    en_words = [w for p in pairs for w in p[:2]]
    fr_words = [w for p in pairs for w in p[2:]]
    assert len(set(en_words)) == len(en_words) and len(set(fr_words)) == len(fr_words)
    assert sum(len({*p}) == 4 for p in pairs) >= 10  # all four spellings distinct
    for en_m, en_f, fr_m, fr_f in pairs:
        masc, fem = mtd.NOUNS[en_m], mtd.NOUNS[en_f]
        assert (masc.fr_sg, masc.fem, fem.fr_sg, fem.fem) == (fr_m, False, fr_f, True)
    en_vocab = {t for en, _ in corpus["train"] for t in en.split()}
    fr_vocab = {t for _, fr in corpus["train"] for t in fr.split()}
    assert set(en_words) <= en_vocab
    assert set(fr_words) <= fr_vocab  # as standalone tokens (un homme), not only l'homme


def test_lexicon_is_unambiguous() -> None:
    forms = [f for n in mtd.NOUNS.values() for f in (n.en_sg, n.en_pl)]
    assert len(set(forms)) == len(forms), "an English noun form is shared"
    assert not set(forms) & set(mtd.ADJECTIVES)
    for verb in mtd.VERBS.values():
        assert not ("o" in verb.flags and "p" in verb.flags), verb.en


@pytest.mark.parametrize(
    "english, french",
    [
        # adjective placement and agreement
        ("i eat the red apples .", "je mange les pommes rouges ."),
        ("the old woman sleeps .", "la vieille femme dort ."),
        ("some small dogs sleep .", "de petits chiens dorment ."),
        ("the white cats are near the old tree .", "les chats blancs sont près du vieil arbre ."),
        ("this man sees this old hotel .", "cet homme voit ce vieil hôtel ."),
        ("my wife eats an egg .", "mon épouse mange un œuf ."),
        # verb agreement
        ("i eat an apple .", "je mange une pomme ."),
        ("he eats an apple .", "il mange une pomme ."),
        ("we eat an apple .", "nous mangeons une pomme ."),
        ("you eat an apple .", "vous mangez une pomme ."),
        ("they eat an apple .", "ils mangent une pomme ."),
        ("i wait for the bus .", "j'attends le bus ."),
        # negation
        ("the man does not like the cat .", "l'homme n'aime pas le chat ."),
        ("she does not have a car .", "elle n'a pas de voiture ."),
        ("i do not eat any yellow bananas .", "je ne mange pas de bananes jaunes ."),
        # predicative agreement, also at a distance
        ("the queen is happy .", "la reine est heureuse ."),
        ("the kings are not happy .", "les rois ne sont pas heureux ."),
        ("the queen and the princess are tired .", "la reine et la princesse sont fatiguées ."),
        ("the queen and the prince are tired .", "la reine et le prince sont fatigués ."),
        ("the woman who sees the king is happy .", "la femme qui voit le roi est heureuse ."),
        ("the king 's old horses are tired .", "les vieux chevaux du roi sont fatigués ."),
        # object pronouns move before the verb
        ("i love him .", "je l'adore ."),
        ("she does not see us .", "elle ne nous voit pas ."),
        # prepositions and contractions
        ("the boy goes to the market and the girls come from the school .",
         "le garçon va au marché et les filles viennent de l'école ."),
        ("the child enters the house .", "l'enfant entre dans la maison ."),
        ("the waiter gives an apple to the aunt .", "le serveur donne une pomme à la tante ."),
    ],
)
def test_grammar_spot_checks(english: str, french: str) -> None:
    assert mtd.translate_sentence(english) == french


def test_parser_rejects_sentences_outside_the_language() -> None:
    assert mtd.translate_sentence("the queen eats .") == "la reine mange ."  # optional object
    for bad in ("the apple sleeps the cat .", "i eat an apple", "the zebra sleeps .", "i see ."):
        with pytest.raises(mtd.ParseError):
            mtd.translate_sentence(bad)


# ----------------------------------------------------------------------------- data/ and its README


def default_data_folders() -> list[Path]:
    """The folders the scripts write by default: the toy generator's and get_data.py's (every
    *_DEFAULT_DEST), as they are in the code."""
    get_data = runpy.run_path(str(ROOT / "scripts" / "get_data.py"))
    dests = [v for k, v in get_data.items() if k.endswith("_DEFAULT_DEST")]
    assert len(dests) >= 2, "get_data.py names no default destinations"
    return [mtd.DEFAULT_OUT, *dests]


def test_data_readme_names_every_folder_the_scripts_write():
    readme = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    for folder in default_data_folders():
        assert folder.parent == ROOT / "data", folder
        assert f"`{folder.name}/`" in readme, f"data/README.md does not name {folder.name}/"


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_git_keeps_the_data_readme_and_ignores_the_corpora():
    def ignored(rel: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", rel], cwd=ROOT).returncode == 0

    assert not ignored("data/README.md")
    assert ignored("data/some_other_corpus/train.en") and ignored("data/notes.txt")
    for folder in default_data_folders():
        assert ignored(str((folder / "train.en").relative_to(ROOT))), folder


def test_lexicon_files_know_each_words_class_and_gender_and_the_gendered_analogies(corpus) -> None:
    files = {name: data.decode("utf-8").splitlines() for name, data in mtd.lexicon_files().items()}
    pairs = len(mtd.GENDERED_PAIRS)
    assert len(files["analogies.en.txt"]) == len(files["analogies.fr.txt"]) == 2 * pairs * (pairs - 1)
    assert "king man woman queen" in files["analogies.en.txt"] and "roi homme femme reine" in files["analogies.fr.txt"]
    en = dict(line.split("\t", 1) for line in files["classes.en.tsv"])
    fr = dict(line.split("\t", 1) for line in files["classes.fr.tsv"])
    assert en["king"] == "noun\tm" and en["queen"] == "noun\tf" and en["apple"] == "noun\tf"  # la pomme
    assert fr["reine"] == "noun\tf" and fr["heureuse"] == "adjective\tf" and fr["mange"] == "verb"
    assert en["eats"] == "verb" and en["red"] == "adjective"
    # every word of an analogy occurs in the training text, so a table can answer it
    words = {lang: {w for pair in corpus["train"] for w in pair[i].split()} for i, lang in enumerate(("en", "fr"))}
    for lang in ("en", "fr"):
        for line in files[f"analogies.{lang}.txt"]:
            assert set(line.split()) <= words[lang], line
