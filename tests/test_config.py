"""Tests for nmt/config.py: YAML → typed, validated dataclasses."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nmt.config import (
    Config,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    load_config,
    parse_override,
    resume_safe_keys,
    save_config,
)
from nmt.errors import NmtError

MINIMAL = {"data": {"train": "data/train", "dev": "data/dev"}}


def minimal(**sections) -> dict:
    raw = {"data": dict(MINIMAL["data"])}
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return raw


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- defaults


def test_minimal_config_fills_in_the_defaults():
    cfg = config_from_dict(minimal())
    assert isinstance(cfg, Config)
    assert cfg.train == TrainConfig()
    assert cfg.data.train == "data/train"
    assert cfg.data.format == "parallel"


def test_every_shipped_config_loads():
    configs = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        assert isinstance(load_config(path), Config), path


def test_saved_config_loads_back_equal(tmp_path):
    cfg = config_from_dict(minimal(train={"lr": 3e-4, "max_steps": 7}))
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


def test_missing_data_train_is_an_error_naming_the_key():
    with pytest.raises(NmtError, match="data.train"):
        config_from_dict({"data": {"dev": "d"}})


# ----------------------------------------------------------------------------- unknown keys


def test_unknown_key_suggests_the_full_key():
    with pytest.raises(NmtError) as e:
        config_from_dict(minimal(train={"max_step": 10}))
    msg = str(e.value)
    assert "train.max_step'" in msg
    assert "did you mean 'train.max_steps'?" in msg


def test_unknown_section_suggests_the_section():
    with pytest.raises(NmtError, match="did you mean 'train'"):
        config_from_dict({**minimal(), "trian": {"lr": 0.1}})


def test_unknown_key_without_close_match_lists_known_keys():
    with pytest.raises(NmtError, match="known keys: .*max_steps"):
        config_from_dict(minimal(train={"zzzzzz": 1}))


def test_unknown_key_error_names_the_file(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", "data: {train: t, dev: d}\ntrain: {max_step: 3}\n")
    with pytest.raises(NmtError, match=r"c\.yaml.*did you mean 'train\.max_steps'"):
        load_config(path)


# ----------------------------------------------------------------------------- types and ranges


def test_wrong_type_names_key_and_value():
    with pytest.raises(NmtError) as e:
        config_from_dict(minimal(train={"max_steps": "ten"}))
    assert "train.max_steps" in str(e.value)
    assert "'ten'" in str(e.value)
    assert "int" in str(e.value)


def test_bool_is_not_accepted_as_int():
    with pytest.raises(NmtError, match="train.batch_size"):
        config_from_dict(minimal(train={"batch_size": True}))


def test_float_is_not_accepted_as_int():
    with pytest.raises(NmtError, match="train.max_steps"):
        config_from_dict(minimal(train={"max_steps": 1.5}))


def test_int_widens_to_float():
    cfg = config_from_dict(minimal(train={"lr": 1}))
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)


def test_literal_value_outside_the_choices_is_rejected():
    with pytest.raises(NmtError, match="tokenizer.type.*'wordpiece'"):
        config_from_dict(minimal(tokenizer={"type": "wordpiece"}))


def test_list_element_of_wrong_type_names_the_index():
    with pytest.raises(NmtError, match=r"train\.adam_betas\[1\]"):
        config_from_dict(minimal(train={"adam_betas": [0.9, "x"]}))


def test_section_that_is_not_a_mapping_is_rejected():
    with pytest.raises(NmtError, match="'train' must be a mapping"):
        config_from_dict({**minimal(), "train": 5})


def test_out_of_range_value_names_key_value_and_bound():
    with pytest.raises(NmtError) as e:
        config_from_dict(minimal(model={"dropout": 0.95}))
    assert "model.dropout" in str(e.value)
    assert "0.95" in str(e.value)
    assert "<= 0.9" in str(e.value)


def test_nan_is_out_of_range():
    # YAML's .nan compares False with every bound, so a plain `<`/`>` range check lets it through
    with pytest.raises(NmtError, match="train.lr"):
        config_from_dict(minimal(train={"lr": float("nan")}))


def test_open_lower_bound_rejects_the_bound_itself():
    with pytest.raises(NmtError, match="train.lr.*> 0"):
        config_from_dict(minimal(train={"lr": 0}))


def test_negative_count_is_out_of_range():
    with pytest.raises(NmtError, match="train.max_steps.*>= 0"):
        config_from_dict(minimal(train={"max_steps": -1}))


def test_all_stop_limits_zero_is_rejected():
    with pytest.raises(NmtError, match="never stop"):
        config_from_dict(minimal(train={"max_steps": 0, "max_epochs": 0, "max_minutes": 0}))


def test_n_best_above_beam_size_is_rejected():
    with pytest.raises(NmtError, match="decode.n_best"):
        config_from_dict(minimal(decode={"beam_size": 2, "n_best": 3}))


def test_same_source_and_target_language_is_rejected():
    with pytest.raises(NmtError, match="src_lang"):
        config_from_dict(minimal(data={"src_lang": "en", "tgt_lang": "en"}))


# ----------------------------------------------------------------------------- tsv


def test_tsv_format_requires_src_lang_among_the_columns():
    with pytest.raises(NmtError, match="data.src_lang.*tsv_columns"):
        config_from_dict(minimal(data={"format": "tsv", "tsv_columns": ["de", "fr"], "src_lang": "en"}))


def test_tsv_format_requires_tgt_lang_among_the_columns():
    with pytest.raises(NmtError, match="data.tgt_lang.*tsv_columns"):
        config_from_dict(minimal(data={"format": "tsv", "tsv_columns": ["en", "de"], "tgt_lang": "fr"}))


def test_tsv_format_with_both_columns_is_accepted():
    cfg = config_from_dict(minimal(data={"format": "tsv", "tsv_columns": ["fr", "en", "id"]}))
    assert cfg.data.tsv_columns == ["fr", "en", "id"]


# ----------------------------------------------------------------------------- overrides


def test_parse_override_reads_the_value_as_yaml():
    assert parse_override("train.lr=0.0003") == (["train", "lr"], 3e-4)
    assert parse_override("model.tie_embeddings=true") == (["model", "tie_embeddings"], True)
    assert parse_override("train.adam_betas=[0.8, 0.9]") == (["train", "adam_betas"], [0.8, 0.9])


def test_parse_override_reads_exponent_notation_as_a_float():
    # the docstring's own example; PyYAML's YAML 1.1 resolver reads '3e-4' (no dot) as a string
    assert parse_override("train.lr=3e-4") == (["train", "lr"], 3e-4)


def test_config_file_accepts_exponent_notation_floats(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", "data: {train: t, dev: d}\ntrain: {lr: 3e-4, min_lr: 1e-6}\n")
    cfg = load_config(path)
    assert cfg.train.lr == 3e-4
    assert cfg.train.min_lr == 1e-6


def test_override_without_equals_is_an_error():
    with pytest.raises(NmtError, match="KEY.PATH=VALUE"):
        parse_override("train.lr")


def test_override_with_empty_path_component_is_an_error():
    with pytest.raises(NmtError, match="bad key path"):
        parse_override("train..lr=1")


def test_override_with_invalid_yaml_value_is_an_error():
    with pytest.raises(NmtError, match="not valid YAML"):
        parse_override("train.adam_betas=[0.9")


def test_apply_overrides_does_not_change_its_input():
    raw = minimal(train={"lr": 0.1})
    out = apply_overrides(raw, ["train.lr=0.2", "model.dropout=0"])
    assert raw["train"]["lr"] == 0.1 and "model" not in raw
    assert out["train"]["lr"] == 0.2 and out["model"]["dropout"] == 0


def test_apply_overrides_accepts_a_dict():
    assert apply_overrides(minimal(), {"train.max_steps": 5})["train"]["max_steps"] == 5


def test_override_into_a_non_section_is_an_error():
    with pytest.raises(NmtError, match="not a section"):
        apply_overrides({"train": {"lr": 1}}, ["train.lr.x=2"])


def test_overrides_win_over_the_file(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", "data: {train: t, dev: d}\ntrain: {max_steps: 3}\n")
    cfg = load_config(path, overrides=["train.max_steps=100", "decode.beam_size=1"])
    assert cfg.train.max_steps == 100
    assert cfg.decode.beam_size == 1


def test_override_with_wrong_type_names_key_and_value(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", "data: {train: t, dev: d}\n")
    with pytest.raises(NmtError) as e:
        load_config(path, overrides=["train.max_steps=lots"])
    assert "train.max_steps" in str(e.value) and "'lots'" in str(e.value)


def test_override_of_unknown_key_gets_a_suggestion():
    with pytest.raises(NmtError, match="did you mean 'train.max_steps'"):
        load_config(minimal(), overrides=["train.max_step=3"])


def test_override_out_of_range_is_rejected():
    with pytest.raises(NmtError, match="train.batch_size.*>= 1"):
        load_config(minimal(), overrides={"train.batch_size": 0})


# ----------------------------------------------------------------------------- files


def test_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = write_yaml(tmp_path / "broken.yaml", "data:\n  train: t\n  dev: [d\ntrain:\n  lr: 1\n")
    with pytest.raises(NmtError) as e:
        load_config(path)
    msg = str(e.value)
    assert "broken.yaml" in msg
    assert "line " in msg
    assert "invalid YAML" in msg


def test_yaml_syntax_error_line_number_is_the_bad_line(tmp_path):
    path = write_yaml(tmp_path / "tab.yaml", "data:\n  train: t\n\tdev: d\n")
    with pytest.raises(NmtError, match=r"tab\.yaml: line 3:"):
        load_config(path)


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(NmtError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_directory_as_config_is_an_error(tmp_path):
    with pytest.raises(NmtError, match="is a directory"):
        load_config(tmp_path)


def test_config_file_with_invalid_utf8_is_an_error(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"data: {train: caf\xe9, dev: d}\n")
    with pytest.raises(NmtError, match="UTF-8"):
        load_config(path)


def test_empty_file_is_missing_required_keys(tmp_path):
    path = write_yaml(tmp_path / "empty.yaml", "")
    with pytest.raises(NmtError, match="data.train"):
        load_config(path)


def test_top_level_list_is_an_error(tmp_path):
    path = write_yaml(tmp_path / "list.yaml", "- a\n- b\n")
    with pytest.raises(NmtError, match="mapping"):
        load_config(path)


# ----------------------------------------------------------------------------- properties

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8) | st.integers(), children, max_size=4),
    max_leaves=20,
)
section_names = st.sampled_from(["run", "data", "tokenizer", "model", "train", "decode"])
field_names = st.sampled_from(
    ["dir", "train", "dev", "format", "tsv_columns", "src_lang", "tgt_lang", "type", "src_vocab_size",
     "dropout", "lr", "max_steps", "max_epochs", "max_minutes", "adam_betas", "beam_size", "n_best",
     "schedule", "test", "joint"]
)
# dicts shaped roughly like configs, so the checks past the unknown-key test get exercised too
config_like = st.dictionaries(
    section_names,
    st.dictionaries(field_names, json_like, max_size=6) | json_like,
    max_size=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=json_like | config_like)
def test_config_from_dict_returns_a_config_or_raises_nmt_error(raw):
    try:
        cfg = config_from_dict(raw)
    except NmtError:
        return
    assert isinstance(cfg, Config)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=config_like, key=st.text(max_size=12), value=st.text(max_size=12))
def test_overrides_return_a_config_or_raise_nmt_error(raw, key, value):
    try:
        cfg = config_from_dict(raw, overrides=[f"{key}={value}"])
    except NmtError:
        return
    assert isinstance(cfg, Config)


yaml_fragments = st.sampled_from(
    ["data:", "train:", "  lr: 1", "  dev: d", "  train: t", "- x", ": :", "{", "}", "[", "]", "&a", "*a",
     "!!python/object:os.system", "'", '"', "\t", "key: value", "? x", "%YAML 1.1", "---", "...", "|", ">"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=60) | st.lists(yaml_fragments, max_size=8).map("\n".join))
def test_load_config_on_arbitrary_text_returns_a_config_or_raises_nmt_error(tmp_path, text):
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        cfg = load_config(path)
    except NmtError:
        return
    assert isinstance(cfg, Config)


def test_a_learning_rate_adam_cannot_represent_is_refused():
    from nmt.config import load_config

    with pytest.raises(NmtError, match="train.lr"):
        load_config({"data": {"train": "t", "dev": "d"}, "train": {"lr": 1e38}})


def test_inverse_sqrt_without_warmup_is_refused_with_the_reason():
    with pytest.raises(NmtError, match="'train.schedule' is 'inverse_sqrt' but 'train.warmup_steps' is 0.*never "
                                       "changes"):
        config_from_dict(minimal(train={"schedule": "inverse_sqrt"}))
    assert config_from_dict(minimal(train={"schedule": "inverse_sqrt", "warmup_steps": 100})).train.warmup_steps == 100


def test_linear_without_a_step_or_time_budget_is_refused_with_the_reason():
    with pytest.raises(NmtError, match="'train.schedule' is 'linear' but neither 'train.max_steps' nor "
                                       "'train.max_minutes' is set"):
        config_from_dict(minimal(train={"schedule": "linear", "max_epochs": 5}))
    assert config_from_dict(minimal(train={"schedule": "linear", "max_minutes": 60})).train.schedule == "linear"


def test_the_config_reference_marks_exactly_the_resume_safe_keys():
    """The config fields say which keys may change on resume (`resume_safe_keys`, what `--resume`
    checks); the manual's config reference (docs/reference/config.md, generated from the same
    fields) says the same in its "on resume" column, and has a row for every key."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "reference" / "config.md").read_text(encoding="utf-8")
    header = next(line for line in page.splitlines() if line.startswith("| key |"))
    column = [c.strip() for c in header.strip("|").split("|")].index("on resume")
    marked, listed = set(), set()
    for row in (line for line in page.splitlines() if line.startswith("| `")):
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]
        key = cells[0].strip("`")
        listed.add(key)
        if cells[column] == "may change":
            marked.add(key)
        else:
            assert cells[column] == "fixed", row
    assert marked == resume_safe_keys()
    assert listed == {k for k, _ in _all_keys(Config)}  # and every key has its row


def _all_keys(cls: type, prefix: str = "") -> list[tuple[str, object]]:
    out = []
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        out += _all_keys(tp, f"{prefix}{f.name}.") if dataclasses.is_dataclass(tp) else [(f"{prefix}{f.name}", f)]
    return out
