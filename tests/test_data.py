"""The data layer: file checks, vocabularies, the id cache, splits and truncated-BPTT batches.

The corpus tests read ../shared/data (PTB, tiny-shakespeare) and skip where it is absent.
"""

import codecs
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnlab.data import (
    BPTTBatches,
    DataError,
    Vocab,
    corpus,
    encode_file,
    read_text,
    sha256_file,
    split_ids,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MULTILINGUAL = "안녕하세요 세계\n你好，世界！\nemoji 😀 👍🏽 café\r\nthe end"
PTB_LIKE = (
    " the cat sat on the mat \n"
    " the dog ate <unk> N times \n"
    "\n"
    " a cat and a dog \n"
)


def write(tmp_path, data, name="corpus.txt"):
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def assert_one_line(err):
    msg = str(err.value)
    assert "\n" not in msg and ": " in msg, msg


@pytest.fixture(scope="module")
def ptb():
    if not (SHARED / "ptb" / "ptb.train.txt").is_file():
        pytest.skip("../shared/data/ptb not found")
    return SHARED / "ptb"


@pytest.fixture(scope="module")
def shakespeare():
    path = SHARED / "tinyshakespeare" / "input.txt"
    if not path.is_file():
        pytest.skip("../shared/data/tinyshakespeare not found")
    return path


@pytest.fixture(scope="module")
def ptb_vocab(ptb):
    return Vocab.build(read_text(ptb / "ptb.train.txt"), "word")


# --- reading files ---------------------------------------------------------------------------

BAD_FILES = {
    "missing": (None, "does not exist"),
    "directory": ("DIR", "is a directory"),
    "empty": (b"", "is empty"),
    "whitespace": (b" \n\t \r\n", "only whitespace"),
    "bom-only": (codecs.BOM_UTF8, "only whitespace"),
    "nul": (b"abc\x00def", "NUL byte at offset 3"),
    "latin-1": ("caf\xe9 au lait".encode("latin-1"), "byte 0xe9 at offset 3"),
    "latin-1-after-bom": (codecs.BOM_UTF8 + b"caf\xe9", "byte 0xe9 at offset 6"),
    "truncated-utf8": (b"ab" + "한".encode()[:2], "byte 0xed at offset 2"),
}


def bad_file(tmp_path, case):
    data, expected = BAD_FILES[case]
    if data is None:
        return tmp_path / "nope.txt", expected
    if data == "DIR":
        return tmp_path, expected
    return write(tmp_path, data), expected


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_read_text_rejects_bad_files(tmp_path, case):
    path, expected = bad_file(tmp_path, case)
    with pytest.raises(DataError, match=expected) as err:
        read_text(path)
    assert_one_line(err)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("chunk", [1, 2, 3, 1 << 20])
@pytest.mark.parametrize("level", ["char", "word"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_encode_file_rejects_bad_files_like_read_text(tmp_path, monkeypatch, case, level, chunk):
    monkeypatch.setattr(corpus, "CHUNK_BYTES", chunk)
    path, expected = bad_file(tmp_path, case)
    with pytest.raises(DataError, match=expected) as err:
        encode_file(path, Vocab.build("abc\n", level))
    assert_one_line(err)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


def test_read_text_strips_bom_and_keeps_unicode(tmp_path):
    path = write(tmp_path, codecs.BOM_UTF8 + MULTILINGUAL.encode())
    assert read_text(path) == MULTILINGUAL


def test_sha256_file_streams_the_bytes(tmp_path, monkeypatch):
    data = MULTILINGUAL.encode() * 7
    path = write(tmp_path, data)
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 5)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


# --- vocabularies ----------------------------------------------------------------------------


def test_char_vocab_is_code_points_sorted():
    v = Vocab.build(MULTILINGUAL, "char")
    assert v.tokens == sorted(set(MULTILINGUAL))
    assert all(len(t) == 1 for t in v.tokens)
    assert {"안", "世", "😀", "\r"} <= set(v.tokens)
    assert v.unk_id is None and v.eos_id is None
    assert v.tokenize("世界😀") == ["世", "界", "😀"]
    ids = v.encode(MULTILINGUAL)
    assert ids.dtype == np.uint8 and ids.shape == (len(MULTILINGUAL),)
    assert v.decode(ids) == MULTILINGUAL


def test_word_vocab_follows_ptb_conventions(tmp_path):
    text = read_text(write(tmp_path, PTB_LIKE))
    v = Vocab.build(text, "word")
    assert v.tokens[:4] == ["<eos>", "the", "a", "cat"]  # by frequency, ties by token
    assert v.eos_id == 0 and v.unk_id == v.index("<unk>")  # PTB's <unk> is ordinary here
    assert v.tokens.count("<unk>") == 1 and len(v) == len(set(PTB_LIKE.split())) + 1
    ids = v.encode(text)
    assert len(ids) == len(PTB_LIKE.split()) + PTB_LIKE.count("\n")
    assert (ids == v.eos_id).sum() == 4
    assert v.decode(ids) == "the cat sat on the mat\nthe dog ate <unk> N times\n\na cat and a dog\n"
    assert v.tokenize("the cat\nsat") == ["the", "cat", "<eos>", "sat"]  # open last line


def test_word_vocab_handles_korean_chinese_and_crlf():
    v = Vocab.build(MULTILINGUAL, "word")
    assert {"안녕하세요", "你好，世界！", "😀", "<eos>"} <= set(v.tokens)
    expected = "안녕하세요 세계\n你好，世界！\nemoji 😀 👍🏽 café\nthe end"
    assert v.decode(v.encode(MULTILINGUAL)) == expected


def test_byte_vocab_holds_occurring_bytes_as_latin1_chars():
    v = Vocab.build(MULTILINGUAL, "byte")
    data = MULTILINGUAL.encode()
    assert [ord(t) for t in v.tokens] == sorted(set(data))
    assert v.tokenize("é") == ["\xc3", "\xa9"]
    assert v.decode(v.encode(MULTILINGUAL)) == MULTILINGUAL
    assert v.decode(v.encode("안")[:2]) == "\ufffd"  # a cut character decodes as U+FFFD
    raw = bytes(range(0, 256, 3))  # not UTF-8: bytes are accepted at byte level
    assert len(Vocab.build(raw, "byte")) == len(raw)


@settings(max_examples=150, deadline=None)
@given(text=st.text(min_size=1))
def test_char_and_byte_round_trip_any_text(text):
    for level in ("char", "byte"):
        v = Vocab.build(text, level)
        assert v.decode(v.encode(text)) == text


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab 한世😀\n\t"), min_size=1))
def test_word_round_trip_normalises_spacing(text):
    if not text.replace("\n", " ").split():
        return
    v = Vocab.build(text, "word")
    lines = [" ".join(line.split()) for line in text.split("\n")]
    assert v.decode(v.encode(text)) == "\n".join(lines)


def test_max_size_and_min_freq_cut_to_unk():
    text = "a a a a b b b c c d\n"
    v = Vocab.build(text, "word", max_size=4)
    assert v.tokens == ["a", "<unk>", "b", "<eos>"]  # <unk> stands for c c d: ties with b
    assert v.decode(v.encode("a d c b\nzzz")) == "a <unk> <unk> b\n<unk>"
    v = Vocab.build(text, "word", min_freq=3)
    assert v.tokens == ["a", "<unk>", "b", "<eos>"]
    assert Vocab.build(text, "word", min_freq=2).tokens == ["a", "b", "c", "<eos>", "<unk>"]
    assert Vocab.build(text, "word", max_size=6).unk_id is None  # no cut, no <unk>


def test_cut_keeps_an_existing_unk_once():
    v = Vocab.build(PTB_LIKE, "word", max_size=5)
    assert len(v) == 5 and v.tokens.count("<unk>") == 1
    assert {"<eos>", "<unk>", "the"} <= set(v.tokens)


def test_char_cut_uses_the_replacement_character():
    v = Vocab.build("aaaabbbcd", "char", max_size=3)
    assert v.tokens == ["a", "b", "\ufffd"] and v.unk_id == 2
    assert v.decode(v.encode("abcx")) == "ab\ufffd\ufffd"


@pytest.mark.parametrize("max_size", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("min_freq", [1, 2, 4])
def test_cut_never_exceeds_max_size(max_size, min_freq):
    text = "a a a a b b b c c d e f\n g\n"
    if max_size < 3:
        with pytest.raises(ValueError, match="no room"):
            Vocab.build(text, "word", max_size=max_size, min_freq=min_freq)
        return
    v = Vocab.build(text, "word", max_size=max_size, min_freq=min_freq)
    assert len(v) <= max_size and "<eos>" in v
    counts = {t: text.split().count(t) for t in v.tokens if t not in ("<unk>", "<eos>")}
    assert all(n >= min_freq for n in counts.values())


@pytest.mark.parametrize(
    ("level", "text", "match"),
    [
        ("word", "a b\nc zzz\n", r"word 'zzz' on line 2"),
        ("char", "ab\nc é", r"character 'é' \(U\+00E9\) on line 2"),
        ("byte", "ab\nc é", r"byte 0xc3 on line 2"),
    ],
)
def test_unknown_token_without_unk_is_an_error(level, text, match):
    v = Vocab.build("a b c\n", level)
    with pytest.raises(DataError, match=match) as err:
        v.encode(text)
    assert_one_line(err)


def test_unknown_token_error_in_a_file_names_file_and_line(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 4)
    path = write(tmp_path, "a b\nb a\na a b\nb zzz a\n")
    with pytest.raises(DataError, match=r"corpus\.txt.*'zzz' on line 4") as err:
        encode_file(path, Vocab.build("a b\n", "word"))
    assert_one_line(err)


@pytest.mark.parametrize(
    ("size", "dtype"),
    [(1, np.uint8), (256, np.uint8), (257, np.uint16), (65536, np.uint16), (65537, np.uint32)],
)
def test_ids_use_the_smallest_dtype(size, dtype):
    v = Vocab("word", [f"w{i}" for i in range(size)])
    assert v.dtype == dtype
    ids = v.encode(f"w0 w{size - 1}")
    assert ids.dtype == dtype and ids.tolist() == [0, size - 1]


@pytest.mark.parametrize("level", ["char", "word", "byte"])
def test_json_round_trip_is_exact(level):
    v = Vocab.build(MULTILINGUAL, level, **({} if level == "byte" else {"max_size": 9}))
    back = Vocab.from_json(json.loads(json.dumps(v.to_json())))
    assert back == v and back.tokens == v.tokens and back.to_json() == v.to_json()
    assert (back.fingerprint, back.unk_id, back.eos_id) == (v.fingerprint, v.unk_id, v.eos_id)


def test_fingerprint_depends_on_level_and_tokens():
    prints = {Vocab.build(t, lv).fingerprint for t in ("abc", "abd") for lv in ("char", "byte")}
    assert len(prints) == 4 and all(len(p) == 64 for p in prints)


@pytest.mark.parametrize(
    "d",
    [
        {},
        {"format": "rnnlab.vocab", "version": 99, "level": "char", "tokens": ["a"]},
        {"format": "rnnlab.vocab", "version": 1, "level": "syllable", "tokens": ["a"]},
        {"format": "rnnlab.vocab", "version": 1, "level": "char", "tokens": "ab"},
        {"format": "rnnlab.vocab", "version": 1, "level": "char", "tokens": []},
        {"format": "rnnlab.vocab", "version": 1, "level": "char", "tokens": ["a", "a"]},
        {"format": "rnnlab.vocab", "version": 1, "level": "char", "tokens": ["ab"]},
        {"format": "rnnlab.vocab", "version": 1, "level": "byte", "tokens": ["한"]},
        {"format": "rnnlab.vocab", "version": 1, "level": "word", "tokens": ["a b"]},
        {"format": "rnnlab.vocab", "version": 1, "level": "word", "tokens": [3]},
    ],
)
def test_from_json_rejects_bad_vocabularies(d):
    with pytest.raises(DataError) as err:
        Vocab.from_json(d)
    assert_one_line(err)


def test_vocab_argument_errors():
    v = Vocab.build("a b\n", "word")
    with pytest.raises(ValueError, match="not in the word vocabulary"):
        v.index("zzz")
    with pytest.raises(DataError, match="level 'syllable'"):
        Vocab.build("abc", "syllable")
    with pytest.raises(DataError, match="no tokens"):
        Vocab.build(" \n\n", "word")
    with pytest.raises(TypeError, match="takes str"):
        Vocab.build(b"abc", "char")
    with pytest.raises(ValueError, match="max_size and min_freq"):
        Vocab.build("abc", "byte", max_size=2)
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.build("abc", "char", min_freq=0)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        v.decode([0, 3])


# --- encoding files and the cache -----------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 20])
@pytest.mark.parametrize("level", ["char", "word", "byte"])
def test_encode_file_in_chunks_equals_encode(tmp_path, monkeypatch, level, chunk):
    monkeypatch.setattr(corpus, "CHUNK_BYTES", chunk)
    text = (MULTILINGUAL + "\n") * 3 + "last line without newline"
    path = write(tmp_path, codecs.BOM_UTF8 + text.encode())
    v = Vocab.build(text, level)
    ids = encode_file(path, v)
    assert ids.dtype == v.dtype and not isinstance(ids, np.memmap)
    np.testing.assert_array_equal(ids, v.encode(text))


def test_encode_file_at_byte_level_takes_any_bytes(tmp_path):
    raw = "caf\xe9\x00 au lait\n".encode("latin-1")  # neither UTF-8 nor NUL-free
    v = Vocab.build(raw, "byte")
    ids = encode_file(write(tmp_path, raw), v)
    assert bytes(ord(v.tokens[i]) for i in ids) == raw


def test_cache_is_written_once_atomically_and_memory_mapped(tmp_path, monkeypatch):
    path = write(tmp_path, MULTILINGUAL)
    v = Vocab.build(MULTILINGUAL, "char")
    cache = tmp_path / "cache" / "nested"
    first = encode_file(path, v, cache_dir=cache)
    key = f"{sha256_file(path)}-{v.fingerprint}.npy"
    assert [p.name for p in cache.iterdir()] == [key]  # no temp files left
    assert isinstance(first, np.memmap) and not first.flags.writeable

    def must_not_encode(*args):
        raise AssertionError("the cached file was encoded again")

    monkeypatch.setattr(corpus, "_encode_stream", must_not_encode)
    second = encode_file(path, v, cache_dir=cache)
    assert isinstance(second, np.memmap) and second.dtype == v.dtype
    np.testing.assert_array_equal(second, v.encode(MULTILINGUAL))


def test_cache_key_follows_content_and_vocab(tmp_path):
    path = write(tmp_path, "abc\n")
    v = Vocab.build("abcd\n", "char")
    encode_file(path, v, cache_dir=tmp_path / "c")
    encode_file(path, Vocab.build("abcd\n", "byte"), cache_dir=tmp_path / "c")
    write(tmp_path, "abd\n")
    np.testing.assert_array_equal(encode_file(path, v, cache_dir=tmp_path / "c"), v.encode("abd\n"))
    assert len(list((tmp_path / "c").iterdir())) == 3


def test_failed_cache_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def broken_save(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(corpus.np, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        encode_file(write(tmp_path, "abc"), Vocab.build("abc", "char"), cache_dir=tmp_path / "c")
    assert list((tmp_path / "c").iterdir()) == []


# --- splits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fractions", "sizes"),
    [((0.9, 0.05, 0.05), [900, 50, 50]), ((0.9, 0.1), [900, 100]), ((0.5, 0.25), [500, 250]),
     ((1 / 3, 1 / 3, 1 / 3), [333, 333, 334])],
)
def test_split_ids_contiguous_views(fractions, sizes):
    ids = np.arange(1000, dtype=np.uint16)
    parts = split_ids(ids, fractions)
    assert [len(p) for p in parts] == sizes
    assert all(np.shares_memory(p, ids) for p in parts)
    np.testing.assert_array_equal(np.concatenate(parts), ids[: sum(sizes)])


@pytest.mark.parametrize("fractions", [(), (0.9, 0.2), (0.0, 1.0), (-0.1, 0.5)])
def test_split_ids_rejects_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        split_ids(np.arange(100), fractions)


def test_split_ids_rejects_an_empty_part():
    with pytest.raises(DataError, match="part 1 of a 10-token corpus") as err:
        split_ids(np.arange(10), (0.9, 0.05, 0.05))
    assert_one_line(err)


# --- truncated-BPTT batches ------------------------------------------------------------------


def test_bptt_batches_shapes_and_layout():
    ids = np.arange(27, dtype=np.uint16)  # B = 2 streams of n = 13; token 26 dropped
    b = BPTTBatches(ids, batch_size=2, bptt=5)
    assert b.data.shape == (13, 2) and np.shares_memory(b.data, ids)
    np.testing.assert_array_equal(b.data[:, 1], np.arange(13, 26))
    assert len(b) == 3 and b.tokens_per_epoch == 24
    x, y = b[0]
    assert x.shape == y.shape == (5, 2) and x.dtype == y.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(y[:, 1], [14, 15, 16, 17, 18])
    x, y = b[-1]
    assert x.shape == (2, 2)  # rows 10, 11 as inputs; row 12 only as a target
    np.testing.assert_array_equal(y, [[11, 24], [12, 25]])


def test_bptt_streams_continue_across_windows():
    b = BPTTBatches(np.random.default_rng(0).integers(0, 50, 1001), batch_size=4, bptt=7)
    for i in range(len(b) - 1):
        (x0, y0), (x1, _) = b[i], b[i + 1]
        np.testing.assert_array_equal(x0[1:], y0[:-1])  # targets are the inputs shifted
        np.testing.assert_array_equal(x1[0], y0[-1])  # window i+1 starts where i stopped


def test_bptt_iter_from_resumes_mid_epoch():
    b = BPTTBatches(np.arange(200), batch_size=3, bptt=6)
    full = list(b)
    resumed = list(b.iter_from(4))
    assert len(resumed) == len(full) - 4
    for (x, y), (xr, yr) in zip(full[4:], resumed, strict=True):
        np.testing.assert_array_equal(x, xr)
        np.testing.assert_array_equal(y, yr)
    assert list(b.iter_from(len(b))) == []
    with pytest.raises(ValueError, match="start window"):
        b.iter_from(len(b) + 1)
    with pytest.raises(IndexError):
        b[len(b)]


def test_bptt_rejects_a_corpus_shorter_than_one_batch():
    with pytest.raises(DataError) as err:
        BPTTBatches(np.arange(7), batch_size=4, bptt=5)
    assert str(err.value) == (
        "corpus of 7 tokens is too short for batch size 4: "
        "use a smaller --batch-size or a longer file"
    )


@pytest.mark.parametrize(("batch_size", "bptt"), [(0, 5), (2, 0), (2.5, 5)])
def test_bptt_rejects_bad_arguments(batch_size, bptt):
    with pytest.raises(ValueError, match="positive integer"):
        BPTTBatches(np.arange(100), batch_size, bptt)


@settings(max_examples=300, deadline=None)
@given(length=st.integers(0, 400), batch_size=st.integers(1, 16), bptt=st.integers(1, 40))
def test_bptt_every_stream_token_is_a_target_exactly_once(length, batch_size, bptt):
    ids = np.arange(length, dtype=np.uint32)  # distinct ids: a token's value is its position
    n = length // batch_size
    if n < 2:
        with pytest.raises(DataError, match="too short"):
            BPTTBatches(ids, batch_size, bptt)
        return
    b = BPTTBatches(ids, batch_size, bptt)
    xs, ys = zip(*b, strict=True)
    assert len(b) == math.ceil((n - 1) / bptt)
    assert all(len(x) == bptt for x in xs[:-1]) and 1 <= len(xs[-1]) <= bptt
    streams = ids[: n * batch_size].reshape(batch_size, n)
    np.testing.assert_array_equal(np.concatenate(xs).T, streams[:, :-1])
    np.testing.assert_array_equal(np.concatenate(ys).T, streams[:, 1:])
    assert sum(y.size for y in ys) == b.tokens_per_epoch


# --- the shared corpora ----------------------------------------------------------------------

PTB_SHA256 = {
    "train": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "valid": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "test": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}


@pytest.mark.parametrize(("split", "tokens"), [("train", 929_589), ("valid", 73_760),
                                                ("test", 82_430)])
def test_ptb_token_counts_with_the_train_vocabulary(ptb, ptb_vocab, split, tokens):
    path = ptb / f"ptb.{split}.txt"
    assert sha256_file(path) == PTB_SHA256[split]
    ids = encode_file(path, ptb_vocab)
    assert len(ids) == tokens and ids.dtype == np.uint16
    assert (ids == ptb_vocab.eos_id).sum() == read_text(path).count("\n")


def test_ptb_vocabulary(ptb, ptb_vocab):
    assert len(ptb_vocab) == 10_000
    assert ptb_vocab.tokens[:3] == ["the", "<unk>", "<eos>"]
    text = read_text(ptb / "ptb.train.txt")
    assert Vocab.build(text, "word", max_size=10_000) == ptb_vocab  # no cut, no second <unk>


def test_ptb_batches_for_zaremba_small(ptb, ptb_vocab, tmp_path):
    ids = encode_file(ptb / "ptb.train.txt", ptb_vocab, cache_dir=tmp_path)
    b = BPTTBatches(ids, batch_size=20, bptt=35)
    assert isinstance(ids, np.memmap) and b.data.shape == (46_479, 20)
    assert len(b) == 1328 and b.tokens_per_epoch == 46_478 * 20


def test_tiny_shakespeare(shakespeare):
    assert sha256_file(shakespeare) == (
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed")
    text = read_text(shakespeare)
    v = Vocab.build(text, "char")
    assert len(v) == 65 and v.tokens[:2] == ["\n", " "]
    ids = encode_file(shakespeare, v)
    assert len(ids) == 1_115_394 and ids.dtype == np.uint8
    assert v.decode(ids[:14]) == text[:14]
    train, val = split_ids(ids, (0.9, 0.1))  # nanoGPT's split
    assert (len(train), len(val)) == (1_003_854, 111_540)
