"""The task files the fuzz tests start from and mutate, and a tiny task run's training.

``valid_lines(task, n)`` is a small valid file of ``task`` (tests/task_cli_data.py);
``task_file(task)`` draws one mutated at the line level (a missing tab, an extra column, an
empty field, a run of blank lines, a sentence without tags) and the byte level (invalid
UTF-8, a BOM, CRLF), or random bytes outright.
"""

import codecs
import random
from pathlib import Path

from fuzz_helpers import BAD, cli, corpus_bytes
from hypothesis import strategies as st
from task_cli_data import classify_lines, seq2seq_lines, tag_sentences

TASK_TINY = ["--hidden", "8", "--embed", "4", "--layers", "1", "--batch-size", "4",
             "--eval-every", "0", "--no-progress"]
SEP = {"classify": "\t", "tag": " ", "seq2seq": "\t"}


def valid_lines(task, n):
    """``n`` examples of ``task`` as lines; CoNLL sentences end with a blank line."""
    rng = random.Random(0)
    if task == "tag":
        return "\n\n".join(tag_sentences(n, rng)).split("\n")
    return (classify_lines if task == "classify" else seq2seq_lines)(n, rng)


def input_lines(task, n):
    """``n`` inputs of ``task`` as ``predict --input`` reads them: a text, tokens, a source."""
    if task == "tag":
        return [" ".join(row.split(" ")[0] for row in sentence.split("\n"))
                for sentence in tag_sentences(n, random.Random(0))]
    return [line.split("\t")[task == "classify"] for line in valid_lines(task, n)]


def _edit(draw, task, lines):
    """One line-level mutation of ``lines`` (in place)."""
    at = draw(st.integers(0, max(0, len(lines) - 1)))
    line, sep = lines[at] if lines else "", SEP[task]
    how = draw(st.sampled_from(["no tab", "extra column", "empty field", "blank run",
                                "no tags", "drop line"]))
    if how == "no tab":
        lines[at:at + 1] = [line.replace(sep, "", 1)]
    elif how == "extra column":
        lines[at:at + 1] = [line + sep + draw(st.sampled_from(["X", "", "B-PER", "\t"]))]
    elif how == "empty field":
        fields = line.split(sep)
        fields[draw(st.integers(0, len(fields) - 1))] = ""
        lines[at:at + 1] = [sep.join(fields)]
    elif how == "blank run":
        lines[at:at] = [draw(st.sampled_from(["", " ", "\t"]))] * draw(st.integers(1, 30))
    elif how == "no tags":  # the sentence holding line `at`: tokens only
        start = at
        while start < len(lines) and lines[start]:
            lines[start] = lines[start].split(" ")[0]
            start += 1
    elif lines:
        del lines[at]


@st.composite
def task_file(draw, task, n=30, lines_of=valid_lines):
    """A valid ``task`` file (``lines_of``) mutated at the line and byte level; or random
    bytes."""
    if draw(st.integers(0, 7)) == 0:
        return draw(corpus_bytes(giant=2_000))
    lines = lines_of(task, n)
    for _ in range(draw(st.integers(0, 3))):
        _edit(draw, task, lines)
    data = bytearray(("\n".join(lines) + "\n").encode("utf-8"))
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.sampled_from(BAD + [b"\n\n\n", b"\x80\x80", b"\t\t"]))
    if draw(st.booleans()):
        data = bytearray(bytes(data).replace(b"\n", b"\r\n"))
    if draw(st.booleans()):
        data[0:0] = codecs.BOM_UTF8
    return bytes(data)


TASKS = ["classify", "tag", "seq2seq"]


def train_task(data, out, *extra):
    """``rnnlab train --task`` (the task: the file name's stem before '-') on ``data``."""
    return cli("train", "--task", task_of(data), "--data", str(data), "--out", str(out),
               *TASK_TINY, *extra)


def task_of(path):
    return Path(path).stem.split("-")[0]


def train_runs(root):
    """A tiny run of each task under ``root``, trained 3 steps on a valid file
    (``root/<task>-train.txt``): {task: run folder}."""
    out = {}
    for task in TASKS:
        data = root / f"{task}-train.txt"
        data.write_text("\n".join(valid_lines(task, 40)) + "\n", encoding="utf-8")
        code, _, err = train_task(data, root / task, "--max-steps", "3")
        assert code == 0, err
        out[task] = root / task
    return out
