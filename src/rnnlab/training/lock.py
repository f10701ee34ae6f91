"""One process at a time in a run folder: an exclusive lock on ``<run folder>/.lock``.

Two ``rnnlab train --resume RUN`` on one folder would both train and interleave their lines
in metrics.jsonl. :class:`RunLock` stops the second one before it changes anything::

    with RunLock(run_dir):      # raises RunFolderError if another process holds the folder
        ...                     # train, write checkpoints and metrics

How it works:

- The lock is a POSIX record lock (``fcntl.lockf``, exclusive, non-blocking) on the file
  ``.lock`` in the run folder. NFS v4 and Lustre honour such locks across machines, and the
  operating system drops the lock when the holding process ends in any way, even by
  SIGKILL or a crash: a lock is never left behind by a dead process.
- Whoever takes the lock writes one JSON line into ``.lock``: ``{"pid", "host", "started"}``.
  A process refused the lock reads it to say who holds the folder::

      run folder RUN is in use by process 1234 on host box (since 2026-12-04T14:02:11+00:00):
      wait for it to finish or stop it, then try again

  (one line). If the line cannot be read (the holder is just writing it), the message
  says "in use by another process".
- The file ``.lock`` is created with mode 0666 less the umask, and is never deleted:
  deleting it would race with a process that has just opened it and would then lock a file
  no longer in the folder. Releasing only unlocks and closes it. A ``.lock`` file left in a
  folder therefore means nothing by itself; :func:`holder` tells whether a process holds it.
- Record locks belong to a process, not to a file descriptor: a second lock taken in the
  same process would succeed, and closing any descriptor of the file would drop the lock.
  So this module remembers the folders its process holds, refuses a second :class:`RunLock`
  on one of them, and :func:`holder` reads through the held descriptor. Other code in the
  holding process must not open ``.lock`` (copying the whole run folder would).

Where locks do not work:

- A file system without lock support (``lockf`` fails with ENOLCK, EOPNOTSUPP or ENOSYS,
  for instance NFS mounted with ``nolock`` or without a lock daemon): :meth:`RunLock.acquire`
  goes ahead unlocked and prints one line to stderr, ``warning: RUN is on a file system
  without locks: nothing stops a second rnnlab train on it``. Refusing to train there would
  make such folders unusable; the user is told, and running one training per folder is
  then up to them. :func:`holder` returns None there.
- Windows (no ``fcntl``): the lock is a no-op; nothing is created or checked, and
  :func:`holder` returns None.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from rnnlab.errors import RunFolderError

try:
    import fcntl
except ImportError:  # Windows: RunLock is a no-op
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS})
TRIES, PAUSE_S = 3, 0.05  # a refused lock is tried again: holder() may hold it for a moment

_held: dict[str, tuple[int, RunLock]] = {}  # lock file path -> (pid, lock) of this process
_held_guard = threading.Lock()


class RunLock:
    """An exclusive POSIX fcntl lock on ``<run folder>/.lock``, for as long as it is held.

    :meth:`acquire` never waits: it takes the lock or raises :class:`RunFolderError` naming
    the holder, before anything in the folder but ``.lock`` changes. :meth:`release` (also
    on leaving a ``with`` block) may be called any number of times. The folder must exist.
    See the module doc for file systems without locks and for Windows.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`RunFolderError` saying who holds it."""
        if fcntl is None:
            return
        key = os.path.realpath(self.path)
        with _held_guard:
            mine = _held.get(key)
            if mine is not None and mine[0] == os.getpid():
                raise RunFolderError(_in_use(self.directory, _read_info(mine[1]._fd)))
            fd = _open(self.path)
            try:
                locked = _lock(fd, self.directory)
                if locked:  # who holds it, for the message of a refused process: a full
                    with contextlib.suppress(OSError):  # disk only leaves that unsaid
                        _write_info(fd)
            except BaseException:
                os.close(fd)
                raise
            self._fd = fd
            _held[key] = (os.getpid(), self)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock (taken and not released)."""
        return self._fd is not None

    def release(self) -> None:
        """Unlock and close ``.lock`` (which stays); nothing happens if not held."""
        if self._fd is None:
            return
        with _held_guard:
            _held.pop(os.path.realpath(self.path), None)
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                fcntl.lockf(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()


def holder(directory: Path | str) -> str | None:
    """``"process 1234 on host box"``: who holds ``directory``'s lock now, or None if nobody
    (or if the holder's line cannot be read; :func:`check_free` tells those apart).

    Tests the lock without keeping it (a shared lock, taken and dropped at once), so stale
    information left in ``.lock`` by a finished process is never reported. None also where
    locks do not work (see the module doc).
    """
    if fcntl is None:
        return None
    with _held_guard:
        mine = _held.get(os.path.realpath(Path(directory) / LOCK_FILE))
        if mine is not None and mine[0] == os.getpid():  # must not open a second descriptor
            return _who(_read_info(mine[1]._fd))
    held, info = _probe(directory)
    return _who(info) if held else None


def check_free(directory: Path | str) -> None:
    """Raise the one-line RunFolderError of :meth:`RunLock.acquire` if another process holds
    ``directory``; change nothing (a refused command leaves the folder as it was)."""
    held, info = _probe(directory)
    if held:
        raise RunFolderError(_in_use(Path(directory), info))


def _probe(directory: Path | str) -> tuple[bool, dict[str, Any] | None]:
    """Whether another process holds the lock, and its line (None if unreadable); never
    this process (which must not open a second descriptor of the file)."""
    if fcntl is None:
        return False, None
    path = Path(directory) / LOCK_FILE
    with _held_guard:
        mine = _held.get(os.path.realpath(path))
        if mine is not None and mine[0] == os.getpid():  # must not open a second descriptor
            return False, None
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False, None
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            return e.errno not in NO_LOCKS, _read_info(fd)
        else:
            fcntl.lockf(fd, fcntl.LOCK_UN)
            return False, None
        finally:
            os.close(fd)


def _open(path: Path) -> int:
    """``os.open`` of ``.lock`` for reading and writing, created with 0666 less the umask."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise RunFolderError(f"cannot open the lock file {path} ({e.strerror}): check that the "
                             "run folder exists and that you may write to it") from e


def _lock(fd: int, directory: Path) -> bool:
    """Lock ``fd`` (True), go ahead unlocked with a warning (False), or raise if it is held."""
    for attempt in range(TRIES):
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno in NO_LOCKS:
                print(f"warning: {directory} is on a file system without locks: nothing "
                      "stops a second rnnlab train on it", file=sys.stderr)
                return False
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                raise
        if attempt + 1 < TRIES:
            time.sleep(PAUSE_S)
    raise RunFolderError(_in_use(directory, _read_info(fd)))


def _write_info(fd: int) -> None:
    """Replace the content of ``.lock`` by the holder's JSON line, and fsync it."""
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    line = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started})
    os.ftruncate(fd, 0)
    os.pwrite(fd, (line + "\n").encode("utf-8"), 0)
    os.fsync(fd)


def _read_info(fd: int | None) -> dict[str, Any] | None:
    """The holder's ``{"pid", "host", "started"}`` from ``.lock``, or None if unreadable."""
    if fd is None:
        return None
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not {"pid", "host", "started"} <= set(info):
        return None
    return info


def _who(info: dict[str, Any] | None) -> str | None:
    return None if info is None else f"process {info['pid']} on host {info['host']}"


def _in_use(directory: Path, info: dict[str, Any] | None) -> str:
    """The one-line message for a folder whose lock another process holds."""
    who = "another process" if info is None else f"{_who(info)} (since {info['started']})"
    return (f"run folder {directory} is in use by {who}: wait for it to finish or stop it, "
            "then try again")


__all__ = ["LOCK_FILE", "RunLock", "check_free", "holder"]
