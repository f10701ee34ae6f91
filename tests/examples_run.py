"""Running the examples from the tests: the ``--quick`` form, and the command each prints."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_quick(script: str, *args: str, cwd: Path | None = None) -> dict:
    """The example's final JSON line of metrics (it inherits PYTHONPATH)."""
    result = subprocess.run([sys.executable, str(EXAMPLES / script), "--quick", *args],
                            capture_output=True, text=True, timeout=900, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_printed_command(command: str, run: Path) -> None:
    """The ``rnnlab train --task ...`` line an example printed, cut to a few steps into ``run``
    (later flags win): it must exit 0 and leave a checkpoint that ``predict`` reads back."""
    words = shlex.split(command)
    assert words[:4] == ["rnnlab", "train", "--task", words[3]], command
    cut = ["--max-steps", "4", "--eval-every", "2", "--out", str(run), "--no-progress"]
    train = subprocess.run([sys.executable, "-m", "rnnlab", *words[1:], *cut],
                           capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    assert (run / "last.npz").is_file() and (run / "last.json").is_file()
    data = Path(words[words.index("--data") + 1])
    first = data.read_text(encoding="utf-8").splitlines()[0]
    line = first.split("\t")[-1] if words[3] != "tag" else first.split()[0]
    predict = subprocess.run([sys.executable, "-m", "rnnlab", "predict", "--checkpoint",
                              str(run)], input=line + "\n", capture_output=True, text=True,
                             timeout=300)
    assert predict.returncode == 0, predict.stderr[-3000:]
    assert len(predict.stdout.splitlines()) == 1, predict.stdout
