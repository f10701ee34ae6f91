"""Peephole LSTMs in the models and the CLI: gradient checks of every model with peepholes,
a peephole run that trains, resumes exactly and samples, and the refusals."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from task_cli_data import SMALL, assert_one_line_error, run_cli, write_files

from rnnlab.data.corpus import bundled_corpus
from rnnlab.models import LanguageModel, Seq2Seq, SequenceClassifier, SequenceTagger
from rnnlab.nn import gradcheck
from rnnlab.training import checkpoint

V, E, H, T, N = 7, 3, 4, 5, 3
LENGTHS = np.array([5, 2, 4])


def uniform_params(model, seed=9, r=0.5):
    """Every parameter ~ U(-r, r), peepholes included: non-zero, of order one."""
    rng = np.random.default_rng(seed)
    for p in model.named_params().values():
        p.value[...] = rng.uniform(-r, r, p.shape)
    return model


def assert_gradients(model, forward):
    """Every parameter's gradient (the peepholes' among them) within 1e-6 of central
    differences, for L = <G, logits> with a random G (order-one gradients: a mean loss's
    are ~1e-4 here, where the differences' rounding alone is ~1e-10)."""
    errors = gradcheck.check_module(model, forward, lambda g: model.backward(g) and {}, {},
                                    rng=np.random.default_rng(7))
    assert len(errors) == len(model.named_params())
    assert {"rnn.weight_ci_l1", "rnn.weight_cf_l1", "rnn.weight_co_l1"} <= {
        k.removeprefix("encoder.").replace("decoder.weight", "rnn.weight") for k in errors}
    name = max(errors, key=errors.get)
    assert errors[name] <= 1e-6, f"{name}: relative error {errors[name]:.2e}"


@pytest.mark.parametrize(("size", "tie", "dropout"), [(3, False, 0.3), (8, True, 0.0)],
                         ids=["gather-dropout", "table-tied"])
def test_language_model_gradients(size, tie, dropout):
    """Through the logits and a final-state gradient, from a non-zero initial state."""
    model = LanguageModel(V, cell="lstm", embed_size=size, hidden_size=size, num_layers=2,
                          dropout=dropout, tie_weights=tie, init_range=0.5, peephole=True,
                          dtype=np.float64, rng=np.random.default_rng(0))
    assert model.looks_up_inputs() == (size == 8)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, V, (T, N))
    h0, c0 = rng.standard_normal((2, 2, N, size))

    def forward():
        model.reseed(3)  # the same dropout masks at every evaluation
        return model.forward(ids, (h0, c0))

    def backward(g):
        return dict(zip(("h0", "c0"), model.backward(g[0], g[1]), strict=True))

    errors = gradcheck.check_module(model, forward, backward, {"h0": h0, "c0": c0}, rng=rng)
    assert len(errors) == len(model.named_params()) + 2
    assert {"rnn.weight_ci_l1", "rnn.weight_cf_l1", "rnn.weight_co_l1"} <= errors.keys()
    name = max(errors, key=errors.get)
    assert errors[name] <= 1e-6, f"{name}: relative error {errors[name]:.2e}"


@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
@pytest.mark.parametrize("pooling", ["last", "cell", "mean"])
def test_classifier_gradients(pooling, bidirectional):
    model = uniform_params(SequenceClassifier(
        3, V, cell="lstm", embed_size=E, hidden_size=H, num_layers=2, dropout=0.2,
        bidirectional=bidirectional, pooling=pooling, peephole=True, dtype=np.float64,
        rng=np.random.default_rng(0)))
    x = np.random.default_rng(1).integers(0, V, (T, N))

    def forward():
        model.reseed(3)  # the same dropout masks at every evaluation
        return model.forward(x, LENGTHS)

    assert_gradients(model, forward)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
def test_tagger_gradients(bidirectional):
    model = uniform_params(SequenceTagger(
        3, V, cell="lstm", embed_size=E, hidden_size=H, num_layers=2,
        bidirectional=bidirectional, peephole=True, dtype=np.float64,
        rng=np.random.default_rng(0)))
    x = np.random.default_rng(1).integers(0, V, (T, N))
    assert_gradients(model, lambda: model.forward(x, LENGTHS))


@pytest.mark.parametrize(("attention", "peeky", "bidirectional"),
                         [("additive", True, False), ("dot", False, True)])
