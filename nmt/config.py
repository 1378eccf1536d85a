"""YAML config → typed, validated dataclasses, in one place.

Unknown keys are rejected with a "did you mean …?", wrong types and out-of-range values name the
key, the value and what is allowed. `--set key.path=value` overrides go through the same checks.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from nmt.corpus_formats import FORMAT_NAMES, FORMATS
from nmt_runtime.decode_options import DecodeOptionError, DecodeOptions
from nmt.errors import NmtError
from nmt_runtime.files import read_text


def _option(name: str) -> dict:
    """Metadata of a decode key: resume-safe, and checked as DecodeOptions' option `name`."""
    return {**RESUME_SAFE, "option": name}


def _range(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           resume_safe: bool = False, training_only: bool = False) -> dict:
    return {"range": (lo, hi, lo_open), **(RESUME_SAFE if resume_safe else {}),
            **(TRAINING_ONLY if training_only else {})}


# Field metadata of the keys that may differ between a run's saved config and the config given
# with --resume: they change how a run is watched, stopped or decoded, not the steps it takes.
RESUME_SAFE = {"resume_safe": True}
# Field metadata of the tokenizer keys that act on training batches only: they are not part of the
# prepared dataset (its key), so changing them tokenizes nothing again.
TRAINING_ONLY = {"training_only": True}


@dataclass
class RunConfig:
    # where the run directory goes; a run directory may be moved or copied and resumed there
    dir: str = field(default="runs/default", metadata=RESUME_SAFE)


@dataclass
class DataConfig:
    # the source language; with tgt_lang it picks the files (parallel) or the columns (tsv), hence the
    # direction
    src_lang: str = "en"
    # the target language
    tgt_lang: str = "fr"
    # parallel: <prefix>.<src_lang> and <prefix>.<tgt_lang>, one sentence a line
    # tsv: one file, one pair a line, columns named by `tsv_columns`
    # (each format is one entry of FORMATS in nmt/corpus_formats.py: these values and their checks)
    format: Literal[FORMAT_NAMES] = "parallel"  # type: ignore[valid-type]
    # the names of a tsv file's columns, in order
    tsv_columns: list[str] = field(default_factory=lambda: ["en", "fr"])
    # the training set: a file prefix (parallel) or a .tsv file; required
    train: str = ""
    # the dev set, validated every train.validate_every steps; required
    dev: str = ""
    # the test set that `nmt evaluate RUN` scores when given no --src/--ref
    test: Optional[str] = None
    max_src_len: int = field(default=100, metadata=_range(1))  # in sentencepiece pieces
    # in sentencepiece pieces: longer training pairs are dropped (and counted)
    max_tgt_len: int = field(default=100, metadata=_range(1))
    # where `nmt prepare` puts the tokenized arrays, one folder per corpus and tokenizer settings;
    # null: $XDG_CACHE_HOME/nmt/prepared (~/.cache/nmt/prepared)
    prepared_dir: Optional[str] = field(default=None, metadata=RESUME_SAFE)


@dataclass
class TokenizerConfig:
    # word: one piece per whitespace-separated word (sentencepiece's word model, the most frequent
    # vocab_size words), as the PyTorch tutorial's Lang class; a rarer word is <unk>
    type: Literal["unigram", "bpe", "word"] = "unigram"
    # vocabulary size of the source side (special ids: pad 0, unk 1, bos 2, eos 3)
    src_vocab_size: int = field(default=8000, metadata=_range(8))
    # vocabulary size of the target side
    tgt_vocab_size: int = field(default=8000, metadata=_range(8))
    joint: bool = False  # one model (and vocabulary) for both languages; uses src_vocab_size
    # sentencepiece's character coverage
    character_coverage: float = field(default=1.0, metadata=_range(0.9, 1.0))
    max_sentences: int = field(default=1_000_000, metadata=_range(100))  # sampled for training
    # true: a vocab size the text cannot fill is an error; false: take as many pieces as it can
    hard_vocab_limit: bool = True
    # subword regularization (unigram only): > 0 resegments each training sentence every time it is
    # drawn, sampled from its nbest_size best splits with probability ∝ P(split)^alpha (nmt/sampling.py);
    # dev, test and translation keep the best split. 0: off
    sampling_alpha: float = field(default=0.0, metadata=_range(0.0, training_only=True))
    # subword regularization: how many best splits a sentence's split is drawn from
    nbest_size: int = field(default=16, metadata=_range(2, 1000, training_only=True))


