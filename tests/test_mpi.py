"""Data-parallel training over MPI (issue 22): ``mpiexec -n 2 rnnlab train`` gives one
process's result with the same global batch, resumes under any K, and a failing rank ends
every rank. Skipped, saying why, without mpi4py or mpiexec (``pip install -e '.[mpi]'``)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from mpi_helpers import (
    RANK_MAIN,
    assert_same_run,
    differences,
    env,
    find_mpiexec,
    lm_flags,
    needs_mpi,
    train,
    write_data,
)

from rnnlab.cli.train import rank_threads
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


def test_each_rank_shares_the_nodes_cores_unless_threads_is_given():
    assert rank_threads(None, SINGLE) is None and rank_threads(3, World(size=2)) == 3
    cores = os.cpu_count() or 1
    assert rank_threads(None, World(size=4, local_size=2)) == max(1, cores // 2)


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
    ("seq2seq", "s2s", "float64", ["--optimizer", "adam", "--attention", "dot"]),
    ("tag", "tag", "float64", ["--optimizer", "adam", "--dropout", 0.3, "--level", "word"])])
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


def progress(run):
    return json.loads((run / "last.json").read_text())["meta"]["progress"]


@needs_mpi
@pytest.mark.parametrize("first,then", [(2, 2), (2, 0), (0, 2)])
def test_lm_resumes_under_any_k_that_divides_the_batch(data, first, then):
    """20 steps in one go on one process; 10 on ``first`` ranks, resumed for 10 more on
    ``then`` (0: one process without a launcher): the same weights, state and optimizer."""
    flags = {"dtype": "float64", "optimizer": "adam", "cell": "lstm"}
    full = data / "resume-full"
    if not full.exists():
        assert train(0, *lm_flags(full, **flags), cwd=data).returncode == 0
        part = data / "resume-part-0"
        assert train(0, *lm_flags(part, **flags, max_steps=10), cwd=data).returncode == 0
    part = data / f"resume-{first}-{then}"
    assert train(first, *lm_flags(part, **flags, max_steps=10), cwd=data).returncode == 0
    assert progress(part)["step"] == 10
    worst = max(differences(part, data / "resume-part-0").values())  # the same whatever K
    assert worst <= TOL["float64"]
    done = train(then, "--resume", part, "--max-steps", 20, "--no-progress", "--no-sample",
                 cwd=data)
    assert done.returncode == 0, done.stderr
    if then:
        assert "2 MPI ranks" in done.stderr.splitlines()[0], done.stderr
    assert_same_run(part, full, TOL["float64"])


@needs_mpi
def test_classify_resumes_on_two_ranks_then_one(data):
    common = ["--task", "classify", "--data", "cls.train", "--val-data", "cls.val", "--hidden",
              12, "--embed", 8, "--layers", 1, "--batch-size", 4, "--eval-batch-size", 4,
              "--eval-every", 7, "--dtype", "float64", "--dropout", 0, "--time-budget", 3600,
              "--no-progress"]
    full, part = data / "cls-resume-full", data / "cls-resume-part"
    assert train(0, *common, "--max-steps", 21, "--out", full, cwd=data).returncode == 0
    assert train(2, *common, "--max-steps", 14, "--out", part, cwd=data).returncode == 0
    done = train(0, "--resume", part, "--max-steps", 21, "--no-progress", cwd=data)
    assert done.returncode == 0, done.stderr
    assert_same_run(part, full, TOL["float64"])


def start(data, out, fail_rank=-1, fail_step=-1, extra=()):
    """mpiexec -n 2 of a long LM run through tests/mpi_rank_main.py (``fail_step``: see
    there); returns the launcher process and the folder of the ranks' pid files."""
    pids = data / f"{out}-pids"
    cmd = [find_mpiexec(), "-n", "2", sys.executable, RANK_MAIN, str(pids), str(fail_rank),
           str(fail_step), "train", *map(str, lm_flags(out, max_steps=100000, log_every=1,
                                              eval_every=50, dtype="float64")), *extra]
    proc = subprocess.Popen(cmd, cwd=data, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return proc, pids


def wait_for(check, proc, seconds=60):
    end = time.monotonic() + seconds
    while not check():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def steps_logged(run):
    path = run / "steps.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


@needs_mpi
@pytest.mark.parametrize("rank", [0, 1])
def test_a_rank_that_raises_ends_both_within_30_s(data, rank):
    proc, _ = start(data, f"raises-{rank}", fail_rank=rank, fail_step=3)
    began = time.monotonic()
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert time.monotonic() - began < 30
    assert proc.returncode != 0
    assert f"rank {rank} of 2 failed: RuntimeError: injected failure at batch 3" in err, err
    assert "Traceback" not in err


@needs_mpi
@pytest.mark.parametrize("rank", [0, 1])
def test_a_rank_killed_ends_both_within_30_s(data, rank):
    run = data / f"killed-{rank}"
    proc, pids = start(data, run.name)
    try:
        wait_for(lambda: steps_logged(run) >= 3, proc)
        os.kill(int((pids / f"rank{rank}.pid").read_text()), signal.SIGKILL)
        began = time.monotonic()
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert time.monotonic() - began < 30
    assert proc.returncode != 0


@needs_mpi
def test_sigterm_on_one_rank_stops_both_at_one_step_and_rank_0_saves(data):
    run = data / "sigterm"
    proc, pids = start(data, run.name)
    try:
        wait_for(lambda: steps_logged(run) >= 3, proc)
        os.kill(int((pids / "rank1.pid").read_text()), signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    step = progress(run)["step"]
    assert step >= 3 and f"stopped at step {step}" in err, err
    assert err.count("stopped at step") == 1  # rank 0 alone prints
    full = data / "sigterm-full"
    flags = lm_flags(full, max_steps=step + 2, log_every=1, eval_every=50, dtype="float64")
    assert train(0, *flags, cwd=data).returncode == 0
    done = train(2, "--resume", run, "--max-steps", step + 2, "--no-progress", "--no-sample",
                 cwd=data)
    assert done.returncode == 0, done.stderr
    assert_same_run(run, full, TOL["float64"])


@needs_mpi
@pytest.mark.parametrize("cell,optimizer,dtype", [("lstm", "adam", "float64"),
                                                  ("gru", "sgd", "float32")])
def test_lm_with_dropout_on_two_ranks_is_one_process(data, cell, optimizer, dtype):
    """Every rank draws the whole batch's masks from the shared generator, keeps its
    streams' slice (embedding, between layers, output)."""
    runs = {}
    for k in (0, 2):
        runs[k] = data / f"lm-dropout-{cell}-{dtype}-{k}"
        flags = lm_flags(runs[k], cell=cell, optimizer=optimizer, dtype=dtype, dropout=0.3)
        done = train(k, *flags, cwd=data)
        assert done.returncode == 0, done.stderr
    assert_same_run(runs[2], runs[0], TOL[dtype])


@needs_mpi
def test_classify_with_dropout_on_two_ranks_is_one_process(data):
    """Also the batch of one example, where rank 1 only draws the masks."""
    runs = {}
    for k in (0, 2):
        runs[k] = data / f"cls-dropout-{k}"
        done = train(k, "--task", "classify", "--data", "cls.train", "--val-data", "cls.val",
                     "--hidden", 12, "--embed", 8, "--layers", 2, "--batch-size", 4,
                     "--eval-batch-size", 4, "--max-steps", 20, "--eval-every", 11,
                     "--dtype", "float64", "--dropout", 0.3, "--time-budget", 3600,
                     "--no-progress", "--out", runs[k], cwd=data)
        assert done.returncode == 0, done.stderr
    assert_same_run(runs[2], runs[0], TOL["float64"])


@needs_mpi
def test_a_loss_every_rank_sees_diverge_is_one_line_from_rank_0(data):
    """The divergence check reads the all-reduced loss: every rank stops alike, no abort."""
    done = train(2, *lm_flags("diverged", diverge_factor=0.1), cwd=data)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert sum("error: training loss exploded" in line for line in lines) == 1, lines
    assert not any("failed" in line or "Abort" in line for line in lines), lines


@needs_mpi
def test_weights_that_drift_apart_stop_every_rank_with_one_line(data):
    """Rank 1's weights nudged by 1e-6 before step 3: the checksum after step 4 (every 2
    steps here) sees it; one line, from rank 0, naming rank 1; exit 2 on every rank."""
    proc, _ = start(data, "drift", fail_rank=1, fail_step="drift:3",
                    extra=["--check-weights-every", "2"])
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    lines = [x for x in err.splitlines() if "error:" in x]
    assert len(lines) == 1 and "after step 4 the weights of rank 1 differ from rank 0's" in (
        lines[0]), err
    assert "Traceback" not in err
