"""Tests for scripts/get_data.py (fetch / copy + verify the real corpora).

Tests that need the real corpora use ``<repo>/../shared/data`` and are skipped when it is absent.
The download path is exercised offline through ``file://`` URLs.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import zipfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from helpers import ROOT, err, error_line, load_script, out, run_script, sha256, snapshot

SHARED = ROOT.parent / "shared" / "data"
SHARED_M30K = SHARED / "multi30k"
SHARED_TATOEBA = SHARED / "tatoeba-eng-fra"

needs_m30k = pytest.mark.skipif(
    not (SHARED_M30K / "train.en").is_file(), reason=f"shared Multi30k data absent ({SHARED_M30K})"
)
needs_tatoeba = pytest.mark.skipif(
    not (SHARED_TATOEBA / "eng-fra.txt").is_file(),
    reason=f"shared Tatoeba data absent ({SHARED_TATOEBA})",
)


# the script's errors: exit code 2 and one line "get_data: error: …"
one_line_error = functools.partial(error_line, prefix="get_data: error: ")


@pytest.fixture(scope="module")
def gd():
    return load_script("get_data.py")


def gz_mirror(folder: Path, names: Iterable[str]) -> Path:
    """`folder` holding the shared Multi30k files `names` gzipped under their upstream names
    (test2016.cs as test_2016_flickr.cs.gz)."""
    folder.mkdir()
    for name in names:
        split, lang = name.split(".")
        up = {"test2016": "test_2016_flickr"}.get(split, split)
        with gzip.open(folder / f"{up}.{lang}.gz", "wb", compresslevel=1) as f:
            f.write((SHARED_M30K / name).read_bytes())
    return folder


# ---------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------


def test_tables_are_complete(gd):
    assert len(gd.MULTI30K_FILES) == 12
    assert set(gd.MULTI30K_FILES) == {
        f"{s}.{lang}" for s in ("train", "val", "test2016") for lang in ("en", "de", "fr", "cs")
    }
    for sha, lines in [*gd.MULTI30K_FILES.values(), *gd.TATOEBA_SOURCE.values(),
                       *gd.TATOEBA_SPLIT_FILES.values()]:
        assert len(sha) == 64 and int(sha, 16) >= 0 and lines > 0
    assert sum(n for _, n in gd.TATOEBA_SPLIT_FILES.values()) == 135842


# ---------------------------------------------------------------------------------------------
# multi30k
# ---------------------------------------------------------------------------------------------


@needs_m30k
def test_multi30k_from_shared(gd, tmp_path, capsys):
    dest = tmp_path / "m30k"
    assert gd.main(["multi30k", "--from", str(SHARED_M30K), "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert str(dest) in out and "Elliott et al. 2016" in out
    assert sorted(p.name for p in dest.iterdir()) == sorted(gd.MULTI30K_FILES)
    for name in gd.MULTI30K_FILES:
        assert (dest / name).read_bytes() == (SHARED_M30K / name).read_bytes(), name
    assert [p.name for p in tmp_path.iterdir()] == ["m30k"]  # no temporary folder left
    umask = os.umask(0)
    os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's 0700

    # idempotent: a second run sees the verified files and does nothing
    before = snapshot(dest)
    assert gd.main(["multi30k", "--from", str(SHARED_M30K), "--dest", str(dest)]) == 0
    assert "already" in capsys.readouterr().out
    assert snapshot(dest) == before
    # --force redoes it
    assert gd.main(["multi30k", "--from", str(SHARED_M30K), "--dest", str(dest), "--force"]) == 0
    assert snapshot(dest, mtimes=False) == {n: sha256(SHARED_M30K / n) for n in gd.MULTI30K_FILES}


@needs_m30k
def test_multi30k_from_upstream_gz_names(gd, tmp_path):
    src = gz_mirror(tmp_path / "gz", gd.MULTI30K_FILES)
    dest = tmp_path / "m30k"
    assert gd.main(["multi30k", "--from", str(src), "--dest", str(dest)]) == 0
    for name in gd.MULTI30K_FILES:
        assert (dest / name).read_bytes() == (SHARED_M30K / name).read_bytes(), name


@needs_m30k
def test_multi30k_download_path_offline(gd, tmp_path, monkeypatch):
    """The download branch, pointed at file:// URLs holding the upstream .gz names."""
    mirror = gz_mirror(tmp_path / "mirror", gd.MULTI30K_FILES)
    monkeypatch.setattr(gd, "MULTI30K_URL", mirror.as_uri() + "/{name}.gz")
    dest = tmp_path / "m30k"
    assert gd.main(["multi30k", "--dest", str(dest)]) == 0
    assert snapshot(dest, mtimes=False) == {n: sha256(SHARED_M30K / n) for n in gd.MULTI30K_FILES}


