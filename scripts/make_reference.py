"""The manual's reference pages, generated from the code so that they cannot drift from it.

    python scripts/make_reference.py            writes docs/reference/config.md and cli.md
    python scripts/make_reference.py --check    exits 1, naming the page, if one is not up to date

- config.md: every key of the config dataclasses (nmt/config.py), walked from `Config`: its type,
  default (as YAML writes it), range, whether it may change on `--resume`, and its meaning, which is
  the comment above the field or beside it in nmt/config.py.
- cli.md: the `--help` of every subcommand of `nmt` and `nmt-runtime`, from their argparse parsers,
  at a fixed width of 100 columns.

tests/test_reference.py holds both pages to this script's output, and the config page to the
dataclasses' keys.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import io
import os
import sys
import tokenize
import typing
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "runtime")]  # run from a checkout without installing

from nmt import config as config_module  # noqa: E402

OUT = ROOT / "docs" / "reference"
WIDTH = "100"
ARGPARSE_OF = f"Python {sys.version_info.major}.{sys.version_info.minor}'s argparse"


# ----------------------------------------------------------------------------- the config keys


def field_comments(source: str) -> dict[tuple[str, str], str]:
    """(class, field) → the comment lines right above the field and beside it, joined."""
    comments: dict[int, str] = {}
    code_lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            code_lines.add(tok.start[0])
    found = {}
    for cls in ast.walk(ast.parse(source)):
        if not isinstance(cls, ast.ClassDef):
            continue
        for node in cls.body:
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
                continue
            above, line = [], node.lineno - 1
            while line in comments and line not in code_lines:
                above.insert(0, comments[line])
                line -= 1
            beside = [comments[n] for n in range(node.lineno, (node.end_lineno or node.lineno) + 1)
                      if n in comments and n in code_lines]
            text = " ".join(c for c in above + beside if not c.startswith("type:"))
            found[(cls.name, node.target.id)] = text
    return found


def type_text(hint: Any) -> str:
    """A field's type as a config's reader needs it: int, number, text, one of a | b, a list of text."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return "one of " + " | ".join(str(a) for a in args)
    if origin is typing.Union:
        rest = [a for a in args if a is not type(None)]
        return " or ".join(type_text(a) for a in rest) + (" or null" if len(rest) < len(args) else "")
    if origin is list:
        return f"a list of {type_text(args[0])}" if args else "a list"
    names = {bool: "true | false", int: "whole number", float: "number", str: "text"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def range_text(metadata: Any) -> str:
    if "range" not in metadata:
        return ""
    lo, hi, lo_open = metadata["range"]
    if lo is not None and hi is not None:
        return f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
    if lo is not None:
        return f"{'>' if lo_open else '≥'} {lo:g}"
    return f"≤ {hi:g}" if hi is not None else ""


def default_text(f: dataclasses.Field) -> str:
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default  # type: ignore[misc]
    if dataclasses.is_dataclass(value):
        return ""
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip().removesuffix("\n...").strip()


def config_rows(cls: type = config_module.Config, prefix: str = "",
                comments: dict[tuple[str, str], str] | None = None) -> list[dict[str, str]]:
    """Every leaf key of the config, in the dataclasses' order: key, type, default, range, resume, meaning."""
    if comments is None:
        comments = field_comments(Path(config_module.__file__).read_text(encoding="utf-8"))
    hints = typing.get_type_hints(cls, vars(config_module))
    rows = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            rows += config_rows(hint, f"{prefix}{f.name}.", comments)
            continue
        rows.append({
            "key": prefix + f.name, "type": type_text(hint), "default": default_text(f), "range": range_text(f.metadata),
            "resume": "may change" if f.metadata.get("resume_safe") else "fixed",
            "meaning": comments.get((cls.__name__, f.name), "")
            + (" (training batches only: not part of the prepared data)" if f.metadata.get("training_only") else ""),
        })
    return rows


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def config_page() -> str:
    lines = [
        "# Config reference",
        "",
        "Every key of a config, generated from the dataclasses of `nmt/config.py` by",
        "`python scripts/make_reference.py`: its type, its default, the values it may take, whether it",
        "may change when a run is resumed (`nmt train CONFIG --resume`), and what it means. Unknown keys",
        "are refused, and every value is checked, in the file and in `--set KEY.PATH=VALUE`.",
        "",
        "| key | type | default | range | on resume | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for r in config_rows():
        default = f"`{cell(r['default'])}`" if r["default"] else ""
        lines.append(f"| `{r['key']}` | {cell(r['type'])} | {default} | {cell(r['range'])} | {r['resume']} | "
                     f"{cell(r['meaning'])} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the commands


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """(name, parser) of every subcommand, depth first (nmt embeddings' actions included)."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((name, sub))
                found += [(f"{name} {n}", p) for n, p in subcommands(sub)]
    return found


def cli_page() -> str:
    from nmt.cli import build_parser as nmt_parser
    from nmt_runtime.cli import build_parser as runtime_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = WIDTH  # argparse wraps at the terminal's width: fix it
    try:
        lines = ["# Command reference", "",
                 "The `--help` of every command, generated from the argparse parsers by",
                 f"`python scripts/make_reference.py` ({ARGPARSE_OF}: other versions lay the help out a little",
                 "differently).", ""]
        for prog, parser in (("nmt", nmt_parser()), ("nmt-runtime", runtime_parser())):
            lines += [f"## {prog}", "", "```text", parser.format_help().rstrip(), "```", ""]
            for name, sub in subcommands(parser):
                lines += [f"### {prog} {name}", "", "```text", sub.format_help().rstrip(), "```", ""]
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(lines).rstrip() + "\n"


PAGES = {"config.md": config_page, "cli.md": cli_page}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if a page differs from what the code makes")
    args = p.parse_args(argv)
    stale = []
    for name, make in PAGES.items():
        path, text = OUT / name, make()
        if args.check:
            if name == "cli.md" and path.is_file() and ARGPARSE_OF not in path.read_text(encoding="utf-8"):
                continue  # made by another Python's argparse, whose layout differs: comparable only there
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"make_reference: error: not up to date: {', '.join(stale)}; run python scripts/make_reference.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
