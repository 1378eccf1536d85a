"""`train.precision: auto` (nmt/precision.py): it measures fp32 against bf16 where there is a choice,
picks the faster, caches the figures per machine and model shape, and a run keeps its choice on resume."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import torch

import nmt.precision as precision
import nmt.trainer as trainer_module
from helpers import assert_identical, tiny_seq2seq, weights
from nmt.batching import collate
from nmt.checkpoint import load_checkpoint, save_checkpoint
from nmt.config import ModelConfig, TrainConfig
from nmt.errors import NmtError
from nmt.precision import PrecisionCache, cache_key, choose_precision, time_steps
from nmt.trainer import train

CPU = torch.device("cpu")
BF16_FASTER, FP32_FASTER = {"fp32": 0.30, "bf16": 0.20}, {"fp32": 0.20, "bf16": 0.30}


def never() -> tuple[dict[str, float], int]:
    raise AssertionError("measured")


def with_units(monkeypatch: pytest.MonkeyPatch, units: bool = True) -> None:
    monkeypatch.setattr(precision, "has_bf16_units", lambda: units)


class Measure:
    """A stand-in for the measurement: these figures, and how often it was asked."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self.seconds, self.calls = seconds, 0

    def __call__(self, *args: object, **kwargs: object) -> tuple[dict[str, float], int]:
        self.calls += 1
        return self.seconds, 3


@pytest.mark.parametrize("seconds, want", [(BF16_FASTER, "bf16"), (FP32_FASTER, "fp32")])
def test_auto_trains_at_the_faster_as_measured_and_says_both_figures(monkeypatch, tmp_path, seconds, want):
    with_units(monkeypatch)
    choice = choose_precision("auto", CPU, None, lambda: {"shape": 1}, Measure(seconds), PrecisionCache(tmp_path / "p.json"))
    assert choice.precision == want and choice.seconds_per_step == seconds
    assert "measured on 3 training steps each" in choice.why
    assert "fp32 300 ms/step" in choice.why or "fp32 200 ms/step" in choice.why
    assert f"cached in {tmp_path / 'p.json'}" in choice.why


@pytest.mark.parametrize("units, device, why", [(False, "cpu", "no bf16 units"), (True, "cuda", "cuda device")])
def test_auto_is_fp32_without_measuring_where_there_is_nothing_to_choose(monkeypatch, tmp_path, units, device, why):
    with_units(monkeypatch, units)
    choice = choose_precision("auto", torch.device(device), None, lambda: {}, never, PrecisionCache(tmp_path / "p.json"))
    assert choice.precision == "fp32" and why in choice.why and "not measured" in choice.why
    assert not (tmp_path / "p.json").exists()


def test_a_configured_precision_is_taken_as_it_is(monkeypatch, tmp_path):
    with_units(monkeypatch)
    assert choose_precision("fp16", CPU, "bf16", lambda: {}, never, None).precision == "fp16"


def test_the_cache_serves_the_same_shape_and_a_different_shape_misses_it(monkeypatch, tmp_path):
    with_units(monkeypatch)
    cache, tc = PrecisionCache(tmp_path / "p.json"), TrainConfig()
    vocab = {"src": 30, "tgt": 30}
    small, wide = ModelConfig(), ModelConfig(decoder_hidden_size=ModelConfig().decoder_hidden_size * 2)
    measure = Measure(BF16_FASTER)
    first = choose_precision("auto", CPU, None, lambda: cache_key(small, vocab, tc), measure, cache)
    again = choose_precision("auto", CPU, None, lambda: cache_key(small, vocab, tc), never, cache)
    assert measure.calls == 1 and first.precision == again.precision == "bf16"
    assert "as measured on" in again.why and again.seconds_per_step == BF16_FASTER
    other = choose_precision("auto", CPU, None, lambda: cache_key(wide, vocab, tc), Measure(FP32_FASTER), cache)
    assert other.precision == "fp32" and "measured on 3 training steps" in other.why


def test_a_cache_file_nmt_cannot_read_is_left_as_it_is(monkeypatch, tmp_path):
    with_units(monkeypatch)
    path = tmp_path / "p.json"
    path.write_text("my notes\n", encoding="utf-8")
    choice = choose_precision("auto", CPU, None, lambda: {}, Measure(BF16_FASTER), PrecisionCache(path))
    assert choice.precision == "bf16" and f"{path}: not read" in choice.why
    assert path.read_text(encoding="utf-8") == "my notes\n"


@pytest.mark.parametrize("content", ['{"format": 1, "entries": []}', '{"format": 1, "entries": {"k": {"steps": 3}}}'])
def test_a_cache_file_of_another_shape_is_left_as_it_is(monkeypatch, tmp_path, content):
    with_units(monkeypatch)
    path = tmp_path / "p.json"
    path.write_text(content, encoding="utf-8")
    choice = choose_precision("auto", CPU, None, lambda: {}, Measure(FP32_FASTER), PrecisionCache(path))
    assert choice.precision == "fp32" and "not an nmt precision cache" in choice.why
    assert path.read_text(encoding="utf-8") == content


def refused(*args: object) -> None:
    raise NmtError("/ro/nmt/precision.json: cannot write (Read-only file system)")  # as atomic_write says it