@dataclass
class EmbeddingConfig:
    """`model.embeddings`: how the source and target tables are scaled, initialised, shared, frozen."""

    # multiply lookups by sqrt(embedding_size): rows start at std 1/sqrt(d), so inputs get std ~1
    scale: bool = False
    freeze_src: bool = False  # requires_grad=False: the table never changes
    freeze_tgt: bool = False  # (with tie_embeddings, the output projection is frozen with it)
    pretrained_src: Optional[str] = None  # word2vec/GloVe text file of embedding_size vectors
    # the same for the target table
    pretrained_tgt: Optional[str] = None
    share_src_tgt: bool = False  # one table for both sides; needs tokenizer.joint


@dataclass
class ModelConfig:
    # embedding size, both sides (also the decoder's output layer size)
    embedding_size: int = field(default=256, metadata=_range(1))
    encoder_hidden_size: int = field(default=256, metadata=_range(1))  # per direction
    # RNN layers of the encoder
    encoder_layers: int = field(default=1, metadata=_range(1))
    # decoder RNN units
    decoder_hidden_size: int = field(default=512, metadata=_range(1))
    # RNN layers of the decoder
    decoder_layers: int = field(default=1, metadata=_range(1))
    # Bahdanau attention's hidden size (Luong's attentions do not use it)
    attention_size: int = field(default=512, metadata=_range(1))
    # dropout on embeddings, between RNN layers and before the output layer
    dropout: float = field(default=0.3, metadata=_range(0.0, 0.9))
    # the recurrent cell of the encoder and the decoder (nmt/model/cells.py)
    rnn_type: Literal["gru", "lstm"] = "gru"
    # bahdanau: additive, reads s_{t-1}; luong_general / luong_dot: multiplicative, read s_t
    # (nmt/model/attention.py, whose ATTENTIONS these names must match); luong_dot needs
    # decoder_hidden_size = 2 × encoder_hidden_size
    attention: Literal["bahdanau", "luong_general", "luong_dot"] = "bahdanau"
    tie_embeddings: bool = False  # target input embedding = output projection
    # feed the previous output o_{t-1} into the decoder RNN's input (Joey NMT, OpenNMT-py); costs
    # speed: the readout moves inside the recurrence (see nmt/model/decoder.py)
    input_feeding: bool = False
    # the decoder's teacher-forced unroll (training, validation loss) takes the fastest path the
    # architecture has (nmt/model/decoder.py: fused.py for one GRU layer with Bahdanau, one RNN call
    # for Luong without input feeding); false: the step-by-step reference everywhere. Same function
    # up to rounding, same weights, so it may change on resume
    fused_decoder: bool = field(default=True, metadata=RESUME_SAFE)
    # the encoder in training takes nmt/model/fused_encoder.py for one bidirectional GRU layer (the
    # reference: nn.GRU on packed sequences, which search always uses); the same function up to
    # rounding, same weights, so it may change on resume
    fused_encoder: bool = field(default=True, metadata=RESUME_SAFE)
    embeddings: EmbeddingConfig = field(default_factory=EmbeddingConfig)


