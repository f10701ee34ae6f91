"""What real runs meet, handled by the one training loop: SIGTERM and Ctrl-C save and stop,
a second process on a run folder is refused while readers go on, a full disk is a one-line
error after which --resume continues exactly. Each test runs ``rnnlab`` as a user would, in
a process of its own."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rnnlab.data import bundled_corpus
from rnnlab.tasks.lm import LanguageModelTask
from rnnlab.training import Run, TrainConfig, checkpoint, train
from rnnlab.training.signals import StopRequests

FLAGS = ["--hidden", "64", "--layers", "2", "--embed", "16", "--batch-size", "8", "--bptt",
         "16", "--eval-batch-size", "8", "--max-steps", "200", "--eval-every", "20",
         "--log-every", "3", "--dropout", "0.2", "--lr", "0.01", "--no-progress",
         "--no-sample", "--sample-length", "20", "--time-budget", "3600"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "shakespeare.txt"
    path.write_text(bundled_corpus().read_text(encoding="utf-8")[:40_000], encoding="utf-8")
    return path


def rnnlab(*args, **kw):
    return subprocess.run([sys.executable, "-m", "rnnlab", *map(str, args)],
                          capture_output=True, text=True, timeout=600, **kw)


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "rnnlab", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path, rows, proc, limit=120):
    """Until ``path`` holds ``rows`` lines (or the process ended)."""
    deadline = time.time() + limit
    while time.time() < deadline and proc.poll() is None:
        if path.exists() and len(path.read_text().splitlines()) >= rows:
            return
        time.sleep(0.005)


def wait_for_checkpoint(run, proc, limit=120):
    """Until ``run`` has a ``last`` checkpoint (or the process ended)."""
    deadline = time.time() + limit
    while time.time() < deadline and proc.poll() is None and not (run / "last.json").exists():
        time.sleep(0.005)


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "run"
    done = rnnlab("train", "--data", corpus, *FLAGS, "--out", out)
    assert done.returncode == 0, done.stderr
    return out


def logs(run, name):
    """The rows of a log, timings removed (they differ run to run)."""
    rows = [json.loads(r) for r in (run / name).read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("elapsed_s", "tokens_per_s")}
            for r in rows]


def assert_same_run(got, want):
    a, _ = checkpoint.load(want, "last")
    b, meta = checkpoint.load(got, "last")
    assert meta["progress"]["step"] == 200
    for k in a:
        np.testing.assert_array_equal(b[k], a[k], err_msg=k)
    assert logs(got, "metrics.jsonl") == logs(want, "metrics.jsonl")
    assert logs(got, "steps.jsonl") == logs(want, "steps.jsonl")


def no_temp_files(run):
    return [p.name for p in run.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_then_stops_and_resume_is_exact(corpus, uninterrupted, tmp_path, sig,
                                                       status):
    out = tmp_path / "run"
    proc = start("train", "--data", corpus, *FLAGS, "--out", out)
    wait_for(out / "steps.jsonl", 3, proc)  # step 9: between evaluations (every 20)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err
    _, meta = checkpoint.load(out, "last")
    step = meta["progress"]["step"]
    assert 0 < step < 200
    assert err.splitlines()[-1] == (f"stopped at step {step}; continue with rnnlab train "
                                    f"--resume {out}")
    assert "Traceback" not in err and no_temp_files(out)
    again = rnnlab("train", "--resume", out, "--no-progress", "--no-sample")
    assert again.returncode == 0, again.stderr
    assert_same_run(out, uninterrupted)


def test_a_second_ctrl_c_stops_at_once_and_leaves_last_whole(corpus, tmp_path):
    out = tmp_path / "run"
    proc = start("train", "--data", corpus, *FLAGS, "--eval-every", "2", "--out", out)
    wait_for(out / "metrics.jsonl", 2, proc)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and no_temp_files(out)
    checkpoint.load(out, "last")  # whole: old or new


def test_one_process_trains_in_a_folder_while_readers_go_on(corpus, tmp_path):
    out = tmp_path / "run"
    proc = start("train", "--data", corpus, *FLAGS, "--max-steps", "100000", "--out", out)
    try:
        wait_for_checkpoint(out, proc)
        assert proc.poll() is None
        for args in (["--resume", out], ["--data", corpus, "--out", out],
                     ["--data", corpus, "--out", out, "--force"]):
            second = rnnlab("train", *args, "--no-progress")
            assert second.returncode == 2, second.stderr
            line = second.stderr.strip()
            assert "\n" not in line and f"process {proc.pid} on host" in line, line
        assert (out / "config.json").exists() and (out / "last.json").exists()
        for args in (["sample", "--checkpoint", out, "--length", "20"],
                     ["eval", "--checkpoint", out, "--data", corpus],
                     ["inspect", "gates", "--checkpoint", out, "--text", corpus,
                      "--max-tokens", "200", "--out", tmp_path / "gates.png"],
                     ["report", out, "--steps", "5", "--windows", "2"]):
            reader = rnnlab(*args)
            assert reader.returncode == 0, (args, reader.stderr)
        assert (out / "report.html").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    again = rnnlab("train", "--resume", out, "--max-steps", "1", "--no-progress")
    assert again.returncode == 0, again.stderr  # the lock went with its process


def test_the_lock_goes_with_a_killed_process(corpus, tmp_path):
    out = tmp_path / "run"
    proc = start("train", "--data", corpus, *FLAGS, "--max-steps", "100000", "--out", out)
    wait_for_checkpoint(out, proc)
    proc.kill()
    proc.communicate(timeout=60)
    again = rnnlab("train", "--resume", out, "--max-steps", "1", "--no-progress")
    assert again.returncode == 0, again.stderr


def fill(disk):
    """Fill the file system of ``disk`` to the last byte (a file 'filler')."""
    try:
        with open(disk / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:  # full (maybe before the file could be made: then the run filled it)
        pass


@pytest.fixture()
def tmpfs(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_is_one_line_and_resume_continues_exactly(corpus, tmp_path, tmpfs):
    small = [*FLAGS, "--hidden", "16", "--layers", "1", "--embed", "8"]  # fits in 600 KB
    want = tmp_path / "full"
    done = rnnlab("train", "--data", corpus, *small, "--out", want)
    assert done.returncode == 0, done.stderr
    out = tmpfs / "run"
    proc = start("train", "--data", corpus, *small, "--out", out)
    wait_for(out / "metrics.jsonl", 2, proc)
    fill(tmpfs)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    line = err.strip().splitlines()[-1]
    assert "No space left on device" in line and "Traceback" not in err, err
    _, meta = checkpoint.load(out, "last")
    assert f"the last checkpoint, step {meta['progress']['step']}, is intact" in line
    assert no_temp_files(out)
    for name in ("metrics.jsonl", "steps.jsonl"):  # no partial row
        [json.loads(r) for r in (out / name).read_text().splitlines()]
    full = rnnlab("train", "--resume", out, "--no-progress", "--no-sample")
    assert full.returncode == 2 and "Traceback" not in full.stderr, full.stderr
    assert len(full.stderr.strip().splitlines()[-1]) > 0 and no_temp_files(out)
    (tmpfs / "filler").unlink()
    again = rnnlab("train", "--resume", out, "--no-progress", "--no-sample")
    assert again.returncode == 0, again.stderr
    assert_same_run(out, want)


def test_an_out_path_that_is_a_file_is_one_line(corpus, tmp_path):
    taken = tmp_path / "file"
    taken.write_text("not a folder\n")
    r = rnnlab("train", "--data", corpus, *FLAGS, "--out", taken)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert str(taken) in r.stderr.strip() and len(r.stderr.strip().splitlines()) == 1
    assert taken.read_text() == "not a folder\n"


def test_threads_may_change_on_resume(corpus, tmp_path):
    out = tmp_path / "run"
    first = rnnlab("train", "--data", corpus, *FLAGS, "--max-steps", "4", "--out", out,
                   "--threads", "1")
    assert first.returncode == 0, first.stderr
    again = rnnlab("train", "--resume", out, "--max-steps", "6", "--threads", "2",
                   "--no-progress", "--no-sample")
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "config.json").read_text())["config"]["threads"] == 1
    _, meta = checkpoint.load(out, "last")
    assert meta["config"]["threads"] == 2 and meta["progress"]["step"] == 6


def test_steps_log_every_n_steps(corpus, uninterrupted):
    rows = logs(uninterrupted, "steps.jsonl")
    assert [r["step"] for r in rows] == list(range(3, 201, 3))
    assert set(rows[0]) == {"step", "epoch", "train_loss", "grad_norm", "lr"}
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]


def test_a_signal_before_the_first_step_leaves_the_folder_as_created(corpus, tmp_path):
    cfg = TrainConfig(data=str(corpus), out=str(tmp_path / "run"), hidden=8, embed=4,
                      layers=1, batch_size=4, bptt=8, eval_batch_size=4, max_steps=5)
    with Run.create(cfg, LanguageModelTask) as run:
        stop = StopRequests()
        stop.signal = signal.SIGTERM  # as if it came while the run was being created
        assert train(run, progress_bar=False, stop=stop) == signal.SIGTERM
    assert sorted(p.name for p in Path(cfg.out).iterdir()) == [".lock", "config.json"]
    assert run.progress.step == 0
