"""nmt average: the mean of the last K step checkpoints, its dev BLEU, and one-line errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from conftest import DEV_PAIRS, write_lines
from helpers import assert_error, nmt, ok, weights
from nmt.average import average_run, average_state_dicts
from nmt.checkpoint import load_checkpoint, save_checkpoint
from nmt.errors import NmtError


def test_averaging_k_identical_state_dicts_gives_the_same_tensors():
    state = {"w": torch.randn(4, 3), "b": torch.randn(3)}
    averaged = average_state_dicts([state] * 5)
    assert averaged.keys() == state.keys()
    assert all(torch.equal(averaged[k], state[k]) for k in state)


def test_averaging_two_state_dicts_gives_their_mean_in_the_original_dtype():
    a = {"w": torch.tensor([1.0, 2.0, -3.0]), "h": torch.tensor([1.0], dtype=torch.float16)}
    b = {"w": torch.tensor([3.0, 2.5, 3.0]), "h": torch.tensor([2.0], dtype=torch.float16)}
    averaged = average_state_dicts([a, b])
    assert torch.equal(averaged["w"], torch.tensor([2.0, 2.25, 0.0]))
    assert averaged["h"].dtype == torch.float16 and averaged["h"].item() == 1.5


def test_averaging_sums_in_float64():
    # in float32, 1 + 2**-24 rounds back to 1, so a float32 running sum would give exactly 0.25
    states = [{"w": torch.tensor([1.0])}] + [{"w": torch.tensor([2.0**-24])}] * 3
    expected = torch.tensor([(1 + 3 * 2.0**-24) / 4], dtype=torch.float64).float()
    assert expected.item() != 0.25
    assert torch.equal(average_state_dicts(states)["w"], expected)


def test_integer_tensors_are_taken_from_the_newest_state():
    states = [{"n": torch.tensor([1])}, {"n": torch.tensor([4])}]
    assert average_state_dicts(states)["n"].item() == 4


def test_state_dicts_of_different_shapes_are_refused():
    with pytest.raises(ValueError, match="shapes differ"):
        average_state_dicts([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}])


# ----------------------------------------------------------------------------- on a run


def with_steps(trained_run: Path, tmp_path: Path, steps: list[int], scale: dict[int, float] | None = None) -> Path:
    """A copy of the run with checkpoints/step_<N>.pt: best.pt's weights, times scale[N] if given."""
    run = shutil.copytree(trained_run, tmp_path / "run")
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    best.pop("format_version")
    for step in steps:
        factor = (scale or {}).get(step, 1.0)
        model = {k: v * factor if v.is_floating_point() else v for k, v in best["model"].items()}
        save_checkpoint(run / "checkpoints" / f"step_{step}.pt", {**best, "model": model, "step": step})
    return run


def test_average_of_identical_checkpoints_equals_the_checkpoint_and_keeps_dev_bleu(trained_run, tmp_path):
    run = with_steps(trained_run, tmp_path, [10, 20, 30])
    report = average_run(run, last=3)
    averaged = weights(run, "averaged")
    original = weights(run, "best")
    assert all(torch.equal(averaged[k], original[k]) for k in original)
    assert report.averaged_bleu == report.best_bleu


def test_average_takes_the_newest_k_and_writes_their_mean(trained_run, tmp_path):
    run = with_steps(trained_run, tmp_path, [5, 10, 20], scale={5: 100.0, 10: 1.0, 20: 3.0})
    report = average_run(run, last=2, dev=False)
    assert [p.name for p in report.sources] == ["step_10.pt", "step_20.pt"]
    averaged = load_checkpoint(report.output)
    original = weights(run, "best")
    key = next(iter(original))
    assert torch.allclose(averaged["model"][key], 2.0 * original[key])
    assert averaged["averaged_from"] == ["step_10.pt", "step_20.pt"] and averaged["step"] == 20


def test_fewer_step_checkpoints_than_k_says_how_many_and_names_the_key(trained_run, tmp_path):
    run = with_steps(trained_run, tmp_path, [10, 20])
    with pytest.raises(NmtError, match="needs 3 step checkpoints.*found 2.*train.keep_checkpoints"):
        average_run(run, last=3)


def test_k_below_1_is_refused(trained_run, tmp_path):
    run = with_steps(trained_run, tmp_path, [10])
    with pytest.raises(NmtError, match="--last must be at least 1"):
        average_run(run, last=0)


def test_an_existing_output_needs_overwrite(trained_run, tmp_path):
    run = with_steps(trained_run, tmp_path, [10])
    average_run(run, last=1, dev=False)
    with pytest.raises(NmtError, match="averaged.pt: exists; pass --overwrite"):
        average_run(run, last=1, dev=False)
    average_run(run, last=1, dev=False, overwrite=True)


# ----------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def averaged_run(trained_run, tmp_path_factory) -> tuple[Path, object]:
    run = with_steps(trained_run, tmp_path_factory.mktemp("avg"), [20, 40])
    return run, nmt("average", str(run), "--last", "2")


def test_cli_average_reports_dev_bleu_of_best_and_average(averaged_run):
    run, proc = averaged_run
    lines = ok(proc).splitlines()
    assert lines[0] == f"averaged 2 checkpoints (step_20.pt, step_40.pt) into {run / 'checkpoints' / 'averaged.pt'}"
    assert lines[1].startswith("dev BLEU (greedy, 8 sentences): best.pt ") and lines[1].endswith("(+0.00)")


def test_evaluate_accepts_checkpoint_averaged(averaged_run, tmp_path):
    run, _ = averaged_run
    src = write_lines(tmp_path / "dev.en", [p[0] for p in DEV_PAIRS])
    ref = write_lines(tmp_path / "dev.fr", [p[1] for p in DEV_PAIRS])
    proc = nmt("evaluate", str(run), "--checkpoint", "averaged", "--beam", "1", "--src", str(src), "--ref", str(ref),
               "--out", str(tmp_path / "hyp"))
    assert "checkpoint: averaged" in ok(proc)


def test_translate_accepts_checkpoint_averaged(averaged_run):
    run, _ = averaged_run
    proc = nmt("translate", str(run), "--checkpoint", "averaged", "--beam", "1", input="the cat eats an apple .\n")
    assert len(ok(proc).splitlines()) == 1


def test_cli_average_with_too_few_checkpoints_is_one_line(trained_run):
    proc = nmt("average", str(trained_run), "--last", "2")
    assert_error(proc, "found 0", "train.keep_checkpoints: 2")
