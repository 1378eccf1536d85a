"""Tests for nmt/cli.py as a user runs it: through `nmt.cli.main(argv)` in this process (helpers' `nmt`),
and in processes of their own where only a process shows it (the console script, exit codes, the
prompt on a pseudo-terminal, Ctrl-C)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DEV_PAIRS, write_lines
from helpers import ENV, ROOT, assert_error, err, nmt, ok, out


# ----------------------------------------------------------------------------- the installed command


def test_the_installed_console_script_runs_and_refuses_bad_input_in_one_line(tmp_path):
    script = Path(sys.executable).parent / "nmt"  # pip install's entry point beside the interpreter
    if not script.is_file():
        pytest.skip(f"{script} is not installed (pip install -e . makes it)")
    proc = subprocess.run([str(script), "--help"], capture_output=True, cwd=tmp_path, env=ENV)
    assert "train" in ok(proc) and "translate" in out(proc)
    proc = subprocess.run([str(script), "translate", str(tmp_path / "no_run")], input=b"a\n", capture_output=True,
                          cwd=tmp_path, env=ENV)
    assert_error(proc, "no_run")


# ----------------------------------------------------------------------------- help


def test_top_level_help_lists_the_subcommands():
    text = ok(nmt("--help"))
    for word in ("train", "evaluate", "translate", "plot", "average", "embeddings", "--debug"):
        assert word in text


@pytest.mark.parametrize(
    "command,options",
    [
        ("train", ["--set", "--resume", "--overwrite", "--debug", "config"]),
        ("translate", ["--input", "--output", "--beam", "--nbest", "--checkpoint", "--interactive"]),
        ("evaluate", ["--src", "--ref", "--beam", "--checkpoint", "averaged", "--out"]),
        ("plot", ["OUT.png", "RUN/curves.png", "matplotlib"]),
        ("average", ["--last", "--output", "--overwrite", "train.keep_checkpoints", "RUN/checkpoints/averaged.pt"]),
    ],
)
def test_subcommand_help_mentions_its_options(command, options):
    text = ok(nmt(command, "--help"))
    for option in options:
        assert option in text


def test_no_subcommand_is_a_usage_error():
    proc = nmt()
    assert proc.returncode == 2
    assert "usage:" in err(proc)


# ----------------------------------------------------------------------------- train errors


def test_train_with_unknown_key_exits_2_with_one_line(tmp_path):
    (tmp_path / "c.yaml").write_text("data: {train: t, dev: d}\ntrain: {max_step: 3}\n", encoding="utf-8")
    proc = nmt("train", "c.yaml", cwd=tmp_path)
    assert_error(proc, "c.yaml", "did you mean 'train.max_steps'?")


def test_train_with_missing_corpus_exits_2_and_names_the_file(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "data: {train: missing/train, dev: missing/dev}\nrun: {dir: r}\ntrain: {progress: false}\n", encoding="utf-8"
    )
    proc = nmt("train", "c.yaml", cwd=tmp_path)
    assert_error(proc, "missing/train.en", "not found")
    assert not (tmp_path / "r").exists()


def test_debug_after_the_subcommand_shows_the_traceback(tmp_path):
    proc = nmt("train", "nope.yaml", "--debug", cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" in err(proc) and "NmtError" in err(proc)


def test_debug_before_the_subcommand_shows_the_traceback(tmp_path):
    # `nmt --debug train …`: the top-level flag must not be reset by the subcommand's default
    proc = nmt("--debug", "train", "nope.yaml", cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" in err(proc) and "NmtError" in err(proc)


# ----------------------------------------------------------------------------- translate as a filter

FILTER_INPUT = [
    "the cat eats an apple .",
    "",
    "   \t  ",
    "the dog\x00 sees\x07 the\x1b[31m book .",
    "the king\x0c likes\x1c the bread\u2028 .",
    "the queen takes a fish ." * 400,  # a very long line: ~2,400 words
    "my sister eats the book .",
]


@pytest.fixture(scope="module")
def filtered(trained_run):
    """One run of `nmt translate RUN --beam 2` over FILTER_INPUT on stdin."""
    text = "".join(s + "\n" for s in FILTER_INPUT[:-1]) + FILTER_INPUT[-1] + "\r\n"  # one CRLF line end
    return nmt("translate", str(trained_run), "--beam", "2", input=text)


def test_filter_exits_0_without_stderr_noise(filtered):
    ok(filtered)


def test_filter_writes_exactly_one_line_per_input_line(filtered):
    # lines end at \n (or \r\n) only: \x0c, \x1c and \u2028 inside a line must not split it
    assert len(out(filtered).split("\n")) == len(FILTER_INPUT) + 1  # + the text after the last \n
    assert out(filtered).endswith("\n")


def test_filter_writes_an_empty_line_for_an_empty_input_line(filtered):
    assert out(filtered).split("\n")[1] == ""


def test_filter_writes_an_empty_line_for_a_whitespace_only_line(filtered):
    assert out(filtered).split("\n")[2] == ""


def test_filter_output_matches_the_python_api(trained_run, filtered):
    from nmt import Translator

    expected = Translator.load(trained_run).translate([FILTER_INPUT[0], FILTER_INPUT[-1]], beam=2)
    lines = out(filtered).split("\n")
    assert [lines[0], lines[-2]] == expected


def test_filter_with_input_and_output_files(trained_run, tmp_path):
    src = write_lines(tmp_path / "in.en", ["the cat eats an apple .", "", "the dog sees the book ."])
    proc = nmt("translate", str(trained_run), "--input", str(src), "--output", str(tmp_path / "out.fr"), "--beam", "1")
    assert ok(proc) == ""
    lines = (tmp_path / "out.fr").read_text(encoding="utf-8").split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""


def test_filter_output_into_a_missing_folder_exits_2(trained_run, tmp_path):
    proc = nmt("translate", str(trained_run), "--output", str(tmp_path / "no" / "such" / "out.fr"), input="a\n")
    assert_error(proc, "out.fr")


def test_filter_rejects_invalid_utf8_on_stdin(trained_run):
    proc = nmt("translate", str(trained_run), input=b"ok\ncaf\xe9\n")
    assert_error(proc, "<stdin>: line 2")


@pytest.fixture(scope="module")
def nbest_output(trained_run) -> list[str]:
    proc = nmt("translate", str(trained_run), "--nbest", "2", "--beam", "2",
               input="the cat eats an apple .\n\nthe dog sees the book .\n")
    return ok(proc).split("\n")


def test_nbest_prints_score_translation_pairs(nbest_output):
    for line in (nbest_output[0], nbest_output[2]):
        fields = line.split("\t")
        assert len(fields) == 4
        s1, s2 = float(fields[0]), float(fields[2])
        assert s1 >= s2


def test_nbest_keeps_an_empty_line_for_an_empty_input_line(nbest_output):
    assert len(nbest_output) == 4
    assert nbest_output[1] == ""


def test_nbest_above_beam_exits_2(trained_run):
    proc = nmt("translate", str(trained_run), "--nbest", "3", "--beam", "2", input="a\n")
    assert_error(proc, "n_best is 3; it must be at most the beam (2)")


def test_interactive_with_piped_input_prompts_translates_and_exits_0_at_eof(trained_run):
    proc = nmt("translate", str(trained_run), "--interactive", "--beam", "1",
               input="the cat eats an apple .\n\nthe dog sees the book .\n")
    stdout = ok(proc)
    assert stdout.count("en> ") == 4  # three lines read, then EOF at the fourth prompt
    assert stdout.count("fr: ") == 2  # the empty line is skipped
    assert "Ctrl-D" in err(proc)
    assert "Traceback" not in err(proc)


def prompt_session(run: Path, keys: list[bytes], *args: str, timeout: float = 90) -> tuple[int, str]:
    """`nmt translate RUN ARGS` on a pseudo-terminal, as a user at a terminal: type each of `keys`
    once the next "en> " prompt shows; return the exit code and all the terminal showed."""
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        # as a shell starts a foreground job: Ctrl-C at its default, even when these tests run
        # in the background of a script (which ignores SIGINT, and exec keeps that)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        env = {**ENV, "TERM": "dumb"}
        os.chdir(ROOT)
        os.execve(sys.executable, [sys.executable, "-m", "nmt", "translate", str(run), *args], env)
    shown, pending, prompts = b"", list(keys), 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child has closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if pending and shown.count(b"en> ") > prompts:
                prompts += 1
                # as a person types: not in the instant the prompt appears, before readline has
                # put the terminal in its mode (keys sent earlier can be lost with a Ctrl-C)
                time.sleep(0.5)
                os.write(fd, pending.pop(0))
        else:
            os.kill(pid, 9)
            pytest.fail(f"the prompt did not finish in {timeout}s: {shown!r}")
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode("utf-8", "replace")


@pytest.fixture(scope="module")
def tty_session(trained_run) -> tuple[int, str]:
    """A sentence with --nbest 2, the same one again from readline's history (Ctrl-P), then Ctrl-D."""
    return prompt_session(trained_run, [b"the cat eats an apple .\r", b"\x10\r", b"\x04"], "--beam", "2", "--nbest", "2")


