"""SequenceClassifier: gradient checks, PyTorch parity, bad inputs, configuration, training."""

from __future__ import annotations

import json

import numpy as np
import pytest
from torch_parity import assert_close

from rnnlab.models import SequenceClassifier
from rnnlab.nn import gradcheck
from rnnlab.optim import Adam

V, E, H, C, T, N = 6, 3, 4, 3, 5, 4
LENGTHS = np.array([5, 2, 1, 4])
CELL_POOLING = [("rnn", "last"), ("rnn", "mean"), ("gru", "last"), ("gru", "mean"),
                ("lstm", "last"), ("lstm", "cell"), ("lstm", "mean")]


def make(cell="lstm", pooling="last", *, dropout=0.0, layers=2, features=None, seed=0, **kw):
    """A small float64 model with every parameter ~ U(-0.5, 0.5)."""
    vocab = None if features else V
    return SequenceClassifier(C, vocab, input_size=features, cell=cell, embed_size=E,
                              hidden_size=H, num_layers=layers, dropout=dropout,
                              pooling=pooling, init_range=0.5, dtype=np.float64,
                              rng=np.random.default_rng(seed), **kw)


def inputs(features=None, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, N, features)) if features else rng.integers(0, V, (T, N))
    return x, rng.integers(0, C, N)


def worst(errors):
    name = max(errors, key=errors.get)
    return name, errors[name]


# ---------------------------------------------------------------- gradient checks


@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize(("cell", "pooling"), CELL_POOLING)
def test_gradcheck_loss_with_lengths(cell, pooling, dropout, bidirectional):
    """Every parameter, through pooling at each sequence's own length and the loss."""
    model = make(cell, pooling, dropout=dropout, bidirectional=bidirectional)
    x, y = inputs()

    def loss():
        model.reseed(3)  # the same dropout masks at every evaluation
        return model.loss(x, y, LENGTHS)

    loss()
    model.zero_grad()
    model.backward_loss()
    wrt = {name: (p.value, p.grad.copy()) for name, p in model.named_params().items()}
    errors = gradcheck.check(loss, wrt)
    assert len(errors) == len(model.named_params())
    name, err = worst(errors)
    assert err <= 1e-6, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize("pooling", ["last", "mean"])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_gradcheck_real_valued_inputs(cell, pooling):
    """input_size=D: the gradient of the (T, N, D) inputs too (zero at padded steps)."""
    model = make(cell, pooling, features=2, layers=1)
    x, y = inputs(features=2)

    def loss():
        return model.loss(x, y, LENGTHS)

    loss()
    model.zero_grad()
    dx = model.backward(model.criterion.backward())
    assert not dx[LENGTHS[1]:, 1].any()  # padding of sequence 1 gets no gradient
    wrt = {name: (p.value, p.grad.copy()) for name, p in model.named_params().items()}
    wrt["x"] = (x, dx)
    name, err = worst(gradcheck.check(loss, wrt))
    assert err <= 1e-6, f"{name}: relative error {err:.2e}"


def test_padding_does_not_change_the_result():
    """A sequence's logits do not depend on what lies past its length, nor on T."""
    model = make("lstm", "mean")
    x, _ = inputs()
    other = x.copy()
    other[LENGTHS[2]:, 2] = (other[LENGTHS[2]:, 2] + 1) % V
    longer = np.concatenate([x, np.zeros((3, N), dtype=x.dtype)])
    a, b, c = (model.forward(v, LENGTHS) for v in (x, other, longer))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a, c, rtol=0, atol=1e-12)


# ----------------------------------------------------------------- PyTorch parity

try:
    import torch
except ImportError:  # the gradient checks above still run
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch (the test oracle) not installed")


def torch_twin(model):
    """nn.Embedding -> nn.LSTM/GRU/RNN (packed) -> nn.Linear, weights copied from ours."""
    c = model.config()
    tmod = torch.nn.Module()
    tmod.embedding = torch.nn.Embedding(c["vocab_size"], c["embed_size"])
    rnn_cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[c["cell"]]
    dirs = 2 if c["bidirectional"] else 1
    tmod.rnn = rnn_cls(c["embed_size"], c["hidden_size"], c["num_layers"],
                       bidirectional=c["bidirectional"])
    tmod.fc = torch.nn.Linear(dirs * c["hidden_size"], c["num_classes"])
    tmod.double()
    tmod.load_state_dict({k: torch.from_numpy(p.value.copy())
                          for k, p in model.named_params().items()}, strict=True)
    return tmod


def torch_logits(tmod, model, ids, lengths):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    e = tmod.embedding(torch.from_numpy(ids))
    packed = pack_padded_sequence(e, torch.as_tensor(lengths), enforce_sorted=False)
    out, state = tmod.rnn(packed)
    if model.pooling == "mean":
        y, _ = pad_packed_sequence(out, total_length=ids.shape[0])  # zero past each length
        z = y.sum(0) / torch.as_tensor(lengths, dtype=torch.float64)[:, None]
    else:  # h_n (or c_n): the top layer's last row, or its two directions' rows, side by side
        s = state[1] if model.pooling == "cell" else state[0] if model.cell == "lstm" else state
        rows = 2 if model.config()["bidirectional"] else 1
        z = torch.cat(list(s[-rows:]), dim=1)
    return tmod.fc(z)


