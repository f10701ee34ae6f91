"""The classify and tag examples: each ``--quick`` run ends in a JSON line that beats chance,
and the command line each prints trains on the file it wrote."""

from __future__ import annotations

import pytest
from examples_run import run_printed_command, run_quick


def test_grammar_classify_quick(tmp_path):
    m = run_quick("grammar_classify.py", "--out", str(tmp_path / "grammar.tsv"))
    assert m["test_accuracy"] >= m["majority_baseline"] + 0.2, m
    first = (tmp_path / "grammar.tsv").read_text().splitlines()[0]
    assert first.split("\t")[0] in ("valid", "invalid")
    run_printed_command(m["cli"], tmp_path / "run")


def test_tagging_quick(tmp_path):
    m = run_quick("tagging.py", "--out", str(tmp_path / "segment.conll"))
    uni = m["unidirectional"]
    assert uni["char_accuracy"] >= m["majority_baseline"] + 0.08, m
    assert uni["word_f1"] >= 0.4, m
    assert m["bidirectional"]["char_accuracy"] >= m["majority_baseline"] + 0.08, m
    assert (tmp_path / "segment.conll").read_text().splitlines()[0].endswith(" B-W")
    run_printed_command(m["cli"], tmp_path / "run")


def test_digits_quick(tmp_path):
    pytest.importorskip("sklearn")
    m = run_quick("digits_classify.py", "--out", str(tmp_path / "digits.tsv"))
    assert m["test_accuracy"] >= 0.8 > m["majority_baseline"] + 0.5, m
    assert len((tmp_path / "digits.tsv").read_text().splitlines()) == 1797
    run_printed_command(m["cli"], tmp_path / "run")