def test_prompt_starts_with_a_help_line(tty_session):
    _, shown = tty_session
    first = shown.splitlines()[0]
    assert "strategy beam, beam 2, length penalty 1, n-best 2" in first and "Ctrl-D or Ctrl-C quits" in first


def test_prompt_shows_the_n_best_with_scores_and_the_time_of_each_sentence(tty_session):
    _, shown = tty_session
    assert len(re.findall(r"^fr \(-?\d+\.\d{3}\): ", shown, re.M)) == 4  # 2 best, twice
    assert len(re.findall(r"^  \[\d+\.\d\ds\]", shown, re.M)) == 2


def test_prompt_recalls_earlier_lines_with_readline(tty_session):
    _, shown = tty_session
    assert shown.count("the cat eats an apple .") >= 2  # typed, then recalled and echoed


def test_ctrl_d_at_the_prompt_exits_0(tty_session):
    code, shown = tty_session
    assert code == 0 and "Traceback" not in shown


def test_ctrl_c_at_the_prompt_exits_130_without_a_traceback(trained_run):
    code, shown = prompt_session(trained_run, [b"the cat\x03"])  # Ctrl-C halfway through a line
    assert code == 130
    assert "Traceback" not in shown and "KeyboardInterrupt" not in shown


# ----------------------------------------------------------------------------- evaluate


