"""Fuzzing data files: corpora (char, word, byte) and task files (TSV, CoNLL).

From the API a reader returns, or raises :class:`DataError` whose one-line message names the
file; from the CLI ``train`` and ``eval`` exit 0 or 2 with one error line, no traceback.
"""

import codecs
import shutil
import tempfile
from pathlib import Path

import pytest
from fuzz_helpers import BAD, TINY, assert_clean, cli, corpus_bytes, examples
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data import (
    DataError,
    Vocab,
    bundled_corpus,
    encode_file,
    read_bytes,
    read_classify,
    read_seq2seq,
    read_tagged,
    read_text,
)


def _write(folder, name, data):
    path = Path(folder) / name
    path.write_bytes(data)
    return path


def _assert_names_file(e, path):
    message = str(e)
    assert str(path) in message and "\n" not in message, message


@pytest.mark.parametrize("level", ["char", "word", "byte"])
@given(data=corpus_bytes())
@settings(max_examples=examples(60))
def test_corpus_reading_and_encoding(level, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "corpus.txt", data)
        try:
            source = read_bytes(path) if level == "byte" else read_text(path)
            vocab = Vocab.build(source.removeprefix(codecs.BOM_UTF8) if level == "byte"
                                else source, level)
            ids = encode_file(path, vocab)
        except DataError as e:
            if "no tokens" not in str(e):  # Vocab.build knows no file; run.load_data adds it
                _assert_names_file(e, path)
            return
        assert ids.size > 0 and int(ids.max()) < len(vocab)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzzdata")
    data = folder / "train.txt"
    data.write_text(bundled_corpus().read_text(encoding="utf-8")[:20_000], encoding="utf-8")
    result = cli("train", "--data", str(data), "--out", str(folder / "run"), "--max-steps",
                 "5", *TINY)
    assert result[0] == 0, result[2]
    return folder / "run"


@pytest.mark.parametrize("level", ["char", "word", "byte"])
@given(data=corpus_bytes())
@settings(max_examples=examples(8))
def test_train_on_a_fuzzed_corpus(level, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "corpus.txt", data)
        out = Path(tmp) / "run"
        result = cli("train", "--data", str(path), "--out", str(out), "--level", level,
                     "--max-steps", "1", "--time-budget", "5", *TINY)
        assert_clean(result, str(path))
        if result[0] == 2:  # refused: no run folder left behind
            assert not out.exists() or not any(out.iterdir()), list(out.iterdir())


@given(data=corpus_bytes(st.sampled_from("the king, ROMEO:\n\t"), giant=3_000))
@settings(max_examples=examples(20))
def test_eval_on_a_fuzzed_file(trained, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "eval.txt", data)
        run = Path(tmp) / "run"
        shutil.copytree(trained, run)
        assert_clean(cli("eval", "--checkpoint", str(run), "--data", str(path)), str(path))


# --------------------------------------------------------------------- task files
FIELD = st.text(st.sampled_from("ab \t\r-XO\u00e9\u2028\x85"), max_size=5)
LINE = st.one_of(st.just(""), st.just("-DOCSTART- -X- O O"),
                 st.lists(FIELD, max_size=4).map("\t".join),
                 st.lists(FIELD, max_size=4).map(" ".join))


@st.composite
def task_bytes(draw):
    if draw(st.integers(0, 9)) == 0:
        return draw(corpus_bytes())
    lines = draw(st.lists(LINE, max_size=12))
    data = bytearray(draw(st.sampled_from(["\n", "\r\n"])).join(lines).encode("utf-8"))
    if data and draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.sampled_from(BAD))
    return bytes(data)


@pytest.mark.parametrize("reader", [read_classify, read_seq2seq, read_tagged])
@given(data=task_bytes())
@settings(max_examples=examples(60))
def test_task_readers(reader, data):
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, "task.txt", data)
        try:
            ex = reader(path)
        except DataError as e:
            _assert_names_file(e, path)
            return
        assert len(ex) > 0 and len(ex.lines) == len(ex)
        if reader is read_tagged:
            assert all(len(a) == len(b) > 0 for a, b in zip(ex.tokens, ex.tags, strict=True))
        else:
            fields = zip(*(ex.texts, ex.labels) if reader is read_classify
                         else (ex.sources, ex.targets), strict=True)
            assert all(a.strip() and b.strip() for a, b in fields)
