"""SequenceTagger: gradient checks, PyTorch parity, masking, bad inputs, training."""

from __future__ import annotations

import json

import numpy as np
import pytest
from torch_parity import assert_close

from rnnlab.data.padded import PaddedBatches
from rnnlab.metrics import token_accuracy
from rnnlab.models import SequenceTagger
from rnnlab.nn import gradcheck
from rnnlab.optim import Adam

V, E, H, C, T, N = 6, 3, 4, 3, 5, 4
LENGTHS = np.array([5, 2, 1, 4])


def make(cell="lstm", *, dropout=0.0, layers=2, features=None, seed=0, bidirectional=False):
    return SequenceTagger(C, None if features else V, input_size=features, cell=cell,
                          embed_size=E, hidden_size=H, num_layers=layers, dropout=dropout,
                          bidirectional=bidirectional, init_range=0.5, dtype=np.float64,
                          rng=np.random.default_rng(seed))


def inputs(features=None, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, N, features)) if features else rng.integers(0, V, (T, N))
    tags = rng.integers(0, C, (T, N))
    tags[np.arange(T)[:, None] >= LENGTHS[None, :]] = -1  # padding: outside [0, C)
    return x, tags


def worst(errors):
    name = max(errors, key=errors.get)
    return name, errors[name]


@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
@pytest.mark.parametrize("features", [None, 2], ids=["ids", "real"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_gradcheck_masked_loss(cell, dropout, features, bidirectional):
    model = make(cell, dropout=dropout, features=features, bidirectional=bidirectional)
    x, tags = inputs(features)

    def loss():
        model.reseed(3)
        return model.loss(x, tags, LENGTHS)

    loss()
    model.zero_grad()
    dx = model.backward(model.criterion.backward())
    wrt = {name: (p.value, p.grad.copy()) for name, p in model.named_params().items()}
    if features:
        wrt["x"] = (x, dx)
    name, err = worst(gradcheck.check(loss, wrt))
    assert err <= 1e-6, f"{name}: relative error {err:.2e}"


def test_padding_is_masked_out():
    """Padded tags are never read; padded inputs change nothing; predict marks them -1."""
    model = make()
    x, tags = inputs()
    other_x, other_tags = x.copy(), tags.copy()
    pad = np.arange(T)[:, None] >= LENGTHS[None, :]
    other_x[pad], other_tags[pad] = 0, 2
    assert abs(model.loss(x, tags, LENGTHS) - model.loss(other_x, other_tags, LENGTHS)) < 1e-12
    pred = model.predict(x, LENGTHS)
    assert (pred[pad] == -1).all() and (pred[~pad] >= 0).all()


try:
    import torch
except ImportError:
    torch = None


@pytest.mark.skipif(torch is None, reason="PyTorch (the test oracle) not installed")
@pytest.mark.parametrize("bidirectional", [False, True], ids=["one-way", "bidirectional"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_matches_torch_packed(cell, bidirectional):
    """Logits at real steps, masked loss and every gradient equal PyTorch's (float64)."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    model = make(cell, bidirectional=bidirectional)
    x, tags = inputs()
    tmod = torch.nn.Module()
    tmod.embedding = torch.nn.Embedding(V, E)
    rnn_cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell]
    tmod.rnn = rnn_cls(E, H, 2, bidirectional=bidirectional)
    tmod.fc = torch.nn.Linear((2 if bidirectional else 1) * H, C)
    tmod.double()
    tmod.load_state_dict({k: torch.from_numpy(p.value.copy())
                          for k, p in model.named_params().items()})
    packed = pack_padded_sequence(tmod.embedding(torch.from_numpy(x)),
                                  torch.as_tensor(LENGTHS), enforce_sorted=False)
    y, _ = pad_packed_sequence(tmod.rnn(packed)[0], total_length=T)
    logits = tmod.fc(y)
    tloss = torch.nn.functional.cross_entropy(logits.reshape(-1, C),
                                              torch.from_numpy(tags.reshape(-1)),
                                              ignore_index=-1)
    tloss.backward()
    loss = model.loss(x, tags, LENGTHS)
    model.zero_grad()
    model.backward_loss()
    assert abs(loss - tloss.item()) <= 1e-9
    assert_close("logits", model.forward(x, LENGTHS), logits, np.float64)
    theirs = dict(tmod.named_parameters())
    for name, p in model.named_params().items():
        assert_close(f"grad {name}", p.grad, theirs[name].grad, np.float64)


@pytest.mark.parametrize(("tags", "lengths", "match"), [
    (np.zeros((T, N - 1), dtype=int), LENGTHS, r"tags must have the inputs' shape"),
    (np.full((T, N), C), LENGTHS, r"targets must lie in \[0, 3\)"),
    (np.zeros((T, N), dtype=int), [1, 2], "lengths must be 4 integers"),
])
def test_bad_inputs(tags, lengths, match):
    with pytest.raises(ValueError, match=match):
        make().loss(inputs()[0], tags, lengths)


def test_config_round_trip():
    model = make("rnn", dropout=0.2)
    again = SequenceTagger.from_config(json.loads(json.dumps(model.config())),
                                       np.random.default_rng(1))
    assert again.config() == model.config()


def repeat_tagging(n, rng):
    """Tokens 0..4, lengths 2..14; tag 1 where a token equals the one before it, else 0,
    and 2 at a token 4 (so the tag needs the previous step, not just the current one)."""
    seqs = [rng.integers(0, 5, rng.integers(2, 15)) for _ in range(n)]
    tags = []
    for s in seqs:
        t = np.zeros(len(s), dtype=np.int64)
        t[1:][s[1:] == s[:-1]] = 1
        t[s == 4] = 2
        tags.append(t)
    return seqs, tags


def test_learns_a_tagging_task():
    rng = np.random.default_rng(0)
    train, test = repeat_tagging(1000, rng), repeat_tagging(200, rng)
    model = SequenceTagger(3, 5, cell="gru", embed_size=8, hidden_size=16,
                           rng=np.random.default_rng(1))
    opt = Adam(model.named_params(), lr=0.02)
    for _ in range(5):
        for b in PaddedBatches(*train, 32, rng=rng):
            model.zero_grad()
            model.loss(b.x, b.y, b.lengths)
            model.backward_loss()
            opt.step()
    model.eval()
    b = PaddedBatches(*test, len(test[0])).batch(np.arange(len(test[0])))
    mask = b.y >= 0
    acc = token_accuracy(b.y, model.predict(b.x, b.lengths), mask)
    majority = np.bincount(b.y[mask]).max() / mask.sum()
    assert acc >= 0.95 and acc > majority + 0.15, (acc, majority)
