"""Where this process runs: its rank among torchrun's processes, and its device.

`torchrun --nproc_per_node N -m nmt train CONFIG` starts N copies of `nmt train` with RANK,
WORLD_SIZE and LOCAL_RANK in the environment. Each copy builds the same model and the same list of
global batches, trains on its shard of each batch, and DistributedDataParallel averages the
gradients, so N processes take the same steps as one process with N times the batch. Rank 0 alone
writes (logs, validations, checkpoints); the collectives here keep the others in step with it.
Without torchrun there is one process and every collective is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist

from nmt.errors import NmtError

T = TypeVar("T")


def resolve_device(name: str, local_rank: int = 0, where: str = "config") -> torch.device:
    """`train.device` (auto|cpu|cuda|cuda:N) → a torch.device; under torchrun plain 'cuda' means
    this process's GPU, cuda:LOCAL_RANK."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise NmtError(f"{where}: key 'train.device' is {name!r} but torch sees no CUDA GPU here; use 'cpu' or 'auto'")
    index = local_rank if name == "cuda" else int(name.split(":", 1)[1])
    if index >= torch.cuda.device_count():
        raise NmtError(
            f"{where}: key 'train.device' asks for GPU {index} but torch sees {torch.cuda.device_count()} GPU(s)"
        )
    return torch.device("cuda", index)


@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")  # where collectives put their tensors (nccl: the GPU)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_env(cls) -> "Dist":
        """The process group torchrun describes in the environment (one process without it)."""
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        return cls(int(os.environ.get("RANK", "0")), world_size, int(os.environ.get("LOCAL_RANK", "0")))

    def init(self, device: torch.device) -> None:
        """Join the process group: gloo for CPU training, nccl for CUDA."""
        self.device = device
        if not self.active or dist.is_initialized():
            return
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        # validations run on rank 0 while the others wait in a collective: allow long ones
        dist.init_process_group(backend, timeout=timedelta(hours=2))

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.active:
            dist.barrier()

    def close(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()

    # ------------------------------------------------------------------ collectives

    def broadcast(self, obj: T) -> T:
        """Rank 0's `obj` on every rank."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's `obj`, as a list on rank 0 (None elsewhere)."""
        if not self.active:
            return [obj]
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def any(self, *flags: bool) -> list[bool]:
        """Each flag, true on any rank: decisions every rank must take together (stop, skip)."""
        return [bool(x) for x in self.max(*(float(f) for f in flags))]

    def max(self, *values: float) -> list[float]:
        """Each value's maximum over the ranks (in float64)."""
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t.tolist()

    def sum(self, *values: float) -> list[float]:
        """Each value summed over the ranks (in float64)."""
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run `fn` on rank 0 only and give its result to every rank. An NmtError on rank 0 is
        raised on every rank, so no rank waits forever for a rank that has failed."""
        if not self.active:
            return fn()
        result: Any = None
        error: str | None = None
        if self.is_main:
            try:
                result = fn()
            except NmtError as e:
                error = str(e)
        error, result = self.broadcast((error, result))
        if error is not None:
            raise NmtError(error) if self.is_main else _Quiet(error)
        return result


class _Quiet(NmtError):
    """Rank 0's error seen on another rank: the CLI exits with it without printing it twice."""

    quiet = True
