"""Embedding snapshots: the rows of the most frequent pieces of both tables, kept at every
validation, so that the lab can show the rows moving (`nmt embeddings RUN movie`, the page's
slider) without keeping a checkpoint per validation.

    RUN/snapshots/step_<N>.pt   {"step": N, "ids": {side: int32 (rows,)}, "rows": {side: fp16 (rows, dim)}}

The rows are those of the `train.embedding_snapshots` most frequent non-special ids of each side
in the training data (`token_counts.pt`), so every snapshot of a run holds the same ids; the
positions before the first step are the run's `embeddings_init.pt`. A file is about
`snapshot_bytes(rows, dim)`: 2 sides × rows × dim × 2 bytes (fp16), plus the ids.

Like drift, this sits below the lab (the trainer writes, the lab reads): the core imports nothing
from the lab.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from nmt.checkpoint import atomic_write
from nmt.errors import NmtError
from nmt.rundir import step_files
from nmt.tokenizer import N_SPECIAL
from nmt_runtime.tokenizer import SIDES

SNAPSHOT_DTYPE = torch.float16
# what a file holds beyond its rows and ids: torch.save's zip records and their alignment
FILE_OVERHEAD = 4096


def snapshot_bytes(rows: int, dim: int) -> int:
    """An upper bound on one snapshot file's size, as the README states it (4 bytes an id, 2 a value)."""
    return len(SIDES) * rows * (dim * 2 + 4) + FILE_OVERHEAD


def snapshot_ids(counts: torch.Tensor, rows: int) -> torch.Tensor:
    """The ids of the `rows` most frequent pieces seen in training (special ids left out; ties
    go to the lower id), most frequent first: int32 (≤ rows,)."""
    counts = counts.detach().cpu().long().clone()
    counts[:N_SPECIAL] = 0
    order = torch.sort(-counts, stable=True).indices  # descending counts, ties by id
    seen = int((counts > 0).sum())
    return order[: min(rows, seen)].to(torch.int32)


def save_snapshot(path: Path, step: int, tables: dict[str, torch.Tensor], ids: dict[str, torch.Tensor]) -> None:
    """Write the rows `ids` of each side's table at `step`, atomically (a kill leaves the old file or none)."""
    payload = {
        "step": step,
        "ids": {side: ids[side] for side in SIDES},
        "rows": {side: tables[side].detach()[ids[side].long()].to("cpu", SNAPSHOT_DTYPE).clone() for side in SIDES},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: torch.save(payload, f))


def snapshot_path(folder: Path, step: int) -> Path:
    return folder / f"step_{step}.pt"


def snapshot_files(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of the snapshot files in `folder`, by step."""
    return step_files(folder)


def drop_after(folder: Path, step: int) -> int:
    """Delete the snapshots of steps after `step` (a resumed run makes them again); how many."""
    dropped = 0
    for s, path in snapshot_files(folder):
        if s > step:
            path.unlink()
            dropped += 1
    return dropped


HOW_TO_GET = ("a run keeps them at every validation while 'train.embedding_snapshots' is above 0 (the "
              "default); runs trained before nmt kept them have none: train again to get them")


@dataclass
class Snapshots:
    """One side's snapshots of a run: `rows[k]` is the table's rows `ids` at `steps[k]`; `initial`
    the same rows before the first step."""

    side: str
    steps: list[int]
    ids: torch.Tensor  # (rows,) int64
    rows: torch.Tensor  # (frames, rows, dim) float32
    initial: torch.Tensor  # (rows, dim) float32

    def projection(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One 2-D PCA for every frame, fitted on all the snapshot rows at the start and at every
        validation, so that a row's motion in the picture is its motion in the table (`pca_axes`)."""
        return pca_axes(torch.cat([self.initial[None], self.rows]).reshape(-1, self.rows.shape[-1]))

    def index(self, token_id: int) -> int | None:
        """Where `token_id` is among the snapshot rows, or None."""
        hit = (self.ids == token_id).nonzero()
        return int(hit[0, 0]) if len(hit) else None


def pca_axes(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean (dim,) and first two principal axes (2, dim) of the rows of `x` (n, dim), in
    float64; each axis's sign fixed so that the largest coordinate along it is positive, so the
    same data always gives the same picture. Fewer than 2 dimensions: the missing axis is zero."""
    x = x.double()
    mean = x.mean(dim=0)
    _, _, vh = torch.linalg.svd(x - mean, full_matrices=False)
    axes = torch.zeros(2, x.shape[1], dtype=torch.float64)
    axes[: min(2, vh.shape[0])] = vh[:2]
    coords = (x - mean) @ axes.T
    signs = torch.sign(coords.gather(0, coords.abs().argmax(dim=0, keepdim=True)))[0]
    return mean, axes * torch.where(signs == 0, torch.ones_like(signs), signs)[:, None]


def load_snapshots(folder: Path, initial_tables: Path, side: str) -> Snapshots:
    """A run's snapshots of one side, with the initial rows from `initial_tables` (embeddings_init.pt).
    Raises NmtError when there are none, or when files disagree on their ids."""
    files = snapshot_files(folder)
    if not files:
        raise NmtError(f"{folder.parent}: no embedding snapshots in {folder.name}/; {HOW_TO_GET}")
    steps, frames, ids = [], [], None
    for step, path in files:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            these, rows = data["ids"][side].long(), data["rows"][side].float()
        except Exception as e:  # a torn or foreign file: say which
            raise NmtError(f"{path}: not an embedding snapshot ({type(e).__name__}: {e})") from None
        if ids is None:
            ids = these
        elif not torch.equal(ids, these):
            raise NmtError(f"{path}: holds other rows than {files[0][1].name} (was 'train.embedding_snapshots' "
                           "changed?); delete the snapshots of one of them")
        steps.append(step)
        frames.append(rows)
    if not initial_tables.is_file():
        raise NmtError(f"{initial_tables}: missing (the tables before the first step, written when a run starts)")
    init = torch.load(initial_tables, map_location="cpu", weights_only=True)[side].float()
    assert ids is not None
    return Snapshots(side, steps, ids, torch.stack(frames), init[ids])


__all__ = ["pca_axes", "snapshot_ids", "save_snapshot", "load_snapshots", "Snapshots", "snapshot_bytes", "drop_after"]
