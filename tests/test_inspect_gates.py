"""Gate saturation statistics and histograms (rnnlab.inspect.gates) on hand-made arrays."""

import json

import numpy as np
import pytest

from rnnlab.inspect.gates import gate_report, gate_stats, plot_gates


def lstm_layer(T=4, N=2, H=5):
    # per cell (last axis): sigmoid gates at 0.02, 0.1, 0.5, 0.9, 0.97 -> low 1/5, high 1/5
    s = np.broadcast_to(np.array([0.02, 0.1, 0.5, 0.9, 0.97]), (T, N, H)).copy()
    g = np.broadcast_to(np.array([-0.95, -0.9, 0.0, 0.3, 0.99]), (T, N, H)).copy()
    f = np.full((T, N, H), 0.97)  # always right-saturated: a remembering layer
    return {"i": s, "f": f, "g": g, "o": s * 0 + 0.5}


def test_gate_stats_by_hand():
    st = gate_stats(lstm_layer()["i"], "sigmoid")
    assert (st["low"], st["high"], st["saturated"]) == (0.2, 0.2, 0.4)  # 0.1 and 0.9 are not
    assert st["mean"] == pytest.approx(0.498)
    assert sum(st["histogram"]["counts"]) == 40 and len(st["histogram"]["edges"]) == 21
    assert st["histogram"]["counts"][0] == 8 and st["histogram"]["counts"][-1] == 8  # 0.02, 0.97
    tanh = gate_stats(lstm_layer()["g"], "tanh")
    assert (tanh["low"], tanh["high"]) == (0.2, 0.2)  # -0.95 and 0.99; +-0.9 itself is not
    assert tanh["histogram"]["edges"][0] == -1.0


def test_gate_report_lstm_by_hand():
    flipped = {k: 1 - v if k != "g" else v for k, v in lstm_layer().items()}
    rep = gate_report([lstm_layer(), flipped])
    assert rep["cell"] == "lstm" and len(rep["layers"]) == 2
    first = rep["layers"][0]
    assert first["forget_gate"] == "f" and first["forget_mean"] == pytest.approx(0.97)
    # saturated over all gate activations: i 2/5, f 5/5, g 2/5, o 0/5 -> 9/20
    assert first["saturated"] == pytest.approx(9 / 20)
    assert rep["layers"][1]["forget_mean"] == pytest.approx(0.03)
    json.dumps(rep, allow_nan=False)  # JSON-able, strictly


def test_gate_report_gru_uses_z_as_forget_gate():
    T, N, H = 3, 1, 2
    layer = {"r": np.full((T, N, H), 0.5), "z": np.full((T, N, H), 0.8),
             "n": np.full((T, N, H), -0.95)}
    first = gate_report([layer])["layers"][0]
    assert (first["forget_gate"], first["forget_mean"]) == ("z", 0.8)
    assert first["saturated"] == pytest.approx(1 / 3)  # only n, all of it


@pytest.mark.parametrize(("gates", "match"), [
    ([], "empty"),
    ([{"i": np.zeros((1, 1, 1))}], "neither an LSTM"),
    ([{k: np.zeros((2, 1, 3)) for k in "rzn"}, {k: np.zeros((2, 1, 3)) for k in "ifgo"}],
     "one kind"),
    ([{"r": np.zeros((2, 1, 3)), "z": np.zeros((2, 1, 3)), "n": np.zeros((2, 3))}], "(T, N, H)"),
    ([{k: np.full((2, 1, 3), np.nan) for k in "rzn"}], "finite"),
])
def test_gate_report_bad_input(gates, match):
    with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(")", r"\)")):
        gate_report(gates)


def test_plot_gates_writes_a_png(tmp_path):
    out = plot_gates(gate_report([lstm_layer(), lstm_layer()]), tmp_path / "gates.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["gates.png"]  # no temporary left behind
