"""bidirectional=True against PyTorch: outputs, states and every gradient, lengths included.

RNN, LSTM and GRU are compared with ``torch.nn.RNN/LSTM/GRU(bidirectional=True)`` (packed
sequences for ``lengths``); the peephole LSTM, which torch lacks, with ``RefBiLSTM``, a
plain autograd loop that runs each sequence on its own (the reverse direction from its own
last step), itself checked against ``torch.nn.LSTM``. The helpers: ``bidi_parity.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from bidi_parity import (
    check_against_torch,
    inputs,
    lens,
    make_bidi,
    random_state,
    run_torch,
    torch_twin,
)
from test_recurrent_torch import CELLS, DTYPES, D, H, leaves
from torch_parity import TOL

from rnnlab import GRU
from rnnlab.nn.torch_compat import export_params, import_params

torch = pytest.importorskip("torch")

LENGTHS = [None, [3, 1, 6, 2], [6, 2, 1, 6]]  # max < T (some == 1), and max == T
LENGTH_IDS = ["full", "max<T", "max=T"]


@pytest.mark.parametrize("lengths", LENGTHS, ids=LENGTH_IDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", CELLS)
def test_bidirectional_matches_torch(cell, num_layers, bias, dtype, lengths):
    layer = make_bidi(cell, num_layers, bias=bias, dtype=dtype)
    x, state = inputs(layer, T=6, N=4)
    ours = check_against_torch(layer, x, state, lens(lengths))
    assert ours["y[0]"].shape == (6, 4, 2 * H) and leaves(ours["state[0]"])[0].shape[0] == (
        2 * num_layers)
    for n, length in enumerate(lengths or []):
        assert not ours["y[0]"][length:, n].any()  # zero past each sequence's end


@pytest.mark.parametrize("lengths", [None, [5, 1, 3]], ids=["full", "lengths"])
@pytest.mark.parametrize("cell", CELLS)
def test_bidirectional_zero_initial_state_matches_torch(cell, lengths):
    layer = make_bidi(cell, 2)
    x, _ = inputs(layer, T=5, N=3)
    check_against_torch(layer, x, None, lens(lengths))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num_layers", [1, 2])
def test_reference_bilstm_is_torch_lstm(num_layers, dtype):
    """RefBiLSTM, the reference for peepholes and cell outputs, agrees with nn.LSTM."""
    layer = make_bidi("lstm", num_layers, dtype=dtype)
    x, state = inputs(layer, T=5, N=4)
    x_t, s_t = torch.from_numpy(x), tuple(torch.from_numpy(s) for s in state)
    with torch.no_grad():
        for lengths in (None, np.array([5, 1, 3, 2])):
            y_ref, final_ref = run_torch(torch_twin(layer, ref=True), x_t, s_t, lengths)
            y, final = run_torch(torch_twin(layer), x_t, s_t, lengths)
            for a, b in zip([y_ref[0], *final_ref], [y, *final], strict=True):
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("lengths", [None, [4, 1, 2]], ids=["full", "lengths"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_bidirectional_peephole_lstm_matches_reference(num_layers, bias, dtype, lengths):
    layer = make_bidi("lstm_peephole", num_layers, bias=bias, dtype=dtype)
    assert {f"weight_c{g}_l{k}_reverse" for g in "ifo" for k in range(num_layers)} <= set(
        export_params(layer))
    x, state = inputs(layer, T=5, N=3)
    check_against_torch(layer, x, state, lens(lengths))


@pytest.mark.parametrize("lengths", [None, [2, 5, 1]], ids=["full", "lengths"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", ["lstm", "lstm_peephole"])
def test_bidirectional_return_cells_matches_reference(cell, num_layers, lengths):
    layer = make_bidi(cell, num_layers)
    x, state = inputs(layer, T=5, N=3)
    ours = check_against_torch(layer, x, state, lens(lengths), return_cells=True)
    assert ours["y[1]"].shape == (5, 3, 2 * H)
    for n, length in enumerate(lengths or []):
        assert not ours["y[1]"][length:, n].any()


@pytest.mark.parametrize("lengths", [None, [5, 2, 1]], ids=["full", "lengths"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", [*CELLS, "lstm_peephole"])
def test_bidirectional_dropout_matches_torch_with_same_mask(cell, dtype, lengths):
    layer = make_bidi(cell, 2, dtype=dtype, dropout=0.5)
    x, state = inputs(layer, T=5, N=3)
    check_against_torch(layer, x, state, lens(lengths))
    drops = layer._cache["drops"]
    assert drops[0] is None and drops[1].shape == (5, 3, 2 * H)  # on both directions' output
    assert set(np.unique(drops[1])) == {0.0, 2.0}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", CELLS)
def test_bidirectional_dropout_in_eval_mode_matches_torch_eval(cell, dtype):
    layer = make_bidi(cell, 2, dtype=dtype, dropout=0.5).eval()
    x, state = inputs(layer, T=5, N=3)
    check_against_torch(layer, x, state, np.array([5, 2, 4]))  # torch module: dropout=0.5, eval
    assert all(d is None for d in layer._cache["drops"])


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm_peephole", "gru"])
def test_bidirectional_second_backward_repeats_the_first(cell):
    layer = make_bidi(cell, 2)
    x, state = inputs(layer, T=4, N=2)
    rng = np.random.default_rng(7)
    dy, dstate = rng.standard_normal((4, 2, 2 * H)), random_state(layer, 2, rng)
    layer.zero_grad()
    layer.forward(x, state, [4, 2])
    dx1, ds1 = layer.backward(dy, dstate)
    grads1 = export_params(layer, grads=True)
    dx2, ds2 = layer.backward(dy, dstate)
    for a, b in zip([dx1, *leaves(ds1)], [dx2, *leaves(ds2)], strict=True):
        np.testing.assert_array_equal(a, b)
    for name, g in export_params(layer, grads=True).items():
        np.testing.assert_allclose(g, 2 * grads1[name], rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", [*CELLS, "lstm_peephole"])
def test_torch_compat_round_trip_with_reverse_names(cell, dtype):
    layer = make_bidi(cell, 2, dtype=dtype)
    exported = export_params(layer)
    if cell != "lstm_peephole":  # torch's own state_dict: same names, order and shapes
        state = torch_twin(layer).state_dict()
        assert list(exported) == list(state)
        assert "weight_ih_l1_reverse" in state and state["weight_ih_l1"].shape[1] == 2 * H
    else:
        state = {k: torch.from_numpy(v) for k, v in exported.items()}
        assert "weight_co_l1_reverse" in state
    fresh = make_bidi(cell, 2, dtype=dtype, seed=9)
    import_params(fresh, state)
    for name, value in export_params(fresh).items():
        np.testing.assert_array_equal(value, exported[name], err_msg=name)


def test_truncate_is_refused():
    layer = make_bidi("lstm", 2)
    x, state = inputs(layer, T=4, N=2)
    y, _ = layer.forward(x, state)
    with pytest.raises(ValueError, match="truncate= has no meaning for a bidirectional"):
        layer.backward(np.ones_like(y), truncate=2)
    dx, _ = layer.backward(np.ones_like(y))  # the forward cache is intact
    assert dx.shape == x.shape


def test_input_table_path_is_refused():
    layer = make_bidi("gru", 1)
    E = np.ones((6, D))
    for call in (lambda: layer.input_table(E),
                 lambda: layer.forward_rows(np.ones((6, 3 * H)), np.zeros((2, 1), int)),
                 lambda: layer.input_table_backward(E, np.ones((6, 3 * H)))):
        with pytest.raises(ValueError, match="bidirectional layer takes x: call forward"):
            call()


def test_bad_bidirectional_arguments():
    with pytest.raises(ValueError, match="bidirectional must be True or False"):
        GRU(D, H, bidirectional="yes", rng=np.random.default_rng(0))
    layer = make_bidi("lstm", 2)
    x, _ = inputs(layer, T=3, N=2)
    one_way = tuple(np.zeros((2, 2, H)) for _ in range(2))  # (num_layers, N, H): too few rows
    with pytest.raises(ValueError, match=r"shape \(num_layers \* 2, N, H\) = \(4, 2, 5\)"):
        layer.forward(x, one_way)
