"""The processes of a data-parallel run: which rank this is, of how many (MPI, via mpi4py).

``mpiexec -n K rnnlab train ...`` (or ``srun``) starts K processes; :func:`world` tells each
which it is. MPI is noticed from the variables its launchers set, and only then is mpi4py
imported (so a plain ``rnnlab train`` never initialises MPI, and ``import rnnlab`` never
imports mpi4py). These are the variables read (the only environment variables rnnlab
reads)::

    PMI_SIZE, PMI_RANK                        MPICH's and Intel MPI's mpiexec (Hydra), and
                                              srun --mpi=pmi2
    OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_RANK   Open MPI's mpirun / mpiexec
    SLURM_STEP_NUM_TASKS, SLURM_PROCID        srun (set inside a job step only, not in the
                                              batch script itself)

A size above 1 in any of them means MPI; the rank and size then come from
``MPI.COMM_WORLD``, the local rank and size (the processes on this node) from a
``COMM_TYPE_SHARED`` split. Without a launcher, or with one process, :func:`world` is the
single-process :data:`SINGLE`, with the same interface and no MPI.

A failing rank must not leave the others waiting in a collective call forever:
:meth:`World.guard` turns an exception on one rank into one line naming the rank, then
``MPI_Abort``, which ends every rank (non-zero exit). An error every rank raises alike (on
values they agreed on: ``RnnlabError.every_rank``) exits normally instead, printed once.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np

from rnnlab.errors import RnnlabError, UsageError

__all__ = ["LAUNCHER_VARS", "SINGLE", "World", "launcher_size", "world"]

LAUNCHER_VARS = (("PMI_SIZE", "PMI_RANK"), ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"),
                 ("SLURM_STEP_NUM_TASKS", "SLURM_PROCID"))


@dataclass(frozen=True)
class World:
    """This process's place among the ranks of a run; ``comm`` is None for one process."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1
    comm: Any = None

    @property
    def root(self) -> bool:
        """Rank 0: the one that writes the run folder and prints."""
        return self.rank == 0

    def part(self, n: int, rank: int | None = None) -> tuple[int, int]:
        """The contiguous share ``[a, b)`` of ``n`` items (streams, examples) of ``rank``
        (this one by default): ``a = r n // K``, ``b = (r + 1) n // K``; empty when n < K
        for some ranks.

        >>> [World(size=3).part(7, r) for r in range(3)]
        [(0, 2), (2, 4), (4, 7)]
        """
        r = self.rank if rank is None else rank
        return r * n // self.size, (r + 1) * n // self.size

    def sum(self, values: np.ndarray) -> np.ndarray:
        """``values`` summed over the ranks, in place (one ``Allreduce``); as is for one."""
        if self.comm is not None:
            from mpi4py import MPI

            self.comm.Allreduce(MPI.IN_PLACE, values, op=MPI.SUM)
        return values

    def gather(self, part: Any) -> list[Any]:
        """Every rank's ``part`` (any picklable object), in rank order, on every rank."""
        return [part] if self.comm is None else self.comm.allgather(part)

    def concat(self, part: np.ndarray, axis: int) -> np.ndarray:
        """Every rank's ``part`` joined along ``axis`` in rank order (on every rank)."""
        if self.comm is None:
            return part
        return np.concatenate(self.gather(np.ascontiguousarray(part)), axis=axis)

    def device(self, spec: str) -> str:
        """The device this rank trains on: ``cuda`` (no index) on K ranks is
        ``cuda:<local rank>``, one GPU per process on each node; anything else as given.

        >>> World(size=2, rank=1, local_rank=1).device("cuda"), SINGLE.device("cuda")
        ('cuda:1', 'cuda')
        """
        return f"cuda:{self.local_rank}" if self.size > 1 and spec == "cuda" else spec

    def describe(self) -> str:
        return f"{self.size} MPI ranks ({self.local_size} on this node)"

    @contextmanager
    def guard(self, command: str) -> Iterator[None]:
        """Run the block; an exception on this rank ends every rank (see the module doc)."""
        if self.comm is None:
            yield
            return
        try:
            yield
        except RnnlabError as e:
            if not e.every_rank:
                self._abort(command, f"error: {e}", 2)
            if not self.root:
                raise SystemExit(2) from None
            raise  # printed once, by rank 0, as any error
        except SystemExit:
            raise
        except KeyboardInterrupt:
            self._abort(command, "interrupted", 130)
        except BaseException as e:
            self._abort(command, f"{type(e).__name__}: {e}", 1)

    def _abort(self, command: str, why: str, code: int) -> NoReturn:
        """One line naming this rank and why, then ``MPI_Abort`` (the launcher ends every
        rank), then this process's exit (MPICH's MPI_Abort may return)."""
        line = f"rnnlab {command}: rank {self.rank} of {self.size} failed: {why}"
        print(line.splitlines()[0], file=sys.stderr, flush=True)
        time.sleep(ABORT_GRACE_S)  # MPI_Abort kills the launcher's output forwarding at
        self.comm.Abort(code)  # once: the line above would be lost (seen on CI under load)
        os._exit(code)


SINGLE = World()
ABORT_GRACE_S = 1.0  # seconds for the launcher to forward the failing rank's line


def launcher_size(environ: Any = None) -> tuple[int, int]:
    """``(size, rank)`` announced by an MPI launcher's variables (``(1, 0)`` without one).

    >>> launcher_size({"PMI_SIZE": "4", "PMI_RANK": "2"}), launcher_size({})
    ((4, 2), (1, 0))
    """
    env = os.environ if environ is None else environ
    for size_var, rank_var in LAUNCHER_VARS:
        size = env.get(size_var, "")
        if size.isdigit() and int(size) > 1:
            rank = env.get(rank_var, "0")
            return int(size), int(rank) if rank.isdigit() else 0
    return 1, 0


def world() -> World:
    """This process's :class:`World`: MPI's when a launcher started several, else SINGLE."""
    size, _ = launcher_size()
    if size == 1:
        return SINGLE
    try:
        from mpi4py import MPI
    except ImportError:
        raise UsageError(f"started by an MPI launcher with {size} processes, but mpi4py is "
                         "not installed: pip install 'rnnlab[mpi]' (or mpi4py built against "
                         "your cluster's MPI)") from None
    comm = MPI.COMM_WORLD
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    if comm.Get_size() == 1:
        return SINGLE
    return World(comm.Get_rank(), comm.Get_size(), local.Get_rank(), local.Get_size(), comm)
