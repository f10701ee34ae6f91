"""benchmarks/bench.py --threads 1 2: a table per thread count, what each side runs, and the
speed-up table with its Amdahl columns (a quick run: the timings mean nothing)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from subprocess_env import src_first_env

pytest.importorskip("torch")
pytest.importorskip("threadpoolctl")

ROOT = Path(__file__).resolve().parents[1]


def test_two_thread_counts_give_two_tables_and_the_speed_up_table(tmp_path):
    out = tmp_path / "rows.json"
    env = src_first_env()
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--only",
         "rnn-char-small", "--threads", "1", "2", "--json", str(out)],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert [r["threads"] for r in rows] == [1, 2]
    for r in rows:  # each worker says what it ran, at the thread count asked for
        assert f"{r['threads']} threads" in r["rnnlab_about"], r["rnnlab_about"]
        assert r["rnnlab_about"].startswith("rnnlab on NumPy")
        assert r["torch_about"].startswith("torch ") and "CPU capability" in r["torch_about"]
    text = result.stdout
    assert "1 thread(s) per side." in text and "2 thread(s) per side." in text
    line = next(s for s in text.splitlines() if s.startswith("| rnn-char-small | 1 -> 2 |"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    speedups = [float(c.rstrip("x")) for c in cells[2:4]]
    expected = [rows[1][f"{s}_tok_s"] / rows[0][f"{s}_tok_s"] for s in ("rnnlab", "torch")]
    assert speedups == pytest.approx(expected, abs=0.006)  # printed to 2 decimals
    shares = [float(x) for x in cells[6].split(" / ")]
    assert all(0.0 <= f <= 1.0 for f in shares)
    assert re.fullmatch(r"[\d.]+x / [\d.]+x", cells[7])
