"""Decay of the gradient through time (rnnlab.inspect.gradient_flow) on synthetic sequences."""

import json

import numpy as np
import pytest

from rnnlab.inspect.gradient_flow import (
    gradient_flow_report,
    measure_decay,
    norms_by_distance,
    plot_gradient_flow,
)


@pytest.mark.parametrize("rate", [0.3, 0.8, 0.97, 1.0, 1.1])
def test_geometric_sequence_decay_is_measured(rate):
    norms = 2.5 * rate ** np.arange(200)
    r = measure_decay(norms)
    assert r["decay_per_step"] == pytest.approx(rate, rel=1e-9)
    assert r["range"] == [0, 200] and r["K"] == 200
    # first k with rate^k <= 1e-3, counted directly
    below = [k for k in range(200) if rate ** k <= 1e-3 * (1 + 1e-12)]
    assert r["steps_to_fall_1e3"] == (below[0] if below else None)
    if rate < 1:
        assert r["steps_to_fall_1e3_from_decay"] == pytest.approx(np.log(1e-3) / np.log(rate))
    else:
        assert r["steps_to_fall_1e3_from_decay"] is None


def test_decay_over_a_stated_range_ignores_the_rest():
    norms = np.concatenate([10.0 * 0.5 ** np.arange(5), 0.3125 * 0.9 ** np.arange(1, 30)])
    r = measure_decay(norms, start=5, stop=20)
    assert r["range"] == [5, 20] and r["decay_per_step"] == pytest.approx(0.9)


def test_underflow_shortens_the_range_and_never_gives_nan():
    norms = np.array([1.0, 0.1, 0.01, 0.0, 0.0, np.nan])
    r = measure_decay(norms)
    assert r["range"] == [0, 3] and r["decay_per_step"] == pytest.approx(0.1)
    assert r["steps_to_fall_1e3"] == 3  # the zero counts as fallen
    assert measure_decay(np.array([0.0, 0.0]))["decay_per_step"] is None
    json.dumps(gradient_flow_report({"a": norms, "b": np.ones(3)}), allow_nan=False)


@pytest.mark.parametrize(("args", "match"), [
    ((np.ones((2, 2)),), "non-empty"), ((np.array([]),), "non-empty"),
    ((np.ones(5), 4, 3), "start < stop"),
])
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        measure_decay(*args)


def test_norms_by_distance_reverses_time_and_averages_the_batch():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(7, 3, 4))  # (T, N, H)
    want = [np.mean([np.linalg.norm(g[6 - k, n]) for n in range(3)]) for k in range(7)]
    np.testing.assert_allclose(norms_by_distance(g), want, rtol=1e-12)
    with pytest.raises(ValueError, match=r"\(T, N, H\)"):
        norms_by_distance(np.ones((3, 4)))


def test_plot_writes_a_png(tmp_path):
    curves = {"rnn": 0.7 ** np.arange(60), "lstm c": 0.99 ** np.arange(60),
              "dead": np.zeros(60)}
    out = plot_gradient_flow(curves, tmp_path / "flow.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
