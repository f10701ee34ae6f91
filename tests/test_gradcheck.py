"""Every layer and option against central differences in float64 (relative error <= 1e-6)."""

import numpy as np
import pytest

from rnnlab.nn import gradcheck
from rnnlab.nn.gradcheck_suite import cases

CASES = cases()


@pytest.mark.parametrize("name", list(CASES))
def test_gradcheck(name):
    errors = CASES[name]()
    assert errors, "the case checked nothing"
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-6, f"{name}: {worst} has relative error {errors[worst]:.2e}"


def test_gradcheck_catches_a_wrong_gradient():
    x = np.random.default_rng(0).standard_normal(6)
    errors = gradcheck.check(lambda: float(np.sum(x**3)), {"x": (x, 3 * x**2 * 1.01)})
    assert errors["x"] > 1e-3


def test_numerical_gradient_rejects_float32():
    x = np.ones(3, dtype=np.float32)
    with pytest.raises(ValueError, match="float64"):
        gradcheck.numerical_gradient(lambda: 0.0, x)