@needs_torch
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
@pytest.mark.parametrize(("cell", "pooling"), CELL_POOLING)
def test_matches_torch_packed(cell, pooling, bidirectional):
    """Logits, loss and every gradient equal PyTorch's at 1e-9 (float64, random weights)."""
    model = make(cell, pooling, bidirectional=bidirectional)
    tmod = torch_twin(model)
    ids, y = inputs()
    loss = model.loss(ids, y, LENGTHS)
    model.zero_grad()
    model.backward_loss()
    logits = torch_logits(tmod, model, ids, LENGTHS)
    tloss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
    tloss.backward()
    assert_close("logits", model.forward(ids, LENGTHS), logits, np.float64)
    assert abs(loss - tloss.item()) <= 1e-9
    theirs = dict(tmod.named_parameters())
    for name, p in model.named_params().items():
        assert_close(f"grad {name}", p.grad, theirs[name].grad, np.float64)


# -------------------------------------------------------------------- bad input


@pytest.mark.parametrize(("args", "match"), [
    ({"lengths": [5, 2, 1]}, "lengths must be 4 integers"),
    ({"lengths": [5, 2, 1, 6]}, r"lengths must lie in \[1, T=5\]"),
    ({"lengths": [5, 2, 0, 4]}, r"lengths must lie in \[1, T=5\]"),
    ({"lengths": [5.0, 2.0, 1.0, 4.0]}, "lengths must be 4 integers"),
    ({"y": np.array([0, 1, 3, 0])}, r"targets must lie in \[0, 3\)"),
    ({"y": np.array([0, 1])}, "targets shape"),
    ({"x": np.zeros((T, N, 2))}, r"x must be a \(T, N\) integer array"),
    ({"x": np.full((T, N), V)}, r"ids must lie in \[0, 6\)"),
])
def test_bad_inputs_raise_clear_errors(args, match):
    model = make()
    x, y = inputs()
    kw = {"x": x, "y": y, "lengths": LENGTHS, **args}
    with pytest.raises(ValueError, match=match):
        model.loss(kw["x"], kw["y"], kw["lengths"])


@pytest.mark.parametrize(("kw", "match"), [
    ({"pooling": "max"}, "pooling must be one of"),
    ({"cell": "gru", "pooling": "cell"}, "has none"),
    ({"cell": "transformer"}, "cell must be one of"),
    ({"features": 3, "vocab": V}, "exactly one of vocab_size"),
])
def test_bad_configuration(kw, match):
    with pytest.raises(ValueError, match=match):
        SequenceClassifier(2, kw.pop("vocab", None) if "features" in kw else V,
                           input_size=kw.pop("features", None), rng=np.random.default_rng(0),
                           **kw)


def test_config_round_trip():
    model = make("gru", "mean", dropout=0.1)
    cfg = json.loads(json.dumps(model.config()))
    again = SequenceClassifier.from_config(cfg, np.random.default_rng(0))
    assert again.config() == model.config()
    assert list(again.named_params()) == list(model.named_params())
    with pytest.raises(ValueError, match="unknown model configuration key 'colour'"):
        SequenceClassifier.from_config({**cfg, "colour": 1}, np.random.default_rng(0))


# -------------------------------------------------------------------- training


def more_a_than_b(n, rng):
    """Strings over {a, b, c} of length 3..12; label 1 iff they hold more a's than b's."""
    seqs = [rng.integers(0, 3, rng.integers(3, 13)) for _ in range(n)]
    return seqs, np.array([int((s == 0).sum() > (s == 1).sum()) for s in seqs])


def test_learns_more_a_than_b():
    from rnnlab.data.padded import PaddedBatches

    rng = np.random.default_rng(0)
    train, test = more_a_than_b(1200, rng), more_a_than_b(300, rng)
    model = SequenceClassifier(2, 3, cell="lstm", embed_size=8, hidden_size=16,
                               rng=np.random.default_rng(1))
    opt = Adam(model.named_params(), lr=0.02)
    for _ in range(6):
        for b in PaddedBatches(*train, 32, rng=rng):
            model.zero_grad()
            model.loss(b.x, b.y, b.lengths)
            model.backward_loss()
            opt.step()
    model.eval()
    batch = PaddedBatches(*test, len(test[0])).batch(np.arange(len(test[0])))
    accuracy = float((model.predict(batch.x, batch.lengths) == batch.y).mean())
    majority = max(batch.y.mean(), 1 - batch.y.mean())
    assert accuracy >= 0.9 > majority + 0.2, (accuracy, majority)