@dataclass
class TrainConfig:
    # seeds initialisation, dropout, data order and tokenizer sampling
    seed: int = 42
    max_steps: int = field(default=0, metadata=_range(0, resume_safe=True))  # 0: no limit
    max_epochs: int = field(default=20, metadata=_range(0, resume_safe=True))  # 0: no limit
    max_minutes: float = field(default=0.0, metadata=_range(0.0, resume_safe=True))  # wall clock, 0: none
    batch_tokens: int = field(default=2000, metadata=_range(1))  # padded target tokens a batch
    batch_size: int = field(default=128, metadata=_range(1))  # at most this many sentences
    # the upper bound only keeps Adam from failing on values near float32's limit (3.4e38)
    lr: float = field(default=1e-3, metadata=_range(0.0, 1e36, lo_open=True))
    # the floor of the plateau and linear schedules
    min_lr: float = field(default=1e-5, metadata=_range(0.0))
    # Adam's betas
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    # Adam's (L2) weight decay
    weight_decay: float = field(default=0.0, metadata=_range(0.0))
    clip_grad_norm: float = field(default=1.0, metadata=_range(0.0))  # 0: no clipping
    # stop after this many updates in a row skipped for a non-finite gradient (fp16's scaler skips
    # a few while it finds its scale)
    max_skipped_steps: int = field(default=20, metadata=_range(1, resume_safe=True))
    # label smoothing of the cross-entropy (padding ignored)
    label_smoothing: float = field(default=0.1, metadata=_range(0.0, 0.99))
    # constant; plateau (× plateau_factor after plateau_patience validations without improvement);
    # inverse_sqrt (lr × √(warmup_steps / step) after the warm-up); linear (down to min_lr as the step or
    # time budget runs out)
    schedule: Literal["constant", "plateau", "inverse_sqrt", "linear"] = "plateau"
    # linear warm-up steps (any schedule)
    warmup_steps: int = field(default=0, metadata=_range(0))
    # linear: decay over the last fraction of the budget only, at the full rate until then
    # (warmup-stable-decay); 1: decay from the start
    decay_fraction: float = field(default=1.0, metadata=_range(0.0, 1.0, lo_open=True))
    # the plateau schedule's factor
    plateau_factor: float = field(default=0.5, metadata=_range(0.0, 1.0, lo_open=True))
    plateau_patience: int = field(default=2, metadata=_range(0))  # validations
    # steps between validations (dev loss, perplexity, greedy BLEU)
    validate_every: int = field(default=500, metadata=_range(1, resume_safe=True))
    # bleu or loss: picks the best checkpoint and drives early stopping and the plateau schedule
    early_stopping_metric: Literal["bleu", "loss"] = "bleu"
    # validations without improvement before training stops; 0: never
    patience: int = field(default=5, metadata=_range(0, resume_safe=True))
    # steps between log lines
    log_every: int = field(default=50, metadata=_range(1, resume_safe=True))
    # steps between saves of last.pt
    save_every: int = field(default=500, metadata=_range(1, resume_safe=True))
    # weights at each of the last K validations, checkpoints/step_<N>.pt, for `nmt average`; 0: none
    keep_checkpoints: int = field(default=0, metadata=_range(0, resume_safe=True))
    # rows of each embedding table kept at every validation in snapshots/step_<N>.pt (fp16, those of the
    # most frequent pieces; about 2 x rows x embedding_size x 2 bytes a validation), for `nmt embeddings RUN
    # movie` and the page's slider; 0: none
    embedding_snapshots: int = field(default=1000, metadata=_range(0, 10_000))
    dev_max_sentences: int = field(default=0, metadata=_range(0, resume_safe=True))  # 0: the whole dev set
    threads: int = field(default=0, metadata=_range(0, resume_safe=True))  # torch threads; 0: torch's default
    # auto (a GPU when torch sees one) | cpu | cuda | cuda:N; a run may go on on another device
    device: str = field(default="auto", metadata=RESUME_SAFE)
    # mixed precision: bf16 autocast, or fp16 autocast with a gradient scaler (CUDA and CPU); auto:
    # the faster of fp32 and bf16, measured on a CPU with bf16 units, else fp32 (nmt/precision.py)
    precision: Literal["fp32", "bf16", "fp16", "auto"] = field(default="fp32", metadata=RESUME_SAFE)
    progress: bool = field(default=True, metadata=RESUME_SAFE)  # tqdm progress bar
    # TensorBoard events in RUN/tensorboard/ (needs the tensorboard package)
    tensorboard: bool = field(default=False, metadata=RESUME_SAFE)


