"""The adding-problem and digit-caption examples: each --quick run ends in a JSON line that
beats chance clearly."""

from __future__ import annotations

import subprocess
import sys

import pytest
from examples_run import EXAMPLES, run_quick


def test_adding_problem_quick():
    """At T = 20 the LSTM's held-out MSE is far below the 0.167 of always answering 1."""
    m = run_quick("adding_problem.py")
    assert m["baseline_mse"] == pytest.approx(1 / 6, abs=1e-3)
    assert set(m["results"]) == {"lstm_T20"}, m
    assert m["results"]["lstm_T20"]["test_mse"] < 0.05, m


def test_adding_problem_rejects_unknown_cell():
    result = subprocess.run([sys.executable, str(EXAMPLES / "adding_problem.py"), "--quick",
                             "--cells", "lstm,transformer"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert "unknown cell 'transformer'" in result.stderr
    assert "Traceback" not in result.stderr


def test_digits_caption_quick():
    """Held-out exact match (name letters, then EOS) far above naming a digit at random."""
    pytest.importorskip("sklearn")
    m = run_quick("digits_caption.py")
    assert m["chance"] == 0.1
    assert m["test_images"] == 359 and m["train_images"] == 1438, m
    assert m["exact_match"] >= 0.85, m
