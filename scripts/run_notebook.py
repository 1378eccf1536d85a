"""Execute a notebook from top to bottom and write the executed copy: `make notebook` and CI.

    python scripts/run_notebook.py notebooks/embedding_lab.ipynb docs/notebooks/embedding_lab.ipynb

The notebook runs in a fresh kernel of this Python (ipykernel's python3 kernel: the same
environment, PYTHONPATH included), started in the notebook's own folder as Jupyter would. A cell
that raises stops the run: the cell's source and traceback go to stderr, the exit status is 1 and
OUT is left as it was, so the manual never shows a half-executed notebook. A cell that runs longer
than --cell-timeout seconds, or a kernel that dies, fails the same way. At the end, one line with
the elapsed seconds and the slowest cells. Needs the notebook extra:
pip install -c constraints.txt -e '.[notebook]'.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

HINT = "run_notebook.py needs the notebook extra: pip install -c constraints.txt -e '.[notebook]'"


def cell_seconds(cell: dict) -> float | None:
    """How long a code cell ran, from the timestamps nbclient records in its metadata."""
    timing = cell.get("metadata", {}).get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return None
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def first_line(cell: dict) -> str:
    lines = [line for line in "".join(cell.get("source", "")).splitlines() if line.strip()]
    return (lines[0][:60] if lines else "(empty)").strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", type=Path, help="the notebook to execute (it is not changed)")
    parser.add_argument("out", type=Path, help="where the executed copy goes")
    parser.add_argument("--cell-timeout", type=int, default=900, help="seconds one cell may run (default 900)")
    args = parser.parse_args(argv)
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    except ImportError:
        print(HINT, file=sys.stderr)
        return 2

    nb = nbformat.read(args.notebook, as_version=4)
    client = NotebookClient(nb, timeout=args.cell_timeout, kernel_name="python3", allow_errors=False,
                            coalesce_streams=True,  # one block per cell and stream, however often it flushed
                            resources={"metadata": {"path": str(args.notebook.parent.resolve())}})
    t0 = time.monotonic()
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
        print(f"{args.notebook}: a cell failed after {time.monotonic() - t0:.0f} s; {args.out} not written\n{e}",
              file=sys.stderr)
        return 1
    seconds = time.monotonic() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, args.out)
    timed = [(cell_seconds(c), i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    timed = sorted((t for t in timed if t[0] is not None), key=lambda t: -t[0])
    slowest = "; ".join(f"cell {i} {s:.0f} s ({first_line(c)!r})" for s, i, c in timed[:3])
    print(f"executed {args.notebook} in {seconds:.0f} s into {args.out}; slowest: {slowest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
