"""LanguageModel: gradient checks, PyTorch parity, weight tying, configuration."""

from __future__ import annotations

import json

import numpy as np
import pytest
from torch_parity import TOL, assert_close

from rnnlab.models import LanguageModel
from rnnlab.nn import gradcheck
from rnnlab.nn.torch_compat import export_params

CELLS = ["rnn", "lstm", "gru"]
V, E, H, L, T, N = 7, 4, 4, 2, 3, 2


# embed = hidden = 8: V <= 2E, the embedding is fused into layer 0 (LanguageModel's table)
SIZES = pytest.mark.parametrize("size", [3, 8], ids=["gather", "table"])


def make_model(cell="lstm", *, tie=False, dropout=0.0, dtype=np.float64, seed=0, size=E, **kw):
    """A small model with every parameter ~ U(-0.5, 0.5): non-zero, of order one."""
    return LanguageModel(V, cell=cell, embed_size=size, hidden_size=size, num_layers=L,
                         dropout=dropout, tie_weights=tie, init_range=0.5, dtype=dtype,
                         rng=np.random.default_rng(seed), **kw)


def random_ids(seed=1, shape=(T, N)):
    return np.random.default_rng(seed).integers(0, V, shape)


def random_state(model, rng):
    shape = (L, N, model.rnn.hidden_size)
    if model.cell == "lstm":
        return rng.standard_normal(shape), rng.standard_normal(shape)
    return rng.standard_normal(shape)


def as_parts(state):
    """(h,) or (h, c): one shape of state for every cell."""
    return tuple(state) if isinstance(state, tuple) else (state,)


def from_parts(parts):
    return parts if len(parts) == 2 else parts[0]


def worst(errors):
    name = max(errors, key=errors.get)
    return name, errors[name]


# ---------------------------------------------------------------- gradient checks


@SIZES
@pytest.mark.parametrize("dropout", [0.0, 0.4])
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_forward_backward(cell, tie, dropout, size):
    """Every parameter and the initial state, through the logits and the final state."""
    model = make_model(cell, tie=tie, dropout=dropout, size=size)
    assert model.looks_up_inputs() == (size == 8 and dropout == 0)
    rng = np.random.default_rng(2)
    ids, state0 = random_ids(), random_state(model, rng)
    parts = as_parts(state0)
    names = ("h0", "c0")[:len(parts)]
    inputs = dict(zip(names, parts, strict=True))

    def forward():
        model.reseed(3)  # the same dropout masks at every evaluation
        return model.forward(ids, state0)

    def backward(g):
        return dict(zip(names, as_parts(model.backward(g[0], g[1])), strict=True))

    errors = gradcheck.check_module(model, forward, backward, inputs, rng=rng)
    assert len(errors) == len(model.named_params()) + len(inputs)
    name, err = worst(errors)
    assert err <= 1e-6, f"{name}: relative error {err:.2e}"


@pytest.mark.parametrize(("size", "dropout"), [(3, 0.3), (8, 0.0)], ids=["gather", "table"])
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_loss_path(cell, tie, size, dropout):
    """loss() + backward_loss(): the mean cross-entropy's gradient (with dropout, unfused)."""
    model = make_model(cell, tie=tie, dropout=dropout, size=size)
    ids, targets = random_ids(1), random_ids(2)
    state0 = random_state(model, np.random.default_rng(4))

    def loss():
        model.reseed(5)
        return model.loss(ids, targets, state0)[0]

    loss()
    model.zero_grad()
    model.backward_loss()
    wrt = {name: (p.value, p.grad.copy()) for name, p in model.named_params().items()}
    name, err = worst(gradcheck.check(loss, wrt))
    assert err <= 1e-6, f"{name}: relative error {err:.2e}"


# ----------------------------------------------------------------- PyTorch parity

try:
    import torch
except ImportError:  # the gradient checks above still run
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch (the test oracle) not installed")


def torch_twin(model):
    """PyTorch's word_language_model RNNModel (without dropout), weights copied from ours."""
    c = model.config()
    tmod = torch.nn.Module()
    tmod.embedding = torch.nn.Embedding(c["vocab_size"], c["embed_size"])
    rnn_cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[c["cell"]]
    tmod.rnn = rnn_cls(c["embed_size"], c["hidden_size"], c["num_layers"])
    tmod.decoder = torch.nn.Linear(c["hidden_size"], c["vocab_size"])
    if c["tie_weights"]:
        tmod.decoder.weight = tmod.embedding.weight
    tmod.to({"float64": torch.float64, "float32": torch.float32}[c["dtype"]])
    tmod.load_state_dict({k: torch.from_numpy(v) for k, v in export_params(model).items()},
                         strict=True)
    return tmod


