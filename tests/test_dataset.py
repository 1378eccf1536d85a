"""Tests for nmt/dataset.py, nmt/prepare.py and `nmt prepare`: the corpus tokenized once into
memory-mapped arrays, written atomically, checked when opened, and read by training exactly as
the in-memory pairs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import DEV_PAIRS, PAIRS, write_lines, write_parallel
from helpers import assert_error, err, held_prepare, nmt, nmt_process, ok, snapshot, until, write_yaml
from nmt.batching import BatchStream, ExamplePairs
from nmt.config import load_config
from nmt.corpus import load_corpus
from nmt.data import DevSet, training_data
from nmt.dataset import Dataset
from nmt.errors import NmtError
from nmt.prepare import find, prepare


def quiet(_line: str) -> None:
    pass


def prepared(cfg: dict, **kwargs) -> Dataset:
    return prepare(load_config(cfg), say=quiet, **kwargs).dataset


@pytest.fixture
def cfg(tmp_path, make_config) -> dict:
    """The tiny corpus's config with its prepared data in tmp_path/prepared (for tests that damage it)."""
    return make_config(data={"prepared_dir": str(tmp_path / "prepared")})


def big_corpus(tmp_path: Path, repeat: int = 6) -> str:
    """The tiny corpus `repeat` times over with a few empty and long pairs: several chunks of 50 lines."""
    pairs = []
    for r in range(repeat):
        pairs += PAIRS
        pairs += [("", "une ligne vide ."), (" ".join(["the cat eats an apple ."] * 8), "le chat mange .")]
    return write_parallel(tmp_path / "big", "train", pairs)


def test_by_default_no_more_workers_than_training_chunks(tmp_path, make_config):
    """One chunk: prepared in this process, no pool forked (a fork beside torch's threads can hang)."""
    one = prepared(make_config(data={"prepared_dir": str(tmp_path / "a")}))
    several = prepared(make_config(data={"train": big_corpus(tmp_path), "prepared_dir": str(tmp_path / "b")}),
                       chunk_lines=50)
    assert one.manifest["workers"] == 1
    assert several.manifest["workers"] == min(os.cpu_count() or 1, 12)  # 588 lines: 12 chunks of 50


# ----------------------------------------------------------------------------- the same batches


@pytest.mark.parametrize("workers,chunk_lines", [(1, 50_000), (2, 50)])
def test_prepared_and_in_memory_pairs_give_identical_batches(tmp_path, make_config, workers, chunk_lines):
    """The reference: the text read whole, encoded with the same tokenizers in this process, the
    pairs with an empty side dropped; both through the same length-limited stream."""
    train = big_corpus(tmp_path)
    cfg = make_config(data={"train": train, "max_src_len": 40, "prepared_dir": str(tmp_path / "p")})
    ds = prepared(cfg, workers=workers, chunk_lines=chunk_lines)
    src_tok, tgt_tok = ds.tokenizers()
    corpus = load_corpus(train, load_config(cfg).data, "training")
    examples = list(zip(src_tok.encode_batch(corpus.src), tgt_tok.encode_batch(corpus.tgt)))
    config = load_config(cfg)
    data = training_data(config, ds)
    assert data.filtered["too_long_src"] == 6 and data.filtered["kept"] == len(examples) - 6
    prepared_stream = data.stream(config)
    memory_stream = BatchStream(ExamplePairs(examples), 2000, 16, 1, max_src_len=40, max_tgt_len=100)
    for _ in range(2 * prepared_stream.batches_per_epoch() + 3):  # into the third epoch
        (a, last_a), (b, last_b) = prepared_stream.next_batch(), memory_stream.next_batch()
        assert a.indices == b.indices and last_a == last_b
        for name in ("src", "src_lengths", "tgt_in", "tgt_out"):
            assert getattr(a, name).equal(getattr(b, name)), name
        assert a.norm_tokens == b.norm_tokens


