"""Writing files atomically: a reader sees the old file or the new one, never part of one.

The one recipe, used for every file rnnlab writes (config.json, metrics.jsonl, loss.png,
the token cache, checkpoints)::

    1. a new temp file .<name>.<random>.tmp beside the target   same file system,
                                                                 mode 0666 less the umask
    2. write, flush, fsync                                       the bytes are on disk
    3. os.replace(temp, target)                                  atomic on POSIX and Windows
    4. fsync the directory                                       the rename is on disk too

If anything raises before step 3 the temp file is deleted and the target is untouched.
:func:`atomic_open` is the whole recipe; :func:`staged` stops after step 2 for a writer
that renames several files itself (a checkpoint's ``.npz`` and ``.json`` pair).

A log that grows a line at a time (``metrics.jsonl``) is appended to instead
(:func:`append_line`): one ``write`` of the whole line, and if it fails part-way (a full
disk) the file is cut back to its old length, so a reader never sees half a row.

>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as d:
...     target = Path(d) / "notes.txt"
...     atomic_write_text(target, "first\\n")
...     with atomic_open(target, "w") as f:
...         _ = f.write("second\\n")
...     print(target.read_text(), end="")
...     print(sorted(p.name for p in Path(d).iterdir()))
second
['notes.txt']
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

StrPath = str | os.PathLike[str]
PROC_STATUS = "/proc/self/status"  # Linux: has the line "Umask:\t0022"


def new_temp(target: StrPath) -> Path:
    """A new empty file ``.<target name>.<random>.tmp`` in the target's folder.

    Its mode is that of any new file, 0666 less the umask (0644 under the usual 022), not
    mkstemp's private 0600: the file becomes the target, which others may need to read. An
    existing target's mode is not kept, so files written 0600 by older versions come back
    to the umask's mode when rewritten. (On Windows, where modes are not permissions, the
    mode is left alone.)
    """
    target = Path(target)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o666 & ~current_umask())
    except BaseException:
        os.close(fd)
        os.unlink(name)
        raise
    os.close(fd)
    return Path(name)


def current_umask() -> int:
    """The process's umask, read without changing it.

    On Linux (4.7 and later) it is the ``Umask:`` line of ``/proc/self/status``. Elsewhere
    the standard trick, ``u = os.umask(0); os.umask(u)``: it sets the umask for an instant,
    so a file another thread creates in that instant gets mode 0666 or 0777; hence
    ``/proc`` first, where it exists (it is read again each time: the umask may change).

    >>> old = os.umask(0o027)
    >>> oct(current_umask())
    '0o27'
    >>> _ = os.umask(old)
    """
    try:
        with open(PROC_STATUS, "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def staged(target: StrPath, mode: str = "wb") -> Iterator[tuple[IO[Any], Path]]:
    """``(file, temp path)``: a temp file beside ``target``, open in ``mode``.

    On leaving the block the file is flushed, fsynced and closed; the caller renames it.
    If the block raises, the temp file is deleted.
    """
    tmp = new_temp(target)
    try:
        with open(tmp, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f, tmp
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_open(target: StrPath, mode: str = "w") -> Iterator[IO[Any]]:
    """Open ``target`` for writing (``"w"``: UTF-8 text, ``"wb"``: bytes), atomically.

    What is written lands in a temp file; leaving the block without an exception renames
    it over ``target`` (steps 3 and 4 of the module doc), raising leaves ``target`` as it was.
    """
    target = Path(target)
    with staged(target, mode) as (f, tmp):
        yield f
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    sync_dir(target.parent)


def atomic_write_text(target: StrPath, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_open(target, "w") as f:
        f.write(text)


def append_line(target: StrPath, line: str, *, sync: bool = True) -> None:
    """Append ``line`` and a newline to ``target`` (created if absent), all or nothing: a
    failed write (no space left) truncates the file back to its length before, then
    raises. ``sync``: fsync before returning (a row that must survive a crash)."""
    data = (line + "\n").encode("utf-8")
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # the umask applies
    try:
        size = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
            while written < len(data):  # a short write: the rest, or the error that stopped it
                written += os.write(fd, data[written:])
            if sync:
                os.fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def sync_dir(directory: StrPath) -> None:
    """Make renames in ``directory`` durable (POSIX; a no-op where folders can't be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
