"""Bad input to the sequence-task commands: one line naming the file and line (or the flag),
exit status 2, no traceback, the run folder unchanged; the models' ValueErrors; language-model
run folders from before tasks existed."""

import json
import subprocess
import sys

import numpy as np
import pytest
from task_cli_data import (
    SMALL,
    TRAIN,
    assert_one_line_error,
    folder_hash,
    run_cli,
    train_runs,
    write_files,
)

from rnnlab.cli.load import load_run


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("taskdata"))


@pytest.fixture(scope="module")
def runs(files, tmp_path_factory):
    """Barely trained runs: what matters here is that they exist and load."""
    return train_runs(files, tmp_path_factory.mktemp("runs"), steps=3)


# --- bad input -----------------------------------------------------------------------------

BAD_TRAIN = [  # (task, file content, words the error must hold besides the file's name)
    ("classify", "A\tgood\nB\tbad\nno tab here\n", ["line 3", "tab"]),
    ("classify", "A\tgood\n\tbad\n", ["line 2", "label is empty"]),
    ("seq2seq", "ab\tba\n \tx\n", ["line 2", "source is empty"]),
    ("tag", "EU B-ORG\nsays O\n\nthe O\nlonely\n", ["line 5", "tag"]),
    ("classify", "", ["empty"]),
    ("tag", "", ["empty"]),
    ("seq2seq", b"ab\tcaf\xe9\n", ["UTF-8"]),
    ("classify", b"\x89PNG\r\n\x1a\n\x00\x00", ["binary"]),
]


@pytest.mark.parametrize(("task", "content", "words"), BAD_TRAIN)
def test_bad_training_data_leaves_the_run_folder_as_it_was(runs, tmp_path, capsys, task,
                                                           content, words):
    data = tmp_path / "bad.txt"
    data.write_bytes(content.encode() if isinstance(content, str) else content)
    before = folder_hash(runs[task])
    code, _, err = run_cli(capsys, "train", "--task", task, "--data", data, "--out", runs[task],
                           "--force", *SMALL)
    assert_one_line_error(code, err, str(data), *words)
    assert folder_hash(runs[task]) == before


def test_bad_validation_file_is_named(runs, files, tmp_path, capsys):
    val = tmp_path / "val.tsv"
    val.write_text("A\taab\nC\tabb\n", encoding="utf-8")
    before = folder_hash(runs["classify"])
    code, _, err = run_cli(capsys, "train", "--task", "classify", "--data", files["cls.train"],
                           "--val-data", val, "--out", runs["classify"], "--force", *SMALL)
    assert_one_line_error(code, err, str(val), "line 2", "'C'", "never occurs")
    assert folder_hash(runs["classify"]) == before


@pytest.mark.parametrize(("task", "content", "words"), [
    ("classify", "A\taab\nZ\tab\n", ["line 2", "'Z'", "never occurs"]),
    ("tag", "Ann B-PER\nsat B-VERB\n", ["line 2", "'B-VERB'"]),
    ("seq2seq", "ab\tba\nabc\n", ["line 2", "tab"]),
    ("classify", b"A\t\xff\n", ["UTF-8"]),
])
def test_bad_evaluation_data(runs, tmp_path, capsys, task, content, words):
    data = tmp_path / "eval.txt"
    data.write_bytes(content.encode() if isinstance(content, str) else content)
    before = folder_hash(runs[task])
    code, _, err = run_cli(capsys, "eval", "--checkpoint", runs[task], "--data", data, "--json")
    assert_one_line_error(code, err, str(data), *words)
    assert folder_hash(runs[task]) == before


@pytest.mark.parametrize(("content", "words"), [("aab\n\nabb\n", ["line 2", "empty input"]),
                                                ("", ["empty"]),
                                                (b"\xfe\xff", ["UTF-8"])])
def test_bad_prediction_input(runs, tmp_path, capsys, content, words):
    data = tmp_path / "in.txt"
    data.write_bytes(content.encode() if isinstance(content, str) else content)
    code, _, err = run_cli(capsys, "predict", "--checkpoint", runs["classify"], "--input", data)
    assert_one_line_error(code, err, str(data), *words)


def test_task_data_is_required(tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--task", "classify", "--out", tmp_path / "r")
    assert_one_line_error(code, err, "--data")


def test_tag_needs_word_level(files, tmp_path, capsys):
    code, _, err = run_cli(capsys, "train", "--task", "tag", "--data", files["tag.train"],
                           "--level", "char", "--out", tmp_path / "r")
    assert_one_line_error(code, err, "--level word")


@pytest.mark.parametrize("task", ["classify", "tag", "seq2seq"])
def test_bidirectional_trains_and_says_so(files, tmp_path, capsys, task):
    name = TRAIN[task][0]
    code, _, err = run_cli(capsys, "train", "--task", task, "--data", files[f"{name}.train"],
                           "--out", tmp_path / "r", "--bidirectional", "--max-steps", "2",
                           "--eval-every", "0", *SMALL)
    assert code == 0, err
    assert f"bidirectional LSTM {task} model" in err.splitlines()[0], err


def test_the_models_raise_value_errors_for_bad_batches(runs):
    model = load_run(str(runs["classify"])).model
    x = np.array([[1, 2], [0, 1]])  # (T=2, N=2)
    with pytest.raises(ValueError, match="lengths"):
        model.loss(x, np.array([0, 1]), lengths=[2, 1, 1])  # three lengths, two sequences
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        model.loss(x, np.array([0, 5]), lengths=[2, 1])  # class 5 of 2
    tagger = load_run(str(runs["tag"])).model
    with pytest.raises(ValueError, match="shape"):
        tagger.loss(x, np.array([[0, 1]]), lengths=[2, 1])  # tags (1, 2) for inputs (2, 2)


# --- language-model runs ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def lm_run(files, tmp_path_factory):
    out = tmp_path_factory.mktemp("lm") / "run"
    text = files["cls.train"].read_text()
    data = out.parent / "text.txt"
    data.write_text(text, encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "rnnlab", "train", "--data", str(data), "--out",
                        str(out), "--hidden", "16", "--embed", "8", "--layers", "1",
                        "--batch-size", "4", "--bptt", "16", "--max-steps", "5",
                        "--eval-every", "0", "--no-progress", "--no-sample"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out, data


def test_language_model_checkpoints_record_lm_and_old_ones_still_load(lm_run, capsys):
    out, data = lm_run
    meta_path = out / "best.json"
    record = json.loads(meta_path.read_text())
    assert record["meta"]["task"] == "lm"
    del record["meta"]["task"]  # as saved before tasks existed (the sha256 covers the npz)
    meta_path.write_text(json.dumps(record))
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    for key in ("task", "val_fraction", "bidirectional", "pooling", "attention",
                "reverse_source", "peeky"):
        del cfg["config"][key]
    cfg_path.write_text(json.dumps(cfg))
    code, out_text, err = run_cli(capsys, "eval", "--checkpoint", out, "--data", data, "--json")
    assert code == 0, err
    assert {"loss", "perplexity", "tokens"} <= set(json.loads(out_text))
    code, out_text, err = run_cli(capsys, "sample", "--checkpoint", out, "--length", "5")
    assert code == 0, err


def test_predict_on_a_language_model_and_sample_on_a_task_are_errors(lm_run, runs, capsys):
    code, _, err = run_cli(capsys, "predict", "--checkpoint", lm_run[0], "--input", lm_run[1])
    assert_one_line_error(code, err, "language model", "rnnlab sample")
    code, _, err = run_cli(capsys, "sample", "--checkpoint", runs["classify"])
    assert_one_line_error(code, err, "classify", "rnnlab predict")
