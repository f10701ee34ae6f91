"""Shared pieces of the fuzz tests: the CLI run in-process, its contract, file mutations.

``COMMANDS`` lists every command that reads a run folder, as a function of the run folder
and a data file to an argv; a new command is one more entry. ``cli`` runs ``main(argv)``
in-process (a subprocess per example would be too slow) and ``assert_clean`` checks the
contract of every command: exit 0 or 2, no traceback, on 2 one line naming the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import re
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

from rnnlab.cli import main

TINY = ["--hidden", "16", "--embed", "8", "--layers", "1", "--batch-size", "8", "--bptt", "16",
        "--eval-every", "0", "--no-progress", "--no-sample"]

# Each command that reads a run folder: (run folder, data file) -> argv.
COMMANDS = {
    "train --resume": lambda run, data: ["train", "--resume", str(run), "--max-steps", "31",
                                         "--no-progress", "--no-sample"],
    "sample": lambda run, data: ["sample", "--checkpoint", str(run), "--length", "20"],
    "eval": lambda run, data: ["eval", "--checkpoint", str(run), "--data", str(data)],
}


def examples(n: int) -> int:
    """``n`` examples under the ``ci`` profile (25 by default), proportionally more under
    ``long`` (tests/conftest.py)."""
    return max(1, n * settings.default.max_examples // 25)


def cli(*argv: str) -> tuple[int, str, str]:
    """``main(argv)`` in-process: (exit status, stdout, stderr); an escaping exception fails."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as e:  # argparse's own exits
            code = e.code if isinstance(e.code, int) else 2
        except BaseException:
            raise AssertionError(f"rnnlab {' '.join(argv)} raised:\n"
                                 f"{traceback.format_exc()}") from None
    return code, out.getvalue(), err.getvalue()


def assert_clean(result: tuple[int, str, str], *names: str) -> None:
    """Exit 0, or exit 2 with one error line that names one of ``names`` (files); on exit 0
    no NaN printed as a number unless the output says the model holds NaN."""
    code, out, err = result
    assert "Traceback" not in err, err
    assert code in (0, 2), (code, err)
    if code == 2:
        errors = [line for line in err.splitlines() if "error:" in line]
        assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
        diverged = "The last good checkpoint is kept" in errors[0]  # e.g. weights x 1e30
        assert not names or diverged or any(n in errors[0] for n in names), (names, errors[0])
    else:
        said_nan = "hold NaN" in out or "holds NaN" in out
        assert said_nan or not re.search(r"(loss|perplexity|bits_per_char)\W+nan", out, re.I), out


def folder_hash(folder: Path) -> str:
    """One hash of every file's name and bytes under ``folder``."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


# ------------------------------------------------------------------ JSON mutations
JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 3),
    st.sampled_from([-1, 0, 2**31, 2**63, 10**30, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.lists(st.integers(0, 3), max_size=3), st.just({}),
    st.just({"a": [1, {"b": None}]}),
)


def json_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON value (dict keys and list indices), the root excluded."""
    paths: list[tuple] = []
    items = (value.items() if isinstance(value, dict) else
             enumerate(value) if isinstance(value, list) else ())
    for k, v in items:
        paths.append(prefix + (k,))
        paths.extend(json_paths(v, prefix + (k,)))
    return paths


@st.composite
def json_mutation(draw: Any, template: Any) -> tuple[tuple, str, Any]:
    """(path, action, value): delete the field at path, or replace it with value."""
    path = draw(st.sampled_from(json_paths(template)))
    action = draw(st.sampled_from(["delete", "replace", "replace"]))
    return path, action, draw(JSON_VALUES)


def apply_json_mutation(record: Any, mutation: tuple[tuple, str, Any]) -> None:
    path, action, value = mutation
    parent = record
    for k in path[:-1]:
        parent = parent[k]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = value


def write_json(path: Path, record: Any) -> None:
    """JSON as Python writes it (NaN and Infinity as bare words; a 400-digit int as digits)."""
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")


def restamp(run: Path, name: str) -> None:
    """Put the npz's current sha256 in ``<name>.json`` so the deeper checks are reached."""
    js = run / f"{name}.json"
    record = json.loads(js.read_text(encoding="utf-8"))
    if isinstance(record, dict):
        record["npz_sha256"] = hashlib.sha256((run / f"{name}.npz").read_bytes()).hexdigest()
        write_json(js, record)


# ------------------------------------------------------------------- npz mutations
NPZ_ACTIONS = ("missing", "extra", "shape", "dtype", "nan", "inf", "huge", "object", "bytes")


@st.composite
def npz_mutation(draw: Any, names: list[str]) -> dict[str, Any]:
    return {"action": draw(st.sampled_from(NPZ_ACTIONS)), "name": draw(st.sampled_from(names)),
            "extra": draw(st.sampled_from(["model/extra", "optim/x.exp_avg", "state/9", "junk",
                                           "model/decoder.bias "])),
            "dtype": draw(st.sampled_from(["float16", "int32", "bool", "complex64", "<U3",
                                           "float64", "float32", "uint8"])),
            "shape": draw(st.sampled_from(["drop", "add", "transpose", "scalar", "empty"])),
            "offset": draw(st.integers(0, 10**9)), "byte": draw(st.integers(1, 255))}


def _reshaped(a: np.ndarray, how: str) -> np.ndarray:
    if how == "drop":
        return a.reshape(-1)[:-1] if a.size else np.zeros(1, a.dtype)
    if how == "add":
        return np.concatenate([a.reshape(-1), np.zeros(1, a.dtype)])
    if how == "transpose":
        return a.T if a.ndim == 2 and a.shape[0] != a.shape[1] else a.reshape(1, *a.shape)
    if how == "scalar":
        return np.asarray(a.reshape(-1)[0] if a.size else 0.0, a.dtype)
    return np.zeros((0,), a.dtype)


def apply_npz_mutation(run: Path, name: str, m: dict[str, Any]) -> None:
    """Change ``<name>.npz`` as ``m`` says, then re-stamp its hash in the JSON."""
    npz = run / f"{name}.npz"
    if m["action"] == "bytes":
        data = bytearray(npz.read_bytes())
        data[m["offset"] % len(data)] ^= m["byte"]
        npz.write_bytes(bytes(data))
        restamp(run, name)
        return
    with np.load(npz, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    key, a = m["name"], arrays[m["name"]]
    if m["action"] == "missing":
        del arrays[key]
    elif m["action"] == "extra":
        arrays[m["extra"]] = np.zeros(3, np.float32)
    elif m["action"] == "shape":
        arrays[key] = _reshaped(a, m["shape"])
    elif m["action"] == "dtype":
        arrays[key] = a.astype(m["dtype"])
    elif m["action"] in ("nan", "inf"):
        b = a.astype(np.float64 if a.dtype.kind != "f" else a.dtype).copy()
        b.reshape(-1)[:: max(1, b.size // 3)] = math.nan if m["action"] == "nan" else -math.inf
        arrays[key] = b
    elif m["action"] == "huge":
        arrays[key] = (a * 1e30).astype(a.dtype) if a.dtype.kind == "f" else a
    else:  # object: np.savez pickles it; the loader must refuse
        arrays[key] = np.array([{"x": 1}, None], dtype=object)
    with open(npz, "wb") as f:
        np.savez(f, **arrays)
    restamp(run, name)