@pytest.mark.parametrize("where", ["a file where its folder should be", "a read-only folder"])
def test_a_cache_nmt_cannot_write_costs_the_next_run_a_measurement_not_this_run(monkeypatch, tmp_path, where):
    with_units(monkeypatch)
    if where == "a read-only folder":
        monkeypatch.setattr(precision, "atomic_write", refused)
        path = tmp_path / "p.json"
    else:
        (tmp_path / "file").write_text("", encoding="utf-8")
        path = tmp_path / "file" / "p.json"
    choice = choose_precision("auto", CPU, None, lambda: {}, Measure(BF16_FASTER), PrecisionCache(path))
    assert choice.precision == "bf16" and f"{path}: not written" in choice.why


@pytest.mark.parametrize("recorded, units, want, why", [
    ("bf16", True, "bf16", "as the run trained before this resume"),
    ("bf16", False, "bf16", "no bf16 units, so bf16 is slow here: set train.precision: fp32"),
    ("fp32", True, "fp32", "as the run trained before this resume"),
    (precision.LEGACY, True, "bf16", "as nmt chose before it measured"),
    (precision.LEGACY, False, "fp32", "as nmt chose before it measured"),
])
def test_a_resumed_run_keeps_what_it_trained_at_without_measuring(monkeypatch, recorded, units, want, why):
    with_units(monkeypatch, units)
    choice = choose_precision("auto", CPU, recorded, lambda: {}, never, None)
    assert choice.precision == want and why in choice.why


def test_an_fp16_run_resumed_as_auto_is_measured_fp16_needs_its_scaler(monkeypatch):
    with_units(monkeypatch)
    assert choose_precision("auto", CPU, "fp16", lambda: {}, Measure(BF16_FASTER), None).precision == "bf16"


def test_measuring_leaves_the_model_and_the_random_streams_as_they_were():
    model = tiny_seq2seq(dropout=0.2)
    g = random.Random(0)
    batches = [collate(src, src, list(range(8))) for src in
               ([[g.randrange(4, 30) for _ in range(g.randint(3, 9))] for _ in range(8)] for _ in range(3))]
    before, rng_torch, rng_python = {k: v.clone() for k, v in model.state_dict().items()}, torch.get_rng_state(), random.getstate()
    seconds, steps = time_steps(model, batches, TrainConfig())
    assert steps == 2 and set(seconds) == {"fp32", "bf16"} and all(s > 0 for s in seconds.values())
    assert_identical(model.state_dict(), before)
    assert torch.equal(torch.get_rng_state(), rng_torch) and random.getstate() == rng_python


AUTO = {"device": "cpu", "precision": "auto", "max_steps": 2, "validate_every": 2, "dev_max_sentences": 2}


def test_a_run_records_autos_choice_and_keeps_it_on_resume(make_config, monkeypatch, tmp_path):
    with_units(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(trainer_module, "time_steps", Measure(BF16_FASTER))
    run = train(make_config(train=AUTO))
    assert load_checkpoint(run / "checkpoints" / "last.pt")["trainer"]["precision"] == "bf16"
    assert "precision: bf16 (auto: the faster, measured on 3 training steps" in (run / "train.log").read_text()
    # a new machine (no cache) where fp32 would win: the resumed run goes on in bf16, unmeasured
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-cache"))
    monkeypatch.setattr(trainer_module, "time_steps", never)
    train(make_config(train={**AUTO, "max_steps": 4}), resume=True)
    assert load_checkpoint(run / "checkpoints" / "last.pt")["trainer"]["precision"] == "bf16"
    assert "precision: bf16 (auto: as the run trained before this resume" in (run / "train.log").read_text()


def test_a_run_from_before_the_recorded_precision_resumes_under_the_old_rule(make_config, monkeypatch, tmp_path):
    with_units(monkeypatch)
    monkeypatch.setattr(trainer_module, "time_steps", Measure(FP32_FASTER))
    run = train(make_config(train=AUTO))
    last = run / "checkpoints" / "last.pt"
    state = load_checkpoint(last)
    del state["trainer"]["precision"]  # as nmt wrote it before this key
    save_checkpoint(last, state)
    monkeypatch.setattr(trainer_module, "time_steps", never)
    train(make_config(train={**AUTO, "max_steps": 4}), resume=True)
    assert "precision: bf16 (auto: as nmt chose before it measured" in (run / "train.log").read_text()


def test_measuring_does_not_change_what_the_run_trains(make_config, monkeypatch, tmp_path):
    # the real measurement on the run's own batches, then the run: as one configured to its choice
    with_units(monkeypatch)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    measured = train(make_config("auto", train={**AUTO, "max_steps": 6}))
    chosen = load_checkpoint(measured / "checkpoints" / "last.pt")["trainer"]["precision"]
    assert "measured on 3 training steps each" in (measured / "train.log").read_text()
    plain = train(make_config("plain", train={**AUTO, "max_steps": 6, "precision": chosen}))
    assert_identical(weights(measured), weights(plain))


def test_the_cache_lives_in_nmts_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert precision.cache_path() == Path(tmp_path) / "nmt" / "precision.json"
