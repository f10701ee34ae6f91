"""Checkpoints: arrays in ``<name>.npz``, metadata in ``<name>.json``, written atomically.

Writing (:func:`save`), so that a crash at any moment leaves either the old checkpoint,
the new one, or a pair that :func:`load` recognises as inconsistent, never a silently
wrong one (:mod:`rnnlab.atomic`'s recipe, for two files)::

    1. <name>.npz data  -> temp file in the same directory, flush, fsync
    2. sha256 of that temp file
    3. <name>.json {meta, the npz's sha256} -> temp file, flush, fsync
    4. os.replace(temp npz, <name>.npz)      atomic on POSIX and Windows (same directory)
    5. os.replace(temp json, <name>.json)    last: a json always names the npz it belongs to

A crash between 4 and 5 leaves a new npz beside the old json: the sha256 differs, and
``load`` says so. An *exception* between 4 and 5 (disk full, permission) is repaired at
once: the old npz, kept as a hard link before step 4, is put back.

Reading (:func:`load`) uses ``np.load(allow_pickle=False)`` (a checkpoint cannot run code)
and turns every problem into a one-line :class:`CheckpointError`. It reads the npz once and
takes the arrays and the sha256 from the same bytes. A reader beside a running save (``rnnlab
sample`` while training writes) can meet the pair between steps 4 and 5, or read the json
before a save and the npz after it: it reads the pair again, 10 ms later, until it matches or
stops changing (then it is a crash's pair, and the error above).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as run:
...     _ = save(run, "last", {"w": np.arange(3.0)}, {"epoch": 2})
...     arrays, meta = load(run, "last")
>>> arrays["w"], meta
(array([0., 1., 2.]), {'epoch': 2})
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.atomic import new_temp, staged, sync_dir
from rnnlab.device import device_of, to_device, to_host
from rnnlab.errors import CheckpointError
from rnnlab.nn.module import Module

FORMAT = "rnnlab-checkpoint"
VERSION = 1
_RESERVED = ("file", "allow_pickle")  # np.savez's own argument names, not array names
_ADVICE = "it cannot be used; resume from another checkpoint or retrain"


# -------------------------------------------------------------------------- save
def save(
    directory: str | os.PathLike[str], name: str, arrays: Mapping[str, np.ndarray],
    meta: Mapping[str, Any],
) -> Path:
    """Write ``<directory>/<name>.npz`` and ``.json`` atomically; return the npz's path.

    ``arrays``: name -> numeric array (object arrays are refused: they would need pickle).
    ``meta``: JSON-serialisable. The directory is created if needed. Raises ValueError
    (before touching any file) on bad input; on an OSError no temp file is left behind and
    an existing checkpoint of the same name is left as it was.
    """
    if not name or Path(name).name != name or name.startswith("."):
        raise ValueError(f"checkpoint name must be a plain file name, got {name!r}")
    arrays = {k: _checked_array(k, v) for k, v in arrays.items()}
    meta = _checked_meta(meta)  # fails early, before any file exists
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    npz, js = directory / f"{name}.npz", directory / f"{name}.json"
    temps: list[Path] = []
    try:
        with staged(npz, "wb") as (f, tmp_npz):
            temps.append(tmp_npz)
            np.savez(f, **arrays)  # type: ignore[arg-type]  # stubs confuse names with options
        record = {"format": FORMAT, "version": VERSION, "npz": npz.name,
                  "npz_sha256": _sha256(tmp_npz), "meta": meta}
        with staged(js, "w") as (f, tmp_js):
            temps.append(tmp_js)
            f.write(json.dumps(record, indent=1) + "\n")
        _replace_pair(tmp_npz, npz, tmp_js, js, temps)
    finally:
        for t in temps:  # whatever was not renamed into place
            with contextlib.suppress(FileNotFoundError):
                t.unlink()
    return npz


def _replace_pair(tmp_npz: Path, npz: Path, tmp_js: Path, js: Path, temps: list[Path]
                  ) -> None:
    """Steps 4 and 5, undoing step 4 if step 5 raises."""
    backup = None
    if npz.exists():
        backup = new_temp(npz)
        temps.append(backup)
        backup.unlink()
        try:
            os.link(npz, backup)  # the old data under a second name: no copy
        except OSError:  # no hard links on this file system: no undo either
            backup = None
    os.replace(tmp_npz, npz)
    try:
        os.replace(tmp_js, js)
    except BaseException:
        if backup is not None:
            with contextlib.suppress(OSError):
                os.replace(backup, npz)
        raise
    sync_dir(npz.parent)


def _checked_array(key: Any, value: Any) -> np.ndarray:
    if not isinstance(key, str) or not key or key in _RESERVED:
        raise ValueError(f"array name {key!r} is not allowed in a checkpoint")
    a = np.asarray(value)
    if a.dtype.hasobject:
        raise ValueError(f"array {key!r} has dtype object: checkpoints hold numeric arrays only"
                         " (no pickle)")
    return a


def _checked_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(meta, Mapping):
        raise ValueError(f"meta must be a dict, got {type(meta).__name__}")
    try:
        json.dumps(dict(meta))
    except (TypeError, ValueError) as e:
        raise ValueError(f"meta must be JSON-serialisable: {e}") from None
    return dict(meta)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -------------------------------------------------------------------------- load
def load(directory: str | os.PathLike[str], name: str) -> tuple[dict[str, np.ndarray],
                                                               dict[str, Any]]:
    """``arrays, meta`` of a checkpoint written by :func:`save`; CheckpointError otherwise."""
    npz, js = Path(directory) / f"{name}.npz", Path(directory) / f"{name}.json"
    for path in (npz, js):
        if not path.is_file():
            raise CheckpointError(f"checkpoint {path} is missing: {_ADVICE}")
    record, data = _read_record(js), _read_bytes(npz)
    for _ in range(_RETRIES):
        if hashlib.sha256(data).hexdigest() == record["npz_sha256"]:
            return _read_arrays(npz, data), record["meta"]
        # A save running beside this reader (a training run writing while `sample` reads)
        # puts its new npz beside the old json for a moment (steps 4-5), or replaces both
        # between the two reads above: look again, and give up once nothing moves.
        time.sleep(_SETTLE_S)
        again = _read_record(js), _read_bytes(npz)
        if again == (record, data):
            break
        record, data = again
    _read_arrays(npz, data)  # a damaged archive says how (bad CRC, truncated, ...) first
    raise CheckpointError(
        f"checkpoint {npz} does not match {js.name} (sha256 differs: corrupted, or an "
        f"interrupted save, or files from different saves): {_ADVICE}")


_RETRIES = 20  # reads of a pair that a concurrent save keeps changing
_SETTLE_S = 0.01  # steps 4 and 5 of a save are two renames, microseconds apart


def _read_bytes(npz: Path) -> bytes:
    """The whole npz in one read: its arrays and its sha256 come from the same bytes."""
    try:
        return npz.read_bytes()
    except OSError as e:
        raise CheckpointError(f"checkpoint {npz} cannot be read ({_one_line(e)}): "
                              f"{_ADVICE}") from None


def _read_record(js: Path) -> dict[str, Any]:
    try:
        record = json.loads(js.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(f"checkpoint {js} is not valid JSON (not UTF-8 text): "
                              f"{_ADVICE}") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint {js} is not valid JSON ({e.msg} at line {e.lineno}"
                              f" column {e.colno}): {_ADVICE}") from None
    except (ValueError, OSError, RecursionError) as e:  # e.g. an integer of 5000 digits
        raise CheckpointError(f"checkpoint {js} cannot be read ({_one_line(e)}): "
                              f"{_ADVICE}") from None
    if (not isinstance(record, dict) or record.get("format") != FORMAT
            or not isinstance(record.get("npz_sha256"), str)
            or not isinstance(record.get("meta"), dict)):
        raise CheckpointError(f"checkpoint {js} is not an rnnlab checkpoint record: {_ADVICE}")
    if record.get("version") != VERSION:
        raise CheckpointError(f"checkpoint {js} has format version {record.get('version')!r};"
                              f" this rnnlab reads version {VERSION}: upgrade rnnlab")
    return record


def _read_arrays(npz: Path, blob: bytes) -> dict[str, np.ndarray]:
    """Every array of the npz's bytes, read in full: zip's CRC-32 of each member is checked
    as it is read (``npz``: the file they came from, for the messages)."""
    try:
        data = np.load(io.BytesIO(blob), allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array
            raise ValueError("not an npz archive")
        with data:
            return {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, ValueError, EOFError,
            KeyError, OSError, NotImplementedError, RuntimeError) as e:
        # NotImplementedError: a member's compression method is unknown; RuntimeError: its
        # "encrypted" flag is set (zipfile asks for a password): both are flipped bits
        raise CheckpointError(f"checkpoint {npz} is corrupt ({_reason(e)}): {_ADVICE}") from None


def _reason(e: BaseException) -> str:
    text = _one_line(e)
    if "CRC" in text:
        return "bad CRC"
    if isinstance(e, zipfile.BadZipFile) and "not a zip file" in text:
        return "not a zip archive: truncated or overwritten"
    if "pickled" in text:  # np.load found neither zip nor .npy magic and refused pickle
        return "wrong header: not an npz archive"
    if "Object arrays" in text:
        return "holds object arrays, which would need pickle"
    return text[:200]


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


# ---------------------------------------------------------------- model state
def model_state(model: Module) -> dict[str, np.ndarray]:
    """A copy of every parameter's value by name (a tied parameter once, first name)."""
    return {name: np.array(to_host(p.value), copy=True)  # on the host, whatever the device
            for name, p in model.named_params().items()}


