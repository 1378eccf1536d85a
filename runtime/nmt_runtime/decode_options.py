"""How to decode, as one value checked in one place: `DecodeOptions`.

Every front end builds its options here: the config's `decode.*` (`DecodeConfig.options`), the
flags of `nmt evaluate/translate/serve`, the fields of `POST /v1/translate` and the keyword
arguments of `Translator.translate_full`. A bad value therefore gets the same one-line message
everywhere, naming the option by the name below (the HTTP field and Python keyword; the CLI flag is
the same name with dashes, e.g. `--top-p`, except `--nbest` and `--no-repeat-ngram`).

    strategy               beam | greedy | sample
    beam                   beam size (greedy is beam 1); sample takes beam 1
    n_best                 hypotheses returned per sentence: the best n of the beam, or n samples
    length_penalty         GNMT's alpha for beam scores (0: raw log-probabilities)
    max_len_ratio, max_len_extra
                           a sentence of S source pieces (EOS counted) outputs at most
                           floor(ratio * S) + extra tokens
    min_length             tokens before EOS may be chosen (0: no minimum)
    no_repeat_ngram_size   no n-gram of this size occurs twice in an output (0: off)
    temperature, top_k, top_p
                           sampling: p ∝ p_model^(1/T), from the k most probable tokens (0: all),
                           then from the fewest whose probability adds up to top_p
    seed                   sampling seed; None: a fresh one each call

No torch here: the config imports this module, and so can anything that only checks options.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from nmt_runtime.errors import NmtError

STRATEGIES = ("beam", "greedy", "sample")


class DecodeOptionError(NmtError):
    """A decode option out of its range; `option` names it (for front ends that spell it otherwise)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


def _rule(text: str) -> dict[str, str]:
    return {"rule": text}