def test_token_counts_count_only_the_pairs_within_the_length_limits(tmp_path, make_config):
    train = big_corpus(tmp_path)
    cfg = make_config(data={"train": train, "max_src_len": 40, "prepared_dir": str(tmp_path / "p")})
    ds = prepared(cfg, chunk_lines=50)
    src_tok, tgt_tok = ds.tokenizers()
    corpus = load_corpus(train, load_config(cfg).data, "training")
    kept = [(s, t) for s, t in zip(src_tok.encode_batch(corpus.src), tgt_tok.encode_batch(corpus.tgt)) if len(s) <= 40]
    counts = training_data(load_config(cfg), ds).token_counts(block=7)  # blocks do not change the counts
    assert counts["src"].tolist() == np.bincount([i for s, _ in kept for i in s], minlength=len(src_tok)).tolist()
    assert counts["tgt"].tolist() == np.bincount([i for _, t in kept for i in t], minlength=len(tgt_tok)).tolist()


def test_the_tokenizer_sample_does_not_depend_on_the_chunks_or_workers(tmp_path, make_config):
    train = big_corpus(tmp_path)
    models = set()
    for i, (workers, chunk_lines) in enumerate([(1, 50_000), (2, 50), (2, 7)]):
        cfg = make_config(data={"train": train, "prepared_dir": str(tmp_path / f"p{i}")},
                          tokenizer={"max_sentences": 300})  # of 588 lines: a sample
        ds = prepared(cfg, workers=workers, chunk_lines=chunk_lines)
        models.add(json.dumps(ds.manifest["tokenizers_sha256"]))
        assert ds.manifest["splits"]["train"]["empty_dropped"] == 6
    assert len(models) == 1


def test_dev_ids_come_from_the_prepared_split_and_references_from_the_text(cfg):
    ds = prepared(cfg)
    _, tgt_tok = ds.tokenizers()
    dev = DevSet.load(load_config(cfg), ds)
    assert dev.references == [t for _, t in DEV_PAIRS]
    assert dev.tgt_ids == tgt_tok.encode_batch(dev.references)


def test_the_arrays_are_uint16_for_a_small_vocabulary_and_the_manifest_says_what_is_there(cfg):
    ds = prepared(cfg)
    m = ds.manifest
    assert m["splits"]["train"]["pairs"] == len(PAIRS) and m["splits"]["dev"]["pairs"] == len(DEV_PAIRS)
    assert np.load(ds.path / "train.src.ids.npy", mmap_mode="r").dtype == np.uint16
    for name, info in m["files"].items():
        assert (ds.path / name).stat().st_size == info["bytes"]
    assert [s["sha256"] for s in m["sources"]["train"]] == m["sources_sha256"]["train"]
    assert ds.problem() is None


# ----------------------------------------------------------------------------- once, atomically


def test_a_second_prepare_of_the_same_inputs_does_nothing_and_says_so(tmp_path, cfg):
    write_yaml(tmp_path / "c.yaml", cfg)
    first = nmt("prepare", "c.yaml", "--workers", "1", cwd=tmp_path)
    assert "prepared in" in ok(first)
    before = snapshot(tmp_path / "prepared")
    second = nmt("prepare", "c.yaml", cwd=tmp_path)
    assert "already prepared, nothing to do" in ok(second)
    assert err(second) == ""
    assert snapshot(tmp_path / "prepared") == before


def test_train_after_prepare_uses_the_prepared_data_and_records_it(tmp_path, cfg):
    write_yaml(tmp_path / "c.yaml", cfg)
    ok(nmt("prepare", "c.yaml", cwd=tmp_path))
    before = snapshot(tmp_path / "prepared")
    proc = nmt("train", "c.yaml", "--set", "train.max_steps=2", cwd=tmp_path)
    assert "(found)" in ok(proc) + err(proc)
    assert snapshot(tmp_path / "prepared") == before
    (folder,) = (tmp_path / "prepared").iterdir()
    record = json.loads((Path(cfg["run"]["dir"]) / "prepared.json").read_text(encoding="utf-8"))
    assert record["path"] == str(folder.resolve()) and record["key"][:20] == folder.name
    assert (Path(cfg["run"]["dir"]) / "tokenizer" / "src.model").read_bytes() == (folder / "src.model").read_bytes()


def test_an_edited_corpus_gets_a_new_prepared_folder(tmp_path, cfg, tiny_corpus):
    first = prepared(cfg).path
    write_parallel(tmp_path / "data", "train", PAIRS[:-1])
    second = prepared(cfg).path
    assert first != second and first.is_dir() and second.is_dir()


