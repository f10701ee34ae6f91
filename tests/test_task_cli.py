"""Sequence tasks from the command line: train / predict / eval for classify, tag and seq2seq
on small generated files, the flag table, resume refusals and exact resume (bad input:
test_task_errors.py)."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from task_cli_data import (
    TRAIN,
    assert_one_line_error,
    folder_hash,
    run_cli,
    train_runs,
    write_files,
)

from rnnlab.cli.parser import build_parser
from rnnlab.tasks import TASK_TYPES
from rnnlab.tasks.flags import TASKS, table
from rnnlab.training import Run, train
from rnnlab.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_files(tmp_path_factory.mktemp("taskdata"))


@pytest.fixture(scope="module")
def runs(files, tmp_path_factory):
    return train_runs(files, tmp_path_factory.mktemp("runs"))


# --- train, eval, predict ------------------------------------------------------------------


def test_classify_beats_the_majority_class(runs, files, capsys):
    code, out, err = run_cli(capsys, "eval", "--checkpoint", runs["classify"], "--data",
                             files["cls.val"], "--json")
    assert code == 0, err
    result = json.loads(out)
    labels = [line.split("\t")[0] for line in files["cls.val"].read_text().splitlines()]
    majority = max(labels.count("A"), labels.count("B")) / len(labels)
    assert result["accuracy"] > max(0.9, majority + 0.25)
    assert set(result) == {"loss", "accuracy", "macro_f1", "confusion_matrix", "examples"}
    matrix = np.array(result["confusion_matrix"]["matrix"])
    assert result["confusion_matrix"]["labels"] == ["A", "B"] and matrix.shape == (2, 2)
    assert matrix.sum() == result["examples"] == len(labels)
    assert np.trace(matrix) / matrix.sum() == pytest.approx(result["accuracy"])
    assert 0 < result["loss"] < np.log(2)


def test_classify_predict_text_and_json(runs, tmp_path, capsys):
    inputs = tmp_path / "in.txt"
    inputs.write_text("aaaaab\nbbbbba\nzzz\n", encoding="utf-8")  # z: never seen -> <unk>
    code, out, err = run_cli(capsys, "predict", "--checkpoint", runs["classify"], "--input",
                             inputs)
    assert code == 0, err
    assert out.splitlines()[:2] == ["A", "B"] and len(out.splitlines()) == 3
    code, out, err = run_cli(capsys, "predict", "--checkpoint", runs["classify"], "--input",
                             inputs, "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["label"] for r in rows[:2]] == ["A", "B"]
    for r in rows:
        assert set(r["probabilities"]) == {"A", "B"}
        assert sum(r["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert r["label"] == max(r["probabilities"], key=r["probabilities"].get)


def test_predict_reads_standard_input(runs):
    r = subprocess.run([sys.executable, "-m", "rnnlab", "predict", "--checkpoint",
                        str(runs["classify"])], input="aaaaaab\n", capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "A\n"


def test_tag_beats_the_all_O_baseline(runs, files, capsys):
    code, out, err = run_cli(capsys, "eval", "--checkpoint", runs["tag"], "--data",
                             files["tag.val"], "--json")
    assert code == 0, err
    result = json.loads(out)
    tags = [line.split()[-1] for line in files["tag.val"].read_text().splitlines()[2:] if line]
    all_o = tags.count("O") / len(tags)  # per-token accuracy of always answering O
    assert result["tokens"] == len(tags)
    assert result["token_accuracy"] > all_o + 0.15
    assert result["f1"] > 0.6  # the all-O baseline finds no entity: F1 0
    assert {"precision", "recall", "f1", "token_accuracy", "loss"} <= set(result)


def test_tag_predict(runs, tmp_path, capsys):
    inputs = tmp_path / "in.txt"
    inputs.write_text("Ann sat on the mat\nthe dog ran Qwerty\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "predict", "--checkpoint", runs["tag"], "--input",
                             inputs, "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0]["tokens"] == "Ann sat on the mat".split()
    assert rows[0]["tags"] == ["B-PER", "O", "O", "O", "O"]
    assert [len(r["tags"]) for r in rows] == [5, 4]
    code, out, _ = run_cli(capsys, "predict", "--checkpoint", runs["tag"], "--input", inputs)
    assert out.splitlines()[0] == "B-PER O O O O"


def test_seq2seq_learns_to_reverse(runs, files, capsys):
    code, out, err = run_cli(capsys, "eval", "--checkpoint", runs["seq2seq"], "--data",
                             files["s2s.val"], "--json")
    assert code == 0, err
    result = json.loads(out)
    assert set(result) == {"loss", "exact_match", "token_accuracy", "examples"}
    assert result["exact_match"] > 0.6  # chance: about 4**-len
    assert result["token_accuracy"] > 0.8
    code, out, _ = run_cli(capsys, "eval", "--checkpoint", runs["seq2seq"], "--data",
                           files["s2s.val"], "--json", "--max-length", "1")
    assert json.loads(out)["exact_match"] == 0.0  # one token cannot hold a target and EOS


@pytest.mark.parametrize("beam", [None, 3])
def test_seq2seq_predict_with_attention(runs, tmp_path, capsys, beam):
    inputs = tmp_path / "in.txt"
    inputs.write_text("abcd\ncab\n", encoding="utf-8")
    extra = [] if beam is None else ["--beam", beam]
    code, out, err = run_cli(capsys, "predict", "--checkpoint", runs["seq2seq"], "--input",
                             inputs, "--json", *extra)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["target"] for r in rows] == ["dcba", "bac"]
    for r, source in zip(rows, ["abcd", "cab"], strict=True):
        weights = np.array(r["attention"])
        assert weights.shape == (len(r["target"]) + 1, len(source))  # + EOS
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-5)
        assert r["log_prob"] <= 0


def test_run_folder_and_checkpoint_record_the_task(runs):
    for task, folder in runs.items():
        record = json.loads((folder / "config.json").read_text())
        assert record["task"] == record["config"]["task"] == task
        meta = json.loads((folder / "best.json").read_text())["meta"]
        assert meta["task"] == task and meta["vocabularies"]["task"] == task
        rows = [json.loads(r) for r in (folder / "metrics.jsonl").read_text().splitlines()]
        assert all("val_loss" in r for r in rows)
    assert "val_accuracy" in rows[0] or "val_exact_match" in rows[0]
    meta = json.loads((runs["tag"] / "last.json").read_text())["meta"]
    assert meta["vocabularies"]["labels"]["names"] == ["B-PER", "I-PER", "O"]


# --- the flag table --------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "named"), [
    (["--task", "tag", "--bptt", "8"], "--bptt"),
    (["--task", "classify", "--attention", "dot"], "--attention"),
    (["--task", "seq2seq", "--pooling", "mean"], "--pooling"),
    (["--task", "seq2seq", "--dropout", "0.2"], "--dropout"),
    (["--task", "classify", "--no-sample"], "--no-sample"),
    (["--peeky"], "--peeky"),  # --task lm, the default
    (["--task", "lm", "--bidirectional"], "--bidirectional"),
])
def test_a_flag_that_does_not_apply_to_the_task_is_an_error(files, tmp_path, capsys, args,
                                                              named):
    code, _, err = run_cli(capsys, "train", "--data", files["cls.train"], "--out",
                           tmp_path / "run", *args)
    assert_one_line_error(code, err, named, "does not apply")
    assert not (tmp_path / "run").exists()


def test_predict_and_eval_flags_of_other_tasks_are_errors(runs, files, capsys):
    code, _, err = run_cli(capsys, "predict", "--checkpoint", runs["classify"], "--beam", "2",
                           "--input", files["cls.val"])
    assert_one_line_error(code, err, "--beam")
    code, _, err = run_cli(capsys, "predict", "--checkpoint", runs["tag"], "--max-length", "3",
                           "--input", files["cls.val"])
    assert_one_line_error(code, err, "--max-length")
    code, _, err = run_cli(capsys, "eval", "--checkpoint", runs["tag"], "--data",
                           files["tag.val"], "--max-length", "5")
    assert_one_line_error(code, err, "--max-length")


def test_the_readme_table_is_the_code_s_table():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(--[a-z-]+)` \|(.*)\|$", text, flags=re.M)
    shown = {f: tuple(c.strip() for c in cells.split("|")) for f, cells in rows}
    assert shown == {r[0]: tuple(r[1:]) for r in table()}
    header = re.search(r"^\| flag \|(.*)\|$", text, flags=re.M)
    assert header is not None
    assert tuple(c.strip(" `") for c in header.group(1).split("|")) == TASKS


def test_train_help_and_the_readme_table_share_the_flag_groups():
    train = build_parser()._subparsers._group_actions[0].choices["train"]  # type: ignore
    groups = [(g.title, [a.option_strings[0] for a in g._group_actions])
              for g in train._action_groups[2:]]  # after "positional arguments", "options"
    assert [t for t, _ in groups] == ["data", "model", "task-specific (classify, tag, seq2seq)",
                                      "optimisation", "evaluation and output", "run control"]
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    shown: list[tuple[str, list[str]]] = []
    for line in re.findall(r"^\| (\*\*[^*]+\*\*|`--[a-z-]+`) \|", text, flags=re.M):
        if line.startswith("**"):
            shown.append((line.strip("*"), []))
        else:
            shown[-1][1].append(line.strip("`"))
    assert shown == groups
    help_text = train.format_help()
    assert all(f"\n{t}:\n" in help_text for t, _ in groups)


# --- resume --------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", [["--task", "tag"], ["--attention", "dot"], ["--peeky"],
                                  ["--hidden", "64"], ["--val-fraction", "0.3"]])
def test_resume_refuses_changed_task_flags(runs, capsys, flag):
    before = folder_hash(runs["seq2seq"])
    code, _, err = run_cli(capsys, "train", "--resume", runs["seq2seq"], *flag)
    assert_one_line_error(code, err, flag[0])
    assert folder_hash(runs["seq2seq"]) == before


def small_config(files, task, out, **kw):
    name = TRAIN[task][0]
    cfg = {"task": task, "data": str(files[f"{name}.train"]), "out": str(out), "hidden": 16,
           "embed": 8, "layers": 1, "batch_size": 16, "eval_every": 7, "lr": 0.01,
           "level": "word" if task == "tag" else "char", "time_budget": None}
    return TrainConfig(**{**cfg, **kw})


@pytest.mark.parametrize("task", ["classify", "tag", "seq2seq"])
def test_resume_is_identical_to_an_uninterrupted_run(files, tmp_path, task):
    kw = {} if task == "seq2seq" else {"dropout": 0.3}
    with Run.create(small_config(files, task, tmp_path / "full", max_steps=40, **kw),
                    TASK_TYPES[task]) as full:
        train(full, progress_bar=False)
    with Run.create(small_config(files, task, tmp_path / "part", max_steps=25, **kw),
                    TASK_TYPES[task]) as part:
        train(part, progress_bar=False)  # stops mid-epoch (an epoch: 19-23 batches)
    with Run.resume(tmp_path / "part", TASK_TYPES) as resumed:
        assert resumed.progress.step == 25 and resumed.progress.batch > 0
        resumed.config.max_steps = 40
        train(resumed, progress_bar=False)
    want = np.load(tmp_path / "full" / "last.npz")
    got = np.load(tmp_path / "part" / "last.npz")
    assert set(want.files) == set(got.files)
    for k in want.files:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    metas = [json.loads((tmp_path / r / "last.json").read_text())["meta"] for r in ("full",
                                                                                  "part")]
    # The stopped run was also evaluated at step 25, so its best checkpoint may differ.
    skip = ("elapsed_s", "best_metric", "best_val")
    want_prog, got_prog = ({k: v for k, v in m["progress"].items() if k not in skip}
                           for m in metas)
    assert got_prog == want_prog and got_prog["step"] == 40
    assert metas[0]["order_rng"] == metas[1]["order_rng"] and metas[0]["rng"] == metas[1]["rng"]


def test_resume_from_the_command_line_continues_the_run(runs, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(runs["classify"], copy)
    config_before = (copy / "config.json").read_text()
    code, out, err = run_cli(capsys, "train", "--resume", copy, "--max-steps", "160",
                             "--no-progress")
    assert code == 0, err
    assert "resuming" in err and "done: 160 steps" in out
    rows = [json.loads(r) for r in (copy / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)) and steps[-1] == 160
    assert (copy / "config.json").read_text() == config_before


def load_task_data(cfg):
    _, feed = TASK_TYPES[cfg.task].prepare(cfg)
    return feed.task, feed.train, feed.val


def test_validation_is_a_seeded_shuffled_split_not_the_tail(files):
    cfg = {"task": "classify", "data": str(files["cls.train"]), "val_fraction": 0.1}
    _, train_set, val = load_task_data(TrainConfig(**cfg, seed=3))
    assert len(val) == 40 and len(train_set) == 360
    assert val.lines != list(range(361, 401))  # not a contiguous cut at the end
    assert sorted(train_set.lines + val.lines) == list(range(1, 401))
    assert load_task_data(TrainConfig(**cfg, seed=3))[2].lines == val.lines
    assert load_task_data(TrainConfig(**cfg, seed=4))[2].lines != val.lines


@pytest.mark.parametrize("task", ["classify", "tag", "seq2seq"])
def test_task_rows_carry_what_the_one_loop_logs_for_every_task(runs, task):
    rows = [json.loads(r) for r in (runs[task] / "metrics.jsonl").read_text().splitlines()]
    assert rows
    for r in rows:
        assert {"grad_norm", "grad_norm_mean", "clipped_frac", "tokens_per_s"} <= set(r), r
        assert r["tokens_per_s"] > 0 and 0 <= r["clipped_frac"] <= 1 and r["grad_norm_mean"] > 0
    steps = [json.loads(r) for r in (runs[task] / "steps.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == list(range(10, rows[-1]["step"] + 1, 10))
