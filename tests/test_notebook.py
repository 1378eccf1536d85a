"""notebooks/embedding_lab.ipynb as committed: a valid notebook, without outputs.

Executing it takes minutes (it trains), so `make test` does not: CI runs `make notebook`
(scripts/run_notebook.py), which fails on the first cell that raises.
"""

import ast
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook checks need nbformat (the test extra)")

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "embedding_lab.ipynb"


def read():
    return nbformat.read(NOTEBOOK, as_version=nbformat.NO_CONVERT)


def test_notebook_is_valid_nbformat_4():
    nb = read()
    assert nb.nbformat == 4
    nbformat.validate(nb)  # raises ValidationError naming the field
    assert nb.metadata.kernelspec.name == "python3"


def test_notebook_is_committed_without_outputs():
    nb = read()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the notebook has no code cells"
    with_outputs = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.outputs]
    counted = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.execution_count is not None]
    timed = [i for i, c in enumerate(nb.cells) if "execution" in c.metadata]
    assert not with_outputs, f"cells {with_outputs} have outputs: clear them before committing"
    assert not counted, f"cells {counted} have execution counts: clear them before committing"
    assert not timed, f"cells {timed} carry execution timings: clear them before committing"


def test_notebook_code_cells_parse():
    for i, cell in enumerate(read().cells):
        if cell.cell_type == "code":
            source = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            ast.parse(source, filename=f"{NOTEBOOK.name}, cell {i}")

