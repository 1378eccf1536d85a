"""nmt_runtime (runtime/) is the torch-free lower layer: nmt-runtime installs it without torch and
without nmt. tests/test_layers.py reads every runtime module's imports from its source; here the
runtime's modules are imported for real, in a process where torch and nmt cannot be."""

from __future__ import annotations

import pytest

from helpers import runtime_process


def test_the_runtimes_modules_import_where_torch_cannot():
    pytest.importorskip("fastapi", reason="nmt_runtime.serve needs the serve extra")
    code = ("import nmt_runtime.serve, nmt_runtime.batcher, nmt_runtime.neighbours, nmt_runtime.cli, "
            "nmt_runtime.translator, nmt_runtime.search, nmt_runtime.exported, nmt_runtime.scoring\n"
            "loaded = [m for m, module in sys.modules.items() if module and m.split('.')[0] in ('torch', 'nmt')]\n"
            "assert not loaded, loaded\n"
            "print('ok')")
    proc = runtime_process(code)
    assert proc.returncode == 0 and proc.stdout.decode().strip() == "ok", proc.stderr.decode()
