"""``--device`` on the command line, on the CPU: the one-line errors (no CuPy, no GPU, no
such GPU, nonsense, out of GPU memory) and whole runs on the fake CuPy (tests/fake_cupy.py)
that equal CPU runs exactly, move between devices on --resume, and sample, evaluate and
predict on either device from the same checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fake_cupy import FakeGPUArray, make_fake_cupy
from task_cli_data import SMALL, TRAIN, assert_one_line_error, run_cli, write_files

from rnnlab.training import checkpoint, loop

LM = ["--hidden", "8", "--embed", "4", "--layers", "2", "--batch-size", "4", "--bptt", "8",
      "--dropout", "0.2", "--eval-batch-size", "4", "--sample-length", "5", "--no-progress",
      "--no-sample", "--dtype", "float64", "--eval-every", "2"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("devdata")
    paths = write_files(d)
    text = d / "lm.txt"
    text.write_text("the cat sat on the mat. " * 60, encoding="utf-8")
    paths["lm"] = text
    return paths


def task_args(task, files, out, steps):
    if task == "lm":
        return ["train", "--data", files["lm"], "--out", out, *LM, "--max-steps", steps]
    name, extra = TRAIN[task]
    pairs = dict(zip(extra[::2], extra[1::2], strict=True))  # TRAIN's flags, less its steps
    extra = [x for k, v in pairs.items() if k not in ("--max-steps", "--eval-every")
             for x in (k, v)]
    return ["train", "--task", task, "--data", files[f"{name}.train"], "--val-data",
            files[f"{name}.val"], "--out", out, *SMALL, *extra, "--max-steps", steps,
            "--eval-every", "2", "--dtype", "float64",
            *(["--dropout", "0.1"] if task != "seq2seq" else [])]


@pytest.fixture
def on_device(fake_cupy, monkeypatch):
    """Checks that a run really trains on the (fake) device and saves host arrays only."""
    seen: dict = {"steps": 0, "reads": []}  # steps on the device; reads per step
    clip = loop.clip_and_read

    def checked_clip(params, max_norm, loss):
        kinds = {isinstance(a, FakeGPUArray) for p in params.values() for a in (p.value, p.grad)}
        assert len(kinds) == 1, "some parameters on the device, some on the host"
        seen["steps"] += kinds == {True}  # steps taken on the device
        return clip(params, max_norm, loss)

    saved = checkpoint._checked_array

    def host_only(key, value):
        assert not isinstance(value, FakeGPUArray), f"{key}: a device array reached the disk"
        return saved(key, value)

    monkeypatch.setattr(loop, "clip_and_read", checked_clip)
    step = loop._Loop._step

    def counted_step(self):
        before = FakeGPUArray.reads
        out = step(self)
        seen["reads"].append(FakeGPUArray.reads - before)
        return out

    monkeypatch.setattr(loop._Loop, "_step", counted_step)
    monkeypatch.setattr(checkpoint, "_checked_array", host_only)
    return seen


def arrays(folder, name="last"):
    with np.load(Path(folder) / f"{name}.npz") as z:
        return {k: z[k] for k in z.files}


def assert_same_run(a, b, every_row=True):
    """The same last checkpoint, and the same metrics rows (else the last evaluation's, when
    one run stopped and resumed: its stop evaluated too, which resets the running means)."""
    x, y = arrays(a), arrays(b)
    assert x.keys() == y.keys()
    for k in x:
        assert np.array_equal(x[k], y[k]), k
    if every_row:
        assert rows(a) and rows(a) == rows(b)
    else:
        keys = ("step", "val_loss", "grad_norm")  # the sample: one more evaluation drew
        assert [rows(f)[-1][k] for k in keys for f in (a,)] == \
            [rows(f)[-1][k] for k in keys for f in (b,)]


def rows(folder):
    """metrics.jsonl without the timings."""
    lines = (Path(folder) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(r).items() if k not in ("tokens_per_s", "elapsed_s")}
            for r in lines]


@pytest.mark.parametrize("task", ["lm", "classify", "tag", "seq2seq"])
def test_a_run_on_the_device_is_the_cpu_run(task, files, tmp_path, capsys, on_device):
    code, _, err = run_cli(capsys, *task_args(task, files, tmp_path / "cpu", "3"))
    assert code == 0, err
    assert on_device["steps"] == 0
    code, _, err = run_cli(capsys, *task_args(task, files, tmp_path / "gpu", "3"), "--device",
                           "cuda")
    assert code == 0, err
    assert on_device["steps"] == 3
    assert on_device["reads"] == [0, 0, 0, 1, 1, 1]  # cpu, then one read per device step
    assert_same_run(tmp_path / "cpu", tmp_path / "gpu")


@pytest.mark.parametrize("first, then", [("cuda", "cpu"), ("cpu", "cuda:0")])
def test_resume_on_another_device(first, then, files, tmp_path, capsys, on_device):
    straight = tmp_path / "straight"
    assert run_cli(capsys, *task_args("lm", files, straight, "5"))[0] == 0
    moved = tmp_path / "moved"
    assert run_cli(capsys, *task_args("lm", files, moved, "3"), "--device", first)[0] == 0
    code, _, err = run_cli(capsys, "train", "--resume", moved, "--max-steps", "5",
                           "--no-progress", "--no-sample", "--device", then)
    assert code == 0, err
    assert_same_run(straight, moved, every_row=False)


def test_sample_eval_predict_on_the_device(files, tmp_path, capsys, fake_cupy):
    lm, cls = tmp_path / "lm", tmp_path / "cls"
    assert run_cli(capsys, *task_args("lm", files, lm, "2"), "--device", "cuda")[0] == 0
    assert run_cli(capsys, *task_args("classify", files, cls, "2"))[0] == 0
    inputs = tmp_path / "in.txt"
    inputs.write_text("aab\nbba\n", encoding="utf-8")
    for args in (["sample", "--checkpoint", lm, "--length", "20", "--prime", "the"],
                 ["eval", "--checkpoint", lm, "--data", files["lm"], "--json"],
                 ["predict", "--checkpoint", cls, "--input", inputs, "--json"],
                 ["eval", "--checkpoint", cls, "--data", files["cls.val"], "--json"]):
        cpu = run_cli(capsys, *args)
        gpu = run_cli(capsys, *args, "--device", "cuda")
        assert cpu[0] == gpu[0] == 0, (cpu[2], gpu[2])
        assert cpu[1] == gpu[1] and cpu[1]


VERBS = {"train": ["train", "--max-steps", "1"], "sample": ["sample", "--checkpoint", "RUN"],
         "eval": ["eval", "--checkpoint", "RUN", "--data", "DATA"],
         "predict": ["predict", "--checkpoint", "RUN"]}


def _verb(verb, files, tmp_path):
    args = [str(a) for a in VERBS[verb]]
    args = [str(files["lm"]) if a == "DATA" else str(tmp_path / "run") if a == "RUN" else a
            for a in args]
    return args + (["--data", str(files["lm"]), "--out", str(tmp_path / "new")]
                   if verb == "train" else [])


CUPY_CASES = {  # what sys.modules["cupy"] is, the --device asked for, the words expected
    "no CuPy": (lambda: None, "cuda",
                ["needs CuPy", "rnnlab[cuda12]", "rnnlab[cuda13]", "--device cpu"]),
    "no GPU": (lambda: make_fake_cupy(0), "cuda", ["no NVIDIA GPU", "--device cpu"]),
    "beyond the GPU count": (lambda: make_fake_cupy(2), "cuda:7",
                             ["cuda:7 does not exist", "2 GPUs"]),
}


@pytest.mark.parametrize("verb", sorted(VERBS))
@pytest.mark.parametrize("case", CUPY_CASES)
def test_a_device_that_cannot_be_used(verb, case, files, tmp_path, capsys, monkeypatch):
    """One line naming what is missing, exit 2, nothing written."""
    cupy, spec, words = CUPY_CASES[case]
    monkeypatch.setitem(sys.modules, "cupy", cupy())
    code, _, err = run_cli(capsys, *_verb(verb, files, tmp_path), "--device", spec)
    assert_one_line_error(code, err, *words)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("verb", sorted(VERBS))
@pytest.mark.parametrize("spec", ["tpu", "cuda:x", "gpu:0"])
def test_nonsense_device(verb, spec, files, tmp_path):
    r = subprocess.run([sys.executable, "-m", "rnnlab", *_verb(verb, files, tmp_path),
                        "--device", spec], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--device" in lines[0] and "'cpu', 'cuda' or 'cuda:N'" in lines[0]
    assert "Traceback" not in r.stderr


def assert_error_after_the_run_line(code, err, *words):
    """The run's first line ("training ..." or "resuming ..."), then one error line."""
    lines = err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(("training", "resuming")), err
    assert_one_line_error(code, lines[1], *words)


