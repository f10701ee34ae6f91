"""Sequence-task files: readers (good and bad), task vocabularies, labels, padded batches."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.data import DataError, Vocab
from rnnlab.data.padded import PaddedBatches, pad, shuffled_split
from rnnlab.data.tasks import (
    Labels,
    encode_classify,
    encode_tagged,
    encode_texts,
    read_classify,
    read_seq2seq,
    read_tagged,
    task_vocab,
)

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC


Peter NNP B-NP B-PER
-DOCSTART- -X- -X- O
Blackburn NNP I-NP I-PER
"""


def write(tmp_path, text, name="data.txt"):
    p = tmp_path / name
    (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)
    return p


# ------------------------------------------------------------------------ readers


def test_read_classify(tmp_path):
    p = write(tmp_path, "pos\tA fine film.\r\n\nneg\t dull \n")
    ex = read_classify(p)
    assert (ex.labels, ex.texts, ex.lines, len(ex)) == (["pos", "neg"],
                                                        ["A fine film.", "dull"], [1, 3], 2)


def test_read_seq2seq(tmp_path):
    ex = read_seq2seq(write(tmp_path, "\ufeff1 + 2\t3\n\n4 * 5\t20"))
    assert (ex.sources, ex.targets, ex.lines) == (["1 + 2", "4 * 5"], ["3", "20"], [1, 3])


def test_read_conll_four_columns(tmp_path):
    ex = read_tagged(write(tmp_path, CONLL))
    assert ex.tokens == [["EU", "rejects", "German"], ["Peter"], ["Blackburn"]]
    assert ex.tags == [["B-ORG", "O", "B-MISC"], ["B-PER"], ["I-PER"]]
    assert ex.lines == [3, 8, 10]


def test_read_conll_two_columns_without_final_newline(tmp_path):
    ex = read_tagged(write(tmp_path, "\n\na B\nb I\n\n\n\nc O"))
    assert ex.tokens == [["a", "b"], ["c"]] and ex.lines == [3, 8]


