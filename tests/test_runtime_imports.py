"""nmt_runtime (runtime/) is the torch-free lower layer: nmt-runtime installs it without torch and
without nmt. tests/test_layers.py reads every runtime module's imports from its source; here the
servers' modules are imported for real, in a process where torch cannot be."""

from __future__ import annotations

import pytest

from helpers import python


def test_the_servers_modules_import_where_torch_cannot():
    pytest.importorskip("fastapi", reason="nmt_runtime.serve needs the serve extra")
    code = ("import sys; sys.modules['torch'] = None\n"  # `import torch` raises ImportError from here on
            "import nmt_runtime.serve, nmt_runtime.batcher, nmt_runtime.neighbours\n"
            "loaded = [m for m, module in sys.modules.items() if module and m.split('.')[0] in ('torch', 'nmt')]\n"
            "assert not loaded, loaded\n"
            "print('ok')")
    proc = python("-c", code)
    assert proc.returncode == 0 and proc.stdout.decode().strip() == "ok", proc.stderr.decode()