def run_torch(tmod, ids, state):
    y, state = tmod.rnn(tmod.embedding(torch.from_numpy(ids)), state)
    return tmod.decoder(y), state


def assert_param_grads(model, tmod, dtype):
    theirs = dict(tmod.named_parameters())  # a tied weight once, like ours
    ours = model.named_params()
    assert list(ours) == list(theirs)
    for name, p in ours.items():
        assert_close(f"grad {name}", p.grad, theirs[name].grad, dtype)


@needs_torch
@SIZES
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_torch_parity_loss(cell, tie, dtype, size):
    model = make_model(cell, tie=tie, dtype=dtype, size=size)
    assert model.looks_up_inputs() == (size == 8)
    tmod = torch_twin(model)
    ids, targets = random_ids(1, (5, 3)), random_ids(2, (5, 3))
    loss, state = model.loss(ids, targets)
    model.zero_grad()
    model.backward_loss()
    logits_t, state_t = run_torch(tmod, ids, None)
    loss_t = torch.nn.functional.cross_entropy(logits_t.reshape(-1, V),
                                               torch.from_numpy(targets).reshape(-1))
    loss_t.backward()
    assert abs(loss - loss_t.item()) <= TOL[dtype]
    for ours, theirs in zip(as_parts(state), as_parts(state_t), strict=True):
        assert_close("final state", ours, theirs, dtype)
    assert_param_grads(model, tmod, dtype)


@needs_torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("cell", CELLS)
@SIZES
def test_torch_parity_forward_backward(cell, tie, dtype, size):
    """Given initial state, random upstream gradients on the logits and the final state."""
    model = make_model(cell, tie=tie, dtype=dtype, size=size)
    rng = np.random.default_rng(7)
    ids = random_ids(3, (T, N))
    state0 = tuple(s.astype(dtype) for s in as_parts(random_state(model, rng)))
    logits, state = model.forward(ids, from_parts(state0))
    g_logits = rng.standard_normal(logits.shape).astype(dtype)
    g_state = tuple(rng.standard_normal(s.shape).astype(dtype) for s in as_parts(state))
    model.zero_grad()
    dstate0 = as_parts(model.backward(g_logits, from_parts(g_state)))

    tmod = torch_twin(model)
    s0_t = tuple(torch.from_numpy(s).requires_grad_(True) for s in state0)
    logits_t, state_t = run_torch(tmod, ids, from_parts(s0_t))
    objective = (logits_t * torch.from_numpy(g_logits)).sum()
    for s, g in zip(as_parts(state_t), g_state, strict=True):
        objective = objective + (s * torch.from_numpy(g)).sum()
    objective.backward()
    assert_close("logits", logits, logits_t, dtype)
    for k in range(len(state0)):
        assert_close(f"final state {k}", as_parts(state)[k], as_parts(state_t)[k], dtype)
        assert_close(f"initial state {k} grad", dstate0[k], s0_t[k].grad, dtype)
    assert_param_grads(model, tmod, dtype)


# ------------------------------------------------------------------ weight tying


def test_tie_weights_shares_one_parameter():
    model = make_model("gru", tie=True)
    assert model.decoder.weight is model.embedding.weight
    names = list(model.named_params())
    assert "embedding.weight" in names and "decoder.weight" not in names
    assert "decoder.weight" in model.named_params(remove_duplicate=False)
    assert len(names) == len({id(p) for p in model.named_params().values()})


def test_tied_gradient_is_the_sum_of_both_uses():
    tied = make_model("lstm", tie=True)
    untied = make_model("lstm", tie=False)
    for name, p in untied.named_params(remove_duplicate=False).items():
        p.value[...] = tied.named_params(remove_duplicate=False)[name].value
    ids, targets = random_ids(1), random_ids(2)
    for m in (tied, untied):
        m.loss(ids, targets)
        m.zero_grad()
        m.backward_loss()
    both = untied.embedding.weight.grad + untied.decoder.weight.grad
    np.testing.assert_allclose(tied.embedding.weight.grad, both, rtol=0, atol=1e-12)


