"""The step's one buffer (training/allreduce.py) in one process: what goes in comes out
scaled as on K ranks. tests/test_mpi.py runs it on two."""

import signal

import numpy as np
import pytest

from rnnlab.errors import RanksDisagree
from rnnlab.nn.module import Parameter
from rnnlab.training.allreduce import StepReducer
from rnnlab.training.ranks import SINGLE


def params(dtype):
    rng = np.random.default_rng(0)
    out = {n: Parameter(rng.standard_normal(shape).astype(dtype))
           for n, shape in (("w", (3, 4)), ("b", (4,)))}
    for p in out.values():
        p.grad[...] = rng.standard_normal(p.shape)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_buffer_gives_back_the_mean_gradient_loss_and_agreed_signal(dtype):
    ps = params(dtype)
    want = {n: p.grad.copy() for n, p in ps.items()}
    reducer = StepReducer(SINGLE, ps)
    loss_sum = 1234.5678912345678  # float32 alone keeps 7 digits of it
    loss, tokens, agreed, t0 = reducer.reduce(loss_sum, 7, 11, signal.SIGTERM, 2.5)
    assert loss == pytest.approx(loss_sum / 7, rel=1e-12)  # the split sum: ~14 digits
    assert (tokens, agreed, t0) == (11, signal.SIGTERM, 2.5)
    for n, p in ps.items():  # n_r g_r summed over one rank, divided by N = n_r
        np.testing.assert_allclose(p.grad, want[n], rtol=1e-6 if dtype == np.float32 else 1e-15)


def test_a_rank_without_examples_gives_a_zero_loss_and_no_signal():
    reducer = StepReducer(SINGLE, params(np.float64))
    assert reducer.reduce(0.0, 0, 0, None, 0.0)[:3] == (0.0, 0, None)


def test_weights_checked_alike_pass_and_a_differing_rank_is_named():
    ps = params(np.float32)
    StepReducer(SINGLE, ps).check_weights(100)  # one rank agrees with itself

    class TwoRanks:  # rank 1's checksum differs
        def gather(self, crc):
            return [crc, crc ^ 1]

    with pytest.raises(RanksDisagree, match="after step 100 the weights of rank 1 differ") as e:
        StepReducer(TwoRanks(), ps).check_weights(100)
    assert e.value.every_rank
