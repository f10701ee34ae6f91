"""``rnnlab`` under mpiexec with a fault on one rank, for tests/test_mpi.py.

    python mpi_rank_main.py PIDS FAIL_RANK FAIL_STEP train ...

Each rank writes its process id to ``PIDS/rank<r>.pid``; rank ``FAIL_RANK`` (-1: none)
raises RuntimeError in its feed's step ``FAIL_STEP``, or with ``drift:N`` adds 1e-6 to one
weight before step N (its weights no longer rank 0's). Then ``rnnlab train ...`` as usual.
"""

import sys
from pathlib import Path


def main() -> int:
    from mpi4py import MPI  # here, not above: pytest imports this file for its doctests

    import rnnlab.tasks  # noqa: F401  (the feeds, to patch)
    from rnnlab import cli
    from rnnlab.training.task import Feed

    pids, fail_rank, fault = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    drift, fail_step = fault.startswith("drift:"), int(fault.removeprefix("drift:"))
    rank = MPI.COMM_WORLD.Get_rank()
    pids.mkdir(exist_ok=True)
    (pids / f"rank{rank}.pid").write_text(str(__import__("os").getpid()))
    if rank == fail_rank:
        for feed in Feed.__subclasses__():
            original = feed.step

            def step(self, model, i, _original=original):
                if i == fail_step and drift:
                    next(iter(model.named_params().values())).value.flat[0] += 1e-6
                elif i == fail_step:
                    raise RuntimeError(f"injected failure at batch {i}")
                return _original(self, model, i)

            feed.step = step
    return cli.main(sys.argv[4:])


if __name__ == "__main__":
    sys.exit(main())
