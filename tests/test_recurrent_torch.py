"""RNN, LSTM and GRU against PyTorch autograd: outputs, states and every gradient.

Every test runs one forward and one backward on both sides and compares y, the final
state, dx, the initial-state gradient and each parameter gradient (``check_against_torch``).
The torch side comes from one helper, ``torch_twin``, which builds ``nn.RNN``/``nn.LSTM``/
``nn.GRU`` (or, for what torch lacks, ``RefLSTM``: peepholes and per-step cell states)
with the weights copied over by ``export_params``.
"""

from __future__ import annotations

import numpy as np
import pytest
from torch_parity import TOL, assert_close

from rnnlab import GRU, LSTM, RNN
from rnnlab.nn.torch_compat import export_params, import_params

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

DTYPES = [np.float64, np.float32]
TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}
CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]  # torch.nn has each of these
ALL_CELLS = [*CELLS, "lstm_peephole"]  # and this one only through RefLSTM
D, H = 3, 5


# ------------------------------------------------------------------------ construction


def make_layer(cell, num_layers=1, *, bias=True, dtype=np.float64, dropout=0.0, seed=0):
    """An rnnlab layer with random non-zero weights and biases of order one."""
    rng = np.random.default_rng(seed)
    kw = dict(bias=bias, dropout=dropout, dtype=dtype, rng=rng)
    if cell.startswith("rnn_"):
        layer = RNN(D, H, num_layers, nonlinearity=cell[4:], **kw)
    elif cell == "gru":
        layer = GRU(D, H, num_layers, **kw)
    else:
        layer = LSTM(D, H, num_layers, peephole=cell == "lstm_peephole", **kw)
    import_params(layer, {name: random_nonzero(rng, v.shape) for name, v in
                          export_params(layer).items()})
    return layer


def random_nonzero(rng, shape):
    """Magnitudes in [0.2, 1) with random signs; matrices scaled by 1/sqrt(fan-in)."""
    scale = 1 / np.sqrt(shape[1]) if len(shape) == 2 else 1.0
    return rng.uniform(0.2, 1.0, shape) * rng.choice([-1.0, 1.0], shape) * scale


class RefLSTM(torch.nn.Module):
    """A plain autograd LSTM, optionally with peepholes, that also returns every c_t.

    Past a sequence's length (``lengths``) the state is held and the outputs are zero.
    Parameter names and layouts are rnnlab's (PyTorch's, plus weight_c{i,f,o}_l{k}).
    """

    def __init__(self, input_size, hidden_size, num_layers, *, bias, peephole, dtype):
        super().__init__()
        self.num_layers, self.bias, self.peephole = num_layers, bias, peephole
        for k in range(num_layers):
            shapes = {"weight_ih": (4 * hidden_size, input_size if k == 0 else hidden_size),
                      "weight_hh": (4 * hidden_size, hidden_size)}
            if bias:
                shapes.update(bias_ih=(4 * hidden_size,), bias_hh=(4 * hidden_size,))
            if peephole:
                shapes.update(weight_ci=(hidden_size,), weight_cf=(hidden_size,),
                              weight_co=(hidden_size,))
            for name, shape in shapes.items():
                self.register_parameter(f"{name}_l{k}",
                                        torch.nn.Parameter(torch.empty(shape, dtype=dtype)))

    def forward(self, x, state, lengths=None):
        T = x.shape[0]
        mask = None
        if lengths is not None:
            mask = (torch.arange(T)[:, None] < torch.as_tensor(lengths)[None, :])[..., None]
        h0, c0 = state
        inp, hn, cn = x, [], []
        for k in range(self.num_layers):
            p = {name[:-len(f"_l{k}")]: v for name, v in self.named_parameters()
                 if name.endswith(f"_l{k}")}
            h, c, hs, cs = h0[k], c0[k], [], []
            for t in range(T):
                a = inp[t] @ p["weight_ih"].T + h @ p["weight_hh"].T
                if self.bias:
                    a = a + p["bias_ih"] + p["bias_hh"]
                a_i, a_f, a_g, a_o = a.chunk(4, dim=-1)
                if self.peephole:
                    a_i = a_i + p["weight_ci"] * c
                    a_f = a_f + p["weight_cf"] * c
                i, f, g = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g)
                c_new = f * c + i * g
                if self.peephole:
                    a_o = a_o + p["weight_co"] * c_new
                h_new = torch.sigmoid(a_o) * torch.tanh(c_new)
                if mask is not None:
                    h_new = torch.where(mask[t], h_new, h)
                    c_new = torch.where(mask[t], c_new, c)
                h, c = h_new, c_new
                hs.append(h)
                cs.append(c)
            inp = torch.stack(hs)
            hn.append(h)
            cn.append(c)
        h_seq, c_seq = inp, torch.stack(cs)
        if mask is not None:
            h_seq, c_seq = h_seq * mask, c_seq * mask
        return (h_seq, c_seq), (torch.stack(hn), torch.stack(cn))


