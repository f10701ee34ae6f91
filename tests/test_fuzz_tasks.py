"""Fuzzing the sequence-task commands: ``train --task classify|tag|seq2seq`` on a mutated
TSV/CoNLL file, and a task run's ``eval --data`` and ``predict --input`` on one.

Each file starts as a small valid file of its task (tests/task_cli_data.py), then gets a few
mutations: a missing tab, an extra column, an empty field, a run of blank lines, a sentence
without tags; at the byte level invalid UTF-8, a BOM, CRLF; or it is random bytes outright.
The contract (fuzz_helpers.assert_clean): exit 0 or 2, one error line naming the file, no
traceback; a refused train leaves no run folder, a task run is never changed by eval/predict.
"""

import shutil
import tempfile
from pathlib import Path

import pytest
from fuzz_helpers import assert_clean, cli, examples, folder_hash
from fuzz_task_files import TASKS, input_lines, task_file, train_runs, train_task, valid_lines
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return train_runs(tmp_path_factory.mktemp("taskruns"))


@pytest.mark.parametrize("task", TASKS)
@settings(max_examples=examples(5))
@given(data=st.data())
def test_train_on_a_fuzzed_task_file(task, data):
    raw = data.draw(task_file(task))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{task}-train.txt"
        path.write_bytes(raw)
        out = Path(tmp) / "run"
        result = train_task(path, out, "--max-steps", "1", "--time-budget", "5")
        assert_clean(result, str(path))
        if result[0] == 2:  # refused: no run folder left behind
            assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


@pytest.mark.parametrize("command", ["eval", "predict"])
@pytest.mark.parametrize("task", TASKS)
@settings(max_examples=examples(4))
@given(data=st.data())
def test_eval_and_predict_on_a_fuzzed_task_file(runs, task, command, data):
    raw = data.draw(task_file(task, 8, valid_lines if command == "eval" else input_lines))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{task}-in.txt"
        path.write_bytes(raw)
        run = Path(tmp) / "run"
        shutil.copytree(runs[task], run)
        before = folder_hash(run)
        flag = "--data" if command == "eval" else "--input"
        assert_clean(cli(command, "--checkpoint", str(run), flag, str(path)), str(path))
        assert folder_hash(run) == before


@pytest.mark.parametrize("task", TASKS)
def test_the_valid_files_work(runs, task, tmp_path):
    """The mutations start from files every command accepts."""
    for command, flag, lines_of in (("eval", "--data", valid_lines),
                                    ("predict", "--input", input_lines)):
        path = tmp_path / f"{task}-{command}.txt"
        path.write_text("\n".join(lines_of(task, 8)) + "\n", encoding="utf-8")
        code, out, err = cli(command, "--checkpoint", str(runs[task]), flag, str(path))
        assert code == 0 and out, err


@pytest.mark.parametrize("task", TASKS)
def test_what_the_long_run_found(task, tmp_path):
    """One example (here a line of 'ab ' repeated): the validation split left nothing to
    train on, and the error did not name the file."""
    path = tmp_path / f"{task}-train.txt"
    path.write_text(valid_lines(task, 1)[0] + "\n", encoding="utf-8")
    code, _, err = train_task(path, tmp_path / "run", "--max-steps", "1")
    assert code == 2 and str(path) in err and "--val-data" in err, err
    assert not (tmp_path / "run").exists()
