"""Shared pieces of the fuzz tests: the CLI run in-process, its contract, file mutations.

``COMMANDS`` lists every command that reads a run folder, as a function of the run folder
and a data file to an argv; a new command is one more entry. ``cli`` runs ``main(argv)``
in-process (a subprocess per example would be too slow) and ``assert_clean`` checks the
contract of every command: exit 0 or 2, no traceback, on 2 one line naming the file.
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
import traceback
from collections.abc import Callable, Iterator
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
    # --out outside the run folder; report writes report.html into it (refused: none there)
    "inspect gradients": lambda run, data: ["inspect", "gradients", "--checkpoint", str(run),
                                            "--steps", "8", "--windows", "2",
                                            "--out", str(run.parent / "g.png"), "--json"],
    "inspect gates": lambda run, data: ["inspect", "gates", "--checkpoint", str(run), "--text",
                                        str(data), "--max-tokens", "200",
                                        "--out", str(run.parent / "gates.png")],
    "inspect activations": lambda run, data: ["inspect", "activations", "--checkpoint",
                                              str(run), "--text", str(data), "--max-tokens",
                                              "100", "--out", str(run.parent / "a.html")],
    "report": lambda run, data: ["report", str(run), "--steps", "8", "--windows", "2"],
}
# The commands that plot cost about a second a run: a sixth of the examples each.
PLOTTING = ("inspect gradients", "inspect gates", "inspect activations", "report")


def examples(n: int) -> int:
    """``n`` examples under the ``ci`` profile (25 by default), proportionally more under
    ``long`` (tests/conftest.py)."""
    return max(1, n * settings.default.max_examples // 25)


def examples_for(command: str, n: int) -> int:
    """``examples(n)``, or a sixth of it for a command in ``PLOTTING``."""
    return examples(max(1, n // 6) if command in PLOTTING else n)


@contextlib.contextmanager
def _working_folder(path: str) -> Iterator[None]:
    """``os.chdir(path)`` for the block (contextlib.chdir needs Python 3.11)."""
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def cli(*argv: str) -> tuple[int, str, str]:
    """``main(argv)`` in-process: (exit status, stdout, stderr); an escaping exception fails.
    It runs in an empty temporary folder: a fuzzed relative path (config.json's cache_dir,
    say) is created there, not in the checkout."""
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as cwd, _working_folder(cwd), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
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
    """One hash of every file's name and bytes under ``folder``, the lock file aside (a
    command that took the folder's lock writes who holds it there; it is not run data)."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != ".lock":
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


def mutate_checkpoints(run: Path, mutation: tuple[tuple, str, Any]) -> None:
    """``mutation`` applied to last.json and best.json (skipping one that lacks its path)."""
    for name in ("last", "best"):
        record = json.loads((run / f"{name}.json").read_text(encoding="utf-8"))
        try:
            apply_json_mutation(record, mutation)
        except (KeyError, IndexError, TypeError):  # best.json lacks that path
            continue
        write_json(run / f"{name}.json", record)


def mutate_config(run: Path, mutation: tuple[tuple, str, Any]) -> None:
    """``mutation`` applied to config.json."""
    record = json.loads((run / "config.json").read_text(encoding="utf-8"))
    apply_json_mutation(record, mutation)
    write_json(run / "config.json", record)


def check_mutated_run(template: Path, argv: Callable[[Path], list[str]],
                      change: Callable[[Path], None], *names: str,
                      then: Callable[[Path], None] = lambda run: None) -> tuple[int, str, str]:
    """Copy the run ``template``, ``change(run)``, run ``argv(run)``: a clean exit naming the
    run or one of ``names`` (assert_clean); refused -> the run unchanged; then ``then(run)``
    before the copy goes."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        shutil.copytree(template, run)
        change(run)
        before = folder_hash(run)
        result = cli(*argv(run))
        assert_clean(result, str(run), *names)
        if result[0] == 2:
            assert folder_hash(run) == before, result[2]
        then(run)
        return result


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


# --------------------------------------------------------------- data-file bytes
BAD = [b"\xff", b"\xc3", b"\x00", codecs.BOM_UTF8, b"\r\n", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
       b"\r", b"\t", b"\x85", b"\xe2\x80\xa8"]


@st.composite
def corpus_bytes(draw: Any, alphabet: Any = None, giant: int = 100_000) -> bytes:
    """Text with bad bytes spliced in at any offset, maybe a BOM, maybe CRLF; or raw bytes."""
    kind = draw(st.sampled_from(["text", "text", "text", "random", "newlines", "giant"]))
    if kind == "random":
        return draw(st.binary(max_size=600))
    if kind == "newlines":
        return draw(st.sampled_from([b"\n", b"\r\n"])) * draw(st.integers(1, 300))
    if kind == "giant":  # one line, no newline
        return draw(st.sampled_from([b"a", b"ab ", "é".encode()])) * giant
    chars = alphabet if alphabet is not None else st.characters(exclude_categories=("Cs",))
    text = draw(st.text(chars, max_size=400))
    data = bytearray(text.encode("utf-8"))
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.sampled_from(BAD))
    if draw(st.booleans()):
        data = bytearray(bytes(data).replace(b"\n", b"\r\n"))
    if draw(st.booleans()):
        data[0:0] = codecs.BOM_UTF8
    return bytes(data)