def torch_twin(layer, layers=None, *, ref=False):
    """The torch module equal to ``layer`` (weights copied via export_params).

    layers: only these layers of the stack, renumbered from 0 (a single-layer module per
    layer, for the dropout reference). ref: an LSTM as RefLSTM even without peepholes.
    """
    ks = list(range(layer.num_layers)) if layers is None else list(layers)
    state_dict = {}
    for name, value in export_params(layer).items():
        base, k = name.rsplit("_l", 1)
        if int(k) in ks:
            state_dict[f"{base}_l{ks.index(int(k))}"] = torch.from_numpy(value)
    args = (layer.input_size if ks[0] == 0 else layer.hidden_size, layer.hidden_size, len(ks))
    kw = dict(bias=layer.bias, dtype=TORCH_DTYPE[layer.dtype.type])
    if isinstance(layer, LSTM) and (ref or layer.peephole):
        mod = RefLSTM(*args, peephole=layer.peephole, **kw)
    elif isinstance(layer, LSTM):
        mod = torch.nn.LSTM(*args, **kw)
    elif isinstance(layer, GRU):
        mod = torch.nn.GRU(*args, **kw)
    else:
        mod = torch.nn.RNN(*args, nonlinearity=layer.nonlinearity, **kw)
    mod.load_state_dict(state_dict, strict=True)
    return mod


def run_torch(mod, x, state, lengths):
    """(y, final state) of a torch module; y is (h_seq, c_seq) for RefLSTM."""
    if isinstance(mod, RefLSTM):
        return mod(x, state, lengths)
    hx = tuple(state) if isinstance(mod, torch.nn.LSTM) else state
    if lengths is None:
        return mod(x, hx)
    packed = pack_padded_sequence(x, torch.as_tensor(lengths), enforce_sorted=False)
    out, final = mod(packed, hx)
    y, _ = pad_packed_sequence(out, total_length=x.shape[0])
    return y, final


def torch_reference(layer, x, state, lengths, drops=(), *, ref=False):
    """y, final state and {rnnlab name: torch parameter} for ``layer``'s computation.

    With dropout masks (``drops[k]`` scales layer k's input) the stack is built from
    single-layer twins, the input of each multiplied by rnnlab's own mask.
    """
    if not any(d is not None for d in drops):
        mod = torch_twin(layer, ref=ref)
        y, final = run_torch(mod, x, state, lengths)
        return y, final, dict(mod.named_parameters())
    parts = state if isinstance(state, tuple) else (state,)
    inp, finals, params = x, [], {}
    for k, drop in enumerate(drops):
        mod = torch_twin(layer, [k], ref=ref)
        if drop is not None:
            inp = inp * torch.from_numpy(drop)
        s_k = tuple(s[k:k + 1] for s in parts)
        y, final = run_torch(mod, inp, s_k if len(s_k) == 2 else s_k[0], lengths)
        inp = y[0] if isinstance(y, tuple) else y
        finals.append(final if isinstance(final, tuple) else (final,))
        params.update({name.replace("_l0", f"_l{k}"): p for name, p in mod.named_parameters()})
    final = tuple(torch.cat(f) for f in zip(*finals, strict=True))
    return y, final if len(final) == 2 else final[0], params


# -------------------------------------------------------------------------- comparison


def leaves(obj):
    return list(obj) if isinstance(obj, (tuple, list)) else [obj]


def random_state(layer, N, rng):
    shape = (layer.num_layers, N, layer.hidden_size)
    parts = tuple(rng.standard_normal(shape).astype(layer.dtype)
                  for _ in range(2 if isinstance(layer, LSTM) else 1))
    return parts if len(parts) == 2 else parts[0]


