"""The seq2seq examples' --quick settings run and learn (each under a minute)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_quick(script, *args):
    """The example's final JSON line of metrics (it inherits PYTHONPATH)."""
    result = subprocess.run([sys.executable, str(EXAMPLES / script), "--quick", *args],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_addition_quick():
    """Every variant far above the commonest-answer baseline; peeky and attention above 50%."""
    m = run_quick("addition.py")
    assert m["baseline"] < 0.02
    for variant in ("plain", "reversed", "peeky", "attention"):
        assert m[variant]["exact_match"] > max(0.08, 10 * m["baseline"]), (variant, m)
    assert m["peeky"]["exact_match"] > 0.5, m
    assert m["attention"]["exact_match"] > 0.5, m


def test_dates_quick(tmp_path):
    """Held-out exact match well above chance (1 in 36,524 dates); the heatmap is a PNG."""
    png = tmp_path / "attention.png"
    m = run_quick("dates.py", "--heatmap", str(png))
    assert m["exact_match"] > 0.5, m
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
