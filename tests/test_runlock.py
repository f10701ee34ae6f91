"""rnnlab.training.lock: one process at a time in a run folder, across processes, even after
SIGKILL.

fcntl record locks belong to a process, so the holder here is always another process (a
``python -c`` child); in-process checks cover only what this module adds on top.
"""

import errno
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rnnlab import errors
from rnnlab.errors import RunFolderError
from rnnlab.training import lock as runlock
from rnnlab.training.lock import RunLock, holder

pytestmark = pytest.mark.skipif(runlock.fcntl is None, reason="no fcntl: the lock is a no-op")

SRC = Path(errors.__file__).resolve().parents[1]  # the rnnlab under test
HOLD = ("import sys; from pathlib import Path; from rnnlab.training.lock import RunLock\n"
        "lock = RunLock(Path(sys.argv[1])); lock.acquire(); print('locked', flush=True)\n"
        "sys.stdin.read()\n")


@pytest.fixture
def held(tmp_path):
    """A child process holding tmp_path's lock; killed (SIGKILL) at the end if still alive."""
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": str(SRC)})
    try:
        assert child.stdout is not None and child.stdout.readline() == "locked\n"
        yield child
    finally:
        child.kill()
        child.wait(timeout=30)


def kill(child):
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL


def test_a_second_process_is_refused_with_the_holders_pid_and_host(tmp_path, held):
    (tmp_path / "metrics.jsonl").write_text("{}\n")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(RunFolderError) as caught:
        RunLock(tmp_path).acquire()
    message = str(caught.value)
    assert message.startswith(f"run folder {tmp_path} is in use by process {held.pid} on host "
                              f"{socket.gethostname()} (since 20")
    assert message.endswith("): wait for it to finish or stop it, then try again")
    assert "\n" not in message
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing changed
    assert holder(tmp_path) == f"process {held.pid} on host {socket.gethostname()}"
    info = json.loads((tmp_path / ".lock").read_text())
    assert (info["pid"], info["host"]) == (held.pid, socket.gethostname())


def test_after_the_holder_is_killed_the_lock_can_be_taken(tmp_path, held):
    kill(held)
    assert holder(tmp_path) is None  # the file still names the dead process; not reported
    with RunLock(tmp_path) as lock:
        assert holder(tmp_path) == f"process {os.getpid()} on host {socket.gethostname()}"
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()


def test_release_then_acquire_again_and_release_is_idempotent(tmp_path):
    lock = RunLock(tmp_path)
    lock.release()  # not held: nothing happens
    for _ in range(2):
        lock.acquire()
        assert holder(tmp_path) is not None
        lock.release()
        lock.release()
        assert holder(tmp_path) is None
    assert (tmp_path / ".lock").exists()  # never deleted


def test_a_second_lock_in_the_same_process_is_refused_and_the_first_stays(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunFolderError, match=f"in use by process {os.getpid()} on host"):
            RunLock(tmp_path).acquire()
        child = subprocess.run([sys.executable, "-c", HOLD, str(tmp_path)], text=True,
                               input="", capture_output=True, timeout=60,
                               env={**os.environ, "PYTHONPATH": str(SRC)})
        assert child.returncode != 0 and "RunFolderError" in child.stderr  # still ours
    assert holder(tmp_path) is None


def test_an_unreadable_holder_line_says_another_process(tmp_path, held, monkeypatch):
    monkeypatch.setattr(runlock, "_read_info", lambda fd: None)
    with pytest.raises(RunFolderError, match=r"is in use by another process: wait for it"):
        RunLock(tmp_path).acquire()


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_the_lock_file_mode_follows_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        with RunLock(tmp_path):
            pass
    finally:
        os.umask(old)
    assert (tmp_path / ".lock").stat().st_mode & 0o777 == mode


def test_a_missing_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(RunFolderError, match=r"cannot open the lock file .*: check that the run"):
        RunLock(tmp_path / "missing").acquire()


def test_a_file_system_without_locks_warns_once_and_goes_ahead(tmp_path, monkeypatch, capsys):
    def no_locks(fd, cmd, *args):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(runlock.fcntl, "lockf", no_locks)
    with RunLock(tmp_path):
        pass
    assert capsys.readouterr().err == (f"warning: {tmp_path} is on a file system without "
                                       "locks: nothing stops a second rnnlab train on it\n")


def test_without_fcntl_the_lock_is_a_no_op(tmp_path, monkeypatch):
    monkeypatch.setattr(runlock, "fcntl", None)
    with RunLock(tmp_path):
        assert holder(tmp_path) is None
    assert not (tmp_path / ".lock").exists()