def test_seq2seq_gradients(attention, peeky, bidirectional):
    """Encoder and decoder both have peepholes. U(-1, 1) as in test_seq2seq.py: with smaller
    weights the attention is near uniform and its gradients near the differences' noise."""
    model = uniform_params(Seq2Seq(
        V, V + 1, cell="lstm", embed_size=E, hidden_size=H, num_layers=2, attention=attention,
        peeky=peeky, bidirectional=bidirectional, reverse_source=True, peephole=True,
        dtype=np.float64, rng=np.random.default_rng(0)), r=1.0)
    assert model.encoder.rnn.peephole and model.decoder.peephole
    rng = np.random.default_rng(1)
    src, tgt_in = rng.integers(0, V, (T, N)), rng.integers(0, V + 1, (4, N))
    assert_gradients(model, lambda: model.forward(src, LENGTHS, tgt_in))


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_peephole_is_for_the_lstm_only(cell):
    rng = np.random.default_rng(0)
    for build in (lambda: LanguageModel(V, cell=cell, peephole=True, rng=rng),
                  lambda: SequenceClassifier(2, V, cell=cell, peephole=True, rng=rng),
                  lambda: SequenceTagger(2, V, cell=cell, peephole=True, rng=rng),
                  lambda: Seq2Seq(V, V, cell=cell, peephole=True, rng=rng)):
        with pytest.raises(ValueError, match="peephole=True is for cell='lstm' only"):
            build()


def test_config_round_trip_keeps_peepholes():
    model = LanguageModel(V, embed_size=E, hidden_size=H, peephole=True,
                          rng=np.random.default_rng(0))
    again = LanguageModel.from_config(json.loads(json.dumps(model.config())),
                                      np.random.default_rng(1))
    assert again.peephole and again.rnn.peephole and "peephole=True" in repr(again)
    old = {k: v for k, v in model.config().items() if k != "peephole"}  # an older run's
    assert not LanguageModel.from_config(old, np.random.default_rng(1)).rnn.peephole


# ------------------------------------------------------------------------------ the CLI


def cli(*args):
    return subprocess.run([sys.executable, "-m", "rnnlab", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


LM = ["--hidden", "32", "--embed", "16", "--layers", "2", "--dropout", "0.3", "--batch-size",
      "8", "--bptt", "16", "--eval-every", "10", "--lr", "0.01", "--no-progress",
      "--sample-length", "0", "--no-sample", "--peephole"]


def test_a_peephole_run_trains_resumes_exactly_and_samples(tmp_path):
    data = tmp_path / "text.txt"
    data.write_text(bundled_corpus().read_text(encoding="utf-8")[:20_000], encoding="utf-8")
    full, part = tmp_path / "full", tmp_path / "part"
    assert cli("train", "--data", data, "--out", full, "--max-steps", "40", *LM).returncode == 0
    r = cli("train", "--data", data, "--out", part, "--max-steps", "20", *LM)
    assert r.returncode == 0, r.stderr
    r = cli("train", "--resume", part, "--max-steps", "40", "--no-progress", "--no-sample")
    assert r.returncode == 0, r.stderr
    losses = [json.loads(line)["train_loss"] for line in
              (full / "steps.jsonl").read_text().splitlines()]
    assert losses[-1] < losses[0] - 0.3 < np.log(65)  # steps 1-10's mean, 31-40's mean
    want, meta = checkpoint.load(full, "last")
    got, _ = checkpoint.load(part, "last")
    assert meta["model"]["peephole"] is True and "model/rnn.weight_co_l1" in want
    assert want.keys() == got.keys()
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    r = cli("sample", "--checkpoint", part, "--prime", "ROMEO:", "--length", "40", "--seed", "1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ROMEO:") and len(r.stdout) >= 46
    assert r.stdout == cli("sample", "--checkpoint", full, "--prime", "ROMEO:", "--length",
                           "40", "--seed", "1").stdout


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_peephole_flag_with_another_cell_is_a_one_line_error(capsys, tmp_path, cell):
    code, _, err = run_cli(capsys, "train", "--cell", cell, "--peephole", "--out",
                           tmp_path / "run", "--max-steps", "1")
    assert_one_line_error(code, err, "--peephole is for --cell lstm only")
    assert not (tmp_path / "run").exists()


def test_task_runs_with_peepholes_and_older_runs_without_the_field(capsys, tmp_path):
    """A classify run trains with --peephole; a run saved before the field existed (no
    ``peephole`` in meta.model and meta.config) still loads, as peephole=False."""
    files = write_files(tmp_path)
    for peephole in (["--peephole"], []):
        out = tmp_path / f"cls{len(peephole)}"
        code, _, err = run_cli(capsys, "train", "--task", "classify", "--data",
                               files["cls.train"], "--out", out, "--max-steps", "5",
                               "--eval-every", "0", *SMALL, *peephole)
        assert code == 0, err
        meta = json.loads((out / "last.json").read_text())["meta"]
        assert meta["model"]["peephole"] is bool(peephole)
    old = tmp_path / "cls0"
    for name in ("last", "best"):
        path = old / f"{name}.json"
        d = json.loads(path.read_text())
        del d["meta"]["model"]["peephole"], d["meta"]["config"]["peephole"]
        path.write_text(json.dumps(d))
    cfg = json.loads((old / "config.json").read_text())
    del cfg["config"]["peephole"]
    (old / "config.json").write_text(json.dumps(cfg))
    (tmp_path / "in.txt").write_text("aab\nbba\n")
    code, out, err = run_cli(capsys, "predict", "--checkpoint", old, "--input",
                             tmp_path / "in.txt")
    assert code == 0, err
    assert len(out.splitlines()) == 2
