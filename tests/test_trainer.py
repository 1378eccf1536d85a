"""Tests for nmt/trainer.py: the schedule, the run directory, resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import yaml

from helpers import assert_identical, metrics, snapshot, weights
from nmt.checkpoint import load_checkpoint
from nmt.config import TrainConfig
from nmt.errors import NmtError
from nmt.config import config_diff
from nmt.optim import LRSchedule
from nmt.trainer import train


# ----------------------------------------------------------------------------- LRSchedule


def test_constant_schedule_without_warmup_is_the_base_rate():
    s = LRSchedule(TrainConfig(lr=0.01, schedule="constant"))
    assert [s.lr(step) for step in (1, 10, 1000)] == [0.01] * 3


def test_warmup_rises_linearly_to_the_base_rate():
    s = LRSchedule(TrainConfig(lr=0.01, schedule="constant", warmup_steps=100))
    assert s.lr(1) == pytest.approx(0.0001)
    assert s.lr(50) == pytest.approx(0.005)
    assert s.lr(100) == pytest.approx(0.01)
    assert s.lr(5000) == pytest.approx(0.01)


def test_warmup_is_monotonic():
    s = LRSchedule(TrainConfig(lr=0.01, schedule="plateau", warmup_steps=20))
    rates = [s.lr(step) for step in range(1, 21)]
    assert rates == sorted(rates) and len(set(rates)) == 20


def test_inverse_sqrt_decays_after_warmup():
    s = LRSchedule(TrainConfig(lr=0.01, schedule="inverse_sqrt", warmup_steps=100))
    assert s.lr(100) == pytest.approx(0.01)
    assert s.lr(400) == pytest.approx(0.005)
    assert s.lr(10_000) == pytest.approx(0.001)


def test_inverse_sqrt_is_continuous_at_the_end_of_warmup():
    s = LRSchedule(TrainConfig(lr=0.01, schedule="inverse_sqrt", warmup_steps=100))
    assert s.lr(99) == pytest.approx(s.lr(100), rel=0.02)
    assert s.lr(101) == pytest.approx(s.lr(100), rel=0.02)


def test_plateau_reduces_after_patience_plus_one_bad_validations():
    s = LRSchedule(TrainConfig(lr=0.01, schedule="plateau", plateau_patience=2, plateau_factor=0.5))
    assert s.on_validation(10.0) is False  # best
    assert s.on_validation(9.0) is False  # bad 1
    assert s.on_validation(10.0) is False  # bad 2 (equal is not better)
    assert s.lr(1000) == pytest.approx(0.01)
    assert s.on_validation(8.0) is True  # bad 3 > patience: reduce
    assert s.lr(1000) == pytest.approx(0.005)


def test_plateau_improvement_resets_the_count():
    s = LRSchedule(TrainConfig(lr=0.01, schedule="plateau", plateau_patience=1))
    for score in (1.0, 0.5, 2.0, 1.0):  # bad, better, bad: never two bad in a row
        assert s.on_validation(score) is False
    assert s.lr(10) == pytest.approx(0.01)


def test_plateau_never_goes_below_min_lr():
    s = LRSchedule(TrainConfig(lr=0.01, min_lr=0.004, schedule="plateau", plateau_patience=0, plateau_factor=0.5))
    s.on_validation(1.0)
    for _ in range(5):
        s.on_validation(0.0)
    assert s.lr(1000) == pytest.approx(0.004)


def test_validations_do_not_change_non_plateau_schedules():
    s = LRSchedule(TrainConfig(lr=0.01, schedule="constant", plateau_patience=0))
    for score in (1.0, 0.0, 0.0, 0.0):
        assert s.on_validation(score) is False
    assert s.lr(1000) == 0.01


def test_linear_falls_with_the_steps_to_min_lr_at_max_steps():
    s = LRSchedule(TrainConfig(lr=0.01, min_lr=1e-4, schedule="linear", max_steps=1000))
    assert [s.lr(step) for step in (1, 250, 500, 990)] == pytest.approx([0.00999, 0.0075, 0.005, 1e-4])
    assert s.lr(1000) == pytest.approx(1e-4) and s.lr(2000) == pytest.approx(1e-4)


def test_linear_follows_the_clock_with_max_minutes_and_the_budget_used_more_with_both():
    s = LRSchedule(TrainConfig(lr=0.01, schedule="linear", max_minutes=10))
    assert s.lr(1, elapsed_s=0.0) == pytest.approx(0.01)
    assert s.lr(1, elapsed_s=150.0) == pytest.approx(0.0075)
    assert s.lr(5000, elapsed_s=450.0) == pytest.approx(0.0025)  # the steps do not count
    both = LRSchedule(TrainConfig(lr=0.01, schedule="linear", max_minutes=10, max_steps=100))
    assert both.lr(50, elapsed_s=60.0) == pytest.approx(0.005)  # half the steps, a tenth of the time
    assert both.lr(10, elapsed_s=300.0) == pytest.approx(0.005)


def test_linear_takes_the_lower_of_the_warmup_ramp_and_the_decay():
    s = LRSchedule(TrainConfig(lr=0.01, schedule="linear", warmup_steps=100, max_steps=200))
    assert s.lr(10) == pytest.approx(0.001)  # the ramp
    assert s.lr(90) == pytest.approx(0.0055)  # the decay (1 - 90/200) is lower than the ramp (0.9)
    rates = [s.lr(step) for step in range(1, 201)]
    assert max(abs(a - b) for a, b in zip(rates, rates[1:])) <= 0.01 / 100 + 1e-12  # no jump


def test_linear_with_a_decay_fraction_holds_the_rate_then_decays_over_the_last_part_of_the_budget():
    s = LRSchedule(TrainConfig(lr=0.01, min_lr=1e-4, schedule="linear", max_steps=1000, decay_fraction=0.2,
                               warmup_steps=100))
    assert [s.lr(step) for step in (50, 100, 500, 800)] == pytest.approx([0.005, 0.01, 0.01, 0.01])
    assert [s.lr(step) for step in (850, 900, 950, 999)] == pytest.approx([0.0075, 0.005, 0.0025, 1e-4])
    clock = LRSchedule(TrainConfig(lr=0.01, schedule="linear", max_minutes=10, decay_fraction=0.5))
    assert clock.lr(1, elapsed_s=240.0) == pytest.approx(0.01)
    assert clock.lr(1, elapsed_s=450.0) == pytest.approx(0.005)


def test_validations_do_not_change_the_linear_schedule():
    s = LRSchedule(TrainConfig(lr=0.01, schedule="linear", max_steps=100, plateau_patience=0))
    for score in (1.0, 0.0, 0.0, 0.0):
        assert s.on_validation(score) is False
    assert s.lr(50) == pytest.approx(0.005)


def test_a_linear_run_logs_the_decaying_rate_and_ends_at_min_lr(make_config):
    run = train(make_config(train={"max_steps": 40, "validate_every": 20, "log_every": 10, "schedule": "linear",
                                   "warmup_steps": 0, "lr": 0.002, "min_lr": 1e-5}))
    logged = [(e["step"], e["lr"]) for e in metrics(run, "train")]
    assert logged == [(s, pytest.approx(max(0.002 * (1 - s / 40), 1e-5))) for s in (10, 20, 30, 40)]


def test_schedule_state_dict_round_trip():
    cfg = TrainConfig(lr=0.01, schedule="plateau", plateau_patience=0)
    s = LRSchedule(cfg)
    for score in (1.0, 0.0, 0.0):
        s.on_validation(score)
    t = LRSchedule(cfg)
    t.load_state_dict(s.state_dict())
    assert t.lr(77) == s.lr(77)
    assert t.on_validation(0.0) == s.on_validation(0.0)


# ----------------------------------------------------------------------------- helpers


def test_config_diff_lists_changed_nested_keys():
    old = {"train": {"lr": 1, "seed": 2}, "model": {"dropout": 0.1}}
    new = {"train": {"lr": 3, "seed": 2}, "model": {"dropout": 0.1}}
    assert config_diff(old, new) == [("train.lr", 1, 3)]


# ----------------------------------------------------------------------------- the run directory


def test_trained_run_directory_has_every_file(trained_run):
    for name in ("config.yaml", "tokenizer/src.model", "tokenizer/tgt.model", "checkpoints/best.pt",
                 "checkpoints/last.pt", "embeddings_init.pt", "metrics.jsonl", "train.log"):
        assert (trained_run / name).is_file(), name


def test_trained_run_metrics_have_train_validation_and_end_events(trained_run):
    events = metrics(trained_run)
    assert [e["step"] for e in events if e["event"] == "train"] == [10, 20, 30, 40]
    assert [e["step"] for e in events if e["event"] == "validation"] == [20, 40]
    assert events[-1]["event"] == "end" and events[-1]["step"] == 40
    v = next(e for e in events if e["event"] == "validation")
    assert {"dev_loss", "dev_bleu", "dev_ppl", "lr"} <= set(v)
    assert math.isfinite(next(e for e in events if e["event"] == "train")["loss"])


def test_trained_run_saves_the_resolved_config(trained_run, trained_run_config):
    assert trained_run_config["train"]["max_steps"] == 40
    assert trained_run_config["run"]["dir"] == str(trained_run)
    assert "hard_vocab_limit" in trained_run_config["tokenizer"]  # defaults are written out too


def test_trained_run_log_has_no_progress_bar(trained_run):
    log = (trained_run / "train.log").read_text(encoding="utf-8")
    assert "validation at step 40" in log and "stopped at step 40" in log
    assert "\r" not in log


def test_last_checkpoint_holds_everything_resume_needs(trained_run):
    ckpt = load_checkpoint(trained_run / "checkpoints" / "last.pt")
    assert {"model", "optimizer", "vocab", "trainer"} <= set(ckpt)
    assert {"step", "schedule", "stream", "rng_torch", "rng_python"} <= set(ckpt["trainer"])
    assert ckpt["trainer"]["step"] == 40


def test_embeddings_init_are_the_tables_before_training(trained_run):
    init = torch.load(trained_run / "embeddings_init.pt", weights_only=True)
    model = weights(trained_run)
    assert init["src"].shape == model["src_embed.table.weight"].shape
    assert not torch.equal(init["src"], model["src_embed.table.weight"])


def test_training_into_a_non_empty_run_dir_is_refused_and_leaves_it_unchanged(make_config, tmp_path):
    cfg = make_config()
    run = Path(cfg["run"]["dir"])
    run.mkdir()
    (run / "notes.txt").write_text("mine", encoding="utf-8")
    before = snapshot(run)
    with pytest.raises(NmtError, match="run directory exists.*--resume.*--overwrite"):
        train(cfg)
    assert snapshot(run) == before


def test_training_into_an_empty_existing_dir_is_fine(make_config):
    cfg = make_config(train={"max_steps": 2, "validate_every": 2})
    Path(cfg["run"]["dir"]).mkdir()
    assert (train(cfg) / "checkpoints" / "last.pt").is_file()


def test_run_dir_that_is_a_file_is_an_nmt_error(make_config):
    cfg = make_config()
    Path(cfg["run"]["dir"]).write_text("not a folder", encoding="utf-8")
    with pytest.raises(NmtError, match="run"):
        train(cfg)


def test_overwrite_replaces_an_existing_run_dir(make_config):
    run = train(make_config(train={"max_steps": 4, "validate_every": 2, "keep_checkpoints": 2}))
    train(make_config(train={"max_steps": 2, "validate_every": 2}), overwrite=True)
    assert not (run / "checkpoints" / "step_4.pt").exists()
    assert load_checkpoint(run / "checkpoints" / "last.pt")["trainer"]["step"] == 2
    assert [r["step"] for r in metrics(run, "end")] == [2]


def test_failed_start_leaves_no_run_dir_behind(make_config):
    cfg = make_config(tokenizer={"src_vocab_size": 5000})
    with pytest.raises(NmtError):
        train(cfg)
    assert not Path(cfg["run"]["dir"]).exists()


def test_max_epochs_stops_after_that_many_epochs(make_config):
    cfg = make_config(train={"max_steps": 0, "max_epochs": 1, "validate_every": 100})
    run = train(cfg)
    assert metrics(run)[-1] == {"event": "end", "step": 6, "reason": "reached train.max_epochs=1"}


def test_resume_without_a_run_dir_is_an_error(make_config):
    with pytest.raises(NmtError, match="run directory not found"):
        train(make_config(), resume=True)


def test_resume_with_a_changed_unsafe_key_lists_the_diff(make_config):
    cfg = make_config(train={"max_steps": 2, "validate_every": 2})
    run = train(cfg)
    before = snapshot(run)
    changed = make_config(train={"max_steps": 4, "validate_every": 2, "lr": 0.01}, model={"dropout": 0.2})
    with pytest.raises(NmtError) as e:
        train(changed, resume=True)
    msg = str(e.value)
    assert "train.lr: 0.003 -> 0.01" in msg
    assert "model.dropout: 0.1 -> 0.2" in msg
    assert "train.max_steps" not in msg.split("(safe to change")[0]  # a safe key is not listed
    assert snapshot(run) == before


# ----------------------------------------------------------------------------- resume = no interruption


RESUME_TRAIN = {"dev_max_sentences": 3, "validate_every": 10, "save_every": 10, "log_every": 5}


@pytest.mark.parametrize("n", [10, 13])  # on and off the validation grid
def test_resumed_run_equals_an_uninterrupted_run(make_config, n):
    whole = train(make_config("whole", train={**RESUME_TRAIN, "max_steps": 2 * n}))
    part = make_config("part", train={**RESUME_TRAIN, "max_steps": n})
    train(part)
    part["train"]["max_steps"] = 2 * n
    resumed = train(part, resume=True)
    assert load_checkpoint(resumed / "checkpoints" / "last.pt")["trainer"]["step"] == 2 * n
    assert_identical(weights(whole), weights(resumed))


def test_resumed_run_equals_an_uninterrupted_run_with_adam_and_state(make_config):
    n = 10
    whole = train(make_config("whole", train={**RESUME_TRAIN, "max_steps": 2 * n}))
    part = make_config("part", train={**RESUME_TRAIN, "max_steps": n})
    train(part)
    part["train"]["max_steps"] = 2 * n
    resumed = train(part, resume=True)
    a = load_checkpoint(whole / "checkpoints" / "last.pt")
    b = load_checkpoint(resumed / "checkpoints" / "last.pt")
    assert a["trainer"]["stream"] == b["trainer"]["stream"]
    assert torch.equal(a["trainer"]["rng_torch"], b["trainer"]["rng_torch"])
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(pa["exp_avg"], pb["exp_avg"]) and torch.equal(pa["exp_avg_sq"], pb["exp_avg_sq"])


def test_resume_writes_the_new_safe_values_into_config_yaml(make_config):
    cfg = make_config(train={"max_steps": 2, "validate_every": 2})
    train(cfg)
    cfg["train"]["max_steps"] = 3
    run = train(cfg, resume=True)
    saved = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert saved["train"]["max_steps"] == 3


def test_resumed_run_off_the_validation_grid_equals_an_uninterrupted_run_with_plateau(make_config):
    # stopping at step 13 validates there (13 is not a multiple of validate_every); that extra
    # validation must not change what the resumed run does (plateau schedule, early stopping)
    n, extra = 13, {"schedule": "plateau", "plateau_patience": 1, "patience": 0}
    whole = train(make_config("whole", train={**RESUME_TRAIN, **extra, "max_steps": 2 * n}))
    part = make_config("part", train={**RESUME_TRAIN, **extra, "max_steps": n})
    train(part)
    part["train"]["max_steps"] = 2 * n
    resumed = train(part, resume=True)
    assert_identical(weights(whole), weights(resumed))


def test_resume_drops_metrics_a_killed_session_logged_past_the_checkpoint(make_config):
    cfg = make_config("run", train={**RESUME_TRAIN, "max_steps": 10})
    run = train(cfg)
    with (run / "metrics.jsonl").open("a", encoding="utf-8") as f:  # as if a session was killed at step 12
        f.write('{"event": "train", "step": 12, "loss": 1.0}\n')
    cfg["train"]["max_steps"] = 15
    train(cfg, resume=True)
    steps = [r["step"] for r in metrics(run)]
    assert steps.count(12) == 0 and 15 in steps
    assert steps == sorted(steps)


def test_a_moved_run_directory_resumes_with_its_new_run_dir(make_config, tmp_path):
    cfg = make_config("old", train={**RESUME_TRAIN, "max_steps": 5})
    old = train(cfg)
    new = tmp_path / "moved"
    old.rename(new)
    cfg["run"]["dir"] = str(new)
    cfg["train"]["max_steps"] = 8
    train(cfg, resume=True)
    assert load_checkpoint(new / "checkpoints" / "last.pt")["trainer"]["step"] == 8


def test_keep_checkpoints_keeps_the_weights_of_the_newest_validations_only(make_config):
    run = train(make_config(train={"max_steps": 40, "validate_every": 10, "keep_checkpoints": 2}))
    kept = sorted(p.name for p in (run / "checkpoints").glob("step_*.pt"))
    assert kept == ["step_30.pt", "step_40.pt"]
    assert load_checkpoint(run / "checkpoints" / "step_40.pt")["step"] == 40


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_on_a_cpu(make_config, precision):
    """CPU autocast mixes dtypes as CUDA's does (and fp16 takes the gradient scaler)."""
    run = train(make_config(train={"device": "cpu", "precision": precision, "max_steps": 4, "validate_every": 4}))
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["trainer"]["step"] == 4
    assert (last["trainer"]["scaler"] is not None) == (precision == "fp16")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_a_gpu_where_there_is_none_is_refused_in_one_line(make_config, tmp_path):
    with pytest.raises(NmtError, match="'train.device' is 'cuda' but torch sees no CUDA GPU"):
        train(make_config(train={"device": "cuda"}))
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- non-finite gradients


