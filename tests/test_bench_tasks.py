"""benchmarks/bench.py's task configurations: the two sides compute the same steps.

Runs ``bench.py --quick --no-bucket`` on a tagger (bidirectional, packed), a seq2seq model
with dot attention and its greedy decoding, in worker processes, as CI would. ``--no-bucket``
mixes lengths in each batch, so the padding and the masks are exercised (length-bucketed
batches have almost none); a twin without the attention mask, or with the mean pooling over
every step, leaves the weights 7e-3 apart after four steps, well above WEIGHT_ATOL. The
timings of a quick run mean nothing, only the comparison is asserted.
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
CONFIGS = ["tag", "seq2seq-dot", "decode-dot"]


def test_quick_task_configurations_agree_with_torch(tmp_path):
    """Exit 0; per-step losses within LOSS_RTOL; the weights equal after the Adam steps."""
    out = tmp_path / "rows.json"
    env = src_first_env()
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--no-bucket",
         "--only", *CONFIGS, "--json", str(out)],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {r["config"]: r for r in json.loads(out.read_text())}
    assert sorted(rows) == sorted(CONFIGS)
    for name, r in rows.items():
        assert len(r["loss_rel_diffs"]) == 3, name  # warm-up and two repeats of one
        assert max(r["loss_rel_diffs"]) <= 1e-3, (name, r["loss_rel_diffs"])
        assert r["rnnlab_tok_s"] > 0 and r["torch_tok_s"] > 0, name
    for name in ("tag", "seq2seq-dot"):
        assert rows[name]["weight_abs_diff"] <= 1e-4, (name, rows[name]["weight_abs_diff"])
    assert "weight_abs_diff" not in rows["decode-dot"]  # decoding changes no weight
    assert "| decode-dot |" in result.stdout
