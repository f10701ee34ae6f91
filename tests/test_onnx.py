"""rnnlab.onnx on the language model: onnxruntime's outputs and final states equal rnnlab's
forward (every cell, 1 and 2 layers, tied and untied, batch 1 and more, non-zero weights and
states), greedy generation token for token, float64 files, the metadata, and the imports."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from onnx_helpers import assert_close, metadata, onnx, run, session

from rnnlab.models import LanguageModel
from rnnlab.models.generate import sample
from rnnlab.onnx import OPSET, export

V, H = 13, 6  # V > 2H: rnnlab gathers embeddings (the fused table is checked below too)
CELLS = {"rnn-tanh": ("rnn", {}), "rnn-relu": ("rnn", {"nonlinearity": "relu"}),
         "lstm": ("lstm", {}), "lstm-peephole": ("lstm", {"peephole": True}),
         "gru": ("gru", {})}


def make(name, layers=1, tie=False, dtype=np.float32, size=H, seed=0):
    """Every parameter ~ U(-0.5, 0.5), trained with dropout (exported without it)."""
    cell, kw = CELLS[name]
    model = LanguageModel(V, cell=cell, embed_size=size, hidden_size=size, num_layers=layers,
                          dropout=0.3, tie_weights=tie, init_range=0.5, dtype=dtype,
                          rng=np.random.default_rng(seed), **kw)
    return model.eval()


def feed_of(model, ids, rng):
    """ids and a non-zero initial state: the graph's feed and rnnlab's state."""
    shape = (model.rnn.num_layers, ids.shape[1], model.rnn.hidden_size)
    feed = {"ids": ids.astype(np.int64), "h0": rng.standard_normal(shape).astype(model.dtype)}
    if model.rnn.has_cell:
        feed["c0"] = rng.standard_normal(shape).astype(model.dtype)
        return feed, (feed["h0"], feed["c0"])
    return feed, feed["h0"]


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("tie", [False, True], ids=["untied", "tied"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("name", list(CELLS))
def test_onnxruntime_equals_rnnlab(tmp_path, name, layers, tie, batch):
    model = make(name, layers, tie)
    path = tmp_path / "lm.onnx"
    assert export(model, path) == [path]
    rng = np.random.default_rng(1)
    ids = rng.integers(0, V, (7, batch))
    feed, state = feed_of(model, ids, rng)
    got = run(session(path), feed)
    logits, final = model.forward(ids, state)
    assert_close(got["logits"], logits, what="logits")
    finals = final if isinstance(final, tuple) else (final,)
    assert sorted(got) == sorted(["logits", "h_n", "c_n"][:1 + len(finals)])
    for key, want in zip(("h_n", "c_n"), finals, strict=False):
        assert_close(got[key], want, what=key)
    assert got["logits"].dtype == np.float32
    assert model.training is False  # exported as it was: eval mode


def test_tied_weights_are_stored_once(tmp_path):
    for tie in (False, True):
        export(make("gru", tie=tie), tmp_path / f"{tie}.onnx")
    names = {tie: [t.name for t in onnx.load(str(tmp_path / f"{tie}.onnx")).graph.initializer]
             for tie in (False, True)}
    assert "decoder.weight_t" in names[False] and "decoder.weight_t" not in names[True]
    assert len(names[True]) == len(names[False]) - 1


def test_the_fused_embedding_table_path_exports_the_same_function(tmp_path):
    """V <= 2E: rnnlab's forward looks rows up in W_emb W_ih^T; the graph gathers."""
    model = make("lstm-peephole", layers=2, size=8)
    assert model.looks_up_inputs()
    export(model, tmp_path / "lm.onnx")
    rng = np.random.default_rng(2)
    ids = rng.integers(0, V, (5, 3))
    feed, state = feed_of(model, ids, rng)
    got = run(session(tmp_path / "lm.onnx"), feed)
    logits, (h, c) = model.forward(ids, state)
    for key, want in (("logits", logits), ("h_n", h), ("c_n", c)):
        assert_close(got[key], want, what=key)


def greedy_onnx(sess, model, prime, length):
    """Greedy generation through onnxruntime, feeding the state back; and the steps at which
    the two best logits were within 1e-4 (a near tie either side may break differently)."""
    feed, _ = feed_of(model, np.asarray(prime)[:, None], np.random.default_rng(0))
    feed = {k: np.zeros_like(v) if k != "ids" else v for k, v in feed.items()}  # zero state
    out, ties = [], []
    for step in range(length):
        r = run(sess, feed)
        last = np.sort(r["logits"][-1, 0])
        if last[-1] - last[-2] < 1e-4:
            ties.append(step)
        token = int(r["logits"][-1, 0].argmax())
        out.append(token)
        feed = {"ids": np.array([[token]], np.int64), "h0": r["h_n"],
                **({"c0": r["c_n"]} if "c_n" in r else {})}
    return out, ties