def poison_gradients(monkeypatch, steps: set[int]) -> None:
    """The models the trainer builds get a NaN gradient on one weight at the given (1-based)
    backward passes: a finite loss with a non-finite gradient."""
    import nmt.trainer

    build = nmt.trainer.build_model

    def build_poisoned(*args, **kwargs):
        model = build(*args, **kwargs)
        calls = [0]

        def hook(grad: torch.Tensor) -> torch.Tensor:
            calls[0] += 1
            return torch.full_like(grad, float("nan")) if calls[0] in steps else grad

        model.decoder.readout.bias.register_hook(hook)
        return model

    monkeypatch.setattr(nmt.trainer, "build_model", build_poisoned)


def test_updates_with_a_non_finite_gradient_are_skipped_counted_and_logged(make_config, monkeypatch):
    poison_gradients(monkeypatch, {3, 4})
    run = train(make_config(train={"max_steps": 10, "validate_every": 10, "log_every": 5}))
    assert [r["skipped_steps"] for r in metrics(run, "train")] == [2, 2]
    assert load_checkpoint(run / "checkpoints" / "last.pt")["trainer"]["skipped_steps"] == 2
    log = (run / "train.log").read_text(encoding="utf-8")
    assert "step 3: update skipped, the gradient is not finite (1 skipped so far)" in log
    assert "step 4: update skipped, the gradient is not finite (2 skipped so far)" in log


