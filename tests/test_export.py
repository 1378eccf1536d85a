"""nmt export and nmt_runtime.exported: every architecture's graphs compute what torch computes (at
another batch size and source length than traced, with padding, through a `select`), int8 exports
run, the folder's refusals (OUT, --quantize, an architecture not known to export, the extra missing),
each damaged export refused by `load_export` in one line naming the file, and the runtime with torch
unimportable. One trained run's export is shared (`exported`); the other architectures export
untrained runs (random weights: the graphs, not the translations, are under test)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from conftest import DEV_PAIRS, PAIRS, tiny_config_dict, write_parallel
from helpers import assert_error, nmt, ok, runtime_process, sha256, snapshot
from nmt.checkpoint import save_checkpoint
from nmt.config import ModelConfig, load_config
from nmt import export as exporting
from nmt.errors import NmtError
from nmt.model import build_model
from nmt.tokenizer import EOS_ID, PAD_ID, train_tokenizer
from nmt.translate import Translator
from nmt_runtime.exported import EXPORT_JSON, load_export

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

BOUND = 1e-4  # fp32 graphs against torch
# every rnn_type × attention, and layers, input feeding, tied, shared and scaled embeddings between them
# (the trained run, GRU + Bahdanau with one layer, is the seventh: `exported`)
ARCHITECTURES = {
    "gru-bahdanau-2layers-feeding": {"encoder_layers": 2, "decoder_layers": 2, "input_feeding": True},
    "gru-luong_general-feeding": {"attention": "luong_general", "input_feeding": True},
    "gru-luong_dot-tied": {"attention": "luong_dot", "tie_embeddings": True},
    "lstm-bahdanau-tied-scaled": {"rnn_type": "lstm", "tie_embeddings": True, "embeddings": {"scale": True}},
    "lstm-luong_general-2layers-feeding": {"rnn_type": "lstm", "attention": "luong_general", "encoder_layers": 2,
                                           "decoder_layers": 2, "input_feeding": True},
    "lstm-luong_dot-2layers-shared": {"rnn_type": "lstm", "attention": "luong_dot", "decoder_layers": 2,
                                      "embeddings": {"share_src_tgt": True}},
}


def untrained_run(root: Path, model: dict) -> Path:
    """A run directory as training starts it (config, tokenizers, best.pt) with the seeded random
    weights of `model`'s architecture: what an export needs, in a second instead of a training."""
    train = write_parallel(root / "data", "train", PAIRS)
    dev = write_parallel(root / "data", "dev", DEV_PAIRS)
    joint = model.get("embeddings", {}).get("share_src_tgt", False)
    cfg = tiny_config_dict(root / "run", train, dev, model=model, tokenizer={"joint": joint})
    run = root / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "tokenizer").mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    src = train_tokenizer([s for s, _ in PAIRS] + ([t for _, t in PAIRS] if joint else []), 30)
    tgt = src if joint else train_tokenizer([t for _, t in PAIRS], 30)
    src.save(run / "tokenizer" / "src.model")
    tgt.save(run / "tokenizer" / "tgt.model")
    torch.manual_seed(0)
    net = build_model(load_config(run / "config.yaml"), len(src), len(tgt))
    save_checkpoint(run / "checkpoints" / "best.pt", {"model": net.state_dict(), "architecture": net.architecture(),
                                                      "vocab": {"src": len(src), "tgt": len(tgt)}, "step": 0,
                                                      "score": None})
    return run


