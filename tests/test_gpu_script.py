"""benchmarks/gpu.py runs here: ``--dry-run`` (device cpu, tiny sizes) exercises its parity
and speed tables before the GPU machine's minutes are spent on it.

On the CPU both sides of the parity table are the same NumPy code, so every error is 0; the
speed rows time PyTorch on the CPU. Only the script's code paths and its JSON are checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from subprocess_env import src_first_env

pytest.importorskip("torch")
pytest.importorskip("threadpoolctl")

ROOT = Path(__file__).resolve().parents[1]


def test_dry_run_writes_both_tables(tmp_path):
    env = src_first_env(OUT=str(tmp_path))
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--dry-run",
                           "--parts", "parity", "speed"], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| case | option | dtype |" in done.stdout and "| config | rnnlab ms |" in done.stdout
    parity = json.loads((tmp_path / "parity.json").read_text())
    cases = {(r["case"], r["option"], r["dtype"]) for r in parity}
    assert ("lstm_peephole", "truncate", "float32") in cases
    assert ("embedding", "V=1000", "float64") in cases and ("lm-train", "adam", "float32") in cases
    assert all(r["ok"] and r["rel_err"] == 0.0 for r in parity)  # cpu against cpu
    speed = json.loads((tmp_path / "speed.json").read_text())
    assert [r["config"] for r in speed] == ["char-small", "ptb-small"]
    for r in speed:
        assert len(r["ratios"]) == 5 and r["loss_rel_diff"] < 1e-3
        assert r["rnnlab_ms"] > 0 and r["cudnn_ms"] > 0 and r["cudnn_tf32_ms"] > 0
    env_json = json.loads((tmp_path / "env.json").read_text())
    assert env_json["device"] == "cpu"
