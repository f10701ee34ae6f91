"""A small ONNX graph builder, and rnnlab's recurrent stacks as ONNX ``LSTM``/``GRU``/``RNN``.

ONNX's recurrent operators hold one layer (one or both directions) each, time-major like
rnnlab (``layout=0``)::

    X (T, N, D) -> Y (T, dirs, N, H), Y_h (dirs, N, H), Y_c (dirs, N, H)   LSTM only: Y_c
    W (dirs, G*H, D)   R (dirs, G*H, H)   B (dirs, 2*G*H) = [b_ih, b_hh]   P (dirs, 3H)

with the gate blocks in another order than rnnlab's (PyTorch's)::

    rnnlab LSTM  i f g o      ->  ONNX LSTM  i o f c      (g is ONNX's c)
    rnnlab GRU   r z n        ->  ONNX GRU   z r h        linear_before_reset=1: PyTorch's
                                                          n = tanh(W_n x + b_in + r*(R_n h + b_hn))
    peepholes    w_ci w_cf w_co ->  P = [p_i p_o p_f]

Direction slots match rnnlab's (forward, then reverse: rows 2l and 2l+1 of the state), and
ONNX's ``sequence_lens`` does what rnnlab's ``lengths`` does: outputs past a sequence's
end are zero and Y_h is the state at its last real step (the reverse direction starting
there). Dropout is absent: a model is exported in eval mode, where dropout is the identity.
``onnx`` is imported inside the functions (an optional extra, never needed by ``import rnnlab``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

OPSET = 17  # the ai.onnx opset of every exported graph (LSTM-14, GRU-14, RNN-14, Squeeze-13)
GATE_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN": (0,)}  # ONNX block <- rnnlab block


class Graph:
    """Nodes, initializers, inputs and outputs of one ONNX graph in the dtype of a model."""

    def __init__(self, dtype: Any) -> None:
        from onnx import helper

        self.dtype = np.dtype(dtype)
        self.elem = helper.np_dtype_to_tensor_dtype(self.dtype)  # FLOAT or DOUBLE
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.inputs: list[Any] = []
        self.outputs: list[Any] = []
        self._count = 0

    def fresh(self, base: str) -> str:
        self._count += 1
        return f"{base}_{self._count}"

    def init(self, name: str, array: Any, dtype: Any = None) -> str:
        """A constant tensor (a weight, or a shape) named ``name``; returns the name."""
        from onnx import numpy_helper

        a = np.ascontiguousarray(array, dtype=self.dtype if dtype is None else dtype)
        self.inits.append(numpy_helper.from_array(a, name))
        return name

    def ints(self, *values: int) -> str:
        """A 1-D int64 constant (axes, shapes, indices)."""
        return self.init(self.fresh("ints"), np.array(values, np.int64), np.int64)

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, *, out: str | None = None,
           **attrs: Any) -> Any:
        """Add one node; returns its output name (or names when ``n_out`` > 1)."""
        from onnx import helper

        outs = [out] if out else [self.fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.fresh(op_type),
                                           **attrs))
        return outs[0] if n_out == 1 else outs

    def input(self, name: str, shape: list[Any], elem: int | None = None) -> str:
        from onnx import helper

        self.inputs.append(helper.make_tensor_value_info(name, elem or self.elem, shape))
        return name

    def output(self, value: str, name: str, shape: list[Any], elem: int | None = None) -> None:
        """Expose ``value`` as the graph output ``name``."""
        from onnx import helper

        self.op("Identity", [value], out=name)
        self.outputs.append(helper.make_tensor_value_info(name, elem or self.elem, shape))

    def linear(self, x: str, layer: Any, name: str, weight: str | None = None) -> str:
        """``x W^T + b`` of a :class:`rnnlab.nn.Linear` (MatMul, Add); ``weight``: the name of
        W (V, H) already in the graph (tied weights), else W^T is stored."""
        wt = (self.op("Transpose", [weight], perm=[1, 0]) if weight else
              self.init(f"{name}.weight_t", layer.weight.value.T))
        y = self.op("MatMul", [x, wt])
        return y if layer.bias is None else self.op("Add", [y, self.init(f"{name}.bias",
                                                                          layer.bias.value)])

    def model(self, name: str, metadata: dict[str, str], doc: str) -> Any:
        from onnx import helper

        graph = helper.make_graph(self.nodes, name, self.inputs, self.outputs, self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="rnnlab", doc_string=doc)
        m.ir_version = 8  # what opset 17 needs; runtimes older than the newest read it
        helper.set_model_props(m, metadata)
        return m


def _blocks(a: np.ndarray, order: tuple[int, ...], H: int) -> np.ndarray:
    """Reorder the gate blocks (each H rows) of a fused weight or bias along axis 0."""
    return np.concatenate([a[k * H:(k + 1) * H] for k in order], axis=0)


def _layer_weights(rnn: Any, op_type: str, slots: range) -> dict[str, np.ndarray]:
    """W, R, B (and P) of one ONNX layer from rnnlab's slots (forward, reverse)."""
    H, order = rnn.hidden_size, GATE_ORDER[op_type]
    W, R, B, P = [], [], [], []
    for k in slots:
        p = rnn.weights[k]
        W.append(_blocks(p["weight_ih"].value, order, H))
        R.append(_blocks(p["weight_hh"].value, order, H))
        if "bias_ih" in p:
            B.append(np.concatenate([_blocks(p["bias_ih"].value, order, H),
                                     _blocks(p["bias_hh"].value, order, H)]))
        else:
            B.append(np.zeros(2 * len(order) * H, rnn.dtype))
        if "weight_ci" in p:
            P.append(np.concatenate([p["weight_ci"].value, p["weight_co"].value,
                                     p["weight_cf"].value]))
    out = {"W": np.stack(W), "R": np.stack(R), "B": np.stack(B)}
    if P:
        out["P"] = np.stack(P)
    return out


