"""Data-parallel training over MPI (issue 22): ``mpiexec -n 2 rnnlab train`` gives one
process's result with the same global batch, resumes under any K, and a failing rank ends
every rank. Skipped, saying why, without mpi4py or mpiexec (``pip install -e '.[mpi]'``)."""

import json
import os
import subprocess
import sys

import pytest
from mpi_helpers import (
    assert_same_run,
    env,
    lm_flags,
    needs_mpi,
    train,
    write_data,
)

from rnnlab.training.ranks import SINGLE, World, launcher_size, world

TOL = {"float32": 1e-5, "float64": 1e-12}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("mpi")
    write_data(d)
    return d


def test_launchers_are_noticed_from_their_variables_only():
    assert launcher_size({}) == (1, 0)
    assert launcher_size({"PMI_SIZE": "1", "PMI_RANK": "0"}) == (1, 0)
    assert launcher_size({"OMPI_COMM_WORLD_SIZE": "3", "OMPI_COMM_WORLD_RANK": "2"}) == (3, 2)
    assert launcher_size({"SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "5"}) == (8, 5)
    assert launcher_size({"SLURM_NTASKS": "8", "SLURM_PROCID": "0"}) == (1, 0)  # sbatch script
    assert World(size=4).part(2, 3) == (1, 2) and World(size=4).part(2, 0) == (0, 0)


def test_plain_import_and_world_never_touch_mpi4py():
    code = ("import sys, rnnlab, rnnlab.cli, rnnlab.training, rnnlab.tasks\n"
            "from rnnlab.training.ranks import world, SINGLE\n"
            "assert world() is SINGLE\n"
            "assert 'mpi4py' not in sys.modules, 'mpi4py imported'\n")
    clean = {k: v for k, v in env().items()
             if not k.startswith(("PMI_", "OMPI_", "SLURM_", "MPI_"))}
    done = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert world() is SINGLE or os.environ.get("PMI_SIZE")


@needs_mpi
@pytest.mark.parametrize("cell,optimizer,dtype", [
    ("lstm", "sgd", "float32"), ("lstm", "adam", "float64"),
    ("gru", "adam", "float32"), ("gru", "sgd", "float64")])
def test_lm_on_two_ranks_is_one_process(data, cell, optimizer, dtype):
    runs = {}
    for k in (0, 2):
        out = f"lm-{cell}-{optimizer}-{dtype}-{k}"
        done = train(k, *lm_flags(out, cell=cell, optimizer=optimizer, dtype=dtype),
                     cwd=data)
        assert done.returncode == 0, done.stderr
        runs[k] = data / out
        if k:
            first = done.stderr.splitlines()[0]
            assert "2 MPI ranks" in first and "2 of the 4 streams" in first, done.stderr
    worst = assert_same_run(runs[2], runs[0], TOL[dtype])
    assert worst <= TOL[dtype]


@needs_mpi
@pytest.mark.parametrize("task,name,dtype,extra", [
    ("classify", "cls", "float64", ["--optimizer", "adam", "--dropout", 0]),
    ("classify", "cls", "float32", ["--optimizer", "sgd", "--lr", 0.2, "--dropout", 0]),
    ("seq2seq", "s2s", "float64", ["--optimizer", "adam", "--attention", "dot"])])
def test_tasks_on_two_ranks_are_one_process(data, task, name, dtype, extra):
    """41 examples in batches of 4: the last batch has one, so rank 1 gets none there."""
    runs = {}
    for k in (0, 2):
        out = data / f"{task}-{dtype}-{k}"
        done = train(k, "--task", task, "--data", f"{name}.train", "--val-data", f"{name}.val",
                     "--hidden", 12, "--embed", 8, "--layers", 1, "--batch-size", 4,
                     "--eval-batch-size", 4, "--max-steps", 20, "--eval-every", 11,
                     "--dtype", dtype, "--time-budget", 3600, *extra,
                     "--no-progress", "--out", out, cwd=data)
        assert done.returncode == 0, done.stderr
        runs[k] = out
    assert_same_run(runs[2], runs[0], TOL[dtype])
    assert json.loads((runs[2] / "last.json").read_text())["meta"]["progress"]["epoch"] == 1


@needs_mpi
def test_a_batch_that_does_not_split_is_one_line_before_anything(data):
    done = train(2, *lm_flags("odd", batch_size=3), cwd=data)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--batch-size 3 cannot be split across 2" in lines[0], lines
    assert not (data / "odd").exists()