@dataclass(frozen=True)
class DecodeOptions:
    """Validated on construction: an instance is always a valid set of options. Front ends build
    them with `resolve` (a strategy other than beam needs beam 1, which `resolve` sets)."""

    strategy: str = field(default="beam", metadata=_rule("one of beam, greedy, sample"))
    beam: int = field(default=5, metadata=_rule("a whole number of at least 1"))
    n_best: int = field(default=1, metadata=_rule("a whole number of at least 1"))
    length_penalty: float = field(default=1.0, metadata=_rule("a number of at least 0"))
    max_len_ratio: float = field(default=1.5, metadata=_rule("a number above 0"))
    max_len_extra: int = field(default=10, metadata=_rule("a whole number of at least 0"))
    min_length: int = field(default=0, metadata=_rule("a whole number of at least 0"))
    no_repeat_ngram_size: int = field(default=0, metadata=_rule("a whole number of at least 0 (0: off)"))
    temperature: float = field(default=1.0, metadata=_rule("a number above 0"))
    top_k: int = field(default=0, metadata=_rule("a whole number of at least 0 (0: no limit)"))
    top_p: float = field(default=1.0, metadata=_rule("a number in (0, 1]"))
    seed: int | None = field(default=None, metadata=_rule("a whole number of at least 0, or null"))

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not _CHECKS[f.name](value):
                raise DecodeOptionError(f.name, f"{f.name} is {value!r}; it must be {f.metadata['rule']}")
        # one type per option whatever the front end sent: 2.0 → 2 for counts, 1 → 1.0 for rates
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("int", "int | None") and value is not None:
                object.__setattr__(self, f.name, int(value))
            elif f.type == "float":
                object.__setattr__(self, f.name, float(value))
        if self.strategy != "beam" and self.beam != 1:
            raise DecodeOptionError("beam", f"beam is {self.beam}; strategy {self.strategy!r} takes beam 1"
                                    + (" (n_best says how many samples)" if self.strategy == "sample" else ""))
        if self.strategy != "sample" and self.n_best > self.beam:
            raise DecodeOptionError("n_best", f"n_best is {self.n_best}; it must be at most the beam ({self.beam})")
        if self.min_length > self.shortest_maximum:
            raise DecodeOptionError(
                "min_length", f"min_length is {self.min_length}; it must be at most {self.shortest_maximum}, the "
                "maximum output of a one-piece source (floor(2 × max_len_ratio) + max_len_extra)")

    @property
    def shortest_maximum(self) -> int:
        """The most tokens a one-piece source (2 with its EOS) may produce: every sentence may produce as many."""
        return math.floor(2 * self.max_len_ratio) + self.max_len_extra

    @property
    def search(self) -> str:
        """What the search runs: beam 1 is greedy search, whatever the strategy's name."""
        return "greedy" if self.strategy == "beam" and self.beam == 1 else self.strategy

    @classmethod
    def resolve(cls, *layers: Mapping[str, Any]) -> "DecodeOptions":
        """Options from layers of choices, each over the ones before it: the run's config (its keys
        that differ from the defaults), then the command line, then a request. None: not chosen.

        A choice of one layer gives way to a related choice of a later one, so that a front end can
        pick a strategy whatever the run's defaults are:
        - greedy or sample chosen after a beam size: beam 1 (that beam size was for beam search);
        - a beam size above 1 chosen after greedy or sample: beam search;
        - greedy chosen after an n-best: n-best 1; a beam chosen after an n-best above it: n-best
          shrinks to the beam.
        Choices of the same layer that contradict each other (sample with beam 4, say) are refused,
        as are unknown names."""
        values: dict[str, Any] = {}
        layer_of: dict[str, int] = {}  # the layer that chose each value (-1: the default)
        known = {f.name for f in fields(cls)}
        for i, layer in enumerate(layers):
            for name, value in layer.items():
                if name not in known:
                    raise DecodeOptionError(name, f"unknown decode option {name!r}; the options are "
                                                  f"{', '.join(sorted(known))}")
                if value is not None:
                    values[name], layer_of[name] = value, i
        when = lambda name: layer_of.get(name, -1)  # noqa: E731
        beam, n_best = values.get("beam"), values.get("n_best")
        if _count(beam) and beam > 1 and when("beam") > when("strategy"):
            values["strategy"] = "beam"
        strategy = values.get("strategy", cls.strategy)
        if strategy in ("greedy", "sample") and when("beam") < when("strategy"):
            values["beam"] = 1
        if strategy == "greedy" and when("n_best") < when("strategy"):
            values["n_best"] = 1
        beam = values.get("beam", cls.beam)
        if strategy == "beam" and _count(n_best) and _count(beam) and n_best > beam and when("n_best") < when("beam"):
            values["n_best"] = beam
        return cls(**values)

    def given(self, **changes: Any) -> "DecodeOptions":
        """These options with a front end's choices on top (`resolve`, these options as the first layer)."""
        return self.resolve(self.as_dict(), changes)

    def describe(self) -> str:
        """The settings that decide the output, for printing beside results."""
        s = self.search
        parts = [f"strategy {s}"] + ([f"beam {self.beam}", f"length penalty {self.length_penalty:g}"] if s == "beam" else [])
        if s == "sample":
            parts += [f"temperature {self.temperature:g}", f"top-k {self.top_k}", f"top-p {self.top_p:g}",
                      f"seed {self.seed if self.seed is not None else 'random'}"]
        if self.n_best > 1:
            parts.append(f"n-best {self.n_best}")
        parts.append(f"max length {self.max_len_ratio:g}×src+{self.max_len_extra}")
        if self.min_length:
            parts.append(f"min length {self.min_length}")
        if self.no_repeat_ngram_size:
            parts.append(f"no repeated {self.no_repeat_ngram_size}-grams")
        return ", ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _count(v: Any) -> bool:
    """A whole number (not a bool): what beam sizes and n-bests may be compared as."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _whole(lo: int) -> Any:
    return lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= lo or (
        isinstance(v, float) and v.is_integer() and v >= lo)


def _real(lo: float, lo_open: bool = False, hi: float = math.inf) -> Any:
    def check(v: Any) -> bool:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            return False
        return (v > lo if lo_open else v >= lo) and v <= hi
    return check


_CHECKS = {
    "strategy": lambda v: v in STRATEGIES,
    "beam": _whole(1),
    "n_best": _whole(1),
    "length_penalty": _real(0.0),
    "max_len_ratio": _real(0.0, lo_open=True),
    "max_len_extra": _whole(0),
    "min_length": _whole(0),
    "no_repeat_ngram_size": _whole(0),
    "temperature": _real(0.0, lo_open=True),
    "top_k": _whole(0),
    "top_p": _real(0.0, lo_open=True, hi=1.0),
    "seed": lambda v: v is None or _whole(0)(v),
}
