"""bidirectional=True against PyTorch: outputs, states and every gradient, lengths included.

RNN, LSTM and GRU are compared with ``torch.nn.RNN/LSTM/GRU(bidirectional=True)`` (packed
sequences for ``lengths``); the peephole LSTM, which torch lacks, with ``RefBiLSTM``, a
plain autograd loop that runs each sequence on its own (the reverse direction from its own
last step), itself checked against ``torch.nn.LSTM``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_recurrent_torch import CELLS, DTYPES, TORCH_DTYPE, D, H, leaves, random_nonzero
from torch_parity import TOL, assert_close

from rnnlab import GRU, LSTM, RNN
from rnnlab.torch_compat import export_params, import_params

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

LENGTHS = [None, [3, 1, 6, 2], [6, 2, 1, 6]]  # max < T (some == 1), and max == T
LENGTH_IDS = ["full", "max<T", "max=T"]
NAME = re.compile(r"^(.*)_l(\d+)(_reverse)?$")


def make_bidi(cell, num_layers=1, *, bias=True, dtype=np.float64, dropout=0.0, seed=0):
    """A bidirectional rnnlab layer with random non-zero weights and biases."""
    rng = np.random.default_rng(seed)
    kw = dict(bias=bias, dropout=dropout, bidirectional=True, dtype=dtype, rng=rng)
    if cell.startswith("rnn_"):
        layer = RNN(D, H, num_layers, nonlinearity=cell[4:], **kw)
    elif cell == "gru":
        layer = GRU(D, H, num_layers, **kw)
    else:
        layer = LSTM(D, H, num_layers, peephole=cell == "lstm_peephole", **kw)
    import_params(layer, {name: random_nonzero(rng, v.shape) for name, v in
                          export_params(layer).items()})
    return layer


def lstm_step(p, x, h, c, peephole):
    """One plain LSTM step for one sequence: x (D,), h, c (H,)."""
    a = x @ p["weight_ih"].T + h @ p["weight_hh"].T
    if "bias_ih" in p:
        a = a + p["bias_ih"] + p["bias_hh"]
    a_i, a_f, a_g, a_o = a.chunk(4)
    if peephole:
        a_i, a_f = a_i + p["weight_ci"] * c, a_f + p["weight_cf"] * c
    c = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
    if peephole:
        a_o = a_o + p["weight_co"] * c
    return torch.sigmoid(a_o) * torch.tanh(c), c


class RefBiLSTM(torch.nn.Module):
    """Bidirectional LSTM by plain loops, one sequence at a time, optionally with peepholes.

    Direction 0 reads steps 0 .. L_n - 1 of sequence n, direction 1 reads L_n - 1 .. 0;
    outputs past L_n are zero. Returns ((h_seq, c_seq) of the top layer, (h_n, c_n)).
    """

    def __init__(self, input_size, hidden_size, num_layers, *, bias, peephole, dtype):
        super().__init__()
        self.num_layers, self.hidden_size, self.peephole = num_layers, hidden_size, peephole
        G = 4 * hidden_size
        for k in range(num_layers):
            shapes = {"weight_ih": (G, input_size if k == 0 else 2 * hidden_size),
                      "weight_hh": (G, hidden_size)}
            if bias:
                shapes.update(bias_ih=(G,), bias_hh=(G,))
            if peephole:
                shapes.update({f"weight_c{g}": (hidden_size,) for g in "ifo"})
            for suffix in ("", "_reverse"):
                for name, shape in shapes.items():
                    self.register_parameter(f"{name}_l{k}{suffix}",
                                            torch.nn.Parameter(torch.empty(shape, dtype=dtype)))

    def forward(self, x, state, lengths=None):
        T, N = x.shape[:2]
        lengths = [T] * N if lengths is None else [int(n) for n in lengths]
        h0, c0 = state
        inp, hn, cn = x, [], []
        for k in range(self.num_layers):
            seqs = []
            for d, suffix in enumerate(("", "_reverse")):
                p = {m.group(1): v for name, v in self.named_parameters()
                     if (m := NAME.match(name)) and int(m.group(2)) == k
                     and (m.group(3) or "") == suffix}
                j, cols = 2 * k + d, []
                for n, L in enumerate(lengths):
                    h, c, out = h0[j, n], c0[j, n], {}
                    for t in (reversed(range(L)) if d else range(L)):
                        h, c = lstm_step(p, inp[t, n], h, c, self.peephole)
                        out[t] = (h, c)
                    zero = torch.zeros(self.hidden_size, dtype=x.dtype)
                    cols.append([torch.stack([out.get(t, (zero, zero))[i] for t in range(T)])
                                 for i in (0, 1)])
                    hn.append(h)
                    cn.append(c)
                seqs.append([torch.stack([col[i] for col in cols], dim=1) for i in (0, 1)])
            inp = torch.cat([seqs[0][0], seqs[1][0]], dim=-1)  # (T, N, 2H)
        c_seq = torch.cat([seqs[0][1], seqs[1][1]], dim=-1)
        shape = (2 * self.num_layers, N, self.hidden_size)
        return (inp, c_seq), (torch.stack(hn).reshape(shape), torch.stack(cn).reshape(shape))


def torch_twin(layer, layers=None, *, ref=False):
    """The torch module equal to ``layer`` (or to its layers ``layers``, renumbered from 0)."""
    ks = list(range(layer.num_layers)) if layers is None else list(layers)
    state_dict = {}
    for name, value in export_params(layer).items():
        base, k, suffix = NAME.match(name).groups()
        if int(k) in ks:
            state_dict[f"{base}_l{ks.index(int(k))}{suffix or ''}"] = torch.from_numpy(value)
    size = layer.input_size if ks[0] == 0 else 2 * layer.hidden_size
    args = (size, layer.hidden_size, len(ks))
    kw = dict(bias=layer.bias, dtype=TORCH_DTYPE[layer.dtype.type])
    if isinstance(layer, LSTM) and (ref or layer.peephole):
        mod = RefBiLSTM(*args, peephole=layer.peephole, **kw)
    else:
        kw.update(bidirectional=True, dropout=layer.dropout if len(ks) > 1 else 0.0)
        if isinstance(layer, RNN):
            kw["nonlinearity"] = layer.nonlinearity
        mod = {LSTM: torch.nn.LSTM, GRU: torch.nn.GRU, RNN: torch.nn.RNN}[type(layer)](*args, **kw)
    mod.load_state_dict(state_dict, strict=True)
    return mod.train(layer.training)


def run_torch(mod, x, state, lengths):
    """(y, final state) of a torch module; y is (h_seq, c_seq) for RefBiLSTM."""
    if isinstance(mod, RefBiLSTM):
        return mod(x, state, lengths)
    if lengths is None:
        return mod(x, state)
    packed = pack_padded_sequence(x, torch.as_tensor(lengths), enforce_sorted=False)
    out, final = mod(packed, state)
    return pad_packed_sequence(out, total_length=x.shape[0])[0], final


def torch_reference(layer, x, state, lengths, drops, *, ref=False):
    """y, final state, {name: torch parameter}; with dropout masks, one twin per layer."""
    if not any(d is not None for d in drops):
        mod = torch_twin(layer, ref=ref)
        return (*run_torch(mod, x, state, lengths), dict(mod.named_parameters()))
    parts = state if isinstance(state, tuple) else (state,)
    inp, finals, params = x, [], {}
    for k, drop in enumerate(drops):
        mod = torch_twin(layer, [k], ref=ref)
        if drop is not None:
            inp = inp * torch.from_numpy(drop)
        s_k = tuple(s[2 * k:2 * k + 2] for s in parts)
        y, final = run_torch(mod, inp, s_k if len(s_k) == 2 else s_k[0], lengths)
        inp = leaves(y)[0]
        finals.append(leaves(final))
        params.update({name.replace("_l0", f"_l{k}"): p for name, p in mod.named_parameters()})
    final = tuple(torch.cat(f) for f in zip(*finals, strict=True))
    return y, final if len(final) == 2 else final[0], params


def random_state(layer, N, rng):
    shape = (2 * layer.num_layers, N, layer.hidden_size)
    parts = tuple(rng.standard_normal(shape).astype(layer.dtype) for _ in layer.state_names)
    return parts if len(parts) == 2 else parts[0]


def check_against_torch(layer, x, state=None, lengths=None, *, return_cells=False, seed=1):
    """One forward/backward on both sides; compare y, states, dx, dstate0 and every grad."""
    rng = np.random.default_rng(seed)
    T, N, _ = x.shape
    dtype, n_out = layer.dtype.type, 2 if return_cells else 1
    dy = tuple(rng.standard_normal((T, N, 2 * H)).astype(dtype) for _ in range(n_out))
    dstate = random_state(layer, N, rng)
    layer.zero_grad()
    y, final = layer.forward(x, state, lengths, return_cells=return_cells)
    dx, dstate0 = layer.backward(dy if return_cells else dy[0], dstate)
    grads = export_params(layer, grads=True)

    x_t = torch.tensor(x, requires_grad=True)
    s0 = state if state is not None else tuple(np.zeros_like(s) for s in leaves(dstate))
    s0_t = tuple(torch.tensor(s, requires_grad=True) for s in leaves(s0))
    y_t, final_t, params_t = torch_reference(layer, x_t, s0_t if len(s0_t) == 2 else s0_t[0],
                                             lengths, layer._cache["drops"], ref=return_cells)
    y_t = leaves(y_t)[:n_out]
    pairs = [*zip(y_t, dy, strict=True), *zip(leaves(final_t), leaves(dstate), strict=True)]
    sum((a * torch.from_numpy(b)).sum() for a, b in pairs).backward()

    ours = {"x": dx, **{f"y[{i}]": v for i, v in enumerate(leaves(y))},
            **{f"state[{i}]": v for i, v in enumerate(leaves(final))},
            **{f"dstate0[{i}]": v for i, v in enumerate(leaves(dstate0))}}
    theirs = {"x": x_t.grad, **{f"y[{i}]": v for i, v in enumerate(y_t)},
              **{f"state[{i}]": v for i, v in enumerate(leaves(final_t))},
              **{f"dstate0[{i}]": s.grad for i, s in enumerate(s0_t)}}
    assert len(leaves(y)) == n_out and len(leaves(final)) == len(s0_t) == len(leaves(dstate0))
    assert list(grads) == list(params_t)  # PyTorch's names, in its order
    for name, p in params_t.items():
        ours[f"grad {name}"], theirs[f"grad {name}"] = grads[name], p.grad
    for name in ours:
        assert_close(name, ours[name], theirs[name], dtype)
    return ours


def inputs(layer, T, N, seed=2, *, with_state=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, N, layer.input_size)).astype(layer.dtype)
    return x, random_state(layer, N, rng) if with_state else None


def lens(lengths):
    return None if lengths is None else np.array(lengths)


# ------------------------------------------------------------------------------- tests


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