def test_a_prepare_killed_mid_write_leaves_no_dataset_and_the_next_one_rebuilds(tmp_path, make_config):
    """SIGKILL while the workers encode: no complete-looking folder, a temporary one at most; the
    next prepare removes it and builds the dataset, which training then reads."""
    train = write_parallel(tmp_path / "big", "train", PAIRS * 3)  # 288 pairs: three chunks of 100
    cfg = make_config(data={"train": train, "prepared_dir": str(tmp_path / "p")})
    write_yaml(tmp_path / "c.yaml", cfg)
    with (tmp_path / "prepare.log").open("wb") as log:
        proc, held = held_prepare(tmp_path, "c.yaml", "--workers", "2", stdout=log, stderr=subprocess.STDOUT)
    until(held.exists, 60, "a worker held at the second chunk")
    until(lambda: any((tmp_path / "p").glob("*.tmp-*/train.src.ids.npy")), 60, "the first chunk's arrays")
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    folder = find(load_config(cfg))
    assert not folder.exists() and list((tmp_path / "p").glob("*.tmp-*"))
    # workers fork: from a process of its own, as a user runs it, not from this test process's threads
    assert "prepared in" in ok(nmt_process("prepare", "c.yaml", "--workers", "2", cwd=tmp_path))
    assert not list((tmp_path / "p").glob("*.tmp-*")) and Dataset(folder).problem() is None
    ok(nmt("train", "c.yaml", "--set", "train.max_steps=2", cwd=tmp_path))


def test_a_prepare_that_finishes_second_keeps_the_first_copy(cfg, monkeypatch):
    """Two runs on the same corpus start at once: the one that renames second finds the folder
    there (the same arrays) and drops its own copy instead of failing."""
    import nmt.prepare

    real_write = nmt.prepare._write

    def write_while_another_finishes(cfg_, out, key_prefix, *args):
        real_write(cfg_, out, key_prefix, *args)
        shutil.copytree(out, out.parent / key_prefix)  # the other prepare's rename, just before ours

    monkeypatch.setattr(nmt.prepare, "_write", write_while_another_finishes)
    result = prepare(load_config(cfg), say=quiet)
    assert result.prepared and result.dataset.problem() is None
    assert [p.name for p in result.dataset.path.parent.iterdir()] == [result.dataset.path.name]