@pytest.fixture(scope="module")
def exported(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The trained run exported by the CLI once (fp32): the folder and what `nmt export` printed; read-only."""
    out = tmp_path_factory.mktemp("export") / "toy"
    return out, ok(nmt("export", str(trained_run), str(out)))


@pytest.fixture(scope="module")
def int8_over_fp32(exported: tuple[Path, str], trained_run: Path, tmp_path_factory) -> tuple[Path, str]:
    """A copy of the fp32 export, replaced by an int8 export of the same run with --overwrite."""
    out = tmp_path_factory.mktemp("int8") / "toy"
    shutil.copytree(exported[0], out)
    return out, ok(nmt("export", str(trained_run), str(out), "--quantize", "int8", "--overwrite"))


def copy_of(exported: tuple[Path, str], tmp_path: Path) -> Path:
    """A copy of the shared export, to damage or replace."""
    return Path(shutil.copytree(exported[0], tmp_path / "copy"))


def refused(folder: Path, *fragments: str) -> str:
    """load_export(folder) raises NmtError: one line, naming the file first, holding every fragment."""
    with pytest.raises(NmtError) as info:
        load_export(folder)
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    print(message)
    return message


def rehash(folder: Path, name: str) -> None:
    """Put a changed file's sha256 into export.json, so that only the check after the sha256 can refuse it."""
    meta = json.loads((folder / EXPORT_JSON).read_text())
    meta["files"][name] = sha256(folder / name)
    (folder / EXPORT_JSON).write_text(json.dumps(meta))


# ----------------------------------------------------------------------------- torch and onnxruntime agree


def padded_batch(lengths: list[int], vocab: int, extra: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Random sources (EOS added) padded to the longest plus `extra` columns of padding."""
    g = torch.Generator().manual_seed(7)
    src = torch.full((len(lengths), max(lengths) + 1 + extra), PAD_ID)
    for i, n in enumerate(lengths):
        src[i, :n] = torch.randint(4, vocab, (n,), generator=g)
        src[i, n] = EOS_ID
    return src, torch.tensor(lengths) + 1


def state_by_name(state) -> dict[str, torch.Tensor]:
    """A DecoderState's tensors by the names export.json gives them."""
    named = {"hidden": state.hidden, "cell": state.cell, "memory": state.memory, "padding_bias": state.padding_bias,
             "feed": state.feed, **{f"attention_cache_{i}": t for i, t in enumerate(state.attention_cache)}}
    return {name: t for name, t in named.items() if t is not None}


def round_trip(run: Path, folder: Path, lengths: tuple[int, ...] = (9, 2, 5, 1),
               index: tuple[int, ...] = (3, 1, 1, 0)) -> dict[str, float]:
    """The run's torch model and its export on sources of these lengths (by default 4 of up to 10
    pieces: not the traced 3 of 7) with a padding column, 5 greedy steps, the rows picked by `index`
    before the third (by default reordered, one repeated as in a beam, one dropped as finished): the
    largest differences of the encoder's outputs, the log-probabilities and the attention."""
    model, export = Translator.load(run).model, load_export(folder)
    src, src_lengths = padded_batch(list(lengths), model.src_embed.weight.shape[0])
    diffs = {"encoder": 0.0, "log_probs": 0.0, "attention": 0.0}
    with torch.no_grad():
        state = model.encode(src, src_lengths)
        ours = export.model.encode(src.numpy(), src_lengths.numpy())
        assert set(ours.tensors) == set(state_by_name(state))
        for name, t in state_by_name(state).items():
            np.testing.assert_allclose(ours.tensors[name], t.numpy(), rtol=0, atol=BOUND, err_msg=name)
            finite = torch.isfinite(t).numpy()  # the padding bias's -inf: equal above, no difference to take
            diffs["encoder"] = max(diffs["encoder"], float(np.abs(ours.tensors[name][finite] - t.numpy()[finite]).max()))
        prev = torch.full((len(lengths),), 2)
        for step in range(5):
            if step == 2:
                picked = torch.tensor(index)
                state, ours, prev = state.select(picked), ours.select(picked.numpy()), prev[picked]
            log_probs, state, attention = model.decode_step(prev, state)
            our_lp, ours, our_attention = export.model.decode_step(prev.numpy(), ours)
            for key, a, b in (("log_probs", our_lp, log_probs), ("attention", our_attention, attention)):
                np.testing.assert_allclose(a, b.numpy(), rtol=0, atol=BOUND, err_msg=f"{key} at step {step}")
                diffs[key] = max(diffs[key], float(np.abs(a - b.numpy()).max()))
            prev = log_probs.argmax(-1)
    print({key: f"{value:.1e}" for key, value in diffs.items()})
    return diffs


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_architecture_exports_and_its_graphs_compute_what_torch_does(name, tmp_path):
    run = untrained_run(tmp_path, ARCHITECTURES[name])
    round_trip(run, exporting.export_run(run, tmp_path / "out"))


def test_the_trained_runs_export_computes_what_torch_does(exported, trained_run):
    round_trip(trained_run, exported[0])


@pytest.mark.parametrize("lengths, index", [((0,), (0, 0)), ((3, 1), (1,))])
def test_one_row_and_a_source_of_only_its_eos_compute_what_torch_does(exported, trained_run, lengths, index):
    """The smallest shapes the search makes: one sentence (an empty one: its EOS and a padding column), and rows
    pruned to one."""
    round_trip(trained_run, exported[0], lengths, index)


def test_int8_graphs_run_with_log_probabilities_close_to_torchs(int8_over_fp32, trained_run):
    folder, _ = int8_over_fp32
    step = onnx.load(folder / "decoder_step.onnx")
    assert "MatMulInteger" in {node.op_type for node in step.graph.node}  # the weights are int8
    model, export = Translator.load(trained_run).model, load_export(folder)
    src, lengths = padded_batch([9, 2, 5, 1], model.src_embed.weight.shape[0], extra=0)
    with torch.no_grad():
        log_probs, _, _ = model.decode_step(torch.full((4,), 2), model.encode(src, lengths))
    ours, _, _ = export.model.decode_step(np.full(4, 2), export.model.encode(src.numpy(), lengths.numpy()))
    diff = float(np.abs(ours - log_probs.numpy()).max())
    print(f"int8: max |difference| of log-probabilities {diff:.2e}")
    assert np.isfinite(ours).all() and diff < 0.5
    assert (ours.argmax(-1) == log_probs.numpy().argmax(-1)).mean() >= 0.75


# ----------------------------------------------------------------------------- what nmt export writes and prints


def test_export_writes_the_graphs_tokenizers_tables_and_a_description_of_them(exported, trained_run):
    folder, printed = exported
    meta = json.loads((folder / EXPORT_JSON).read_text())
    assert sorted(p.name for p in folder.iterdir()) == sorted([*meta["files"], EXPORT_JSON])
    assert set(meta["files"]) == {"encoder.onnx", "decoder_step.onnx", "src.model", "tgt.model", "src_embeddings.npy",
                                  "tgt_embeddings.npy", "src_counts.npy", "tgt_counts.npy"}
    assert all(sha256(folder / name) == digest for name, digest in meta["files"].items())
    for side in ("src", "tgt"):
        assert (folder / f"{side}.model").read_bytes() == (trained_run / "tokenizer" / f"{side}.model").read_bytes()
    model = Translator.load(trained_run).model
    np.testing.assert_array_equal(np.load(folder / "tgt_embeddings.npy"), model.tgt_embed.weight.detach().numpy())
    assert meta["format"] == "nmt-export" and meta["export_version"] == 1 and meta["quantize"] == "none"
    assert meta["special_ids"] == {"pad": 0, "unk": 1, "bos": 2, "eos": 3}
    assert meta["vocab"] == {"src": 30, "tgt": 30} and meta["languages"] == {"src": "en", "tgt": "fr"}
    assert meta["architecture"]["rnn_type"] == "gru" and meta["architecture"]["attention"] == "bahdanau"
    assert [s["name"] for s in meta["state"]] == ["hidden", "memory", "padding_bias", "attention_cache_0"]
    assert meta["decode"] == {"beam": 2} and meta["source"]["step"] == 40
    assert meta["verification"]["max_abs_diff"]["log_probs"] <= BOUND
    assert f"wrote {folder}" in printed and "decoder_step.onnx" in printed and "log-probabilities" in printed
    assert f"nmt-runtime translate {folder}" in printed


def test_the_export_describes_decode_defaults_that_decode_options_accept(exported):
    from nmt_runtime.decode_options import DecodeOptions

    meta = json.loads((exported[0] / EXPORT_JSON).read_text())
    assert DecodeOptions.resolve(meta["decode"]).beam == 2


def test_the_export_tables_and_counts_load_by_side(exported, trained_run):
    export = load_export(exported[0])
    counts = torch.load(trained_run / "token_counts.pt", weights_only=True)
    assert export.tables("src").shape == (30, 16) and export.tables("src").dtype == np.float32
    np.testing.assert_array_equal(export.counts("tgt"), counts["tgt"].numpy())
    assert export.tokenizer_proto("src") == export.src_tok_path.read_bytes()


def test_the_help_says_what_is_written_and_how_to_use_it():
    text = ok(nmt("export", "--help"))
    for fragment in ("encoder.onnx", "decoder_step.onnx", "export.json", "sha256", "--quantize none|int8",
                     "--overwrite", "--checkpoint", "nmt-runtime translate", "pip install 'nmt[export]'"):
        assert fragment in text, fragment
    assert "export" in ok(nmt("--help"))


# ----------------------------------------------------------------------------- refusals of nmt export


def test_a_quantize_other_than_none_or_int8_is_refused_in_one_line(trained_run, tmp_path):
    proc = nmt("export", str(trained_run), str(tmp_path / "out"), "--quantize", "fp8")
    assert_error(proc, "quantize is 'fp8'", "none, int8")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("what", ["folder", "file"])
def test_an_existing_out_that_is_not_an_export_is_refused_and_left_as_it_was(trained_run, tmp_path, what):
    out = tmp_path / "out"
    if what == "folder":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    else:
        out.write_text("mine")
    before = snapshot(tmp_path)
    assert_error(nmt("export", str(trained_run), str(out), "--overwrite"), str(out),
                 "is not an nmt export" if what == "folder" else "is not a folder")
    assert snapshot(tmp_path) == before


def test_an_earlier_export_is_replaced_only_with_overwrite(exported, trained_run, tmp_path):
    out = copy_of(exported, tmp_path)
    before = snapshot(tmp_path)
    assert_error(nmt("export", str(trained_run), str(out)), str(out), "add --overwrite")
    (out / "notes.txt").write_text("mine")  # not a file an export writes: --overwrite would delete it
    assert_error(nmt("export", str(trained_run), str(out), "--overwrite"), "notes.txt", "is not a file nmt export writes")
    (out / "notes.txt").unlink()
    assert snapshot(tmp_path) == before


def test_overwrite_replaces_an_earlier_export_whole(int8_over_fp32):
    folder, printed = int8_over_fp32
    meta = json.loads((folder / EXPORT_JSON).read_text())
    assert meta["quantize"] == "int8" and "int8 graphs" in printed
    assert sorted(p.name for p in folder.parent.iterdir()) == ["toy"]  # no temporary or replaced folder left
    load_export(folder)


def test_an_architecture_not_known_to_export_is_refused_in_one_line_naming_it(trained_run, tmp_path, monkeypatch):
    monkeypatch.setitem(exporting.EXPORTS, "attention", ("luong_general", "luong_dot"))
    assert_error(nmt("export", str(trained_run), str(tmp_path / "out")), "model.attention: bahdanau does not export yet")
    assert list(tmp_path.iterdir()) == []


def test_every_choice_of_the_config_is_known_to_export():
    hints = typing.get_type_hints(ModelConfig)
    assert {key: typing.get_args(hints[key]) for key in exporting.EXPORTS} == exporting.EXPORTS


def test_without_the_export_extra_nmt_export_says_what_to_install(trained_run, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    assert_error(nmt("export", str(trained_run), str(tmp_path / "out")),
                 "nmt export needs onnx and onnxruntime: pip install 'nmt[export]'")


def test_a_failed_export_leaves_no_folder_behind(trained_run, tmp_path, monkeypatch):
    def fail(model, encoder_file, step_file):
        encoder_file.write_bytes(b"half")
        raise RuntimeError("the exporter broke")

    monkeypatch.setattr(exporting, "export_graphs", fail)
    with pytest.raises(RuntimeError, match="the exporter broke"):
        exporting.export_run(trained_run, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_graphs_that_differ_from_the_model_fail_the_check(exported, trained_run):
    model = Translator.load(trained_run).model
    with torch.no_grad():
        model.generator.weight[5].add_(0.01)  # one target id's logit moves
    with pytest.raises(exporting.ExportCheckFailed, match="log-probabilities"):
        exporting.verify(model, load_export(exported[0]).model, strict=True)


# ----------------------------------------------------------------------------- damaged exports, refused by the runtime


def test_a_missing_file_is_refused(exported, tmp_path):
    folder = copy_of(exported, tmp_path)
    (folder / "decoder_step.onnx").unlink()
    refused(folder, f"{folder / 'decoder_step.onnx'}: missing")


def test_a_file_whose_sha256_does_not_match_is_refused(exported, tmp_path):
    folder = copy_of(exported, tmp_path)
    table = np.load(folder / "tgt_embeddings.npy")
    table[5, 0] += 1.0
    np.save(folder / "tgt_embeddings.npy", table)
    refused(folder, f"{folder / 'tgt_embeddings.npy'}: sha256 does not match export.json")


def test_an_unknown_export_version_is_refused_naming_the_versions_read(exported, tmp_path):
    folder = copy_of(exported, tmp_path)
    meta = json.loads((folder / EXPORT_JSON).read_text())
    (folder / EXPORT_JSON).write_text(json.dumps({**meta, "export_version": 2}))
    refused(folder, f"{folder / EXPORT_JSON}: export_version 2", "reads version 1")


@pytest.mark.parametrize("text, fragment", [(None, "missing"), ("{", "not readable JSON"),
                                            ('{"format": "other"}', "format is 'other', not 'nmt-export'")])
def test_a_folder_without_a_valid_export_json_is_refused(exported, tmp_path, text, fragment):
    folder = copy_of(exported, tmp_path)
    if text is None:
        (folder / EXPORT_JSON).unlink()
    else:
        (folder / EXPORT_JSON).write_text(text)
    refused(folder, f"{folder / EXPORT_JSON}: {fragment}")


def test_a_tokenizer_of_another_vocabulary_is_refused_even_with_its_sha256(exported, tmp_path):
    folder = copy_of(exported, tmp_path)
    train_tokenizer([t for _, t in PAIRS], 25).save(folder / "tgt.model")
    rehash(folder, "tgt.model")
    refused(folder, f"{folder / 'tgt.model'}: has 25 pieces", "made for 30 tgt ids")


def test_a_graph_this_onnxruntime_cannot_load_is_refused_naming_both_versions(exported, tmp_path):
    import onnxruntime

    folder = copy_of(exported, tmp_path)
    graph = onnx.load(folder / "decoder_step.onnx")
    for opset in graph.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = 999
    onnx.save(graph, folder / "decoder_step.onnx")
    rehash(folder, "decoder_step.onnx")
    refused(folder, f"{folder / 'decoder_step.onnx'}: onnxruntime {onnxruntime.__version__} cannot load it (",
            f"the export was made with onnxruntime {onnxruntime.__version__}")


# ----------------------------------------------------------------------------- the runtime without torch

WITHOUT_TORCH_CODE = """\
import json
import numpy as np
from nmt_runtime.exported import load_export

model = load_export(sys.argv[1], threads=1).model
state = model.encode(np.array([[5, 6, 7, 3], [8, 3, 0, 0]]), np.array([4, 2]))
log_probs, state, attention = model.decode_step(np.array([2, 2]), state)
log_probs, state, attention = model.decode_step(np.array([4, 5, 6]), state.select(np.array([1, 0, 0])))
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "nmt"))
print(json.dumps({"log_probs": log_probs.tolist(), "attention": list(attention.shape), "loaded": loaded}))
"""


def test_the_runtime_loads_and_runs_an_export_with_torch_and_nmt_unimportable(exported):
    proc = runtime_process(WITHOUT_TORCH_CODE, exported[0])
    assert proc.returncode == 0, proc.stderr.decode()
    result = json.loads(proc.stdout)
    assert result["loaded"] == [] and result["attention"] == [3, 4]
    # the same numbers as in this process
    model = load_export(exported[0]).model
    state = model.encode(np.array([[5, 6, 7, 3], [8, 3, 0, 0]]), np.array([4, 2]))
    _, state, _ = model.decode_step(np.array([2, 2]), state)
    log_probs, _, _ = model.decode_step(np.array([4, 5, 6]), state.select(np.array([1, 0, 0])))
    np.testing.assert_allclose(np.array(result["log_probs"]), log_probs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("key, value, fragment", [
    ("decode", None, "'decode' must map decode options to values"),
    ("decode", {"beam_size": 0}, "'decode': "),
    ("special_ids", [0, 1, 2, 3], "special_ids must map pad, unk, bos, eos to ids"),
    ("max_src_len", "60", "'max_src_len' must be a whole number of at least 1"),
    ("languages", {"src": "en"}, "not a valid export description"),
])
def test_a_bad_value_in_export_json_is_refused_naming_the_key(exported, tmp_path, key, value, fragment):
    folder = copy_of(exported, tmp_path)
    meta = json.loads((folder / EXPORT_JSON).read_text())
    (folder / EXPORT_JSON).write_text(json.dumps({**meta, key: value}))
    refused(folder, f"{folder / EXPORT_JSON}: not a valid export description", fragment)


def test_a_tokenizer_of_the_right_size_with_other_special_ids_is_refused(exported, tmp_path):
    import io

    import sentencepiece as spm

    folder = copy_of(exported, tmp_path)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter([t for _, t in PAIRS]), model_writer=model, vocab_size=30,
                                   pad_id=3, unk_id=1, bos_id=2, eos_id=0, num_threads=1, minloglevel=2)
    (folder / "tgt.model").write_bytes(model.getvalue())
    rehash(folder, "tgt.model")
    refused(folder, f"{folder / 'tgt.model'}: special ids (pad, unk, bos, eos) are [3, 1, 2, 0]",
            "the graphs were made for [0, 1, 2, 3]")