def check_against_torch(layer, x, state=None, lengths=None, *, return_cells=False, seed=1):
    """One forward/backward on both sides; compare everything. Returns both sides' results."""
    rng = np.random.default_rng(seed)
    T, N, _ = x.shape
    dtype = layer.dtype.type
    n_out = 2 if return_cells else 1
    dy = tuple(rng.standard_normal((T, N, layer.hidden_size)).astype(dtype) for _ in range(n_out))
    dstate = random_state(layer, N, rng)

    layer.zero_grad()
    y, final = layer.forward(x, state, lengths, return_cells=return_cells)
    drops = list(layer._cache["drops"])
    dx, dstate0 = layer.backward(dy if return_cells else dy[0], dstate)
    grads = export_params(layer, grads=True)

    x_t = torch.tensor(x, requires_grad=True)
    s0 = state if state is not None else tuple(np.zeros_like(s) for s in leaves(dstate))
    s0_t = tuple(torch.tensor(s, requires_grad=True) for s in leaves(s0))
    y_t, final_t, params_t = torch_reference(
        layer, x_t, s0_t if len(s0_t) == 2 else s0_t[0], lengths, drops, ref=return_cells)
    y_t = leaves(y_t)[:n_out]
    loss = sum((a * torch.from_numpy(b)).sum() for a, b in zip(y_t, dy, strict=True))
    loss = loss + sum((a * torch.from_numpy(b)).sum()
                      for a, b in zip(leaves(final_t), leaves(dstate), strict=True))
    loss.backward()

    ours = {"x": dx, **{f"y[{i}]": v for i, v in enumerate(leaves(y)[:n_out])},
            **{f"state[{i}]": v for i, v in enumerate(leaves(final))},
            **{f"dstate0[{i}]": v for i, v in enumerate(leaves(dstate0))}}
    theirs = {"x": x_t.grad, **{f"y[{i}]": v for i, v in enumerate(y_t)},
              **{f"state[{i}]": v for i, v in enumerate(leaves(final_t))},
              **{f"dstate0[{i}]": s.grad for i, s in enumerate(s0_t)}}
    assert len(leaves(y)) == n_out and len(leaves(final)) == len(s0_t) == len(leaves(dstate0))
    assert set(grads) == set(params_t)
    for name, p in params_t.items():
        ours[f"grad {name}"], theirs[f"grad {name}"] = grads[name], p.grad
    theirs = {k: v.detach().numpy().copy() for k, v in theirs.items()}
    for name in ours:
        assert_close(name, ours[name], theirs[name], dtype)
    return ours, theirs


def inputs(layer, T, N, seed=2, *, with_state=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, N, layer.input_size)).astype(layer.dtype)
    return x, random_state(layer, N, rng) if with_state else None


# ------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("with_state", [True, False], ids=["state", "zero_state"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", CELLS)
def test_full_sequences_match_torch(cell, num_layers, bias, dtype, with_state):
    layer = make_layer(cell, num_layers, bias=bias, dtype=dtype)
    x, state = inputs(layer, T=6, N=3, with_state=with_state)
    check_against_torch(layer, x, state)


LENGTHS = [[3, 1, 5, 1], [6, 2, 1, 6]]  # max < T (some == 1), and max == T


