"""Corpus files: checked reading, hashing, and encoding a whole file to a cached id array.

Every check a user can fix raises :class:`DataError` with a one-line message saying what is
wrong and what to do. A file must be UTF-8 text (a leading byte-order mark is dropped)
except at byte level, where any bytes are data.

Encoding streams the file in chunks of ``CHUNK_BYTES`` so a large corpus never exists as one
Python string; with a cache folder the ids are written once as ``.npy`` and later calls just
memory-map them::

    <cache_dir>/<sha256 of the file>-<vocab.fingerprint>.npy     (N,) uint8/16/32
"""

from __future__ import annotations

import codecs
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import ParamSpec, TypeVar

import numpy as np

from rnnlab.atomic import atomic_open
from rnnlab.data.vocab import Vocab
from rnnlab.errors import DataError

StrPath = str | os.PathLike[str]
P = ParamSpec("P")
T = TypeVar("T")

# Bytes read at a time when hashing or encoding; big enough that the per-chunk overhead
# vanishes, small enough that a chunk's temporaries (e.g. its UTF-32 copy) stay modest.
CHUNK_BYTES = 16 * 2**20


def bundled_corpus() -> Path:
    """tiny-shakespeare, shipped with the package (public-domain text)."""
    return Path(str(resources.files("rnnlab") / "corpora" / "tinyshakespeare.txt"))


def read_text(path: StrPath) -> str:
    """The whole file as a str: UTF-8, BOM stripped, neither binary nor blank.

    >>> import tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "tiny.txt"
    >>> _ = path.write_bytes(b"\\xef\\xbb\\xbfcaf\\xc3\\xa9\\n")  # a BOM, then UTF-8
    >>> read_text(path)
    'café\\n'
    >>> _ = path.write_bytes(b"\\x89PNG\\x00")
    >>> read_text(path)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    rnnlab.errors.DataError: ... is binary, not text (NUL byte at offset 4): ...
    >>> folder.cleanup()
    """
    p = _check_file(path)
    data = _read(p, p.read_bytes)
    _check_no_nul(p, data, 0)
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as e:
        raise _not_utf8(p, e.object[e.start], bom + e.start) from None
    if not text or text.isspace():
        raise _blank(p)
    return text


def read_bytes(path: StrPath) -> bytes:
    """The whole file's bytes (byte level: any bytes are data), checked as :func:`read_text`
    checks that it exists, is a file, is not empty and can be read."""
    p = _check_file(path)
    return _read(p, p.read_bytes)


