"""rnnlab.onnx on the task models (classifier, tagger, seq2seq's encoder and decoder step)
against rnnlab's forward, and ``rnnlab export`` on trained runs of every task, with its
one-line errors."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from onnx_helpers import assert_close, metadata, run, session
from task_cli_data import SMALL, assert_one_line_error, run_cli, train_runs, write_files

from rnnlab.cli.load import load_run
from rnnlab.data.padded import pad
from rnnlab.models import Seq2Seq, SequenceClassifier, SequenceTagger
from rnnlab.onnx import export

V, E, H = 9, 4, 5
CELLS = {"rnn": ("rnn", {}), "lstm": ("lstm", {}), "lstm-peephole": ("lstm", {"peephole": True}),
         "gru": ("gru", {})}  # the relu RNN is the language model's option only
CLASSIFIERS = [(name, pooling) for name in CELLS for pooling in ("last", "cell", "mean")
               if pooling != "cell" or "lstm" in name]  # pooling "cell" reads an LSTM's c


def uniform(model, r=0.5, seed=5):
    rng = np.random.default_rng(seed)
    for p in model.named_params().values():
        p.value[...] = rng.uniform(-r, r, p.shape)
    return model.eval()


def encoder_kw(name):
    cell, kw = CELLS[name]
    return {"cell": cell, **kw}


def batch(N, T=7, seed=1):
    rng = np.random.default_rng(seed)
    lengths = np.array([T, 1, 4, T - 2][:N]) if N > 1 else np.array([T])
    return rng.integers(0, V, (T, N)), lengths


@pytest.mark.parametrize("N", [1, 4])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize(("name", "pooling"), CLASSIFIERS)
def test_classifier(tmp_path, name, pooling, layers, bidirectional, N):
    model = uniform(SequenceClassifier(3, V, embed_size=E, hidden_size=H, num_layers=layers,
                                       bidirectional=bidirectional, pooling=pooling,
                                       rng=np.random.default_rng(0), **encoder_kw(name)))
    export(model, tmp_path / "c.onnx")
    ids, lengths = batch(N)
    got = run(session(tmp_path / "c.onnx"), {"ids": ids, "lengths": lengths})
    assert_close(got["logits"], model.forward(ids, lengths), what="logits")


@pytest.mark.parametrize("N", [1, 4])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("name", list(CELLS))
def test_tagger(tmp_path, name, layers, bidirectional, N):
    model = uniform(SequenceTagger(4, V, embed_size=E, hidden_size=H, num_layers=layers,
                                   bidirectional=bidirectional, rng=np.random.default_rng(0),
                                   **encoder_kw(name)))
    export(model, tmp_path / "t.onnx")
    ids, lengths = batch(N)
    got = run(session(tmp_path / "t.onnx"), {"ids": ids, "lengths": lengths})
    assert_close(got["logits"], model.forward(ids, lengths), what="logits")


def test_real_valued_inputs(tmp_path):
    model = uniform(SequenceClassifier(2, input_size=3, cell="gru", hidden_size=H,
                                       rng=np.random.default_rng(0)))
    export(model, tmp_path / "c.onnx")
    x = np.random.default_rng(2).standard_normal((6, 3, 3)).astype(np.float32)
    lengths = np.array([6, 2, 5])
    got = run(session(tmp_path / "c.onnx"), {"x": x, "lengths": lengths})
    assert_close(got["logits"], model.forward(x, lengths), what="logits")


def decoder_feed(sess_enc, src, lengths, model):
    enc = run(sess_enc, {"src": src, "src_lengths": lengths})
    extra = {}
    if model.attention is not None:
        extra.update(keys=enc["keys"], src_lengths=lengths)
    if model.peeky:
        extra["summary"] = enc["summary"]
    state = {"h": enc["h"], **({"c": enc["c"]} if "c" in enc else {})}
    return enc, state, extra


def greedy_onnx(enc_sess, dec_sess, model, src, lengths, bos, eos, max_length):
    """Greedy decoding through the two graphs (the README's loop), one list per source."""
    _, state, extra = decoder_feed(enc_sess, src, lengths, model)
    prev = np.full(src.shape[1], bos, np.int64)
    out = [[] for _ in range(src.shape[1])]
    done = np.zeros(src.shape[1], bool)
    for _ in range(max_length):
        r = run(dec_sess, {"ids": prev, **state, **extra})
        prev = r["logits"].argmax(axis=1).astype(np.int64)
        state = {"h": r["h_n"], **({"c": r["c_n"]} if "c_n" in r else {})}
        for n in np.flatnonzero(~done):
            out[n].append(int(prev[n]))
        done |= prev == eos
        if done.all():
            break
    return out


S2S_OPTIONS = list(itertools.product([None, "dot", "additive"], [False, True], [False, True]))


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize(("attention", "peeky", "bidirectional"), S2S_OPTIONS)
@pytest.mark.parametrize("name", ["rnn", "lstm-peephole", "gru"])
def test_seq2seq(tmp_path, name, attention, peeky, bidirectional, layers):
    """The encoder's outputs, one decoder step's (from a non-zero state), and greedy
    decoding token for token."""
    model = uniform(Seq2Seq(V, V + 2, embed_size=E, hidden_size=H, num_layers=layers,
                            attention=attention, peeky=peeky, bidirectional=bidirectional,
                            reverse_source=True, rng=np.random.default_rng(0),
                            **encoder_kw(name)), r=1.0)
    assert export(model, tmp_path / "s.onnx") == [tmp_path / "s.encoder.onnx",
                                                   tmp_path / "s.decoder.onnx"]
    enc_sess, dec_sess = session(tmp_path / "s.encoder.onnx"), session(tmp_path / "s.decoder.onnx")
    src, lengths = batch(4)
    enc, state, extra = decoder_feed(enc_sess, src, lengths, model)
    want = model._encode(src, lengths)
    assert_close(enc["keys"], want["keys"], what="keys")
    finals = want["state"] if isinstance(want["state"], tuple) else (want["state"],)
    for key, w in zip(("h", "c"), finals, strict=False):
        assert_close(enc[key], w, what=key)
    rng = np.random.default_rng(3)
    state = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in state.items()}
    prev = rng.integers(0, V + 2, 4)
    got = run(dec_sess, {"ids": prev, **state, **extra})
    s0 = (state["h"], state["c"]) if "c" in state else state["h"]
    logits, final, weights = model._decode(prev[None], s0, want["keys"], lengths,
                                           want["summary"])
    assert_close(got["logits"], logits[0], what="logits")
    for key, w in zip(("h_n", "c_n"), final if isinstance(final, tuple) else (final,),
                      strict=False):
        assert_close(got[key], w, what=key)
    if attention:
        assert_close(got["attention"], weights[0], what="attention")
        assert (got["attention"][1, 1:] == 0).all()  # length 1: padding gets exactly 0
    tokens = greedy_onnx(enc_sess, dec_sess, model, src, lengths, 0, 1, 12)
    assert tokens == [list(map(int, t)) for t in
                      model.greedy(src, lengths, bos_id=0, eos_id=1, max_length=12).tokens]


