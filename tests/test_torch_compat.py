"""export_params / import_params: names, shapes, values and gradients as in PyTorch."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rnnlab import GRU, LSTM, RNN
from rnnlab.nn.torch_compat import export_params, import_params

torch = pytest.importorskip("torch")

D, H, T, N = 3, 4, 5, 2
KINDS = {"rnn": (RNN, torch.nn.RNN), "lstm": (LSTM, torch.nn.LSTM), "gru": (GRU, torch.nn.GRU)}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
CONFIGS = [(kind, L, bias) for kind in KINDS for L in (1, 2) for bias in (True, False)]
CONFIG_IDS = [f"{kind}-L{L}-{'bias' if bias else 'nobias'}" for kind, L, bias in CONFIGS]


def pair(kind, num_layers=1, bias=True, dtype=np.float64, seed=0):
    """An rnnlab layer and a torch module of the same architecture (independent weights)."""
    ours_cls, torch_cls = KINDS[kind]
    ours = ours_cls(D, H, num_layers, bias=bias, dtype=dtype, rng=np.random.default_rng(seed))
    torch.manual_seed(seed)
    theirs = torch_cls(D, H, num_layers, bias=bias, dtype=TORCH_DTYPE[dtype])
    return ours, theirs


def random_values(layer, seed=5, dtype=None):
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(v.shape).astype(dtype or v.dtype)
            for name, v in export_params(layer).items()}


def assert_values_equal(a, b):
    assert list(a) == list(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize(("kind", "num_layers", "bias"), CONFIGS, ids=CONFIG_IDS)
def test_export_names_and_shapes_are_torch_state_dict(kind, num_layers, bias):
    ours, theirs = pair(kind, num_layers, bias)
    exported = export_params(ours)
    state = theirs.state_dict()
    assert list(exported) == list(state)  # same names, same order
    for name, value in exported.items():
        assert isinstance(value, np.ndarray)
        assert value.shape == tuple(state[name].shape), name
        assert value.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("kind", "num_layers", "bias"), CONFIGS, ids=CONFIG_IDS)
def test_round_trip_through_torch_is_exact(kind, num_layers, bias, dtype):
    ours, theirs = pair(kind, num_layers, bias, dtype)
    import_params(ours, random_values(ours))  # values no init would produce
    original = export_params(ours)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in original.items()}, strict=True)
    for name, value in theirs.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), original[name], err_msg=name)
    fresh, _ = pair(kind, num_layers, bias, dtype, seed=1)
    import_params(fresh, theirs.state_dict())
    assert_values_equal(export_params(fresh), original)
    for p in fresh.named_params().values():
        assert p.value.dtype == dtype


@pytest.mark.parametrize("source", ["numpy", "torch_tensors", "torch_parameters"])
@pytest.mark.parametrize("kind", KINDS)
def test_import_from_numpy_and_torch(kind, source):
    ours, _ = pair(kind, num_layers=2)
    values = random_values(ours)
    if source == "torch_tensors":
        state = {k: torch.from_numpy(v.copy()) for k, v in values.items()}
    elif source == "torch_parameters":  # requires_grad tensors, as named_parameters() gives
        state = {k: torch.nn.Parameter(torch.from_numpy(v.copy())) for k, v in values.items()}
    else:
        state = {k: v.copy() for k, v in values.items()}
    arrays_before = {name: p.value for name, p in ours.named_params().items()}
    import_params(ours, state)
    assert_values_equal(export_params(ours), values)
    for name, p in ours.named_params().items():  # copied in place: the same arrays
        assert p.value is arrays_before[name], name
    with torch.no_grad():
        for v in state.values():  # and not views of the source
            v[...] = 0.0
    assert_values_equal(export_params(ours), random_values(ours))


def test_export_returns_copies():
    ours, _ = pair("lstm")
    exported = export_params(ours)
    exported["weight_ih_l0"][...] = 123.0
    ours.forward(np.ones((T, N, D)))
    ours.backward(np.ones((T, N, H)))
    grads = export_params(ours, grads=True)
    grads["weight_hh_l0"][...] = 0.0
    assert not np.any(ours.weights[0]["weight_ih"].value == 123.0)
    assert np.any(export_params(ours, grads=True)["weight_hh_l0"] != 0.0)


@pytest.mark.parametrize(("kind", "num_layers", "bias"), CONFIGS, ids=CONFIG_IDS)
def test_exported_grads_equal_torch_grads(kind, num_layers, bias):
    ours, theirs = pair(kind, num_layers, bias)
    import_params(ours, random_values(ours))
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in export_params(ours).items()})
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, N, D))
    dy = rng.standard_normal((T, N, H))
    ours.zero_grad()
    ours.forward(x)
    ours.backward(dy)
    y_t, _ = theirs(torch.from_numpy(x))
    (y_t * torch.from_numpy(dy)).sum().backward()
    grads = export_params(ours, grads=True)
    assert list(grads) == [name for name, _ in theirs.named_parameters()]
    for name, p in theirs.named_parameters():
        assert grads[name].shape == tuple(p.shape)
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=0, atol=1e-9, err_msg=name)


def test_peephole_names_extend_torch_names():
    ours = LSTM(D, H, 2, peephole=True, dtype=np.float64, rng=np.random.default_rng(0))
    torch_names = list(torch.nn.LSTM(D, H, 2).state_dict())
    exported = export_params(ours)
    assert set(exported) == set(torch_names) | {
        f"weight_c{g}_l{k}" for g in "ifo" for k in range(2)}
    assert all(exported[f"weight_c{g}_l{k}"].shape == (H,) for g in "ifo" for k in range(2))
    values = random_values(ours)
    import_params(ours, values)
    assert_values_equal(export_params(ours), values)


def _missing(values, name):
    del values[name]


def _unknown(values, name):
    values[name] = np.zeros(3)


def _wrong_shape(values, name):
    values[name] = values[name].T.copy() if values[name].ndim == 2 else values[name][:-1].copy()


@pytest.mark.parametrize("position", ["first", "last"])
@pytest.mark.parametrize(("break_it", "bad_name"), [
    (_missing, None), (_unknown, "weight_ih_l7"), (_unknown, "weight_xy_l0"), (_wrong_shape, None),
], ids=["missing", "unknown_layer", "unknown_kind", "wrong_shape"])
@pytest.mark.parametrize("kind", KINDS)
def test_bad_state_dict_raises_naming_the_entry_and_changes_nothing(
        kind, break_it, bad_name, position):
    ours, _ = pair(kind, num_layers=2)
    before = export_params(ours)
    values = random_values(ours)  # every other entry is valid and differs from the module
    names = list(values)
    if bad_name is None:
        bad_name = names[0] if position == "first" else names[-1]
    elif position == "first":
        values = {bad_name: None, **values}
    break_it(values, bad_name)
    with pytest.raises(ValueError, match=re.escape(bad_name)):
        import_params(ours, values)
    assert_values_equal(export_params(ours), before)


@pytest.mark.parametrize(("layer_dtype", "source_dtype"),
                         [(np.float32, np.float64), (np.float64, np.float32)])
@pytest.mark.parametrize("as_torch", [False, True], ids=["numpy", "torch"])
def test_import_casts_to_the_layer_dtype(layer_dtype, source_dtype, as_torch):
    ours, _ = pair("gru", num_layers=2, dtype=layer_dtype)
    values = random_values(ours, dtype=source_dtype)
    state = {k: torch.from_numpy(v) for k, v in values.items()} if as_torch else values
    import_params(ours, state)
    for name, p in ours.named_params().items():
        assert p.value.dtype == layer_dtype, name
        assert p.grad.dtype == layer_dtype, name
        np.testing.assert_array_equal(p.value, values[name].astype(layer_dtype), err_msg=name)
    y, _ = ours.forward(np.ones((T, N, D), dtype=layer_dtype))
    assert y.dtype == layer_dtype
