"""The torch side of tests/test_bidirectional.py: twins, a reference, the one comparison.

``torch_twin`` builds ``torch.nn.RNN/LSTM/GRU(bidirectional=True)`` with a bidirectional
rnnlab layer's weights (or ``RefBiLSTM`` for peepholes and cell outputs, which torch
lacks); ``check_against_torch`` runs one forward and backward on both sides and compares
y, the final state, dx, the initial-state gradient and every parameter gradient.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_recurrent_torch import TORCH_DTYPE, D, H, leaves, random_nonzero
from torch_parity import assert_close

from rnnlab import GRU, LSTM, RNN
from rnnlab.nn.torch_compat import export_params, import_params

torch = pytest.importorskip("torch")
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

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
