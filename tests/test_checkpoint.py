"""Tests for nmt/checkpoint.py: atomic, versioned checkpoints loaded with weights_only."""

from __future__ import annotations

import os

import pytest
import torch

from nmt.checkpoint import FORMAT_VERSION, atomic_write, load_checkpoint, save_checkpoint
from nmt.errors import NmtError


def payload() -> dict:
    torch.manual_seed(0)
    return {"model": {"w": torch.randn(3, 4), "b": torch.zeros(4)}, "step": 12, "score": 1.5, "name": "x"}


def test_save_and_load_round_trip(tmp_path):
    save_checkpoint(tmp_path / "c.pt", payload())
    ckpt = load_checkpoint(tmp_path / "c.pt")
    assert ckpt["format_version"] == FORMAT_VERSION
    assert torch.equal(ckpt["model"]["w"], payload()["model"]["w"])
    assert (ckpt["step"], ckpt["score"], ckpt["name"]) == (12, 1.5, "x")


def test_round_trip_keeps_rng_states_and_python_tuples(tmp_path):
    import random

    save_checkpoint(tmp_path / "c.pt", {"rng_torch": torch.get_rng_state(), "rng_python": random.getstate()})
    ckpt = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(ckpt["rng_torch"], torch.get_rng_state())
    random.setstate(ckpt["rng_python"])  # the type survives weights_only loading


def test_save_creates_missing_parent_folders(tmp_path):
    save_checkpoint(tmp_path / "a" / "b" / "c.pt", payload())
    assert (tmp_path / "a" / "b" / "c.pt").is_file()


def test_save_leaves_no_temporary_files(tmp_path):
    save_checkpoint(tmp_path / "c.pt", payload())
    save_checkpoint(tmp_path / "c.pt", payload())
    assert sorted(os.listdir(tmp_path)) == ["c.pt"]


def test_missing_checkpoint_is_an_nmt_error(tmp_path):
    with pytest.raises(NmtError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_truncated_checkpoint_is_an_nmt_error(tmp_path):
    save_checkpoint(tmp_path / "c.pt", payload())
    data = (tmp_path / "c.pt").read_bytes()
    (tmp_path / "c.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(NmtError, match=r"c\.pt: not a readable nmt checkpoint"):
        load_checkpoint(tmp_path / "c.pt")


def test_random_bytes_checkpoint_is_an_nmt_error(tmp_path):
    (tmp_path / "c.pt").write_bytes(os.urandom(4096))
    with pytest.raises(NmtError, match=r"c\.pt"):
        load_checkpoint(tmp_path / "c.pt")


def test_empty_checkpoint_file_is_an_nmt_error(tmp_path):
    (tmp_path / "c.pt").write_bytes(b"")
    with pytest.raises(NmtError, match=r"c\.pt"):
        load_checkpoint(tmp_path / "c.pt")


def test_checkpoint_that_is_not_a_dict_is_an_nmt_error(tmp_path):
    torch.save([1, 2, 3], tmp_path / "c.pt")
    with pytest.raises(NmtError, match="not an nmt checkpoint"):
        load_checkpoint(tmp_path / "c.pt")


def test_dict_without_format_version_is_an_nmt_error(tmp_path):
    torch.save({"model": {}}, tmp_path / "c.pt")
    with pytest.raises(NmtError, match="no format_version"):
        load_checkpoint(tmp_path / "c.pt")


def test_other_format_version_names_both_versions(tmp_path):
    torch.save({"format_version": FORMAT_VERSION + 1, "model": {}}, tmp_path / "c.pt")
    with pytest.raises(NmtError) as e:
        load_checkpoint(tmp_path / "c.pt")
    assert f"format {FORMAT_VERSION + 1}" in str(e.value)
    assert f"reads format {FORMAT_VERSION}" in str(e.value)


class Evil:
    def __reduce__(self):
        return (os.system, ("true",))


def test_pickled_code_is_refused(tmp_path):
    torch.save({"format_version": FORMAT_VERSION, "x": Evil()}, tmp_path / "c.pt")
    with pytest.raises(NmtError, match="not a readable nmt checkpoint"):
        load_checkpoint(tmp_path / "c.pt")


def test_atomic_write_leaves_the_old_file_intact_when_write_raises(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old contents")

    def failing(f):
        f.write(b"half of the new")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_write(path, failing)
    assert path.read_bytes() == b"old contents"
    assert os.listdir(tmp_path) == ["f.bin"]  # the temporary file is gone too


def test_atomic_write_turns_os_errors_into_nmt_error_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old contents")

    def failing(f):
        raise OSError(28, "No space left on device")

    with pytest.raises(NmtError, match="previous file is unchanged"):
        atomic_write(path, failing)
    assert path.read_bytes() == b"old contents"


def test_atomic_write_replaces_the_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"


def test_bytes_changed_inside_tensor_data_are_detected(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(4096)}})
    data = bytearray(path.read_bytes())
    at = data.find(b"\x00\x00\x80\x3f" * 64)  # a run of float32 1.0 inside the tensor's bytes
    assert at > 0
    data[at + 100 : at + 200] = bytes(100)
    path.write_bytes(bytes(data))
    with pytest.raises(NmtError, match="corrupted"):
        load_checkpoint(path)


def test_an_intact_checkpoint_passes_its_digest_check(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"model": {"w": torch.arange(10.0)}, "trainer": {"rng": (3, (1, 2), None)}})
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.arange(10.0))