def test_tie_weights_needs_equal_sizes():
    with pytest.raises(ValueError, match="embed_size == hidden_size"):
        LanguageModel(V, embed_size=4, hidden_size=5, tie_weights=True,
                      rng=np.random.default_rng(0))


# --------------------------------------------------------------- the rest of the API


def test_bad_arguments():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="cell"):
        LanguageModel(V, cell="transformer", rng=rng)
    with pytest.raises(ValueError, match="init_range"):
        LanguageModel(V, init_range=0.0, rng=rng)
    with pytest.raises(ValueError, match="dropout"):
        LanguageModel(V, dropout=1.0, rng=rng)
    model = make_model()
    with pytest.raises(ValueError, match=r"\(T, N\)"):
        model.forward(np.zeros(3, dtype=np.int64))


def test_parameter_names_follow_pytorch():
    names = list(make_model("lstm").named_params())
    assert names[0] == "embedding.weight"
    assert "rnn.weight_ih_l0" in names and "rnn.bias_hh_l1" in names
    assert names[-2:] == ["decoder.weight", "decoder.bias"]


def test_init_range_bounds_every_parameter():
    model = LanguageModel(50, embed_size=8, hidden_size=8, init_range=0.05,
                          rng=np.random.default_rng(0))
    for name, p in model.named_params().items():
        assert p.value.dtype == np.float32, name
        assert np.abs(p.value).max() <= 0.05, name
        assert np.abs(p.value).max() > 0.04, name  # drawn over the whole range


@pytest.mark.parametrize("cell", CELLS)
def test_config_round_trip(cell):
    model = make_model(cell, tie=True, dropout=0.25, dtype=np.float32)
    cfg = json.loads(json.dumps(model.config()))
    assert cfg == model.config()
    assert cfg["dtype"] == "float32" and cfg["cell"] == cell and cfg["tie_weights"] is True
    again = LanguageModel.from_config(cfg, np.random.default_rng(0))
    assert again.config() == cfg
    for (n1, p1), (n2, p2) in zip(model.named_params().items(), again.named_params().items(),
                                  strict=True):
        assert n1 == n2 and p1.value.dtype == p2.value.dtype
        np.testing.assert_array_equal(p1.value, p2.value)  # same seed, same weights
    with pytest.raises(ValueError, match="unknown model configuration key 'colour'"):
        LanguageModel.from_config({**cfg, "colour": "red"}, np.random.default_rng(0))


@pytest.mark.parametrize("cell", CELLS)
def test_init_state_and_state_carry(cell):
    model = make_model(cell)
    ids = random_ids(1, (6, N))
    s0 = model.init_state(N)
    parts = s0 if cell == "lstm" else (s0,)
    assert all(s.shape == (L, N, H) and not s.any() for s in parts)
    full, _ = model.forward(ids, s0)
    first, state = model.forward(ids[:3])
    second, _ = model.forward(ids[3:], state)  # carrying the state = one long forward
    np.testing.assert_allclose(np.concatenate([first, second]), full, atol=1e-12)


def test_forward_last_is_the_last_step():
    model = make_model("gru")
    ids = random_ids(1, (5, N))
    logits, state = model.forward(ids)
    last, state_last = model.forward_last(ids)
    np.testing.assert_allclose(last, logits[-1], atol=1e-12)
    np.testing.assert_allclose(state_last, state, atol=1e-12)


def test_dropout_only_in_training_mode():
    model = make_model("lstm", dropout=0.5)
    ids = random_ids()
    a, _ = model.forward(ids)
    b, _ = model.forward(ids)
    assert not np.allclose(a, b)  # fresh masks each forward
    model.eval()
    c, _ = model.forward(ids)
    d, _ = model.forward(ids)
    np.testing.assert_array_equal(c, d)
    model.train()
    assert model.embed_dropout.training and model.rnn.training and model.output_dropout.training


def test_float32_training_step_keeps_dtype():
    model = make_model("lstm", dtype=np.float32, dropout=0.2)
    loss, (h, c) = model.loss(random_ids(), random_ids(2))
    assert isinstance(loss, float) and h.dtype == c.dtype == np.float32
    model.backward_loss()
    assert all(p.grad.dtype == np.float32 for p in model.named_params().values())