def test_a_skipped_update_leaves_every_weight_as_it_was(make_config, monkeypatch):
    poison_gradients(monkeypatch, {3})
    seen: list[dict[str, torch.Tensor]] = []
    import nmt.trainer

    real_update = nmt.trainer.update

    def spy(model, *args, **kwargs):
        before = {k: v.clone() for k, v in model.state_dict().items()}
        result = real_update(model, *args, **kwargs)
        if not result.applied:
            seen.append({k: torch.equal(v, model.state_dict()[k]) for k, v in before.items()})
        return result

    monkeypatch.setattr(nmt.trainer, "update", spy)
    train(make_config(train={"max_steps": 4, "validate_every": 4}))
    assert len(seen) == 1 and all(seen[0].values())


def test_a_run_of_skipped_updates_stops_training_and_keeps_the_last_checkpoint(make_config, monkeypatch):
    poison_gradients(monkeypatch, set(range(5, 100)))
    cfg = make_config(train={"max_steps": 20, "save_every": 2, "validate_every": 20, "max_skipped_steps": 3})
    with pytest.raises(NmtError, match=r"not finite in 3 updates in a row \(steps 5-7; 'train.max_skipped_steps' "
                                       r"is 3\).*last good checkpoint .*last.pt is kept"):
        train(cfg)
    assert load_checkpoint(Path(cfg["run"]["dir"]) / "checkpoints" / "last.pt")["trainer"]["step"] == 6