@pytest.mark.parametrize(("reader", "text", "match"), [
    (read_classify, "pos\tok\nno tab here\n", "line 2: expected 'label<TAB>text' .*no tab"),
    (read_classify, "pos\tok\tmore\n", "line 1: .*found 2 tabs"),
    (read_classify, "pos\tok\n\n \tno label\n", "line 3: the label is empty"),
    (read_classify, "pos\t  \n", "line 1: the text is empty"),
    (read_seq2seq, "a\tb\nc\t\n", "line 2: the target is empty"),
    (read_seq2seq, "\tb\n", "line 1: the source is empty"),
    (read_seq2seq, "a b\n", "line 1: expected 'source<TAB>target'"),
    (read_tagged, "EU B-ORG\nrejects\n", "line 2: expected a token and its tag"),
    (read_tagged, "-DOCSTART- O\n\n", "holds no tagged tokens"),
])
def test_bad_lines_name_file_and_line(tmp_path, reader, text, match):
    p = write(tmp_path, text)
    with pytest.raises(DataError, match=match) as e:
        reader(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("reader", [read_classify, read_seq2seq, read_tagged])
@pytest.mark.parametrize(("data", "match"), [
    (b"", "is empty"),
    (b" \n\n", "holds only whitespace"),
    (b"pos\t\xff\xfe bad\n", r"is not UTF-8 text \(byte 0xff at offset 4\): pass a UTF-8 text "
                             r"file$"),
    (b"pos\tok\x00\x01", "is binary"),
])
def test_bad_files(tmp_path, reader, data, match):
    p = write(tmp_path, data)
    with pytest.raises(DataError, match=match) as e:
        reader(p)
    assert str(p) in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_classify(tmp_path / "nope.tsv")


# ----------------------------------------------------------- vocabularies and labels


def test_task_vocab_word_level_no_eos_unknown_to_unk():
    v = task_vocab(["the cat sat", "the dog"], "word")
    assert "<eos>" not in v and "<unk>" in v
    assert v.decode(encode_texts(["the bird sat"], v)[0]) == "the <unk> sat"


def test_task_vocab_char_and_byte():
    c = task_vocab(["ab", "ba"], "char")
    assert c.decode(encode_texts(["abz"], c)[0]) == "ab\ufffd"
    b = task_vocab(["ab"], "byte")
    assert len(b) == 256 and encode_texts(["é"], b)[0].tolist() == [0xC3, 0xA9]


def test_language_model_vocab_unchanged():
    """The defaults still build the LM's vocabulary: <eos> always, <unk> only on a cut."""
    assert Vocab.build("a b\nb", "word").tokens == ["b", "<eos>", "a"]
    assert Vocab.build("aab", "char").tokens == ["a", "b"]


def test_vocab_task_options_reject_misuse():
    with pytest.raises(ValueError, match="eos=False applies to word"):
        Vocab.build("ab", "char", eos=False)
    with pytest.raises(ValueError, match="byte vocabularies have no unknown token"):
        Vocab.build(b"ab", "byte", unk=True)


def test_vocab_unk_counts_toward_max_size():
    v = Vocab.build("a a b c", "word", eos=False, unk=True, max_size=3)
    assert len(v) == 3 and "<unk>" in v and "a" in v


def test_unseen_label_names_file_and_line(tmp_path):
    train = read_classify(write(tmp_path, "pos\tgood\nneg\tbad\n", "train.tsv"))
    dev = read_classify(write(tmp_path, "pos\tfine\n\nmeh\tso so\n", "dev.tsv"))
    labels = Labels.build(train.labels)
    vocab = task_vocab(train.texts, "word")
    x, y = encode_classify(train, vocab, labels)
    assert y.tolist() == [1, 0] and x[0].tolist() == [vocab.index("good")]
    with pytest.raises(DataError, match=r"dev.tsv' line 3: label 'meh' never occurs"):
        encode_classify(dev, vocab, labels)


def test_unseen_tag_names_its_line(tmp_path):
    train = read_tagged(write(tmp_path, CONLL, "train.conll"))
    labels = Labels.build(t for s in train.tags for t in s)
    dev = read_tagged(write(tmp_path, "EU B-ORG\n\nx O\ny B-LOC\n", "dev.conll"))
    vocab = task_vocab([" ".join(s) for s in train.tokens], "word")
    x, y = encode_tagged(train, vocab, labels)
    assert [len(s) for s in x] == [len(s) for s in y] == [3, 1, 1]
    with pytest.raises(DataError, match=r"dev.conll' line 4: label 'B-LOC'"):
        encode_tagged(dev, vocab, labels)


def test_labels_json_round_trip():
    labels = Labels.build(["b", "a"])
    assert Labels.from_json(labels.to_json()) == labels
    with pytest.raises(DataError, match="not an rnnlab label set"):
        Labels.from_json({"names": ["a"]})


# ------------------------------------------------------------------------ batching


def test_pad_features():
    x, lengths = pad([np.ones((2, 3)), np.ones((4, 3))])
    assert x.shape == (4, 2, 3) and lengths.tolist() == [2, 4] and x[2:, 0].sum() == 0


def test_batches_cover_every_example_once_and_never_truncate():
    rng = np.random.default_rng(0)
    seqs = [np.arange(rng.integers(1, 40)) for _ in range(203)]
    batches = PaddedBatches(seqs, np.arange(203), 16, rng=np.random.default_rng(1))
    seen = []
    for b in batches:
        assert b.x.shape[0] == b.lengths.max() and b.y.tolist() == b.index.tolist()
        for n, i in enumerate(b.index):
            assert b.x[: b.lengths[n], n].tolist() == seqs[i].tolist()
        seen.extend(b.index.tolist())
    assert sorted(seen) == list(range(203)) and len(batches) == 13


def test_bucketing_reduces_padding_and_is_seeded():
    rng = np.random.default_rng(0)
    seqs = [np.zeros(rng.integers(1, 60)) for _ in range(800)]
    y = np.zeros(800, dtype=np.int64)

    def padded(bucket, seed=1):
        return sum(b.x.size for b in PaddedBatches(seqs, y, 16, rng=np.random.default_rng(seed),
                                                    bucket=bucket))

    assert padded(True) < 0.7 * padded(False)
    a, b = (PaddedBatches(seqs, y, 16, rng=np.random.default_rng(5)).order() for _ in range(2))
    assert all(np.array_equal(i, j) for i, j in zip(a, b, strict=True))


def test_per_step_targets_padded_with_minus_one():
    b = next(iter(PaddedBatches([np.array([1, 2]), np.array([3])],
                                [np.array([0, 1]), np.array([2])], 2)))
    assert b.y.tolist() == [[0, 2], [1, -1]]
    with pytest.raises(ValueError, match="example 1 has 1 steps but 2 targets"):
        PaddedBatches([np.array([1, 2]), np.array([3])], [np.array([0, 1]), np.array([2, 2])], 2)


def test_empty_example_is_an_error():
    with pytest.raises(DataError, match="example 1 has no tokens"):
        PaddedBatches([np.array([1]), np.array([], dtype=int)], np.array([0, 1]), 2)


def test_shuffled_split_is_seeded_and_not_contiguous():
    train, valid = shuffled_split(100, 0.1, np.random.default_rng(0))
    again = shuffled_split(100, 0.1, np.random.default_rng(0))
    assert np.array_equal(valid, again[1]) and len(valid) == 10 and len(train) == 90
    assert not np.array_equal(valid, np.arange(valid[0], valid[0] + 10))
    assert sorted(np.concatenate([train, valid]).tolist()) == list(range(100))
    with pytest.raises(DataError, match="cannot be split"):
        shuffled_split(1, 0.5, np.random.default_rng(0))


def test_full_byte_vocabulary_encodes():
    """All 256 byte values (a regression: the lookup's clip overflowed uint8)."""
    v = Vocab.build(bytes(range(256)), "byte")
    assert v.encode(bytes([0, 255, 7])).tolist() == [0, 255, 7]


def test_targets_as_a_plain_list():
    b = next(iter(PaddedBatches([np.array([1]), np.array([2, 3])], [1, 0], 2)))
    assert b.y.tolist() == [1, 0] and b.y.dtype.kind == "i"