def recurrent(g: Graph, rnn: Any, x: str, name: str, *, h0: str = "", c0: str = "",
              lengths: str = "") -> tuple[str, list[str], list[str]]:
    """The stack ``rnn`` on ``x`` (T, N, D): y (T, N, dirs*H) and each layer's final h (and
    c), (dirs, N, H) each. ``h0``, ``c0``: (L*dirs, N, H) inputs, "" for zeros;
    ``lengths``: (N,) int32, "" for all T."""
    op_type = type(rnn).__name__  # LSTM, GRU or RNN
    dirs, H = (2 if rnn.bidirectional else 1), rnn.hidden_size
    attrs: dict[str, Any] = {"hidden_size": H,
                             "direction": "bidirectional" if dirs == 2 else "forward"}
    if op_type == "GRU":
        attrs["linear_before_reset"] = 1
    if op_type == "RNN":
        attrs["activations"] = [rnn.nonlinearity.capitalize()] * dirs  # Tanh or Relu
    hs, cs = [], []
    for layer in range(rnn.num_layers):
        slots = range(layer * dirs, (layer + 1) * dirs)
        w = {k: g.init(f"{name}.{k}_l{layer}", v)
             for k, v in _layer_weights(rnn, op_type, slots).items()}
        states = [_rows(g, s, slots, rnn.num_layers * dirs) for s in (h0, c0)]
        inputs = [x, w["W"], w["R"], w["B"], lengths, states[0]]
        if op_type == "LSTM":
            inputs += [states[1], w.get("P", "")]
        while inputs[-1] == "":  # trailing optional inputs left out
            inputs.pop()
        outs = g.op(op_type, inputs, 3 if op_type == "LSTM" else 2, **attrs)
        hs.append(outs[1])
        cs.extend(outs[2:])
        if dirs == 1:  # (T, 1, N, H) -> (T, N, H)
            x = g.op("Squeeze", [outs[0], g.ints(1)])
        else:  # (T, 2, N, H) -> (T, N, 2, H) -> (T, N, 2H): PyTorch's [forward, reverse]
            x = g.op("Reshape", [g.op("Transpose", [outs[0]], perm=[0, 2, 1, 3]),
                                 g.ints(0, 0, -1)])
    return x, hs, cs


def _rows(g: Graph, state: str, slots: range, total: int) -> str:
    """Rows ``slots`` of a (L*dirs, N, H) state input ("" stays "")."""
    if not state or len(slots) == total:
        return state
    return g.op("Slice", [state, g.ints(slots.start), g.ints(slots.stop), g.ints(0)])