@pytest.mark.parametrize("attention", [None, "additive"])
def test_seq2seq_batch_one(tmp_path, attention):
    model = uniform(Seq2Seq(V, V + 2, embed_size=E, hidden_size=H, num_layers=2,
                            attention=attention, peeky=True, bidirectional=True,
                            rng=np.random.default_rng(0), **encoder_kw("lstm-peephole")), r=1.0)
    export(model, tmp_path / "s.onnx")
    src, lengths = batch(1)
    tokens = greedy_onnx(session(tmp_path / "s.encoder.onnx"),
                         session(tmp_path / "s.decoder.onnx"), model, src, lengths, 0, 1, 12)
    want = model.greedy(src, lengths, bos_id=0, eos_id=1, max_length=12).tokens
    assert tokens == [list(map(int, want[0]))] and len(tokens[0]) > 1


# -------------------------------------------------------------- trained runs, the CLI


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return train_runs(write_files(root), root, steps=60)


def test_cli_exports_trained_task_runs_that_predict_as_rnnlab(capsys, runs, tmp_path):
    texts = ["aab", "bbabba", "a", "babab"]
    for task, folder in runs.items():
        out = tmp_path / f"{task}.onnx"
        code, stdout, err = run_cli(capsys, "export", "--checkpoint", folder, "--out", out)
        assert code == 0, err
        ckpt = load_run(str(folder), want="prediction")
        meta = metadata(stdout.split()[0])
        assert meta["rnnlab.task"] == task
        if task == "seq2seq":
            assert stdout.split() == [str(tmp_path / f"{task}.{p}.onnx")
                                      for p in ("encoder", "decoder")]
            check_seq2seq_run(ckpt, tmp_path / task, texts, meta)
            continue
        assert json.loads(meta["rnnlab.vocab"])["tokens"] == list(ckpt.task.vocab.tokens)
        names = json.loads(meta["rnnlab.labels"])["names"]
        assert names == list(ckpt.task.labels.names)
        ids, lengths = pad([ckpt.task.vocab.encode(t) for t in texts])
        got = run(session(out), {"ids": ids.astype(np.int64), "lengths": lengths})["logits"]
        want = ckpt.model.forward(ids, lengths)
        assert_close(got, want, what=task)
        assert (got.argmax(-1) == want.argmax(-1)).all()