def sha256_file(path: StrPath) -> str:
    """Hex SHA-256 of the file's bytes, read in chunks (constant memory)."""
    p = _check_file(path)
    h = hashlib.sha256()
    with _read(p, p.open, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


def encode_file(path: StrPath, vocab: Vocab, *, cache_dir: StrPath | None = None) -> np.ndarray:
    """All token ids of a file, ``(N,)`` in ``vocab.dtype``; the same as ``vocab.encode(text)``.

    Without ``cache_dir`` the ids are returned in memory. With it, they are stored under a key
    of the file's content and the vocabulary, written atomically (temp file, then rename), and
    returned as a read-only ``np.memmap``; a later call finds the key and only hashes the file.
    """
    p = _check_file(path)
    if cache_dir is None:
        return _encode_stream(p, vocab)
    folder = Path(cache_dir)
    target = folder / f"{sha256_file(p)}-{vocab.fingerprint}.npy"
    if not target.is_file():
        ids = _encode_stream(p, vocab)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # Atomic: readers never see a partial file, and two processes caching the
            # same key just replace one complete file with another.
            with atomic_open(target, "wb") as f:
                np.save(f, ids, allow_pickle=False)
        except OSError as e:
            raise DataError(
                f"cannot write the token cache {str(target)!r} ({e.strerror or e}): "
                "pass a writable cache folder"
            ) from None
    return np.load(target, mmap_mode="r", allow_pickle=False)


# --- checks -------------------------------------------------------------------------------


def _check_file(path: StrPath) -> Path:
    p = Path(path)
    if p.is_dir():
        raise DataError(f"data file {str(p)!r} is a directory: pass a text file inside it")
    if not p.exists():
        raise DataError(
            f"data file {str(p)!r} does not exist: check the path "
            f"(a relative path starts at {os.getcwd()!r})"
        )
    if p.stat().st_size == 0:
        raise DataError(f"data file {str(p)!r} is empty: pass a file that contains text")
    return p


# ParamSpec, not Callable[..., T]: it makes mypy pick the overload of ``p.open`` that matches
# the mode, so ``_read(p, p.open, "rb")`` is a binary file, not a text one.
def _read(p: Path, opener: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``opener(...)``, an OSError (permissions, a vanished file) turned into a DataError."""
    try:
        return opener(*args, **kwargs)
    except OSError as e:
        raise DataError(
            f"cannot read data file {str(p)!r} ({e.strerror or e}): check its permissions"
        ) from None


def _check_no_nul(p: Path, data: bytes, offset: int) -> None:
    # NUL never occurs in text, and is the cheapest reliable sign of a binary file.
    at = data.find(b"\0")
    if at >= 0:
        raise DataError(
            f"data file {str(p)!r} is binary, not text (NUL byte at offset {offset + at}): "
            "pass a UTF-8 text file, or --level byte"
        )


def _not_utf8(p: Path, byte: int, offset: int) -> DataError:
    return DataError(
        f"data file {str(p)!r} is not UTF-8 text (byte 0x{byte:02x} at offset {offset}): "
        "pass a UTF-8 text file, or --level byte"
    )


def _blank(p: Path) -> DataError:
    return DataError(f"data file {str(p)!r} holds only whitespace: pass a file that contains text")


# --- streaming ----------------------------------------------------------------------------


def _decoded_chunks(p: Path) -> Iterator[str]:
    """The file's text in pieces of about ``CHUNK_BYTES``, checked as :func:`read_text` checks.

    The incremental decoder holds back the first bytes of a character cut by a chunk
    boundary and completes it with the next read, so a piece never splits a character.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, started, seen, lead = 0, False, False, ""
    with _read(p, p.open, "rb") as f:
        while True:
            chunk = f.read(CHUNK_BYTES)
            _check_no_nul(p, chunk, offset)
            held = len(decoder.getstate()[0])  # bytes of a cut character, read last time
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                raise _not_utf8(p, e.object[e.start], offset - held + e.start) from None
            offset += len(chunk)
            if text and not started:
                text, started = text.removeprefix("\ufeff"), True
            # Hold back leading whitespace, so a blank file is reported as blank, not as
            # whatever its whitespace would do to the vocabulary.
            lead += text
            if lead and (seen or not lead.isspace()):
                yield lead
                lead, seen = "", True
            if not chunk:
                break
    if not seen:
        raise _blank(p)


def _line_pieces(pieces: Iterable[str]) -> Iterator[str]:
    """Re-cut text pieces after their last newline, so no word or line spans two pieces."""
    pending = ""
    for text in pieces:
        pending += text
        cut = pending.rfind("\n") + 1
        if cut:
            yield pending[:cut]
            pending = pending[cut:]
    if pending:
        yield pending


def _raw_chunks(p: Path) -> Iterator[bytes]:
    """The file's bytes in chunks, a leading UTF-8 BOM dropped (it is a marker, not data)."""
    with _read(p, p.open, "rb") as f:
        first = f.read(CHUNK_BYTES)
        if len(first) < len(codecs.BOM_UTF8):
            first += f.read(len(codecs.BOM_UTF8))
        yield first.removeprefix(codecs.BOM_UTF8)
        while chunk := f.read(CHUNK_BYTES):
            yield chunk


def _encode_stream(p: Path, vocab: Vocab) -> np.ndarray:
    """Encode piece by piece, counting lines so an unknown-token error names the right one."""
    if vocab.level == "byte":
        pieces: Iterable[str | bytes] = _raw_chunks(p)
    elif vocab.level == "word":
        pieces = _line_pieces(_decoded_chunks(p))  # a word cut in two would be two words
    else:
        pieces = _decoded_chunks(p)
    parts, line = [], 1
    for piece in pieces:
        try:
            parts.append(vocab._encode(piece, first_line=line))
        except DataError as e:
            for _ in pieces:  # a problem with the file itself, further on, is reported first
                pass
            raise DataError(f"data file {str(p)!r}: {e}") from None
        # Two calls, not one with a conditional argument, so each is type-checked on its own type.
        line += piece.count("\n") if isinstance(piece, str) else piece.count(b"\n")
    ids = np.concatenate(parts).astype(vocab.dtype, copy=False)
    if ids.size == 0:  # possible only at byte level, for a file holding just a BOM
        raise _blank(p)
    return ids
