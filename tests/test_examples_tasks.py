"""The classify and tag examples: each ``--quick`` run ends in a JSON line that beats chance."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_quick(name: str, data_file: Path) -> dict:
    out = subprocess.run([sys.executable, str(EXAMPLES / name), "--quick", "--out",
                          str(data_file)], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_grammar_classify_quick(tmp_path):
    m = run_quick("grammar_classify.py", tmp_path / "grammar.tsv")
    assert m["test_accuracy"] >= m["majority_baseline"] + 0.2, m
    first = (tmp_path / "grammar.tsv").read_text().splitlines()[0]
    assert first.split("\t")[0] in ("valid", "invalid")


def test_tagging_quick(tmp_path):
    m = run_quick("tagging.py", tmp_path / "segment.conll")
    uni = m["unidirectional"]
    assert uni["char_accuracy"] >= m["majority_baseline"] + 0.08, m
    assert uni["word_f1"] >= 0.4, m
    if m["bidirectional"] is not None:
        assert m["bidirectional"]["char_accuracy"] >= m["majority_baseline"] + 0.08, m
    assert (tmp_path / "segment.conll").read_text().splitlines()[0].endswith(" B-W")


def test_digits_quick(tmp_path):
    pytest.importorskip("sklearn")
    m = run_quick("digits_classify.py", tmp_path / "digits.tsv")
    assert m["test_accuracy"] >= 0.8 > m["majority_baseline"] + 0.5, m
    assert len((tmp_path / "digits.tsv").read_text().splitlines()) == 1797