def test_ctrl_c_during_prepare_is_one_line_exit_130_and_nothing_torn(tmp_path, make_config):
    train = write_parallel(tmp_path / "big", "train", PAIRS * 3)  # three chunks of 100 lines
    prepared_dir = tmp_path / "p"
    write_yaml(tmp_path / "c.yaml", make_config(data={"train": train, "prepared_dir": str(prepared_dir)}))
    # as a shell starts a foreground job: Ctrl-C at its default, even when the tests run in the
    # background of a script (which ignores SIGINT, and exec keeps that: the prepare then ran to the end)
    proc, held = held_prepare(tmp_path, "c.yaml", "--workers", "2", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    until(held.exists, 60, "a worker held at the second chunk")  # the handshake: it cannot finish first
    until(lambda: any(prepared_dir.glob("*.tmp-*/train.src.ids.npy")), 60, "the first chunk's arrays")
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to the whole foreground group
    _, stderr = proc.communicate(timeout=60)
    lines = stderr.decode().strip().splitlines()
    assert proc.returncode == 130, stderr
    assert lines[-1] == "nmt prepare: interrupted" and "Traceback" not in stderr.decode()
    assert list(prepared_dir.iterdir()) == []


# ----------------------------------------------------------------------------- refused


def test_a_truncated_array_is_refused_with_the_reason_and_the_command(tmp_path, cfg):
    ds = prepared(cfg)
    ids = ds.path / "train.tgt.ids.npy"
    os.truncate(ids, ids.stat().st_size - 2)
    write_yaml(tmp_path / "c.yaml", cfg)
    before = snapshot(tmp_path)
    line = assert_error(nmt("train", "c.yaml", cwd=tmp_path), "train.tgt.ids.npy has", "truncated or replaced",
                        "nmt prepare c.yaml --force")
    assert "the prepared dataset is damaged" in line
    assert snapshot(tmp_path) == before
    assert "prepared in" in ok(nmt("prepare", "c.yaml", "--force", cwd=tmp_path))
    assert Dataset(ds.path).problem() is None


def test_a_replaced_tokenizer_model_is_refused(tmp_path, cfg):
    ds = prepared(cfg)
    (ds.path / "src.model").write_bytes((ds.path / "tgt.model").read_bytes()[: (ds.path / "src.model").stat().st_size])
    with pytest.raises(NmtError, match=r"src\.model differs from the file it was prepared with"):
        prepared(cfg)


def test_an_edited_manifest_is_refused(cfg):
    ds = prepared(cfg)
    m = json.loads((ds.path / "manifest.json").read_text(encoding="utf-8"))
    m["settings"]["tokenizer"]["src_vocab_size"] = 99
    (ds.path / "manifest.json").write_text(json.dumps(m), encoding="utf-8")
    with pytest.raises(NmtError, match=r"the manifest does not match the folder's name"):
        prepared(cfg)


def test_an_unreadable_manifest_is_refused_in_one_line(cfg):
    ds = prepared(cfg)
    (ds.path / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(NmtError, match=r"manifest\.json: not a readable manifest"):
        prepared(cfg)


def test_a_bad_byte_deep_in_a_large_file_names_file_and_line_from_a_worker(tmp_path, make_config):
    """Line 1,234 of 4,800, in the 25th chunk of 50 lines, read by one of two workers."""
    train = write_parallel(tmp_path / "big", "train", PAIRS * 50)
    path = Path(train + ".fr")
    lines = path.read_bytes().split(b"\n")
    lines[1233] = b"le chat \xff mange ."
    path.write_bytes(b"\n".join(lines))
    cfg = make_config(data={"train": train, "prepared_dir": str(tmp_path / "p")})
    write_yaml(tmp_path / "c.yaml", cfg)
    proc = nmt_process("prepare", "c.yaml", "--workers", "2", cwd=tmp_path)  # forks workers: a process of its own
    assert_error(proc, f"{path}: line 1234: not valid UTF-8 (byte 0xff)")
    assert not (tmp_path / "p").exists() or list((tmp_path / "p").iterdir()) == []


def test_a_short_tsv_line_in_a_later_chunk_names_its_line(tmp_path, make_config):
    lines = [f"{en}\t{fr}" for en, fr in PAIRS * 3]
    lines[200] = "only one column"
    path = write_lines(tmp_path / "train.tsv", lines)
    cfg = make_config(data={"format": "tsv", "tsv_columns": ["en", "fr"], "train": str(path),
                            "prepared_dir": str(tmp_path / "p")})
    cfg["data"]["dev"] = str(write_lines(tmp_path / "dev.tsv", [f"{en}\t{fr}" for en, fr in DEV_PAIRS]))
    with pytest.raises(NmtError, match=r"train\.tsv: line 201: expected 2 tab-separated columns"):
        prepared(cfg, workers=2, chunk_lines=50)


def test_a_dev_set_without_pairs_is_refused_before_anything_is_trained(tmp_path, cfg):
    write_lines(tmp_path / "data" / "dev.en", ["", ""])
    write_lines(tmp_path / "data" / "dev.fr", ["", ""])
    said = []
    with pytest.raises(NmtError, match=r"dev\.fr: the dev corpus has no sentence pairs"):
        prepare(load_config(cfg), say=said.append)
    assert said == []


def test_prepare_refuses_bad_workers_and_unknown_keys_in_one_line(tmp_path, cfg):
    write_yaml(tmp_path / "c.yaml", cfg)
    assert_error(nmt("prepare", "c.yaml", "--workers", "0", cwd=tmp_path), "--workers must be at least 1")
    assert_error(nmt("prepare", "c.yaml", "--set", "data.prepared=x", cwd=tmp_path), "data.prepared")


def test_prepare_help_teaches_by_example():
    text = ok(nmt("prepare", "--help"))
    assert "--workers" in text and "examples:" in text and "prepared_dir" in text
