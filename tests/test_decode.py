"""Tests for the one decoding path (nmt/search.py `decode` over runtime/nmt_runtime/search.py, decode_options.py, ensemble.py):
strategies, n-gram blocking, minimum length, ensembles, batch invariance, and the same refusal
from every front end."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import array_api_compat
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import DEV_PAIRS, PAIRS, tiny_config_dict, write_parallel
from helpers import TINY_TGT_VOCAB, random_sources, tiny_seq2seq, write_yaml
from nmt.cli import main
from nmt.config import DecodeConfig
from nmt.data import DevSet
from nmt_runtime.decode_options import DecodeOptionError, DecodeOptions
from nmt_runtime.ensemble import Ensemble
from nmt.errors import NmtError
from nmt.evaluate import hypotheses_name, score
from nmt.model.seq2seq import Seq2Seq
from nmt.batching import collate
from nmt.search import decode, max_output_length, search
from nmt_runtime.search import _draw
from nmt.tokenizer import BOS_ID, EOS_ID, PAD_ID
from nmt.translate import Translator, split_member
from nmt.validation import validate

SOURCES = [en for en, _ in PAIRS]  # the toy "test set": 96 sentences


@pytest.fixture(scope="module")
def second_run(tmp_path_factory) -> Path:
    """Another toy run: same data and tokenizer settings (so the same tokenizer files), another seed."""
    from nmt.trainer import train

    root = tmp_path_factory.mktemp("second")
    train_prefix = write_parallel(root / "data", "train", PAIRS)
    dev_prefix = write_parallel(root / "data", "dev", DEV_PAIRS)
    return train(tiny_config_dict(root / "run", train_prefix, dev_prefix, train={"seed": 7, "max_steps": 30}))


@pytest.fixture(scope="module")
def translator(trained_run) -> Translator:
    return Translator.load(trained_run)


def opts(**given: object) -> DecodeOptions:
    """DecodeOptions as a front end makes them: the defaults with these given (greedy and sample: beam 1)."""
    return DecodeOptions.resolve(given)


def tokens(hyps) -> list[list[list[int]]]:
    return [[h.tokens for h in nbest] for nbest in hyps]


@torch.inference_mode()
def reference_greedy(model: Seq2Seq, ids: list[int], options: DecodeOptions) -> list[int]:
    """Greedy decoding of one sentence, written as plainly as possible: the one path must agree."""
    src = torch.tensor([ids + [EOS_ID]])
    limit = max_output_length([len(ids) + 1], options.max_len_ratio, options.max_len_extra)[0]
    state, prev, out = model.encode(src, torch.tensor([len(ids) + 1])), torch.tensor([BOS_ID]), []
    for t in range(limit + 1):
        log_probs, state, _ = model.decode_step(prev, state)
        log_probs = log_probs[0].clone()
        log_probs[[PAD_ID, BOS_ID]] = -math.inf
        if t == limit:
            log_probs[torch.arange(len(log_probs)) != EOS_ID] = -math.inf
        token = int(log_probs.argmax())
        if token == EOS_ID:
            return out
        out.append(token)
        prev = torch.tensor([token])
    raise AssertionError("the forced EOS ends every sentence")


# ----------------------------------------------------------------------------- one path


def test_greedy_through_the_one_path_is_the_plain_greedy_loop():
    model, sources = tiny_seq2seq(), random_sources(20, seed=3)
    options = opts(strategy="greedy", beam=1)
    got = decode(model, sources, options, batch_size=7)
    assert [nbest[0].tokens for nbest in got] == [reference_greedy(model, ids, options) for ids in sources]


def test_validation_bleu_is_the_bleu_of_plain_greedy_translations(translator):
    """validate() decodes the dev set through `decode`; the plain loop gives the same BLEU."""
    model, cfg = translator.model, translator.cfg
    dev_src = [translator.src_tok.encode(en) for en, _ in DEV_PAIRS]
    dev = DevSet(dev_src, [translator.tgt_tok.encode(fr) for _, fr in DEV_PAIRS], [fr for _, fr in DEV_PAIRS])
    result = validate(model, dev, translator.tgt_tok, cfg.decode, torch.device("cpu"))
    options = cfg.decode.options().given(strategy="greedy")
    plain = [translator.tgt_tok.decode(reference_greedy(model, ids, options)) for ids in dev_src]
    assert result.scores.bleu == score(plain, dev.references).bleu


def test_beam_one_is_greedy_and_greedy_scores_are_log_probabilities():
    model, sources = tiny_seq2seq(), random_sources(10, seed=4)
    greedy = decode(model, sources, opts(strategy="greedy", beam=1, length_penalty=2.0))
    beam1 = decode(model, sources, DecodeOptions(beam=1, length_penalty=2.0))
    assert tokens(greedy) == tokens(beam1)
    assert [h[0].score for h in greedy] == [h[0].score for h in beam1]
    for ids, [h] in zip(sources, greedy):  # the score is log p(tokens, EOS), no length penalty
        src = torch.tensor([ids + [EOS_ID]])
        tgt = torch.tensor([[BOS_ID] + h.tokens])
        with torch.inference_mode():
            logits, _ = model(src, torch.tensor([len(ids) + 1]), tgt)
        logp = logits.log_softmax(-1)[0, torch.arange(len(h.tokens) + 1), h.tokens + [EOS_ID]].sum()
        assert h.score == pytest.approx(float(logp), abs=1e-4)


@pytest.mark.parametrize("options", [opts(strategy="greedy"), DecodeOptions(beam=3, n_best=2),
                                     opts(strategy="sample", n_best=2)], ids=["greedy", "beam", "sample"])
def test_a_diverged_model_still_gives_every_sentence_its_hypotheses(options):
    """NaN log-probabilities (a run whose weights blew up, validated all the same) must not lose sentences."""
    model = tiny_seq2seq()
    with torch.no_grad():
        model.generator.weight.fill_(float("nan"))
    hyps = decode(model, random_sources(5, seed=2), options)
    assert [len(nbest) for nbest in hyps] == [options.n_best] * 5


def test_an_empty_source_gets_an_empty_hypothesis_without_the_model():
    model = tiny_seq2seq()
    [[empty], [full]] = decode(model, [[], [5, 6]], DecodeOptions(beam=2))
    assert empty.tokens == [] and empty.score == 0.0 and full.score < 0


# ----------------------------------------------------------------------------- batch invariance


@pytest.mark.parametrize("options", [opts(strategy="greedy", beam=1), DecodeOptions(beam=5, n_best=2),
                                     opts(strategy="sample", n_best=2, seed=3, top_p=0.9)],
                         ids=["greedy", "beam 5", "sample"])
def test_the_toy_test_set_decodes_the_same_in_batches_of_1_7_and_100(translator, options):
    ids = translator.src_tok.encode_batch(SOURCES)
    runs = {size: decode(translator.model, ids, options, batch_size=size) for size in (1, 7, 100)}
    assert tokens(runs[1]) == tokens(runs[7]) == tokens(runs[100])
    # the scores are not bitwise equal: the BLAS rounds a matmul's tail rows (a row count that is
    # not a multiple of its kernel's block) in another order (runtime/nmt_runtime/search.py's docstring); measured
    # at most 1.6e-5 on a toy score of -10 to -90, bounded here
    for size in (7, 100):
        for alone, batched in zip(runs[1], runs[size]):
            assert [h.score for h in batched] == pytest.approx([h.score for h in alone], abs=1e-4, rel=0)


# ----------------------------------------------------------------------------- sampling


def test_a_seed_makes_sampling_reproducible_and_another_seed_samples_otherwise(translator):
    sample = dict(strategy="sample", n_best=3)
    first = translator.translate_full(SOURCES[:20], seed=1, **sample)
    again = translator.translate_full(SOURCES[:20], seed=1, **sample)
    other = translator.translate_full(SOURCES[:20], seed=2, **sample)
    texts = lambda result: [[h.text for h in nbest] for nbest in result]  # noqa: E731
    assert texts(first) == texts(again)
    assert texts(first) != texts(other)
    for nbest in first:  # n samples a sentence, best first
        assert len(nbest) == 3 and [h.score for h in nbest] == sorted((h.score for h in nbest), reverse=True)


def test_a_sentences_samples_do_not_depend_on_its_batch():
    model, sources = tiny_seq2seq(), random_sources(9, seed=5)
    options = opts(strategy="sample", n_best=2, seed=11)
    together = decode(model, sources, options, batch_size=9)
    alone = [decode(model, [ids], options)[0] for ids in sources]
    assert tokens(together) == tokens(alone)


def test_top_k_1_and_a_tiny_top_p_sample_the_greedy_translation():
    model, sources = tiny_seq2seq(), random_sources(30, seed=6)
    greedy = tokens(decode(model, sources, opts(strategy="greedy", beam=1)))
    for cut in (dict(top_k=1), dict(top_p=1e-6)):
        assert tokens(decode(model, sources, opts(strategy="sample", seed=1, **cut))) == greedy


def test_sampling_tends_to_greedy_as_the_temperature_falls(translator):
    model, sources = translator.model, translator.src_tok.encode_batch(SOURCES)
    greedy = tokens(decode(model, sources, opts(strategy="greedy")))

    def agreement(temperature: float) -> float:
        """The mean share of each greedy translation that the sample starts with."""
        sampled = tokens(decode(model, sources, opts(strategy="sample", seed=2, temperature=temperature)))
        shares = []
        for [s], [g] in zip(sampled, greedy):
            same = next((i for i, (a, b) in enumerate(zip(s, g)) if a != b), min(len(s), len(g)))
            shares.append(same / max(len(g), 1))
        return sum(shares) / len(shares)

    # at 1e-6 only logits within ~1e-5 of the best are ever drawn; at 1e-4 the 40-step model's
    # near-ties (gaps under ~1e-3) still were, 2% of the tokens at issue 30's arithmetic
    rates = [agreement(t) for t in (1.0, 0.1, 0.01, 1e-6)]
    assert rates == sorted(rates) and rates[0] < 0.1 and rates[-1] > 0.99, rates


def test_a_tiny_temperature_samples_the_greedy_translation_without_overflowing():
    model, sources = tiny_seq2seq(), random_sources(10, seed=6)
    greedy = tokens(decode(model, sources, opts(strategy="greedy")))
    for temperature in (1e-40, 1e-300):  # log-probs / T would overflow to -inf and NaN
        assert tokens(decode(model, sources, opts(strategy="sample", seed=1, temperature=temperature))) == greedy


def test_search_alone_honours_the_seed():
    model, sources = tiny_seq2seq(), random_sources(6, seed=2)
    src, lengths = collate(sources, None, list(range(6))).src, collate(sources, None, list(range(6))).src_lengths
    options = opts(strategy="sample", seed=4, n_best=2)
    assert tokens(search(model, src, lengths, options)) == tokens(search(model, src, lengths, options))
    assert tokens(search(model, src, lengths, options)) == tokens(decode(model, sources, options))


@pytest.mark.parametrize("library", ["torch", "numpy"])
def test_top_p_keeps_the_fewest_tokens_that_hold_p(library):
    log_probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log().repeat(200, 1)
    if library == "numpy":
        log_probs = log_probs.numpy()
    xp = array_api_compat.array_namespace(log_probs)

    def drawn(**given) -> set[int]:
        generators = [np.random.default_rng(i) for i in range(200)]
        return set(np.asarray(_draw(xp, log_probs, opts(strategy="sample", **given), generators)).reshape(-1).tolist())

    for top_p, allowed in ((0.5, {0}), (0.6, {0, 1}), (0.9, {0, 1, 2}), (1.0, {0, 1, 2, 3})):
        assert drawn(top_p=top_p) == allowed, top_p
    assert drawn(top_k=2) == {0, 1}


# ----------------------------------------------------------------------------- blocking and length


def repeats_an_ngram(seq: list[int], n: int) -> bool:
    grams = [tuple(seq[i : i + n]) for i in range(len(seq) - n + 1)]
    return len(grams) != len(set(grams))


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 3), seed=st.integers(0, 3),
       how=st.sampled_from([dict(strategy="greedy", beam=1), dict(beam=3, n_best=3), dict(strategy="sample", n_best=2)]))
def test_no_output_repeats_an_ngram_of_the_blocked_size(n, seed, how):
    model, sources = tiny_seq2seq(seed), random_sources(6, seed=seed, lo=6, hi=12)
    options = opts(no_repeat_ngram_size=n, seed=seed, **how)
    for nbest in decode(model, sources, options):
        for h in nbest:
            assert not repeats_an_ngram(h.tokens, n), (n, h.tokens)


def test_without_blocking_these_models_do_repeat_ngrams():
    """So the property above is a property of blocking, not of the models it runs on."""
    model, sources = tiny_seq2seq(2), random_sources(12, seed=2, lo=8, hi=12)
    plain = [h[0].tokens for h in decode(model, sources, opts(strategy="greedy", beam=1))]
    assert any(repeats_an_ngram(t, 2) for t in plain)  # else the test shows nothing


@pytest.mark.parametrize("how", [dict(strategy="greedy", beam=1), dict(beam=3, n_best=3),
                                 dict(strategy="sample", n_best=3, seed=1)], ids=["greedy", "beam", "sample"])
def test_min_length_is_respected(how):
    model, sources = tiny_seq2seq(1), random_sources(10, seed=8, lo=1, hi=3)
    short = min(len(nbest[0].tokens) for nbest in decode(model, sources, opts(**how)))
    minimum = short + 3
    for nbest in decode(model, sources, opts(min_length=minimum, max_len_extra=minimum, **how)):
        assert all(len(h.tokens) >= minimum for h in nbest)


def test_min_length_yields_when_blocking_leaves_nothing_but_eos():
    """Blocking every repeated token in a 30-id vocabulary leaves only EOS after 26 tokens (PAD,
    BOS, EOS and 27 others): EOS comes then, though min_length asks for more."""
    model, sources = tiny_seq2seq(), random_sources(3, seed=9, lo=30, hi=30)
    options = opts(strategy="greedy", min_length=40, max_len_extra=40, no_repeat_ngram_size=1)
    for [h] in decode(model, sources, options):
        assert len(h.tokens) == len(set(h.tokens)) == TINY_TGT_VOCAB - 3 and math.isfinite(h.score)


# ----------------------------------------------------------------------------- ensembles


def test_the_ensemble_takes_the_log_of_the_mean_probability_and_the_mean_attention():
    a, b = tiny_seq2seq(0), tiny_seq2seq(1, rnn_type="lstm", attention="luong_general")
    src = torch.tensor([[5, 6, 7, EOS_ID], [8, 9, EOS_ID, PAD_ID]])
    lengths = torch.tensor([4, 3])
    prev = torch.tensor([BOS_ID, BOS_ID])
    ensemble = Ensemble([a, b])
    with torch.inference_mode():
        lp, state, attn = ensemble.decode_step(prev, ensemble.encode(src, lengths))
        (lp_a, _, at_a), (lp_b, _, at_b) = (m.decode_step(prev, m.encode(src, lengths)) for m in (a, b))
    torch.testing.assert_close(lp, ((lp_a.exp() + lp_b.exp()) / 2).log())
    torch.testing.assert_close(attn, (at_a + at_b) / 2)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(2))  # a distribution
    assert len(state.select(torch.tensor([1, 1, 0])).states[1].hidden[0]) == 3  # each member's state reorders


def test_members_of_other_cells_attentions_and_sizes_decode_together():
    models = [tiny_seq2seq(0), tiny_seq2seq(1, rnn_type="lstm", attention="luong_dot", decoder_hidden_size=32),
              tiny_seq2seq(2, attention="luong_general", decoder_layers=2, input_feeding=True)]
    sources = random_sources(6, seed=10)
    for options in (DecodeOptions(beam=3, n_best=2), opts(strategy="sample", seed=1, n_best=2)):
        first, again = decode(models, sources, options), decode(models, sources, options)
        assert tokens(first) == tokens(again) and all(len(nbest) == 2 for nbest in first)


@pytest.mark.parametrize("beam", [1, 5])
def test_a_run_ensembled_with_itself_gives_its_own_output(trained_run, translator, beam):
    itself = Translator.load([trained_run, trained_run])
    assert itself.translate(SOURCES, beam=beam) == translator.translate(SOURCES, beam=beam)


def test_two_runs_ensembled_decode_deterministically_and_unlike_either(trained_run, second_run, translator):
    ensemble = Translator.load([trained_run, second_run])
    other = Translator.load(second_run)
    out = ensemble.translate(SOURCES, beam=3)
    assert out == Translator.load([trained_run, second_run]).translate(SOURCES, beam=3)
    for member in (translator, other):
        assert sum(e != m for e, m in zip(out, member.translate(SOURCES, beam=3))) > 0
    assert [m.run.path for m in ensemble.members] == [trained_run, second_run]


def test_a_member_names_its_checkpoint_after_a_colon(trained_run):
    assert split_member(f"{trained_run}:last", "best") == (trained_run, "last")
    assert split_member(f"{trained_run}:step_20", "best") == (trained_run, "step_20")
    assert split_member(str(trained_run), "averaged") == (trained_run, "averaged")
    assert split_member("runs/a:b", "best") == (Path("runs/a:b"), "best")  # not a checkpoint name: part of the path
    t = Translator.load([trained_run, f"{trained_run}:last"])
    assert [m.checkpoint.name for m in t.members] == ["best.pt", "last.pt"]


@pytest.fixture
def other_tokenizer_run(trained_run, tmp_path) -> Path:
    run = shutil.copytree(trained_run, tmp_path / "other")
    shutil.copy(run / "tokenizer" / "src.model", run / "tokenizer" / "tgt.model")
    return run


def test_a_member_with_other_tokenizers_is_refused_naming_the_file(trained_run, other_tokenizer_run):
    with pytest.raises(NmtError, match=r"other/tokenizer/tgt\.model: differs from .*tgt\.model \(sha256\)"):
        Translator.load([trained_run, other_tokenizer_run])


@pytest.mark.parametrize("member,fragment", [
    ("missing", "missing: run directory not found"),
    ("other", "other/tokenizer/tgt.model: differs from"),
    ("step", "no checkpoints/step_99.pt"),
])
def test_the_cli_refuses_a_bad_member_in_one_line(trained_run, other_tokenizer_run, tmp_path, capsys, member,
                                                  fragment):
    spec = {"missing": tmp_path / "missing", "other": other_tokenizer_run, "step": f"{trained_run}:step_99"}[member]
    for command in ("translate", "evaluate"):
        assert main([command, str(trained_run), "--ensemble", str(spec)]) == 2
        [line] = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"nmt {command}: error: ") and fragment in line, line


def test_hypotheses_files_name_every_option_given_exactly():
    options = opts(strategy="sample", seed=1234567, top_p=0.9000001)
    name = hypotheses_name("test.de", options, dict(seed=1234567, top_p=0.9000001, beam=None), 2, "int8")
    assert name == "test.de.sample.p0.9000001.s1234567.ens2.int8.hyp"
    assert hypotheses_name("t", opts(beam=5), dict(beam=5, length_penalty=0.6), 1, "none") == "t.beam5.lp0.6.hyp"


def test_the_cli_evaluates_an_ensemble_and_names_its_members(trained_run, second_run, tmp_path, capsys):
    run = shutil.copytree(trained_run, tmp_path / "run")  # evaluate writes RUN/hyps/: not into the shared run
    src = write_parallel(tmp_path, "test", DEV_PAIRS)
    assert main(["evaluate", str(run), "--src", src + ".en", "--ref", src + ".fr", "--ensemble",
                 str(second_run), "--beam", "2"]) == 0
    out = capsys.readouterr().out
    assert f"run: {run} + {second_run}" in out and "decode: strategy beam, beam 2" in out
    assert (run / "hyps" / "test.en.beam2.ens2.hyp").is_file()


# ----------------------------------------------------------------------------- the front ends


BAD = [
    (dict(strategy="sample", temperature=0.0), "temperature is 0.0; it must be a number above 0"),
    (dict(strategy="sample", temperature=-1.0), "temperature is -1.0; it must be a number above 0"),
    (dict(strategy="sample", top_p=0.0), "top_p is 0.0; it must be a number in (0, 1]"),
    (dict(strategy="sample", top_p=1.5), "top_p is 1.5; it must be a number in (0, 1]"),
    (dict(strategy="sample", top_k=-1), "top_k is -1; it must be a whole number of at least 0 (0: no limit)"),
    (dict(strategy="sample", beam=4), "beam is 4; strategy 'sample' takes beam 1 (n_best says how many samples)"),
    (dict(min_length=14), "min_length is 14; it must be at most 13, the maximum output of a one-piece source"),
    (dict(no_repeat_ngram_size=-2), "no_repeat_ngram_size is -2; it must be a whole number of at least 0 (0: off)"),
    (dict(beam=2, n_best=3), "n_best is 3; it must be at most the beam (2)"),
    (dict(strategy="nucleus"), "strategy is 'nucleus'; it must be one of beam, greedy, sample"),
]
FLAGS = {"strategy": "--strategy", "temperature": "--temperature", "top_p": "--top-p", "top_k": "--top-k",
         "beam": "--beam", "n_best": "--nbest", "min_length": "--min-length", "no_repeat_ngram_size": "--no-repeat-ngram"}


@pytest.mark.parametrize("options,message", BAD, ids=[m.split(";")[0] for _, m in BAD])
def test_a_bad_option_gets_the_same_message_from_python_http_and_the_cli(translator, trained_run, capsys, options,
                                                                         message):
    pytest.importorskip("fastapi", reason="the HTTP API needs the serve extra")
    from fastapi.testclient import TestClient

    from nmt.serve import create_app

    with pytest.raises(NmtError) as python:
        translator.translate_full(["the cat eats ."], **options)
    assert str(python.value).startswith(message)

    with TestClient(create_app(translator)) as client:
        r = client.post("/v1/translate", json={"text": ["the cat eats ."], **options})
    assert r.status_code == 422 and r.json() == {"error": str(python.value)}

    argv = ["translate", str(trained_run), "--input", "/dev/null"]
    for name, value in options.items():
        argv += [FLAGS[name], str(value)]
    if options.get("strategy") == "nucleus":  # argparse's choices refuse it first, with its own usage line
        return
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"nmt translate: error: {python.value}"


def test_the_config_refuses_a_bad_option_with_the_same_message(make_config, tmp_path):
    from nmt.config import load_config

    path = write_yaml(tmp_path / "c.yaml", make_config(decode={"strategy": "sample", "top_p": 1.5}))
    with pytest.raises(NmtError) as e:
        load_config(path)
    assert str(e.value) == f"{path}: key 'decode.top_p': top_p is 1.5; it must be a number in (0, 1]"


def test_options_given_by_a_front_end_go_on_top_of_the_runs_defaults():
    run = DecodeConfig(beam_size=10, n_best=3, length_penalty=0.6).choices()
    resolve = DecodeOptions.resolve
    assert resolve(run, dict(strategy="greedy")) == DecodeOptions(strategy="greedy", beam=1, n_best=1,
                                                                  length_penalty=0.6)
    assert resolve(run, dict(strategy="sample")).beam == 1 and resolve(run, dict(strategy="sample")).n_best == 3
    assert resolve(run, dict(beam=2)).n_best == 2  # the run's n-best shrinks to a smaller beam chosen later
    assert resolve(run, dict(beam=None, top_k=None)) == resolve(run)  # None: not chosen
    with pytest.raises(DecodeOptionError, match="unknown decode option 'beam_size'"):
        resolve(run, dict(beam_size=4))
    # a run that samples or decodes greedily by default: a front end may still choose beam search
    sampler = DecodeConfig(strategy="sample", n_best=3, beam_size=8, top_k=5).choices() | {"beam": None}
    assert resolve(DecodeConfig(strategy="sample", n_best=3).choices(), dict(strategy="beam")) == resolve(
        dict(n_best=3))
    assert resolve(DecodeConfig(strategy="greedy").choices(), dict(beam=5)).search == "beam"
    assert resolve(DecodeConfig(strategy="greedy").choices(), dict(strategy="beam")).beam == DecodeOptions.beam
    assert resolve(sampler, {}, dict(strategy="beam", beam=4)).n_best == 3  # layers: run, server, request
    # choices of one layer that contradict each other are refused
    with pytest.raises(DecodeOptionError, match="beam is 4; strategy 'sample' takes beam 1"):
        resolve(run, dict(strategy="sample", beam=4))
    assert DecodeOptions(beam=2.0, temperature=1).beam == 2 and isinstance(DecodeOptions(temperature=1).temperature, float)


def test_the_cli_samples_with_a_seed_as_python_does(trained_run, translator, capsys, tmp_path):
    lines = tmp_path / "in.txt"
    lines.write_text("the cat eats an apple .\nthe king sees the book .\n", encoding="utf-8")
    assert main(["translate", str(trained_run), "--input", str(lines), "--strategy", "sample", "--seed", "5",
                 "--nbest", "2", "--temperature", "0.7"]) == 0
    printed = capsys.readouterr().out.splitlines()
    want = translator.translate_full(lines.read_text(encoding="utf-8").splitlines(), strategy="sample", seed=5,
                                     n_best=2, temperature=0.7)
    assert printed == ["\t".join(f"{h.score:.4f}\t{h.text}" for h in nbest) for nbest in want]


def test_the_http_api_samples_and_info_lists_the_members(trained_run, second_run):
    pytest.importorskip("fastapi", reason="the HTTP API needs the serve extra")
    from fastapi.testclient import TestClient

    from nmt.serve import create_app

    translator = Translator.load([trained_run, second_run])
    with TestClient(create_app(translator)) as client:
        info = client.get("/v1/info").json()
        body = {"text": SOURCES[:3], "strategy": "sample", "seed": 3, "n_best": 2, "top_k": 5}
        r = client.post("/v1/translate", json=body).json()
    assert [m["run"] for m in info["members"]] == [str(trained_run), str(second_run)]
    assert all(m["architecture"] == {"rnn_type": "gru", "attention": "bahdanau"} for m in info["members"])
    assert info["decode"]["strategy"] == "beam" and info["decode"]["beam"] == translator.defaults.beam
    want = translator.translate_full(SOURCES[:3], strategy="sample", seed=3, n_best=2, top_k=5)
    assert [[h["text"] for h in t["n_best"]] for t in r["translations"]] == [[h.text for h in n] for n in want]
    assert r["strategy"] == "sample" and json.dumps(r)