@pytest.fixture(scope="module")
def scored_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("testset")
    src = write_lines(d / "test.en", [p[0] for p in DEV_PAIRS])
    ref = write_lines(d / "test.fr", [p[1] for p in DEV_PAIRS])
    return d, src, ref


@pytest.fixture(scope="module")
def evaluated(trained_run, scored_set, tmp_path_factory):
    """`nmt evaluate` on a copy of the run (it writes RUN/hyps/…); returns (process, run copy)."""
    import shutil

    run = tmp_path_factory.mktemp("eval") / "run"
    shutil.copytree(trained_run, run)
    _, src, ref = scored_set
    return nmt("evaluate", str(run), "--src", str(src), "--ref", str(ref), "--beam", "2"), run


def test_evaluate_prints_bleu_and_chrf_with_signatures(evaluated):
    proc, _ = evaluated
    lines = ok(proc).splitlines()
    assert lines[0].startswith("BLEU = ")
    assert "signature: nrefs:1|case:mixed|eff:no|tok:13a" in lines[1]
    assert lines[2].startswith("chrF2 = ")
    assert "signature: nrefs:1|case:mixed" in lines[3]


def test_evaluate_writes_one_hypothesis_per_source_line_into_the_run_dir(evaluated):
    proc, run = evaluated
    ok(proc)
    hyp_file = run / "hyps" / "test.en.beam2.hyp"
    hyps = hyp_file.read_text(encoding="utf-8").split("\n")
    assert len(hyps) == len(DEV_PAIRS) + 1 and hyps[-1] == ""
    assert str(hyp_file) in out(proc)


def test_evaluate_missing_run_dir_exits_2(tmp_path, scored_set):
    _, src, ref = scored_set
    proc = nmt("evaluate", str(tmp_path / "no_run"), "--src", str(src), "--ref", str(ref))
    assert_error(proc, "no_run", "run directory not found")


def test_evaluate_line_count_mismatch_exits_2(trained_run, tmp_path, scored_set):
    _, src, _ = scored_set
    short = write_lines(tmp_path / "short.fr", ["le chat ."])
    proc = nmt("evaluate", str(trained_run), "--src", str(src), "--ref", str(short))
    assert_error(proc, f"has {len(DEV_PAIRS)} lines", "has 1")


def test_evaluate_beam_0_exits_2(trained_run, scored_set):
    _, src, ref = scored_set
    proc = nmt("evaluate", str(trained_run), "--src", str(src), "--ref", str(ref), "--beam", "0")
    assert_error(proc, "beam is 0; it must be a whole number of at least 1")


def test_evaluate_and_translate_decode_with_the_length_penalty_given(evaluated, scored_set):
    from nmt import Translator

    _, run = evaluated
    _, src, ref = scored_set
    lines = src.read_text(encoding="utf-8").splitlines()
    expected = Translator.load(run).translate(lines, beam=2, length_penalty=3.0)
    proc = nmt("evaluate", str(run), "--src", str(src), "--ref", str(ref), "--beam", "2", "--length-penalty", "3")
    assert "decode: strategy beam, beam 2, length penalty 3," in ok(proc)
    assert (run / "hyps" / "test.en.beam2.lp3.hyp").read_text(encoding="utf-8").splitlines() == expected
    proc = nmt("translate", str(run), "--beam", "2", "--length-penalty", "3", input="\n".join(lines) + "\n")
    assert ok(proc).splitlines() == expected


@pytest.mark.parametrize("command", ["evaluate", "translate"])
def test_a_negative_length_penalty_exits_2(trained_run, command):
    proc = nmt(command, str(trained_run), "--length-penalty", "-0.5", input="a\n")
    assert_error(proc, "length_penalty is -0.5; it must be a number of at least 0")


def test_translate_directory_that_is_not_a_run_exits_2(tmp_path):
    proc = nmt("translate", str(tmp_path), input="a\n")
    assert_error(proc, "not a run directory")


def test_translate_corrupt_checkpoint_exits_2(trained_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    (run / "checkpoints" / "best.pt").write_bytes(b"garbage")
    proc = nmt("translate", str(run), input="a\n")
    assert_error(proc, "best.pt")


# ----------------------------------------------------------------------------- attention plots


def test_attention_plots_write_one_png_per_non_empty_line(trained_run, tmp_path):
    pytest.importorskip("matplotlib")
    plots = tmp_path / "attn"
    proc = nmt("translate", str(trained_run), "--beam", "2", "--attention-plots", str(plots),
               input="the cat eats an apple .\n\nthe dog sees the book .\n")
    assert len(ok(proc).split("\n")) == 4  # three lines and the final newline
    assert sorted(p.name for p in plots.iterdir()) == ["0001.png", "0003.png"]
    assert (plots / "0001.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