@pytest.mark.parametrize("name", list(CELLS))
def test_greedy_generation_of_50_tokens_equals_rnnlab(tmp_path, name):
    model = make(name, layers=2, seed=3)
    export(model, tmp_path / "lm.onnx")
    prime = [1, 5, 2, 7]
    got, ties = greedy_onnx(session(tmp_path / "lm.onnx"), model, prime, 50)
    want = list(sample(model, prime, 50, greedy=True, rng=np.random.default_rng(0)))
    upto = ties[0] if ties else 50  # up to the first near tie, if any
    assert got[:upto] == want[:upto]
    assert upto >= 25, f"a near tie at step {upto}: choose another seed"


def reference_evaluator(proto):
    """onnx's reference evaluator (NumPy, float64 throughout), its RNN given the activation
    "Relu" of ONNX's specification (max(0, x)), which it lacks (it has Tanh and Affine)."""
    from onnx.reference import ReferenceEvaluator
    from onnx.reference.ops.op_rnn import RNN_14

    class RNN(RNN_14):
        op_domain = ""

        def choose_act(self, name, alpha, beta):
            if name == "Relu":
                return lambda x: np.maximum(x, 0)
            return super().choose_act(name, alpha, beta)

    return ReferenceEvaluator(proto, new_ops=[RNN])


@pytest.mark.parametrize("name", list(CELLS))
def test_float64_models_export_in_float64(tmp_path, name):
    """Weights, state inputs and outputs are DOUBLE. onnxruntime's CPU recurrent kernels
    are float32 only, so the file runs in onnx's reference evaluator instead."""
    model = make(name, layers=2, tie=True, dtype=np.float64)
    export(model, tmp_path / "lm.onnx")
    proto = onnx.load(str(tmp_path / "lm.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    double = onnx.TensorProto.DOUBLE
    assert {i.name: i.type.tensor_type.elem_type for i in proto.graph.input} == {
        "ids": onnx.TensorProto.INT64, "h0": double, **({"c0": double} if "lstm" in name
                                                        else {})}
    assert all(o.type.tensor_type.elem_type == double for o in proto.graph.output)
    assert all(t.data_type == double for t in proto.graph.initializer
               if t.name.startswith(("rnn.", "decoder.", "embedding.")))
    rng = np.random.default_rng(1)
    ids = rng.integers(0, V, (6, 3))
    feed, state = feed_of(model, ids, rng)
    got = reference_evaluator(proto).run(None, feed)
    logits, final = model.forward(ids, state)
    for g, want in zip(got, (logits, *(final if isinstance(final, tuple) else (final,))),
                       strict=True):
        assert g.dtype == np.float64
        assert_close(g, want, tol=1e-12)


def test_graph_shape_opset_and_metadata(tmp_path):
    model = make("lstm", layers=2)
    export(model, tmp_path / "lm.onnx", metadata={"rnnlab.vocab": '{"tokens": ["a"]}'})
    proto = onnx.load(str(tmp_path / "lm.onnx"))
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", OPSET)]
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
            for i in (*proto.graph.input, *proto.graph.output)}
    assert dims == {"ids": ["T", "N"], "h0": [2, "N", H], "c0": [2, "N", H],
                    "logits": ["T", "N", V], "h_n": [2, "N", H], "c_n": [2, "N", H]}
    ops = {n.op_type for n in proto.graph.node}
    assert {"Gather", "LSTM", "MatMul", "Add"} <= ops and "Dropout" not in ops
    meta = metadata(tmp_path / "lm.onnx")
    assert json.loads(meta["rnnlab.model"]) == model.config()
    assert meta["rnnlab.class"] == "LanguageModel" and meta["rnnlab.vocab"] == '{"tokens": ["a"]}'


def test_import_rnnlab_imports_no_onnx():
    code = ("import sys, rnnlab, rnnlab.cli, rnnlab.onnx; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('onnx', 'onnxruntime')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_a_model_it_cannot_export_is_a_value_error(tmp_path):
    from rnnlab.nn import Linear

    with pytest.raises(ValueError, match="ONNX export takes a LanguageModel"):
        export(Linear(2, 3, rng=np.random.default_rng(0)), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
