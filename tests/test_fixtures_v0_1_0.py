"""Run folders written by rnnlab 0.1.0 (commit 90f5dcd) must keep loading and resuming exactly.

tests/fixtures/v0_1_0/<name>/ holds a data file and ``run/``, a 4-step run made by that commit
(tests/fixtures/v0_1_0/make.py, not run here), and ``continuation.json``: what that commit's
own code did next with it. Each test copies one fixture into tmp_path, works there (so nothing
in the repository is written and every path is the relative one config.json records) and
drives the command line in-process through ``rnnlab.cli.main`` only.
"""

import json
import math
import shutil
from pathlib import Path

import pytest

from rnnlab.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "v0_1_0"
NAMES = ["lm", "classify", "seq2seq"]
REL = 1e-5


def recorded(name):
    return json.loads((FIXTURES / name / "continuation.json").read_text(encoding="utf-8"))


@pytest.fixture
def fixture_copy(tmp_path, monkeypatch):
    """Copy fixture ``name`` into tmp_path and chdir there; returns the recorded outputs."""

    def copy(name):
        shutil.copytree(FIXTURES / name, tmp_path / name)
        monkeypatch.chdir(tmp_path / name)
        return recorded(name)

    return copy


def cli(capsys, args):
    """``rnnlab ARGS`` in this process: (exit status, stdout, stderr)."""
    try:
        code = main(list(args))
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_close(got, want, where="value"):
    """Numbers within REL relative; strings, booleans, None, keys and lengths exactly."""
    if isinstance(want, bool) or want is None or isinstance(want, str):
        assert got == want, f"{where}: {got!r} != {want!r}"
    elif isinstance(want, (int, float)):
        assert isinstance(got, (int, float)) and not isinstance(got, bool), f"{where}: {got!r}"
        assert math.isclose(got, want, rel_tol=REL), f"{where}: {got!r} != {want!r}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{where}: {got!r} vs {want!r}"
        for k in want:
            assert_close(got[k], want[k], f"{where}[{k!r}]")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} vs {want!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{where}[{i}]")
    else:
        raise AssertionError(f"{where}: unexpected recorded value {want!r}")


def test_fixtures_are_relative_and_small():
    for name in NAMES:
        config = (FIXTURES / name / "run" / "config.json").read_text(encoding="utf-8")
        assert "/work" not in config and "/tmp" not in config, name
        assert json.loads(config)["config"]["out"] == "run"
    size = sum(f.stat().st_size for f in FIXTURES.rglob("*") if f.is_file())
    assert size < 1_500_000


@pytest.mark.parametrize("name", NAMES)
def test_resume_continues_as_0_1_0_did(name, fixture_copy, capsys):
    want = fixture_copy(name)
    code, _, err = cli(capsys, want["resume_args"])
    assert code == 0, err
    lines = Path("run/metrics.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["step"] for r in rows if r["step"] <= want["first_steps"]] == [2, 4]
    after = [r for r in rows if r["step"] > want["first_steps"]]
    assert len(after) == len(want["rows"]) == 2
    for i, (got, row) in enumerate(zip(after, want["rows"], strict=True)):
        for key, value in row.items():
            assert key in got, f"{name} row {i}: no {key}"
            assert_close(got[key], value, f"{name} row {i} {key}")


def test_sample_as_0_1_0_did(fixture_copy, capsys):
    want = fixture_copy("lm")
    code, out, err = cli(capsys, want["sample_args"])
    assert code == 0, err
    assert out == want["sample"]


@pytest.mark.parametrize("name", NAMES)
def test_eval_as_0_1_0_did(name, fixture_copy, capsys):
    want = fixture_copy(name)
    code, out, err = cli(capsys, want["eval_args"])
    assert code == 0, err
    assert_close(json.loads(out), want["eval"], f"{name} eval")


@pytest.mark.parametrize("name", ["classify", "seq2seq"])
def test_predict_as_0_1_0_did(name, fixture_copy, capsys):
    want = fixture_copy(name)
    code, out, err = cli(capsys, want["predict_args"])
    assert code == 0, err
    # labels and targets exactly, probabilities / log_prob / attention within REL
    assert_close([json.loads(line) for line in out.splitlines()], want["predict"],
                 f"{name} predict")
