"""Data-parallel throughput: `rnnlab train` on 1, 2, ... MPI ranks, and the all-reduce's share.

    python benchmarks/mpi_bench.py --ranks 1 2                  # this machine, 1 thread/rank
    python benchmarks/mpi_bench.py --ranks 1 2 4 8 --hidden 650 --layers 2
    python benchmarks/mpi_bench.py --ranks 1 2 --dropout 0    # what dropout costs

For each K, ``mpiexec -n K`` runs this file as a worker on every rank: it times every call
of the step's one ``Allreduce`` (``World.sum``) around the real ``rnnlab train --max-steps N
--eval-every 0 --threads 1`` of a character language model (the bundled corpus, global
batch fixed, so K ranks share the same work), then rank 0 prints one JSON line: training
tokens per second (``progress.tokens / progress.elapsed_s`` of the run's ``last.json``) and
the fraction of its training time spent inside the all-reduce (which includes waiting for
the slowest rank). The speed-up over K = 1 is in the last column.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def worker(args: list[str], out: str) -> None:
    """One rank: train with the all-reduce timed; rank 0 prints the JSON line."""
    from rnnlab.cli import main
    from rnnlab.training import ranks

    spent = [0.0]
    original = ranks.World.sum

    def timed_sum(self: Any, values: Any) -> Any:
        t = time.perf_counter()
        try:
            return original(self, values)
        finally:
            spent[0] += time.perf_counter() - t

    ranks.World.sum = timed_sum  # type: ignore[method-assign]
    code = main(["train", *args, "--out", out])
    w = ranks.world()
    if code == 0 and w.root:
        progress = json.loads((Path(out) / "last.json").read_text())["meta"]["progress"]
        print(json.dumps({"ranks": w.size, "tokens_per_s": progress["tokens"] /
                          progress["elapsed_s"], "allreduce_frac": spent[0] /
                          progress["elapsed_s"]}), flush=True)
    sys.exit(code)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--hidden", default="256")
    p.add_argument("--layers", default="2")
    p.add_argument("--batch-size", default="32")
    p.add_argument("--steps", default="40")
    p.add_argument("--dropout", default="0.1", help="the default run's 0.1; 0 for none")
    p.add_argument("--worker", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        worker(a.worker[1:], a.worker[0])
        return
    mpiexec = shutil.which("mpiexec") or str(Path(sys.executable).parent / "mpiexec")
    train = ["--hidden", a.hidden, "--layers", a.layers, "--embed", "64", "--batch-size",
             a.batch_size, "--eval-batch-size", a.batch_size, "--bptt", "64", "--max-steps",
             a.steps, "--eval-every", "0", "--threads", "1", "--no-progress", "--no-sample",
             "--time-budget", "3600", "--sample-length", "0", "--dropout", a.dropout]
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for k in a.ranks:
            out = str(Path(tmp) / f"k{k}")
            r = subprocess.run([mpiexec, "-n", str(k), sys.executable, __file__, "--worker",
                                out, *train], capture_output=True, text=True, check=True)
            row = json.loads(r.stdout.strip().splitlines()[-1])
            base = base or row["tokens_per_s"]
            row["speedup"] = row["tokens_per_s"] / base
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