@pytest.mark.parametrize("with_state", [True, False], ids=["state", "zero_state"])
@pytest.mark.parametrize("lengths", LENGTHS, ids=["max<T", "max=T"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", CELLS)
def test_variable_lengths_match_packed_torch(cell, num_layers, bias, dtype, lengths, with_state):
    layer = make_layer(cell, num_layers, bias=bias, dtype=dtype)
    x, state = inputs(layer, T=6, N=4, with_state=with_state)
    ours, _ = check_against_torch(layer, x, state, lengths)  # a plain list is accepted
    for n, length in enumerate(lengths):
        assert not ours["y[0]"][length:, n].any()  # zero past each sequence's end


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num_layers", [1, 2])
def test_reference_lstm_is_torch_lstm(num_layers, dtype):
    """RefLSTM, the reference for what torch lacks, agrees with nn.LSTM (with lengths too)."""
    layer = make_layer("lstm", num_layers, dtype=dtype)
    x, state = inputs(layer, T=5, N=4)
    lengths = np.array([5, 1, 3, 2])
    x_t = torch.from_numpy(x)
    s_t = tuple(torch.from_numpy(s) for s in state)
    with torch.no_grad():
        for lens in (None, lengths):
            y_ref, final_ref = run_torch(torch_twin(layer, ref=True), x_t, s_t, lens)
            y, final = run_torch(torch_twin(layer), x_t, s_t, lens)
            for a, b in zip([y_ref[0], *final_ref], [y, *final], strict=True):
                np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("lengths", [None, [4, 1, 2]], ids=["full", "lengths"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_peephole_lstm_matches_reference(num_layers, bias, dtype, lengths):
    layer = make_layer("lstm_peephole", num_layers, bias=bias, dtype=dtype)
    assert {f"weight_c{g}_l{k}" for g in "ifo" for k in range(num_layers)} <= set(
        export_params(layer))
    x, state = inputs(layer, T=5, N=3)
    check_against_torch(layer, x, state, None if lengths is None else np.array(lengths))


def test_peephole_lstm_with_zero_peepholes_is_torch_lstm():
    layer = make_layer("lstm_peephole", 2)
    params = export_params(layer)
    import_params(layer, {k: v * 0 if "weight_c" in k else v for k, v in params.items()})
    x, state = inputs(layer, T=4, N=2)
    y, final = layer.forward(x, state)
    mod = torch.nn.LSTM(D, H, 2, dtype=torch.float64)
    mod.load_state_dict({k: torch.from_numpy(v) for k, v in params.items() if "weight_c" not in k})
    with torch.no_grad():
        y_t, final_t = mod(torch.from_numpy(x), tuple(torch.from_numpy(s) for s in state))
    for a, b in zip([y, *final], [y_t, *final_t], strict=True):
        np.testing.assert_allclose(a, b.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("lengths", [None, [2, 5, 1]], ids=["full", "lengths"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", ["lstm", "lstm_peephole"])
def test_return_cells_matches_reference(cell, num_layers, dtype, lengths):
    layer = make_layer(cell, num_layers, dtype=dtype)
    x, state = inputs(layer, T=5, N=3)
    ours, _ = check_against_torch(layer, x, state, None if lengths is None else np.array(lengths),
                                  return_cells=True)
    if lengths is not None:
        for n, length in enumerate(lengths):
            assert not ours["y[1]"][length:, n].any()


@pytest.mark.parametrize("lengths", [None, [5, 2, 1]], ids=["full", "lengths"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", ALL_CELLS)
def test_dropout_between_layers_matches_torch_with_same_mask(cell, dtype, lengths):
    layer = make_layer(cell, 2, dtype=dtype, dropout=0.5)
    x, state = inputs(layer, T=5, N=3)
    check_against_torch(layer, x, state, None if lengths is None else np.array(lengths))
    drops = layer._cache["drops"]
    assert drops[0] is None and drops[1].shape == (5, 3, H)
    assert set(np.unique(drops[1])) == {0.0, 2.0}  # a real inverted-dropout mask was used


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cell", ALL_CELLS)
def test_dropout_in_eval_mode_is_no_dropout(cell, dtype):
    layer = make_layer(cell, 2, dtype=dtype, dropout=0.5)
    plain = make_layer(cell, 2, dtype=dtype)  # same seed: same weights, no dropout
    layer.eval()
    x, state = inputs(layer, T=5, N=3)
    ours, _ = check_against_torch(layer, x, state)
    assert all(d is None for d in layer._cache["drops"])
    expected, _ = check_against_torch(plain, x, state)
    for name in expected:
        np.testing.assert_array_equal(ours[name], expected[name], err_msg=name)
    layer.train()
    layer.forward(x, state)
    assert layer._cache["drops"][1] is not None  # back in training mode it drops again


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", ALL_CELLS)
def test_buffer_reuse_across_shapes(cell, num_layers, dtype):
    """(T, N) = A, B, A again on one layer; returned arrays must not alias internal buffers."""
    layer = make_layer(cell, num_layers, dtype=dtype)
    kept = []
    for i, (T, N, lengths) in enumerate([(5, 3, None), (3, 2, [3, 1]), (5, 3, None),
                                         (1, 1, None), (5, 3, [2, 5, 4])]):
        x, state = inputs(layer, T, N, seed=10 + i)
        kept.append(check_against_torch(layer, x, state, lengths and np.array(lengths),
                                        seed=20 + i))
    for ours, theirs in kept:  # the earlier calls' results were not overwritten later
        for name in ours:
            if not name.startswith("grad"):
                assert_close(name, ours[name], theirs[name], dtype)


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_second_backward_repeats_the_first(cell):
    """backward leaves the forward cache intact: the same dx again, parameter grads doubled."""
    layer = make_layer(cell, 2)
    x, state = inputs(layer, T=4, N=2)
    rng = np.random.default_rng(7)
    dy = rng.standard_normal((4, 2, H))
    dstate = random_state(layer, 2, rng)
    layer.zero_grad()
    layer.forward(x, state, [4, 2])
    dx1, ds1 = layer.backward(dy, dstate)
    grads1 = export_params(layer, grads=True)
    dx2, ds2 = layer.backward(dy, dstate)
    for a, b in zip([dx1, *leaves(ds1)], [dx2, *leaves(ds2)], strict=True):
        np.testing.assert_array_equal(a, b)
    for name, g in export_params(layer, grads=True).items():
        np.testing.assert_allclose(g, 2 * grads1[name], rtol=1e-12, atol=1e-14, err_msg=name)