def part(arrays: Mapping[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays whose names start with ``prefix`` ("model/", "optim/", ...), prefix removed.

    >>> sorted(part({"model/w": 1, "optim/m.w": 2, "model/b": 3}, "model/"))
    ['b', 'w']
    """
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def load_model_state(model: Module, arrays: Mapping[str, np.ndarray]) -> None:
    """Copy ``arrays`` (as from :func:`model_state`) into ``model``'s parameters.

    All names and shapes are checked before anything is copied: a missing, unknown or
    wrongly shaped parameter raises a ValueError naming it, and the model is unchanged.
    """
    params = model.named_params()
    for name in params:
        if name not in arrays:
            raise ValueError(f"the saved state lacks parameter {name!r} (a different model "
                             f"configuration?)")
    for name in arrays:
        if name not in params:
            raise ValueError(f"the saved state has unknown parameter {name!r} (a different "
                             f"model configuration?)")
    for name, p in params.items():
        shape = tuple(np.shape(arrays[name]))
        if shape != p.shape:
            raise ValueError(f"parameter {name!r} has shape {shape} in the saved state but "
                             f"{p.shape} in the model")
    for name, p in params.items():
        value = np.asarray(arrays[name]).astype(p.value.dtype, copy=False)
        p.value[...] = to_device(value, device_of(p.value))  # onto the model's device
