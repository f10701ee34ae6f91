"""The seq2seq examples' --quick settings run and learn (each under a minute), and the
command line each prints trains on the file it wrote."""

from __future__ import annotations

from examples_run import run_printed_command, run_quick


def test_addition_quick(tmp_path):
    """Every variant far above the commonest-answer baseline; peeky and attention above 50%."""
    m = run_quick("addition.py", "--out", str(tmp_path / "addition.tsv"))
    assert m["baseline"] < 0.02
    for variant in ("plain", "reversed", "peeky", "attention"):
        assert m[variant]["exact_match"] > max(0.08, 10 * m["baseline"]), (variant, m)
    assert m["peeky"]["exact_match"] > 0.5, m
    assert m["attention"]["exact_match"] > 0.5, m
    assert "--peeky" in m["peeky"]["cli"] and "--attention dot" in m["attention"]["cli"]
    run_printed_command(m["attention"]["cli"], tmp_path / "run")


def test_dates_quick(tmp_path):
    """Held-out exact match well above chance (1 in 36,524 dates); the heatmap is a PNG."""
    png = tmp_path / "attention.png"
    m = run_quick("dates.py", "--heatmap", str(png), "--out", str(tmp_path / "dates.tsv"))
    assert m["exact_match"] > 0.5, m
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run_printed_command(m["cli"], tmp_path / "run")
