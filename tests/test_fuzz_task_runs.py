"""Fuzzing task run folders, a task trainer's --val-data, and the text the inspect commands
read.

A tiny classify, tag and seq2seq run is trained once per module (fuzz_task_files) and
copied per example; one file is then changed as test_fuzz_run_folder changes a language
model's (config.json, a checkpoint's JSON, its npz with the integrity hash re-stamped, so
the loader's deeper checks are what is tested), and ``train --resume``, ``predict`` and
``eval`` run on it: exit 0, or 2 with one line naming the file; a refused command leaves
the folder as it was (fuzz_helpers.check_mutated_run).
"""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fuzz_helpers import (
    TINY,
    apply_npz_mutation,
    assert_clean,
    check_mutated_run,
    cli,
    corpus_bytes,
    examples,
    folder_hash,
    json_mutation,
    mutate_checkpoints,
    mutate_config,
    npz_mutation,
    restamp,
)
from fuzz_task_files import TASKS, input_lines, task_file, train_runs, train_task, valid_lines
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data import bundled_corpus

# Each command that reads a task run: (run folder, folder of the task's files, task) -> argv.
TASK_COMMANDS = {
    "train --resume": lambda run, files, task: ["train", "--resume", str(run), "--max-steps",
                                                "4", "--no-progress"],
    "predict": lambda run, files, task: ["predict", "--checkpoint", str(run), "--input",
                                         str(files / f"{task}-in.txt")],
    "eval": lambda run, files, task: ["eval", "--checkpoint", str(run), "--data",
                                      str(files / f"{task}-eval.txt")],
}
CASES = [(task, command) for task in TASKS for command in TASK_COMMANDS]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The tiny task runs (``files / task``), their training files, and valid eval/predict
    inputs beside them."""
    root = tmp_path_factory.mktemp("taskruns")
    train_runs(root)
    for task in TASKS:
        (root / f"{task}-eval.txt").write_text("\n".join(valid_lines(task, 8)) + "\n",
                                               encoding="utf-8")
        (root / f"{task}-in.txt").write_text("\n".join(input_lines(task, 8)) + "\n",
                                             encoding="utf-8")
    return root


def _check(files, task, command, change):
    return check_mutated_run(files / task, lambda run: TASK_COMMANDS[command](run, files, task),
                             change, str(files))


def _template(files, task, name):
    return json.loads((files / task / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("task, command", CASES)
def test_the_untouched_task_run_works(files, task, command):
    code, out, err = _check(files, task, command, lambda run: None)
    assert code == 0 and out, err


@pytest.mark.parametrize("task, command", CASES)
@settings(max_examples=examples(8))
@given(data=st.data())
def test_fuzzed_task_checkpoint_json(files, task, command, data):
    mutation = data.draw(json_mutation(_template(files, task, "last.json")))
    _check(files, task, command, lambda run: mutate_checkpoints(run, mutation))


@pytest.mark.parametrize("task, command", CASES)
@settings(max_examples=examples(5))
@given(data=st.data())
def test_fuzzed_task_config_json(files, task, command, data):
    mutation = data.draw(json_mutation(_template(files, task, "config.json")))
    _check(files, task, command, lambda run: mutate_config(run, mutation))


@pytest.mark.parametrize("task, command", CASES)
@settings(max_examples=examples(6))
@given(data=st.data())
def test_fuzzed_task_checkpoint_npz(files, task, command, data):
    with np.load(files / task / "last.npz") as f:
        mutation = data.draw(npz_mutation(sorted(f.files)))

    def change(run):
        for name in ("last", "best"):
            apply_npz_mutation(run, name, mutation)
    _check(files, task, command, change)


@pytest.mark.parametrize("task, command", CASES)
@given(raw=st.binary(max_size=300))
@settings(max_examples=examples(2))
def test_task_json_replaced_by_random_bytes(files, task, command, raw):
    def change(run):
        for name in ("config.json", "last.json", "best.json"):
            (run / name).write_bytes(raw)
    _check(files, task, command, change)


# --------------------------------------------------------------- what was found
@pytest.mark.parametrize("task, command", CASES)
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_task_model_is_refused_naming_the_array(files, task, command, value):
    def change(run):
        for name in ("last", "best"):
            with np.load(run / f"{name}.npz") as f:
                arrays = {k: f[k] for k in f.files}
            key = next(k for k in sorted(arrays) if k.startswith("model/"))
            arrays[key].reshape(-1)[0] = value
            np.savez(run / f"{name}.npz", **arrays)
            restamp(run, name)
    code, _, err = _check(files, task, command, change)
    assert code == 2 and "'model/" in err and "NaN or infinity" in err, err


FOUND = [  # (task, checkpoint field path, value; None: delete): each was a traceback
    ("classify", ("meta", "vocabularies"), []),
    ("classify", ("meta", "vocabularies"), {"a": [1, {"b": None}]}),
    ("classify", ("meta", "model", "input_size"), {}),
    ("tag", ("meta", "model"), 3),
    ("tag", ("meta", "model", "hidden_size"), 10**400),
    ("tag", ("meta", "vocabularies", "labels", "names", 2), 1),
    ("seq2seq", ("meta", "vocabularies", "source"), None),
    ("seq2seq", ("meta", "vocabularies", "max_length"), {"a": [1, {"b": None}]}),
    ("seq2seq", ("meta", "vocabularies", "max_length"), 2**63),
    ("tag", ("meta", "config", "hidden"), 2**40),
]
FOUND_ON_RESUME = [  # what only training reads: a traceback, or not checked at all
    ("tag", ("meta", "rng", "has_uint32"), None),
    ("seq2seq", ("meta", "order_rng", "uinteger"), [2, 1]),
    ("seq2seq", ("meta", "optimizer", "hyperparams", "betas", 0), {}),
    ("classify", ("meta", "progress", "best_metric"), 10**400),
    ("classify", ("meta", "progress", "batch"), 10**6),
]


@pytest.mark.parametrize("task, path, value, command", [
    *((*case, command) for case in FOUND for command in TASK_COMMANDS),
    *((*case, "train --resume") for case in FOUND_ON_RESUME)])
def test_what_fuzzing_task_checkpoints_found(files, task, path, value, command):
    """Found by the fuzz tests above: each was a KeyError, TypeError, ValueError or
    OverflowError traceback, or went unchecked into training."""
    mutation = (path, "delete" if value is None else "replace", value)
    code, _, err = _check(files, task, command, lambda run: mutate_checkpoints(run, mutation))
    assert code == 2 and ("last.json" in err or "best.json" in err), err


@pytest.mark.parametrize("field, value", [("clip", {}), ("clip", 10**400), ("lr", {}),
                                          ("batch_size", []), ("schedule", 1e-151),
                                          ("val_data", 4.9e-271), ("hidden", 2**40)])
@pytest.mark.parametrize("task", TASKS)
def test_a_bad_config_json_is_refused_on_task_resume(files, task, field, value):
    """Found by the fuzz tests above: config.json was read unchecked on a task resume."""
    mutation = (("config", field), "replace", value)
    code, _, err = _check(files, task, "train --resume",
                          lambda run: mutate_config(run, mutation))
    assert code == 2 and "config.json" in err and field in err, err


@pytest.mark.parametrize("order", ["index", "bounds"])
@pytest.mark.parametrize("value", [-1, 10**6])
def test_a_bad_saved_epoch_order_is_refused_on_resume(files, order, value):
    def change(run):
        with np.load(run / "last.npz") as f:
            arrays = {k: f[k] for k in f.files}
        arrays[f"order/{order}"][-1] = value
        np.savez(run / "last.npz", **arrays)
        restamp(run, "last")
    code, _, err = _check(files, "classify", "train --resume", change)
    assert code == 2 and "'order/index'" in err and "last.npz" in err, err


def test_a_huge_task_model_is_refused_before_anything_is_allocated(files, tmp_path):
    code, _, err = train_task(files / "classify-train.txt", tmp_path / "run",
                              "--max-steps", "1", "--hidden", "1000000000")
    assert code == 2 and "GiB" in err and not (tmp_path / "run").exists(), err


def test_a_diverged_task_resume_keeps_the_last_good_checkpoint(files):
    """Weights x 1e30 are finite, so accepted; the first step then diverges, and says so."""
    def change(run):
        for name in ("last", "best"):
            with np.load(run / f"{name}.npz") as f:
                arrays = {k: f[k] * (1e30 if k.startswith("model/") else 1) for k in f.files}
            np.savez(run / f"{name}.npz", **arrays)
            restamp(run, name)
    code, _, err = _check(files, "tag", "train --resume", change)
    assert code == 2 and "The last good checkpoint is kept" in err, err


# ------------------------------------------------------------------ --val-data
@pytest.mark.parametrize("task", TASKS)
@settings(max_examples=examples(6))
@given(data=st.data())
def test_train_with_a_fuzzed_val_data_file(files, task, data):
    """A good training file beside a fuzzed validation file: refused naming that file, or
    trained; a refusal leaves no run folder."""
    raw = data.draw(task_file(task, 8))
    with tempfile.TemporaryDirectory() as tmp:
        val = Path(tmp) / f"{task}-val.txt"
        val.write_bytes(raw)
        out = Path(tmp) / "run"
        result = train_task(files / f"{task}-train.txt", out, "--max-steps", "1",
                            "--val-data", str(val))
        assert_clean(result, str(val))
        if result[0] == 2:
            assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


# ------------------------------------------------------------- inspect --text
@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    (root / "train.txt").write_text(bundled_corpus().read_text(encoding="utf-8")[:5_000],
                                    encoding="utf-8")
    code, _, err = cli("train", "--data", str(root / "train.txt"), "--out", str(root / "run"),
                       "--max-steps", "3", *TINY)
    assert code == 0, err
    return root / "run"


INSPECT = {  # (run, text file, output file) -> argv; a small model, few windows
    "gradients": lambda run, text, out: ["inspect", "gradients", "--checkpoint", str(run),
                                         "--text", str(text), "--steps", "8", "--windows",
                                         "2", "--out", str(out.with_suffix(".png"))],
    "gradients fresh": lambda run, text, out: ["inspect", "gradients", "--cells", "lstm",
                                               "--hidden", "8", "--text", str(text),
                                               "--steps", "8", "--windows", "2",
                                               "--out", str(out.with_suffix(".png"))],
    "gates": lambda run, text, out: ["inspect", "gates", "--checkpoint", str(run), "--text",
                                     str(text), "--max-tokens", "200",
                                     "--out", str(out.with_suffix(".png"))],
    "activations": lambda run, text, out: ["inspect", "activations", "--checkpoint",
                                           str(run), "--text", str(text), "--max-tokens",
                                           "200", "--out", str(out.with_suffix(".html"))],
}


@pytest.mark.parametrize("command", INSPECT)
@settings(max_examples=examples(4))
@given(raw=corpus_bytes(giant=2_000))
def test_inspect_with_a_fuzzed_text(lm_run, command, raw):
    """Any bytes as --text: a picture or page, or one line naming the text file; the run
    folder is never changed."""
    with tempfile.TemporaryDirectory() as tmp:
        text, run = Path(tmp) / "text.txt", Path(tmp) / "run"
        text.write_bytes(raw)
        shutil.copytree(lm_run, run)
        before = folder_hash(run)
        assert_clean(cli(*INSPECT[command](run, text, Path(tmp) / "out")), str(text))
        assert folder_hash(run) == before



@pytest.mark.parametrize("command", ["gradients", "gradients fresh"])
def test_a_text_too_short_for_the_windows_names_the_file(lm_run, command, tmp_path):
    """Found by test_inspect_with_a_fuzzed_text: a one-token --text was refused without
    naming the file."""
    text = tmp_path / "text.txt"
    text.write_text("a", encoding="utf-8")
    code, _, err = cli(*INSPECT[command](lm_run, text, tmp_path / "out"))
    assert code == 2 and str(text) in err and "too short" in err, err
