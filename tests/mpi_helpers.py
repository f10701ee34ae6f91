"""What the MPI tests share: finding mpiexec, running ``rnnlab train`` on K ranks or one
process, the data files, and comparing two run folders' checkpoints tensor by tensor."""

import random
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from subprocess_env import src_first_env

RANK_MAIN = str(Path(__file__).with_name("mpi_rank_main.py"))


def find_mpiexec():
    """mpiexec on PATH, else beside this Python (where the ``mpich`` wheel puts it); None."""
    found = shutil.which("mpiexec")
    if found:
        return found
    here = Path(sysconfig.get_path("scripts")) / "mpiexec"
    return str(here) if here.exists() else None


def mpi_missing():
    """Why the MPI tests cannot run here (None: they can)."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed: pip install -e '.[mpi]'"
    if find_mpiexec() is None:
        return "no mpiexec on PATH or beside python: pip install mpich"
    return None


needs_mpi = pytest.mark.skipif(mpi_missing() is not None, reason=str(mpi_missing()))


def env():
    return src_first_env()


def train(k, *args, cwd, timeout=120, script=None):
    """``rnnlab train ARGS`` on ``k`` MPI ranks (k=0: one process, no launcher); ``script``:
    a Python file run instead of ``-m rnnlab`` (its own argv first)."""
    prog = [sys.executable, *(script or ["-m", "rnnlab"]), "train", *map(str, args)]
    cmd = prog if k == 0 else [find_mpiexec(), "-n", str(k), *prog]
    return subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True,
                          timeout=timeout)


def lm_flags(out, **kw):
    flags = {"data": "corpus.txt", "hidden": 12, "embed": 8, "layers": 2, "batch-size": 4,
             "eval-batch-size": 4, "bptt": 6, "max-steps": 20, "eval-every": 10,
             "dropout": 0, "lr": 0.05, "time-budget": 3600, "sample-length": 0,
             "log-every": 5, "check-weights-every": 3, "out": out}
    flags.update({k.replace("_", "-"): v for k, v in kw.items()})
    return [*(x for k, v in flags.items() for x in (f"--{k}", v)), "--no-progress",
            "--no-sample"]


def write_data(d):
    """corpus.txt (LM), cls, s2s and tag .train/.val under ``d``; 41 training
    examples: the last batch of 4 holds one, so with 2 ranks rank 1 gets none."""
    rng = random.Random(0)
    (d / "corpus.txt").write_text("".join(rng.choice("abcdefgh \n") for _ in range(3000)))
    for name, n in (("train", 41), ("val", 9)):
        cls = []
        for _ in range(n):
            s = "".join(rng.choice("ab") for _ in range(rng.randint(3, 9)))
            cls.append(f"{'A' if s.count('a') > s.count('b') else 'B'}\t{s}")
        (d / f"cls.{name}").write_text("\n".join(cls) + "\n")
        s2s = []
        for _ in range(n):
            s = "".join(rng.choice("abcd") for _ in range(rng.randint(2, 5)))
            s2s.append(f"{s}\t{s[::-1]}")
        (d / f"s2s.{name}").write_text("\n".join(s2s) + "\n")
        tag = []
        for _ in range(n):  # CoNLL: a word, two columns, its BIO tag; names are B-PER
            words = [rng.choice(["the", "cat", "sat", "Ann", "Bob"]) for _ in range(
                rng.randint(2, 7))]
            tag.append("\n".join(f"{w} NN O {'B-PER' if w[0].isupper() else 'O'}"
                                 for w in words))
        (d / f"tag.{name}").write_text("\n\n".join(tag) + "\n")


def differences(a_dir, b_dir, name="last"):
    """``{array: ‖a − b‖ / ‖b‖}`` over every array of two checkpoints (the same names)."""
    a, b = np.load(Path(a_dir) / f"{name}.npz"), np.load(Path(b_dir) / f"{name}.npz")
    assert sorted(a.files) == sorted(b.files)
    out = {}
    for k in b.files:
        if b[k].dtype.kind == "f":
            out[k] = float(np.linalg.norm(a[k] - b[k]) / max(np.linalg.norm(b[k]), 1e-300))
        else:
            out[k] = 0.0 if np.array_equal(a[k], b[k]) else float("inf")
    return out


def assert_same_run(a_dir, b_dir, tol):
    """Every checkpoint array within ``tol`` (relative), the same progress and losses."""
    import json

    worst = differences(a_dir, b_dir)
    bad = {k: v for k, v in worst.items() if not v <= tol}
    assert not bad, bad
    ma = json.loads((Path(a_dir) / "last.json").read_text())["meta"]
    mb = json.loads((Path(b_dir) / "last.json").read_text())["meta"]
    for k in ("step", "epoch", "batch", "tokens"):
        assert ma["progress"][k] == mb["progress"][k], k
    rows = [[json.loads(r) for r in (Path(d) / "metrics.jsonl").read_text().splitlines()]
            for d in (a_dir, b_dir)]
    assert len(rows[0]) == len(rows[1]) > 0
    for ra, rb in zip(*rows, strict=True):
        for key in ("train_loss", "val_loss"):
            assert abs(ra[key] - rb[key]) <= 10 * tol * abs(rb[key]), (key, ra, rb)
    return max(worst.values())
