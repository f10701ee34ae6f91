"""Files rnnlab writes atomically get the mode of any new file, 0666 less the umask (mkstemp's
temp files are 0600, which once made every checkpoint, config.json and report private)."""

import os
import stat

import numpy as np
import pytest

from rnnlab import atomic, cli
from rnnlab.data import bundled_corpus
from rnnlab.training import checkpoint


@pytest.fixture
def umask():
    """Set the umask for one test: ``umask(0o022)``; the old one is restored afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    try:
        yield os.umask
    finally:
        os.umask(old)


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "want"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_text_follows_the_umask(tmp_path, umask, mask, want):
    umask(mask)
    atomic.atomic_write_text(tmp_path / "a.txt", "x")
    with atomic.atomic_open(tmp_path / "b.bin", "wb") as f:
        f.write(b"x")
    assert (mode(tmp_path / "a.txt"), mode(tmp_path / "b.bin")) == (want, want)


def test_an_atomic_rewrite_of_an_appended_file_keeps_0644(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "metrics.jsonl"
    with path.open("a") as f:  # appended: an ordinary new file
        f.write("{}\n")
    atomic.atomic_write_text(path, "{}\n")  # rewritten, as on resume
    assert mode(path) == 0o644


@pytest.mark.parametrize("proc", [atomic.PROC_STATUS, "/nonexistent/status"])
def test_current_umask_is_read_without_changing_it(umask, monkeypatch, proc):
    monkeypatch.setattr(atomic, "PROC_STATUS", proc)  # the second: the os.umask fallback
    umask(0o027)
    assert atomic.current_umask() == 0o027
    assert os.umask(0o027) == 0o027  # still set


def test_checkpoint_files_follow_the_umask(tmp_path, umask):
    umask(0o022)
    checkpoint.save(tmp_path, "last", {"w": np.zeros(3)}, {"epoch": 1})
    assert sorted((p.name, mode(p)) for p in tmp_path.iterdir()) == [
        ("last.json", 0o644), ("last.npz", 0o644)]


def test_every_file_of_a_trained_resumed_reported_run_is_0644(tmp_path, umask):
    umask(0o022)
    data = tmp_path / "small.txt"
    data.write_text(bundled_corpus().read_text(encoding="utf-8")[:5_000], encoding="utf-8")
    out = tmp_path / "run"
    tiny = ["--eval-every", "2", "--hidden", "16", "--embed", "8", "--layers", "1",
            "--batch-size", "4", "--eval-batch-size", "4", "--bptt", "8", "--no-progress",
            "--no-sample", "--sample-length", "0"]
    assert cli.main(["train", "--data", str(data), "--out", str(out), "--max-steps", "4",
                     *tiny]) in (0, None)
    assert cli.main(["train", "--resume", str(out), "--max-steps", "6", "--no-progress",
                     "--no-sample"]) in (0, None)
    assert cli.main(["report", str(out)]) in (0, None)
    files = [p for p in out.rglob("*") if p.is_file() and p.name != ".lock"]
    assert {"config.json", "metrics.jsonl", "report.html"} <= {p.name for p in files}
    assert any(p.suffix == ".npz" for p in files)
    assert {str(p.relative_to(out)): oct(mode(p)) for p in files} == {
        str(p.relative_to(out)): oct(0o644) for p in files}
