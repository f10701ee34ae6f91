"""rnnlab.training.checkpoint: exact round trips, atomic writes, every corruption a
CheckpointError."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

from rnnlab.models import LanguageModel
from rnnlab.training import checkpoint
from rnnlab.training.checkpoint import CheckpointError, load, load_model_state, model_state, save


def some_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "w32": rng.standard_normal((3, 4)).astype(np.float32),
        "w64": rng.standard_normal(5),
        "steps": np.arange(6, dtype=np.int64).reshape(2, 3),
        "scalar": np.array(2.5),
        "rnn.weight_ih_l0": rng.standard_normal((8, 2)).astype(np.float32),
    }


META = {"epoch": 3, "val_loss": 4.25, "config": {"cell": "lstm", "tie": True}, "note": "ü"}


def assert_same(a, b):
    assert list(a) == list(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def listing(directory):
    return sorted(p.name for p in directory.iterdir())


def assert_one_line_error(directory, name, *words):
    with pytest.raises(CheckpointError) as info:
        load(directory, name)
    message = str(info.value)
    assert "\n" not in message and str(directory / name) in message
    for w in words:
        assert w in message, message
    return message


# ------------------------------------------------------------------ round trips


def test_round_trip_is_exact(tmp_path):
    arrays = some_arrays()
    path = save(tmp_path / "runs" / "x", "last", arrays, META)
    assert path == tmp_path / "runs" / "x" / "last.npz"
    assert listing(path.parent) == ["last.json", "last.npz"]  # no temp files left
    loaded, meta = load(tmp_path / "runs" / "x", "last")
    assert_same(loaded, arrays)
    assert meta == META


def test_saving_again_replaces_the_pair(tmp_path):
    save(tmp_path, "last", some_arrays(0), {"epoch": 1})
    save(tmp_path, "last", some_arrays(1), {"epoch": 2})
    arrays, meta = load(tmp_path, "last")
    assert_same(arrays, some_arrays(1))
    assert meta == {"epoch": 2} and listing(tmp_path) == ["last.json", "last.npz"]


def test_load_never_unpickles(tmp_path, monkeypatch):
    save(tmp_path, "c", some_arrays(), {})
    seen = []
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **kw: seen.append(kw) or real_load(*a, **kw))
    load(tmp_path, "c")
    assert seen and all(kw.get("allow_pickle") is False for kw in seen)


def test_save_rejects_bad_input_before_writing(tmp_path):
    with pytest.raises(ValueError, match="object"):
        save(tmp_path, "c", {"bad": np.array([{"a": 1}], dtype=object)}, {})
    with pytest.raises(ValueError, match="JSON"):
        save(tmp_path, "c", some_arrays(), {"f": lambda: 0})
    with pytest.raises(ValueError, match="name"):
        save(tmp_path, "../c", some_arrays(), {})
    with pytest.raises(ValueError, match="'file'"):
        save(tmp_path, "c", {"file": np.zeros(2)}, {})
    assert listing(tmp_path) == []


# ---------------------------------------------------------------- atomic saving


def test_failure_between_the_renames_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    save(tmp_path, "last", some_arrays(0), {"epoch": 1})
    real_replace, calls = os.replace, []

    def flaky_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the npz is in place, the json not yet
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(OSError, match="No space"):
        save(tmp_path, "last", some_arrays(1), {"epoch": 2})
    monkeypatch.undo()
    assert listing(tmp_path) == ["last.json", "last.npz"]  # no temp file left behind
    arrays, meta = load(tmp_path, "last")
    assert_same(arrays, some_arrays(0))
    assert meta == {"epoch": 1}


def test_failure_while_writing_leaves_no_temp_files(tmp_path, monkeypatch):
    save(tmp_path, "last", some_arrays(0), {"epoch": 1})
    monkeypatch.setattr(checkpoint, "_sha256", lambda path: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        save(tmp_path, "last", some_arrays(1), {"epoch": 2})
    monkeypatch.undo()
    assert listing(tmp_path) == ["last.json", "last.npz"]
    assert load(tmp_path, "last")[1] == {"epoch": 1}


def test_crash_between_the_renames_is_detected(tmp_path):
    """A power cut after the npz rename: new npz, old json. Simulated with two saves."""
    save(tmp_path / "old", "last", some_arrays(0), {"epoch": 1})
    save(tmp_path / "new", "last", some_arrays(1), {"epoch": 2})
    os.replace(tmp_path / "new" / "last.npz", tmp_path / "old" / "last.npz")
    message = assert_one_line_error(tmp_path / "old", "last", "does not match", "sha256")
    assert "last.json" in message


def test_a_reader_racing_a_save_reads_the_new_pair(tmp_path, monkeypatch):
    """A training run saving while `rnnlab sample` reads: the reader meets the new npz beside
    the old json (between the save's two renames); the save's second rename lands while it
    waits, and it reads the new pair whole. (Before, it failed: tests/test_run_faults.py's
    readers did, now and then, on CI's clean clone.)"""
    save(tmp_path / "old", "last", some_arrays(0), {"epoch": 1})
    save(tmp_path / "new", "last", some_arrays(1), {"epoch": 2})
    os.replace(tmp_path / "new" / "last.npz", tmp_path / "old" / "last.npz")  # rename 1
    waits = []

    def rename_json_meanwhile(seconds):
        waits.append(seconds)
        os.replace(tmp_path / "new" / "last.json", tmp_path / "old" / "last.json")  # rename 2

    monkeypatch.setattr(checkpoint.time, "sleep", rename_json_meanwhile)
    arrays, meta = load(tmp_path / "old", "last")
    assert meta == {"epoch": 2} and len(waits) == 1
    for k, a in some_arrays(1).items():
        np.testing.assert_array_equal(arrays[k], a)


# ------------------------------------------------------------------ corruption


@pytest.fixture
def saved(tmp_path):
    save(tmp_path, "last", some_arrays(), META)
    return tmp_path


def test_truncated_npz(saved):
    npz = saved / "last.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    assert_one_line_error(saved, "last", "corrupt", "cannot be used")


def test_flipped_byte_in_array_data(saved):
    npz = saved / "last.npz"
    data = bytearray(npz.read_bytes())
    with zipfile.ZipFile(npz) as zf:
        info = zf.getinfo("w64.npy")
    data[info.header_offset + 30 + len(info.filename) + 100] ^= 0x10  # inside the npy payload
    npz.write_bytes(bytes(data))
    assert_one_line_error(saved, "last", "corrupt (bad CRC)", "cannot be used")


@pytest.mark.parametrize("where", [0, 1, 2, 3, 200, -30, -10])
def test_flipped_byte_anywhere(saved, where):
    npz = saved / "last.npz"
    data = bytearray(npz.read_bytes())
    data[where] ^= 0xFF
    npz.write_bytes(bytes(data))
    assert_one_line_error(saved, "last", "cannot be used")


@pytest.mark.parametrize("offset,value", [(8, 0x01), (10, 0x99)])
def test_a_flipped_flag_in_the_zip_directory(saved, offset, value):
    """Found by the long fuzz profile: the first member's central-directory entry with its
    "encrypted" flag set (offset 8: zipfile's RuntimeError, password required) or an unknown
    compression method (offset 10: NotImplementedError) was a traceback."""
    npz = saved / "last.npz"
    data = bytearray(npz.read_bytes())
    at = data.index(b"PK\x01\x02")  # the first central-directory entry
    data[at + offset] = value
    npz.write_bytes(bytes(data))
    assert_one_line_error(saved, "last", "corrupt", "cannot be used")


def test_wrong_header(saved):
    npz = saved / "last.npz"
    npz.write_bytes(b"XX" + npz.read_bytes()[2:])
    assert_one_line_error(saved, "last", "corrupt (wrong header")


def test_object_arrays_in_a_foreign_npz_are_refused(saved):
    with open(saved / "last.npz", "wb") as f:
        np.savez(f, bad=np.array([{"a": 1}], dtype=object))
    assert_one_line_error(saved, "last", "object arrays")


def test_not_a_zip_at_all(saved):
    (saved / "last.npz").write_bytes(b"hello, this is not a checkpoint\n" * 10)
    assert_one_line_error(saved, "last", "corrupt")


@pytest.mark.parametrize("missing", ["last.json", "last.npz"])
def test_missing_file(saved, missing):
    (saved / missing).unlink()
    message = assert_one_line_error(saved, "last", "missing")
    assert missing in message


@pytest.mark.parametrize("text", ['{"format": "rnnlab-checkpoint", "npz_sha', "", "[1, 2",
                                  "\xff\xfe"])
def test_invalid_json(saved, text):
    (saved / "last.json").write_bytes(text.encode("latin-1"))
    assert_one_line_error(saved, "last", "not valid JSON")


def test_json_of_another_kind(saved):
    (saved / "last.json").write_text(json.dumps({"epoch": 3}))
    assert_one_line_error(saved, "last", "not an rnnlab checkpoint")


def test_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


# ------------------------------------------------------------------ model state


def lm(seed, **kw):
    return LanguageModel(11, cell="gru", embed_size=6, hidden_size=6, num_layers=2,
                         tie_weights=True, rng=np.random.default_rng(seed), **kw)


def test_model_state_round_trip_through_files(tmp_path):
    a, b = lm(0), lm(1)
    state = model_state(a)
    assert "embedding.weight" in state and "decoder.weight" not in state  # tied: once
    save(tmp_path, "best", state, {"config": a.config()})
    arrays, meta = load(tmp_path, "best")
    load_model_state(b, arrays)
    assert b.decoder.weight is b.embedding.weight  # still tied
    for name, p in b.named_params().items():
        np.testing.assert_array_equal(p.value, a.named_params()[name].value)
    ids = np.arange(8).reshape(4, 2)
    np.testing.assert_array_equal(a.forward(ids)[0], b.forward(ids)[0])


def test_model_state_is_a_copy():
    a = lm(0)
    state = model_state(a)
    state["decoder.bias"][...] = 99
    assert not (a.decoder.bias.value == 99).any()


def test_load_model_state_names_the_problem():
    a = lm(0)
    state = model_state(a)
    with pytest.raises(ValueError, match="lacks parameter 'rnn.bias_hh_l1'"):
        load_model_state(a, {k: v for k, v in state.items() if k != "rnn.bias_hh_l1"})
    with pytest.raises(ValueError, match="unknown parameter 'extra'"):
        load_model_state(a, {**state, "extra": np.zeros(1)})
    wrong = {**state, "decoder.bias": np.zeros(12, dtype=np.float32)}
    with pytest.raises(ValueError, match=r"'decoder.bias' has shape \(12,\)"):
        load_model_state(a, wrong)
    np.testing.assert_array_equal(a.decoder.bias.value, state["decoder.bias"])  # unchanged
