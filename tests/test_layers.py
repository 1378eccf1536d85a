"""The layers point one way: the core (model, search, trainer, data, translate, evaluate and the rest)
imports nothing from the layers above it, the embedding lab (nmt/lab), the server (nmt/serve.py)
and the command line (nmt/cli.py, nmt/__main__.py). What both sides need lives below, in the core
(e.g. nmt/drift.py, which the trainer logs and the lab reports).

Below them all is nmt_runtime (runtime/), the torch-free layer an export translates with: it
imports neither torch nor nmt, so that `pip install ./runtime` runs without either.

The imports are read from the source with `ast`, so an import inside a function (a lazy one) counts
as much as one at the top, and a new core module is checked without being listed here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from helpers import ROOT

PACKAGE = ROOT / "nmt"
ABOVE = ("nmt.lab", "nmt.serve", "nmt.cli", "nmt.__main__")  # the layers above the core
NOT_CORE = {PACKAGE / "cli.py", PACKAGE / "serve.py", PACKAGE / "__main__.py"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py")
                  if p not in NOT_CORE and not p.is_relative_to(PACKAGE / "lab"))


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every import in the source of `module`, at any depth; `from A import B`
    gives both A and A.B (B may be a module), and relative imports are made absolute."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            name = ".".join(base + ([node.module] if node.module else []))
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def is_above(module: str) -> bool:
    return any(module == top or module.startswith(top + ".") for top in ABOVE)


def test_the_core_is_found():
    names = {module_name(p) for p in core_modules()}
    assert {"nmt", "nmt.trainer", "nmt.translate", "nmt.search", "nmt.model", "nmt.drift"} <= names
    assert not any(is_above(n) for n in names)


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: module_name(p))
def test_a_core_module_imports_nothing_from_the_lab_the_server_or_the_cli(path):
    found = imported_modules(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")
    bad = {line: f"{path.relative_to(ROOT)}:{line} imports {module}" for line, module in reversed(found)
           if is_above(module)}  # one per line: the module, not also the name imported from it
    bad = [bad[line] for line in sorted(bad)]
    assert not bad, "; ".join(bad) + " (move what both need into a core module that both import)"


def test_the_check_sees_lazy_relative_and_from_imports():
    source = "def f():\n    from ..lab import stats\n    import nmt.serve\nfrom nmt import cli\nimport nmt.search\n"
    found = imported_modules(source, "nmt.model.sample")
    assert sorted((line, m) for line, m in found if is_above(m)) == [
        (2, "nmt.lab"), (2, "nmt.lab.stats"), (3, "nmt.serve"), (4, "nmt.cli")]


RUNTIME = ROOT / "runtime" / "nmt_runtime"


@pytest.mark.parametrize("path", sorted(RUNTIME.rglob("*.py")), ids=lambda p: p.name)
def test_the_runtime_imports_neither_torch_nor_nmt(path):
    name = "nmt_runtime." + ".".join(path.relative_to(RUNTIME).with_suffix("").parts)
    found = imported_modules(path.read_text(encoding="utf-8"), name.removesuffix(".__init__"), path.name == "__init__.py")
    bad = sorted({f"{path.relative_to(ROOT)}:{line} imports {m}" for line, m in found
                  if m.split(".")[0] in ("torch", "nmt")})
    assert not bad, "; ".join(bad)


def test_the_wheel_holds_every_package_of_nmt_and_of_the_runtime():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    setuptools = pytest.importorskip("setuptools")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    found = {f"nmt.{p}" for p in setuptools.find_packages(str(PACKAGE))} | {"nmt"}
    found |= {f"nmt_runtime.{p}" for p in setuptools.find_packages(str(RUNTIME))} | {"nmt_runtime"}
    assert set(config["packages"]) == found
    assert config["package-dir"] == {"nmt_runtime": "runtime/nmt_runtime"}