def saved(folder):
    return {f.name: f.read_bytes() for f in sorted(Path(folder).rglob("*"))
            if f.is_file() and f.name != ".lock"}


def _oom_in_backward(monkeypatch, fake_cupy):
    from rnnlab.models import LanguageModel

    def boom(self):
        raise fake_cupy.cuda.memory.OutOfMemoryError("Out of memory allocating 1,024 bytes")
    monkeypatch.setattr(LanguageModel, "backward_loss", boom)


def test_out_of_memory_on_a_new_run(files, tmp_path, capsys, monkeypatch, fake_cupy):
    _oom_in_backward(monkeypatch, fake_cupy)
    out = tmp_path / "new"
    code, _, err = run_cli(capsys, *task_args("lm", files, out, "3"), "--device", "cuda")
    assert_error_after_the_run_line(code, err, "out of GPU memory on cuda:0", "--layers 2",
                                    "--hidden 8", "--batch-size 4", "--bptt 8",
                                    "lower --batch-size", "removed")
    assert not out.exists()  # as it was before the command


def test_out_of_memory_on_resume_keeps_the_run(files, tmp_path, capsys, monkeypatch, fake_cupy):
    out = tmp_path / "run"
    assert run_cli(capsys, *task_args("lm", files, out, "2"))[0] == 0
    before = saved(out)
    _oom_in_backward(monkeypatch, fake_cupy)
    code, _, err = run_cli(capsys, "train", "--resume", out, "--max-steps", "4",
                           "--no-progress", "--device", "cuda")
    assert_error_after_the_run_line(code, err, "out of GPU memory", "--hidden 8",
                                    "keeps its last")
    assert saved(out) == before  # every file but the lock's record of who last held it