def check_seq2seq_run(ckpt, stem, texts, meta):
    task, model = ckpt.task, ckpt.model
    assert json.loads(meta["rnnlab.source"])["tokens"] == list(task.source.tokens)
    src, lengths = pad([task.source.encode(t) for t in texts])
    got = greedy_onnx(session(f"{stem}.encoder.onnx"), session(f"{stem}.decoder.onnx"), model,
                      src.astype(np.int64), lengths, task.bos, task.eos, 10)
    want = model.greedy(src, lengths, bos_id=task.bos, eos_id=task.eos, max_length=10)
    assert got == [list(map(int, t)) for t in want.tokens]


def test_cli_exports_a_trained_language_model(capsys, tmp_path):
    data = tmp_path / "text.txt"
    data.write_text("the cat sat on the mat. " * 200, encoding="utf-8")
    code, _, err = run_cli(capsys, "train", "--data", data, "--out", tmp_path / "lm",
                           *SMALL, "--max-steps", "20", "--eval-every", "0", "--peephole",
                           "--tie-weights", "--embed", "32", "--no-sample")
    assert code == 0, err
    code, out, err = run_cli(capsys, "export", "--checkpoint", tmp_path / "lm", "--out",
                             tmp_path / "lm.onnx")
    assert code == 0 and out.strip() == str(tmp_path / "lm.onnx"), err
    ckpt = load_run(str(tmp_path / "lm"), want="lm")
    vocab = ckpt.task.vocab
    assert json.loads(metadata(tmp_path / "lm.onnx")["rnnlab.vocab"]) == vocab.to_json()
    ids = np.asarray(vocab.encode("the cat sat"), np.int64)[:, None]
    zeros = np.zeros((1, 1, 32), np.float32)
    got = run(session(tmp_path / "lm.onnx"), {"ids": ids, "h0": zeros, "c0": zeros})
    logits, (h, c) = ckpt.model.forward(ids, None)
    for key, want in (("logits", logits), ("h_n", h), ("c_n", c)):
        assert_close(got[key], want, what=key)


def test_cli_export_errors_are_one_line(capsys, runs, tmp_path):
    lm_like = runs["classify"]
    code, _, err = run_cli(capsys, "export", "--checkpoint", tmp_path / "nowhere", "--out",
                           tmp_path / "m.onnx")
    assert_one_line_error(code, err, "no run folder")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "export", "--checkpoint", tmp_path / "empty", "--out",
                           tmp_path / "m.onnx")
    assert_one_line_error(code, err)
    for out in (tmp_path / "no" / "such" / "folder" / "m.onnx", tmp_path / "empty"):
        code, _, err = run_cli(capsys, "export", "--checkpoint", lm_like, "--out", out)
        assert_one_line_error(code, err, "cannot write", "--out")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in lm_like.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    for name in ("last", "best"):
        npz = broken / f"{name}.npz"
        if npz.exists():
            npz.write_bytes(npz.read_bytes()[:100])
    code, _, err = run_cli(capsys, "export", "--checkpoint", broken, "--out", tmp_path / "b.onnx")
    assert_one_line_error(code, err, "checkpoint")
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "b.onnx").exists()