@needs_m30k
def test_multi30k_corrupted_copy_is_refused(gd, tmp_path, capsys):
    src = tmp_path / "src"
    shutil.copytree(SHARED_M30K, src)
    (src / "val.de").chmod(0o644)
    with open(src / "val.de", "ab") as f:
        f.write(b"x")
    dest = tmp_path / "out" / "m30k"
    assert gd.main(["multi30k", "--from", str(src), "--dest", str(dest)]) == 2
    captured = capsys.readouterr()
    want_sha, want_lines = gd.MULTI30K_FILES["val.de"]
    one_line_error(2, captured.err, "val.de", want_sha, str(want_lines))
    assert not dest.exists()
    assert list((tmp_path / "out").iterdir()) == []  # temporary folder removed

    # an existing complete destination is not changed by a failing --force run
    good = tmp_path / "good"
    assert gd.main(["multi30k", "--from", str(SHARED_M30K), "--dest", str(good)]) == 0
    before = snapshot(good)
    capsys.readouterr()
    assert gd.main(["multi30k", "--from", str(src), "--dest", str(good), "--force"]) == 2
    one_line_error(2, capsys.readouterr().err, "val.de")
    assert snapshot(good) == before


@needs_m30k
def test_multi30k_corrupted_copy_subprocess(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(SHARED_M30K, src)
    (src / "test2016.cs").chmod(0o644)
    with open(src / "test2016.cs", "ab") as f:
        f.write(b"\n")
    dest = tmp_path / "dest"
    r = run_script("get_data.py", "multi30k", "--from", str(src), "--dest", str(dest))
    assert r.returncode == 2
    one_line_error(r.returncode, err(r), "test2016.cs")
    assert not dest.exists()


def test_multi30k_missing_file_in_from(gd, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.en").write_text("hello\n")
    assert gd.main(["multi30k", "--from", str(src), "--dest", str(tmp_path / "d")]) == 2
    # train.en is checked first and does not verify
    one_line_error(2, capsys.readouterr().err, "train.en")
    (src / "train.en").unlink()
    assert gd.main(["multi30k", "--from", str(src), "--dest", str(tmp_path / "d")]) == 2
    one_line_error(2, capsys.readouterr().err, "train.en", "not found")
    assert not (tmp_path / "d").exists()


@needs_m30k
def test_non_empty_destination_needs_force(gd, tmp_path, capsys):
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "train.en").write_text("old\n")
    (dest / "notes.txt").write_text("mine\n")
    assert gd.main(["multi30k", "--from", str(SHARED_M30K), "--dest", str(dest)]) == 2
    one_line_error(2, capsys.readouterr().err, "--force")
    assert (dest / "train.en").read_text() == "old\n"
    assert gd.main(["multi30k", "--from", str(SHARED_M30K), "--dest", str(dest), "--force"]) == 0
    assert (dest / "train.en").read_bytes() == (SHARED_M30K / "train.en").read_bytes()
    assert (dest / "notes.txt").read_text() == "mine\n"  # unrelated files are kept


def test_download_failure_is_one_line(gd, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gd, "MULTI30K_URL", (tmp_path / "nowhere").as_uri() + "/{name}.gz")
    dest = tmp_path / "d"
    assert gd.main(["multi30k", "--dest", str(dest)]) == 2
    one_line_error(2, capsys.readouterr().err, "cannot download")
    assert not dest.exists()
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# tatoeba
# ---------------------------------------------------------------------------------------------


def _english(line: bytes) -> bytes:
    return line.split(b"\t", 1)[0]


@needs_tatoeba
def test_tatoeba_split_from_shared(gd, tmp_path, capsys):
    d1, d2 = tmp_path / "t1", tmp_path / "t2"
    assert gd.main(["tatoeba", "--from", str(SHARED_TATOEBA), "--dest", str(d1)]) == 0
    out = capsys.readouterr().out
    assert "CC BY 2.0" in out and "3024" in out
    assert sorted(p.name for p in d1.iterdir()) == ["dev.tsv", "test.tsv", "train.tsv"]

    source = (SHARED_TATOEBA / "eng-fra.txt").read_bytes().split(b"\n")[:-1]
    index = {line: i for i, line in enumerate(source)}
    assert len(index) == len(source) == 135842  # no fully duplicated lines
    splits = {}
    for s in ("train", "dev", "test"):
        data = (d1 / f"{s}.tsv").read_bytes()
        assert data.endswith(b"\n")
        splits[s] = data.split(b"\n")[:-1]
        pos = [index[line] for line in splits[s]]  # every line byte-identical to a source line
        assert pos == sorted(pos)  # original order kept
    assert sum(len(v) for v in splits.values()) == 135842
    assert {s: len(v) for s, v in splits.items()} == {"train": 129835, "dev": 2983, "test": 3024}
    assert 2500 <= len(splits["test"]) <= 3500 and 2500 <= len(splits["dev"]) <= 3500

    en = {s: {_english(line) for line in v} for s, v in splits.items()}
    assert not en["test"] & en["train"]
    assert not en["dev"] & en["train"]
    assert not en["dev"] & en["test"]
    # U+202F etc. are kept as they are
    assert "Cours\u202f!".encode() in (d1 / "train.tsv").read_bytes() + (d1 / "dev.tsv").read_bytes() + (
        d1 / "test.tsv"
    ).read_bytes()

    # running twice gives identical files (into a fresh folder, and forced over the first)
    assert gd.main(["tatoeba", "--from", str(SHARED_TATOEBA), "--dest", str(d2)]) == 0
    assert snapshot(d1, mtimes=False) == snapshot(d2, mtimes=False)
    first = snapshot(d1, mtimes=False)
    assert gd.main(["tatoeba", "--from", str(SHARED_TATOEBA), "--dest", str(d1), "--force"]) == 0
    assert snapshot(d1, mtimes=False) == first
    assert gd.main(["tatoeba", "--from", str(SHARED_TATOEBA), "--dest", str(d1)]) == 0
    assert "already" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t1", "t2"]


@needs_tatoeba
def test_tatoeba_from_zips_and_download(gd, tmp_path, monkeypatch):
    text = (SHARED_TATOEBA / "eng-fra.txt").read_bytes()
    # eng-fra.txt.zip (one entry eng-fra.txt)
    src1 = tmp_path / "z1"
    src1.mkdir()
    with zipfile.ZipFile(src1 / "eng-fra.txt.zip", "w", zipfile.ZIP_STORED) as z:
        z.writestr("eng-fra.txt", text)
    # data.zip (entry data/eng-fra.txt), also served as the download URL
    src2 = tmp_path / "z2"
    src2.mkdir()
    with zipfile.ZipFile(src2 / "data.zip", "w", zipfile.ZIP_STORED) as z:
        z.writestr("data/eng-fra.txt", text)
    ref = tmp_path / "ref"
    assert gd.main(["tatoeba", "--from", str(SHARED_TATOEBA), "--dest", str(ref)]) == 0
    for args, name in [
        (["--from", str(src1)], "a"),
        (["--from", str(src2)], "b"),
    ]:
        assert gd.main(["tatoeba", *args, "--dest", str(tmp_path / name)]) == 0
        assert snapshot(tmp_path / name, mtimes=False) == snapshot(ref, mtimes=False)
    monkeypatch.setattr(gd, "TATOEBA_URL", (src2 / "data.zip").as_uri())
    assert gd.main(["tatoeba", "--dest", str(tmp_path / "c")]) == 0
    assert snapshot(tmp_path / "c", mtimes=False) == snapshot(ref, mtimes=False)


@needs_tatoeba
def test_tatoeba_corrupted_source_is_refused(gd, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    (src / "eng-fra.txt").write_bytes((SHARED_TATOEBA / "eng-fra.txt").read_bytes()[:-1])
    dest = tmp_path / "d"
    assert gd.main(["tatoeba", "--from", str(src), "--dest", str(dest)]) == 2
    one_line_error(2, capsys.readouterr().err, "eng-fra.txt", gd.TATOEBA_SOURCE["eng-fra.txt"][0])
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_tatoeba_split_rule_is_stable(gd):
    """Fixed by sha256 of the English side, not by Python's (salted) hash(): pinned values."""
    pinned = {
        "train": ["Go.", "Run!", "Wow!"],
        "dev": ["I try.", "Come on.", "He quit."],
        "test": ["Really?", "Am I late?", "I'll obey."],
    }
    for split, sentences in pinned.items():
        for s in sentences:
            assert gd.tatoeba_split_of(s.encode("utf-8")) == split, s
    for s in ("Go.", "Tom is here.", "\u00e9t\u00e9"):
        b = int.from_bytes(hashlib.sha256(s.encode("utf-8")).digest()[:8], "big") % 1000
        want = "test" if b < 22 else "dev" if b < 44 else "train"
        assert gd.tatoeba_split_of(s.encode("utf-8")) == want


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------


def test_missing_from_folder(tmp_path):
    missing = tmp_path / "no-such-folder"
    dest = tmp_path / "d"
    for corpus in ("multi30k", "tatoeba"):
        r = run_script("get_data.py", corpus, "--from", str(missing), "--dest", str(dest), cwd=tmp_path)
        assert r.returncode == 2
        one_line_error(r.returncode, err(r), str(missing))
        assert out(r) == ""
        assert not dest.exists()


def test_bad_arguments(tmp_path):
    for args in ([], ["iwslt"], ["multi30k", "--bogus"]):
        r = run_script("get_data.py", *args, cwd=tmp_path)
        assert r.returncode == 2, args
        one_line_error(r.returncode, err(r))


def test_help(tmp_path):
    r = run_script("get_data.py", "--help", cwd=tmp_path)
    assert r.returncode == 0
    for needle in ("multi30k", "tatoeba", "CC BY 2.0", "Elliott et al. 2016", "data/multi30k",
                   "data/tatoeba", "English", "--force", "--from", "--dest"):
        assert needle in out(r), needle


# ---------------------------------------------------------------------------------------------
# tatoeba --tutorial-subset
# ---------------------------------------------------------------------------------------------


def test_tutorial_normalize_is_the_tutorials_normalize_string(gd):
    # lowercase ASCII without accents, . ! ? split off, every other character run one space
    assert gd.tutorial_normalize("  Je suis très fatigué ! ") == "je suis tres fatigue !"
    assert gd.tutorial_normalize("I'm 20 years old.") == "i m years old"
    assert gd.tutorial_normalize("Ça va?") == "ca va ?"


@needs_tatoeba
def test_tutorial_subset_keeps_the_tutorials_pairs_split_by_the_english_sentence(gd, tmp_path, capsys):
    dest = tmp_path / "tut"
    assert gd.main(["tatoeba", "--tutorial-subset", "--from", str(SHARED_TATOEBA), "--dest", str(dest)]) == 0
    rows = {s: (dest / f"{s}.tsv").read_text(encoding="utf-8").splitlines() for s in ("train", "dev", "test")}
    assert sum(map(len, rows.values())) == 11445  # what the tutorial prints: "Trimmed to 11445 sentence pairs"
    english = {s: {r.split("\t")[0] for r in r_} for s, r_ in rows.items()}
    assert not english["train"] & english["test"] and not english["train"] & english["dev"]
    for row in rows["test"]:
        en, fr = row.split("\t")
        assert en.startswith(gd.TUTORIAL_ENG_PREFIXES) and len(en.split(" ")) < 10 and len(fr.split(" ")) < 10
    assert "i m home\tje suis chez moi" in rows["test"]
    assert "the tutorial's 11445 pairs written to" in "".join(capsys.readouterr())
    # a second run finds the verified files and does nothing
    assert gd.main(["tatoeba", "--tutorial-subset", "--from", str(SHARED_TATOEBA), "--dest", str(dest)]) == 0


def test_tutorial_subset_goes_with_tatoeba_only(tmp_path):
    proc = run_script("get_data.py", "multi30k", "--tutorial-subset", "--dest", tmp_path / "x")
    assert one_line_error(proc.returncode, err(proc), "--tutorial-subset goes with tatoeba")
    assert not (tmp_path / "x").exists()