@dataclass
class DecodeConfig:
    """The run's decode defaults. The options are checked by `DecodeOptions` (runtime/nmt_runtime/decode_options.py,
    which says what each means), so the config, the CLI, the HTTP API and Python refuse a bad value
    with one message; `beam_size` is the option `beam`."""

    strategy: str = field(default=DecodeOptions.strategy, metadata=_option("strategy"))  # beam | greedy | sample
    # beam size for evaluate/translate/serve (1: greedy; sample takes 1)
    beam_size: int = field(default=DecodeOptions.beam, metadata=_option("beam"))
    # hypotheses returned per sentence: the best of the beam, or that many samples
    n_best: int = field(default=DecodeOptions.n_best, metadata=_option("n_best"))
    length_penalty: float = field(default=DecodeOptions.length_penalty, metadata=_option("length_penalty"))  # alpha; 0: none
    # output length limit: ratio × source length + max_len_extra
    max_len_ratio: float = field(default=DecodeOptions.max_len_ratio, metadata=_option("max_len_ratio"))
    max_len_extra: int = field(default=DecodeOptions.max_len_extra, metadata=_option("max_len_extra"))  # max output = ratio*src + extra
    # tokens before EOS may end a translation
    min_length: int = field(default=DecodeOptions.min_length, metadata=_option("min_length"))
    no_repeat_ngram_size: int = field(default=DecodeOptions.no_repeat_ngram_size, metadata=_option("no_repeat_ngram_size"))  # 0: off
    temperature: float = field(default=DecodeOptions.temperature, metadata=_option("temperature"))  # sample only
    top_k: int = field(default=DecodeOptions.top_k, metadata=_option("top_k"))  # sample only; 0: no limit
    top_p: float = field(default=DecodeOptions.top_p, metadata=_option("top_p"))  # sample only; 1: no limit
    seed: Optional[int] = field(default=DecodeOptions.seed, metadata=_option("seed"))  # sample only; null: fresh each call
    batch_size: int = field(default=64, metadata=_range(1, resume_safe=True))  # sentences decoded together

    def choices(self) -> dict[str, Any]:
        """The decode options these keys choose, by DecodeOptions' names: the keys that differ from
        their defaults (so `strategy: sample` alone samples, with beam 1)."""
        default = DecodeConfig()
        return {f.metadata["option"]: getattr(self, f.name) for f in dataclasses.fields(self)
                if "option" in f.metadata and getattr(self, f.name) != getattr(default, f.name)}

    def options(self) -> DecodeOptions:
        return DecodeOptions.resolve(self.choices())

    @classmethod
    def key_of(cls, option: str) -> str:
        """The config key of a decode option: beam → beam_size."""
        return next(f.name for f in dataclasses.fields(cls) if f.metadata.get("option") == option)


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_diff(old: dict, new: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for every key whose value differs, nested dicts walked."""
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b, path = old.get(key), new.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_diff(a, b, path + ".")
        elif a != b:
            diffs.append((path, a, b))
    return diffs


def resume_changes(saved: Config, new: Config) -> list[tuple[str, Any, Any]]:
    """The differences a resume may not make: those on keys not marked RESUME_SAFE."""
    safe = resume_safe_keys()
    return [d for d in config_diff(saved.to_dict(), new.to_dict()) if d[0] not in safe]


def resume_safe_keys(cls: type = Config, prefix: str = "") -> set[str]:
    """The dotted keys whose fields are marked RESUME_SAFE (e.g. 'train.max_steps')."""
    keys = set()
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            keys |= resume_safe_keys(tp, f"{prefix}{f.name}.")
        elif f.metadata.get("resume_safe"):
            keys.add(f"{prefix}{f.name}")
    return keys


# ----------------------------------------------------------------------------- parsing


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin is typing.Union:
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """Check `value` against the annotation `tp`; return it (ints widen to floats)."""
    origin = typing.get_origin(tp)
    bad = NmtError(f"{where}: key '{key}' has value {value!r}; expected {_type_name(tp)}")
    if origin is typing.Union:  # Optional[X]
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)][0]
        return _coerce(value, inner, key, where)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise bad
        return value
    if origin is list:
        if not isinstance(value, list):
            raise bad
        (inner,) = typing.get_args(tp)
        return [_coerce(v, inner, f"{key}[{i}]", where) for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise TypeError(f"unsupported annotation {tp!r} for {key}")  # a bug in this module


def _check_range(value: Any, meta: dict, key: str, where: str) -> None:
    if "range" not in meta:
        return
    lo, hi, lo_open = meta["range"]
    too_low = lo is not None and (value <= lo if lo_open else value < lo)
    too_high = hi is not None and value > hi
    if too_low or too_high:
        low = "" if lo is None else f"{'>' if lo_open else '>='} {lo}"
        high = "" if hi is None else f"<= {hi}"
        allowed = " and ".join(p for p in (low, high) if p)
        raise NmtError(f"{where}: key '{key}' has value {value!r}; it must be {allowed}")


def _build(cls: type, raw: Any, prefix: str, where: str) -> Any:
    if not isinstance(raw, dict):
        raise NmtError(f"{where}: '{prefix or 'the config'}' must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            full = f"{prefix}.{key}" if prefix else str(key)
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            dot = f"{prefix}." if prefix else ""
            hint = f"; did you mean '{dot}{close[0]}'?" if close else f"; known keys: {', '.join(fields)}"
            raise NmtError(f"{where}: unknown key '{full}'{hint}")
    kwargs = {}
    for name, f in fields.items():
        if name not in raw:
            continue
        full = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, raw[name], full, where)
        else:
            value = _coerce(raw[name], tp, full, where)
            _check_range(value, f.metadata, full, where)
            kwargs[name] = value
    return cls(**kwargs)


def _validate(cfg: Config, where: str) -> None:
    """Checks that involve more than one key."""
    d, t = cfg.data, cfg.train
    if not d.train:
        raise NmtError(f"{where}: key 'data.train' is required (a file prefix or a .tsv file)")
    if not d.dev:
        raise NmtError(f"{where}: key 'data.dev' is required (a file prefix or a .tsv file)")
    if d.src_lang == d.tgt_lang:
        raise NmtError(f"{where}: keys 'data.src_lang' and 'data.tgt_lang' are both {d.src_lang!r}")
    FORMATS[d.format].check(d, where)
    if len(t.adam_betas) != 2 or not all(0.0 <= b < 1.0 for b in t.adam_betas):
        raise NmtError(f"{where}: key 'train.adam_betas' must be two numbers in [0, 1)")
    if t.schedule == "inverse_sqrt" and t.warmup_steps == 0:
        raise NmtError(
            f"{where}: key 'train.schedule' is 'inverse_sqrt' but 'train.warmup_steps' is 0; the rate "
            "decays as lr × sqrt(warmup_steps / step), so without warm-up steps it never changes: set "
            "'train.warmup_steps' (e.g. 4000), or use 'constant'"
        )
    if t.schedule == "linear" and not (t.max_steps or t.max_minutes):
        raise NmtError(
            f"{where}: key 'train.schedule' is 'linear' but neither 'train.max_steps' nor 'train.max_minutes' "
            "is set; the rate falls to 'train.min_lr' as that budget runs out: set one of them"
        )
    if cfg.tokenizer.sampling_alpha > 0 and cfg.tokenizer.type != "unigram":
        raise NmtError(f"{where}: key 'tokenizer.sampling_alpha' samples unigram splits, but 'tokenizer.type' "
                       f"is {cfg.tokenizer.type!r}; set it to 0 or use type unigram")
    if t.max_steps == 0 and t.max_epochs == 0 and t.max_minutes == 0:
        raise NmtError(
            f"{where}: set at least one of 'train.max_steps', 'train.max_epochs', "
            "'train.max_minutes' (all are 0: training would never stop)"
        )
    m = cfg.model
    if m.attention == "luong_dot" and m.decoder_hidden_size != 2 * m.encoder_hidden_size:
        raise NmtError(
            f"{where}: key 'model.attention' is 'luong_dot', which compares decoder states "
            f"('model.decoder_hidden_size' {m.decoder_hidden_size}) with encoder states (2 × "
            f"'model.encoder_hidden_size' = {2 * m.encoder_hidden_size}); make them equal, or use luong_general"
        )
    e = m.embeddings
    if e.share_src_tgt:
        if not cfg.tokenizer.joint:
            raise NmtError(
                f"{where}: key 'model.embeddings.share_src_tgt' is true but 'tokenizer.joint' is false; "
                "one table for both sides needs one vocabulary: set 'tokenizer.joint: true'"
            )
        if e.freeze_src != e.freeze_tgt:
            raise NmtError(
                f"{where}: key 'model.embeddings.share_src_tgt' is true (one table) but "
                f"'model.embeddings.freeze_src' is {str(e.freeze_src).lower()} and "
                f"'model.embeddings.freeze_tgt' is {str(e.freeze_tgt).lower()}; set both the same"
            )
        if e.pretrained_src and e.pretrained_tgt and e.pretrained_src != e.pretrained_tgt:
            raise NmtError(
                f"{where}: key 'model.embeddings.share_src_tgt' is true (one table) but "
                "'model.embeddings.pretrained_src' and 'model.embeddings.pretrained_tgt' name different "
                "files; set only one of them"
            )
    for side in ("src", "tgt"):
        value = getattr(e, f"pretrained_{side}")
        if value is not None and not value.strip():
            raise NmtError(f"{where}: key 'model.embeddings.pretrained_{side}' is empty; give a file or null")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", cfg.train.device):
        raise NmtError(f"{where}: key 'train.device' has value {cfg.train.device!r}; it must be auto, cpu, cuda "
                       "or cuda:N")
    try:
        cfg.decode.options()
    except DecodeOptionError as e:
        raise NmtError(f"{where}: key 'decode.{DecodeConfig.key_of(e.option)}': {e}") from None


class _Loader(yaml.SafeLoader):
    """safe_load, plus YAML 1.2's exponent floats without a dot (`3e-4`), which YAML 1.1 reads as
    strings."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


def parse_override(text: str) -> tuple[list[str], Any]:
    """`train.lr=3e-4` → (['train', 'lr'], 0.0003); the value is read as YAML."""
    if "=" not in text:
        raise NmtError(f"--set {text!r}: expected KEY.PATH=VALUE, e.g. --set train.max_steps=100")
    key, _, value = text.partition("=")
    path = key.strip().split(".")
    if not all(path):
        raise NmtError(f"--set {text!r}: bad key path {key!r}")
    try:
        parsed = yaml_load(value) if value.strip() else ""
    except yaml.YAMLError as e:
        raise NmtError(f"--set {text!r}: value is not valid YAML ({e.__class__.__name__})") from None
    return path, parsed


def apply_overrides(raw: dict, overrides: list[str] | dict[str, Any]) -> dict:
    """Return a copy of `raw` with overrides applied (list of 'a.b=v' or a {'a.b': v} dict)."""
    raw = copy.deepcopy(raw)
    items = (
        [parse_override(o) for o in overrides]
        if isinstance(overrides, list)
        else [(k.split("."), v) for k, v in overrides.items()]
    )
    for path, value in items:
        node = raw
        for part in path[:-1]:
            if not isinstance(node.setdefault(part, {}), dict):
                raise NmtError(f"--set {'.'.join(path)}: '{part}' is not a section")
            node = node[part]
        node[path[-1]] = value
    return raw


def config_from_dict(raw: Any, where: str = "config", overrides: list[str] | dict | None = None) -> Config:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise NmtError(f"{where}: the config must be a YAML mapping of sections, got {type(raw).__name__}")
    if overrides:
        raw = apply_overrides(raw, overrides)
    cfg = _build(Config, raw, "", where)
    _validate(cfg, where)
    return cfg


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    text = read_text(path, "config file")
    try:
        return yaml_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or e.__class__.__name__
        raise NmtError(f"{path}:{line}: invalid YAML: {problem}") from None


def load_config(path_or_dict: str | Path | dict, overrides: list[str] | dict | None = None) -> Config:
    """Load and validate a config from a YAML file or a dict, with optional overrides."""
    if isinstance(path_or_dict, dict):
        return config_from_dict(path_or_dict, "config", overrides)
    return config_from_dict(read_yaml(path_or_dict), str(path_or_dict), overrides)


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
