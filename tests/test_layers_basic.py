"""Embedding, Linear, Dropout and SoftmaxCrossEntropy: gradients, PyTorch parity, validation."""

from __future__ import annotations

import numpy as np
import pytest

from rnnlab.nn.dropout import Dropout
from rnnlab.nn.embedding import Embedding
from rnnlab.nn.gradcheck import check, check_module
from rnnlab.nn.linear import Linear
from rnnlab.nn.loss import SoftmaxCrossEntropy
from rnnlab.nn.module import Module

GRAD_TOL = 1e-6
DTYPES = [np.float32, np.float64]
PARITY_TOL = {np.float32: 1e-4, np.float64: 1e-9}


def assert_close(ours, theirs, dtype) -> None:
    """Agreement to PARITY_TOL[dtype], relative to the reference array's own scale."""
    theirs = np.asarray(theirs, dtype=np.float64)
    tol = PARITY_TOL[dtype]
    scale = max(1.0, float(np.max(np.abs(theirs), initial=0.0)))
    ours = np.asarray(ours, dtype=np.float64)
    np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol * scale)


def assert_grads_ok(errors: dict[str, float]) -> None:
    assert errors, "nothing was checked"
    bad = {name: err for name, err in errors.items() if not err <= GRAD_TOL}
    assert not bad, f"relative gradient errors above {GRAD_TOL}: {bad}"


def ce_inputs(rng, shape, C, *, ignore_index=None, use_mask=False):
    """Logits (*shape, C), targets with some positions ignored/masked, and the mask."""
    logits = rng.standard_normal((*shape, C)) * 3
    targets = rng.integers(0, C, size=shape)
    if ignore_index is not None:
        targets[rng.random(shape) < 0.3] = ignore_index
    mask = rng.random(shape) < 0.7 if use_mask else None
    return logits, targets, mask


# ---------------------------------------------------------------- gradient checks (float64)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("x_shape", [(5, 4), (3, 2, 4)])
def test_linear_gradcheck(bias, x_shape):
    rng = np.random.default_rng(0)
    lin = Linear(4, 3, bias=bias, dtype=np.float64, rng=rng)
    x = rng.standard_normal(x_shape)
    errors = check_module(
        lin, lambda: lin.forward(x), lambda G: {"x": lin.backward(G)}, {"x": x}, rng=rng
    )
    assert set(errors) == ({"weight", "bias", "x"} if bias else {"weight", "x"})
    assert_grads_ok(errors)


@pytest.mark.parametrize("ids_shape", [(7,), (4, 3)])
def test_embedding_gradcheck_with_repeated_ids(ids_shape):
    rng = np.random.default_rng(1)
    emb = Embedding(5, 3, dtype=np.float64, rng=rng)
    ids = rng.integers(0, 3, size=ids_shape)  # only 3 of 5 rows: ids repeat, rows go unused
    ids.reshape(-1)[:2] = 2  # at least one id surely repeats
    errors = check_module(
        emb, lambda: emb.forward(ids), lambda G: emb.backward(G) or {}, {}, rng=rng
    )
    assert set(errors) == {"weight"}
    assert_grads_ok(errors)
    assert np.all(emb.weight.grad[3:] == 0)  # rows never looked up get no gradient


@pytest.mark.parametrize("mask_shape", [(3, 2, 4), (2, 4)])  # full, and shared over time
@pytest.mark.parametrize("p", [0.3, 0.6])
def test_dropout_gradcheck_fixed_mask(p, mask_shape):
    rng = np.random.default_rng(2)
    drop = Dropout(p, rng=rng)
    mask = drop.sample_mask(mask_shape, np.float64)
    x = rng.standard_normal((3, 2, 4))
    errors = check_module(
        drop, lambda: drop.forward(x, mask), lambda G: {"x": drop.backward(G)}, {"x": x}, rng=rng
    )
    assert_grads_ok(errors)


@pytest.mark.parametrize(
    "ignore_index, use_mask", [(None, False), (-100, False), (2, False), (None, True), (0, True)]
)
@pytest.mark.parametrize("shape", [(6,), (3, 4)])
def test_cross_entropy_gradcheck(shape, ignore_index, use_mask):
    rng = np.random.default_rng(3)
    loss = SoftmaxCrossEntropy(ignore_index=ignore_index)
    logits, targets, mask = ce_inputs(rng, shape, 5, ignore_index=ignore_index, use_mask=use_mask)
    loss.forward(logits, targets, mask)
    dlogits = loss.backward()
    errors = check(lambda: loss.forward(logits, targets, mask), {"logits": (logits, dlogits)})
    assert_grads_ok(errors)
    counted = np.ones(shape, bool) if mask is None else mask.copy()
    if ignore_index is not None:
        counted &= targets != ignore_index
    assert np.all(dlogits[~counted] == 0)
    assert loss.last_count == counted.sum()


def test_cross_entropy_backward_scales_by_upstream_gradient():
    rng = np.random.default_rng(4)
    loss = SoftmaxCrossEntropy()
    logits, targets, _ = ce_inputs(rng, (4,), 3)
    loss.forward(logits, targets)
    d1 = loss.backward().copy()
    loss.forward(logits, targets)
    np.testing.assert_allclose(loss.backward(2.5), 2.5 * d1, rtol=1e-13)


# ---------------------------------------------------------------- PyTorch parity


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(dtype, bias):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    lin = Linear(6, 4, bias=bias, dtype=dtype, rng=rng)
    x = rng.standard_normal((3, 2, 6)).astype(dtype)
    G = rng.standard_normal((3, 2, 4)).astype(dtype)
    ref = torch.nn.Linear(6, 4, bias=bias, dtype=getattr(torch, np.dtype(dtype).name))
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(lin.weight.value))
        if bias:
            ref.bias.copy_(torch.from_numpy(lin.bias.value))
    xt = torch.from_numpy(x.copy()).requires_grad_()
    yt = ref(xt)
    yt.backward(torch.from_numpy(G))

    y = lin.forward(x)
    dx = lin.backward(G)
    assert y.dtype == dx.dtype == lin.weight.grad.dtype == dtype
    assert_close(y, yt.detach().numpy(), dtype)
    assert_close(dx, xt.grad.numpy(), dtype)
    assert_close(lin.weight.grad, ref.weight.grad.numpy(), dtype)
    if bias:
        assert np.all(lin.bias.value != 0)
        assert_close(lin.bias.grad, ref.bias.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_embedding_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    emb = Embedding(10, 5, dtype=dtype, rng=rng)
    ids = rng.integers(0, 10, size=(7, 3))  # 21 ids over 10 rows: repeats guaranteed
    G = rng.standard_normal((7, 3, 5)).astype(dtype)
    ref = torch.nn.Embedding(10, 5, dtype=getattr(torch, np.dtype(dtype).name))
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(emb.weight.value))
    yt = ref(torch.from_numpy(ids))
    yt.backward(torch.from_numpy(G))

    y = emb.forward(ids)
    assert emb.backward(G) is None
    assert y.dtype == dtype
    assert_close(y, yt.detach().numpy(), dtype)
    assert_close(emb.weight.grad, ref.weight.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_matches_torch_with_same_mask(dtype):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    p = 0.4
    x = rng.standard_normal((5, 3, 8)).astype(dtype)  # no exact zeros, so torch's mask is visible
    G = rng.standard_normal(x.shape).astype(dtype)
    torch.manual_seed(0)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    yt = torch.nn.functional.dropout(xt, p=p, training=True)
    yt.backward(torch.from_numpy(G))
    kept = yt.detach().numpy() != 0
    mask = (kept / (1 - p)).astype(dtype)

    drop = Dropout(p, rng=rng)
    y = drop.forward(x, mask)
    assert_close(y, yt.detach().numpy(), dtype)
    assert_close(drop.backward(G), xt.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "ignore_index, use_mask", [(None, False), (-100, False), (3, False), (None, True), (1, True)]
)
def test_cross_entropy_matches_torch(dtype, ignore_index, use_mask):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(8)
    shape, C = (6, 4), 7
    logits, targets, mask = ce_inputs(rng, shape, C, ignore_index=ignore_index, use_mask=use_mask)
    logits = logits.astype(dtype)
    # torch has no mask argument: masked positions become ignored ones.
    torch_ignore = -100 if ignore_index is None else ignore_index
    t_ref = targets if mask is None else np.where(mask, targets, torch_ignore)
    lt = torch.from_numpy(logits.copy()).requires_grad_()
    ref = F.cross_entropy(
        lt.reshape(-1, C), torch.from_numpy(t_ref.reshape(-1)),
        ignore_index=torch_ignore,
    )
    ref.backward()

    loss = SoftmaxCrossEntropy(ignore_index=ignore_index)
    value = loss.forward(logits, targets, mask)
    dlogits = loss.backward()
    assert dlogits.dtype == dtype
    assert_close(value, ref.item(), dtype)
    assert_close(dlogits, lt.grad.numpy(), dtype)


# ---------------------------------------------------------------- dropout behaviour


def test_dropout_eval_mode_and_p_zero_are_identity():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    G = rng.standard_normal((4, 5)).astype(np.float32)
    drop = Dropout(0.5, rng=rng)
    drop.eval()
    assert not drop.training
    np.testing.assert_array_equal(drop.forward(x), x)
    np.testing.assert_array_equal(drop.backward(G), G)
    zero = Dropout(0.0, rng=rng)
    assert zero.training
    np.testing.assert_array_equal(zero.forward(x), x)
    np.testing.assert_array_equal(zero.backward(G), G)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_keeps_fraction_and_preserves_mean(p, dtype):
    n = 1_000_000
    drop = Dropout(p, rng=np.random.default_rng(10))
    y = drop.forward(np.ones(n, dtype=dtype))
    assert y.dtype == dtype
    kept = y != 0
    # Six standard deviations of the Bernoulli estimates: fails by chance ~1e-9 of the time.
    assert abs(kept.mean() - (1 - p)) < 6 * np.sqrt(p * (1 - p) / n)
    assert abs(y.mean(dtype=np.float64) - 1.0) < 6 * np.sqrt(p / (1 - p) / n)
    np.testing.assert_allclose(y[kept], 1 / (1 - p), rtol=1e-6)


def test_dropout_same_seed_same_mask():
    x = np.ones((50, 40))
    a = Dropout(0.5, rng=np.random.default_rng(11)).forward(x)
    b = Dropout(0.5, rng=np.random.default_rng(11)).forward(x)
    c = Dropout(0.5, rng=np.random.default_rng(12)).forward(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ---------------------------------------------------------------- loss details


def test_cross_entropy_nothing_counted_gives_zero_not_nan():
    rng = np.random.default_rng(13)
    logits = rng.standard_normal((3, 4))
    loss = SoftmaxCrossEntropy(ignore_index=-1)
    assert loss.forward(logits, np.full(3, -1)) == 0.0
    assert loss.last_count == 0 and loss.last_loss_sum == 0.0
    np.testing.assert_array_equal(loss.backward(), np.zeros_like(logits))
    assert loss.forward(logits, np.zeros(3, int), np.zeros(3, bool)) == 0.0
    np.testing.assert_array_equal(loss.backward(), np.zeros_like(logits))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_is_stable_for_huge_logits(dtype):
    logits = np.array([[1e4, 0.0, -1e4], [5e3, 5e3, 0.0]], dtype=dtype)
    loss = SoftmaxCrossEntropy()
    value = loss.forward(logits, np.array([1, 0]))
    assert np.isclose(value, (1e4 + np.log(2)) / 2, rtol=1e-6)
    d = loss.backward()
    assert np.all(np.isfinite(d))
    np.testing.assert_allclose(d, [[0.5, -0.5, 0.0], [-0.25, 0.25, 0.0]], atol=1e-6)


def test_cross_entropy_sums_give_exact_mean_over_batches():
    rng = np.random.default_rng(14)
    logits, targets, mask = ce_inputs(rng, (8, 5), 6, ignore_index=-100, use_mask=True)
    loss = SoftmaxCrossEntropy(ignore_index=-100)
    whole = loss.forward(logits, targets, mask)
    total, count = 0.0, 0
    for sl in (slice(0, 3), slice(3, 8)):
        loss.forward(logits[sl], targets[sl], mask[sl])
        total, count = total + loss.last_loss_sum, count + loss.last_count
    assert np.isclose(total / count, whole, rtol=1e-14)


# ---------------------------------------------------------------- tied weights, accumulation


def test_backward_accumulates_into_grad():
    rng = np.random.default_rng(15)
    lin = Linear(3, 2, dtype=np.float64, rng=rng)
    emb = Embedding(4, 2, dtype=np.float64, rng=rng)
    x, G, ids = rng.standard_normal((5, 3)), rng.standard_normal((5, 2)), np.array([0, 1, 1])
    grads = []
    for _ in range(2):
        lin.forward(x)
        lin.backward(G)
        emb.forward(ids)
        emb.backward(G[:3])
        grads.append([lin.weight.grad.copy(), lin.bias.grad.copy(), emb.weight.grad.copy()])
    for once, twice in zip(*grads, strict=True):
        np.testing.assert_allclose(twice, 2 * once, rtol=1e-15)


class TiedLM(Module):
    """ids -> embedding -> linear decoder whose weight is the embedding table."""

    def __init__(self, V: int, E: int, rng: np.random.Generator) -> None:
        self.emb = Embedding(V, E, dtype=np.float64, rng=rng)
        self.decoder = Linear(E, V, dtype=np.float64, rng=rng)
        self.decoder.weight = self.emb.weight  # (V, E) both ways: PyTorch's layout

    def forward(self, ids):
        return self.decoder.forward(self.emb.forward(ids))

    def backward(self, dlogits):
        self.emb.backward(self.decoder.backward(dlogits))


def test_tied_weights_accumulate_both_gradients_and_are_listed_once():
    rng = np.random.default_rng(16)
    V, E = 6, 3
    model = TiedLM(V, E, rng)
    params = model.named_params()
    assert list(params) == ["emb.weight", "decoder.bias"]
    assert params["emb.weight"] is model.decoder.weight

    ids = rng.integers(0, V, size=(4, 2))
    G = rng.standard_normal((4, 2, V))
    # The same computation untied: the tied gradient must be the sum of the two.
    emb = Embedding(V, E, dtype=np.float64, rng=rng)
    dec = Linear(E, V, dtype=np.float64, rng=rng)
    emb.weight.value[...] = model.emb.weight.value
    dec.weight.value[...] = model.emb.weight.value
    dec.bias.value[...] = model.decoder.bias.value
    dec.forward(emb.forward(ids))
    emb.backward(dec.backward(G))

    model.forward(ids)
    model.backward(G)
    np.testing.assert_allclose(
        model.emb.weight.grad, emb.weight.grad + dec.weight.grad, rtol=1e-13
    )
    errors = check_module(
        model, lambda: model.forward(ids), lambda g: model.backward(g) or {}, {}, rng=rng
    )
    assert set(errors) == {"emb.weight", "decoder.bias"}
    assert_grads_ok(errors)


# ---------------------------------------------------------------- bad input


def _linear():
    return Linear(4, 3, rng=np.random.default_rng(0))


def _emb():
    return Embedding(10, 3, rng=np.random.default_rng(0))


def _linear_backward_bad_shape():
    lin = _linear()
    lin.forward(np.zeros((2, 4), np.float32))
    lin.backward(np.zeros((2, 4), np.float32))


def _embedding_backward_bad_dtype():
    emb = _emb()
    emb.forward(np.array([1, 2]))
    emb.backward(np.zeros((2, 3)))


F32 = np.float32
BAD_INPUTS = {
    "linear size": (lambda: Linear(0, 3, rng=np.random.default_rng()), "in_features"),
    "linear dtype": (lambda: Linear(4, 3, dtype=np.int32, rng=np.random.default_rng()),
                     "dtype must be float32 or float64"),
    "linear rng": (lambda: Linear(4, 3, rng=0), "rng must be a numpy.random.Generator"),
    "linear x features": (lambda: _linear().forward(np.zeros((2, 5), F32)), r"\(\.\.\., 4\)"),
    "linear x dtype": (lambda: _linear().forward(np.zeros((2, 4))), "dtype float64"),
    "linear x list": (lambda: _linear().forward([[0.0] * 4]), "x must be an array"),
    "linear dy shape": (_linear_backward_bad_shape, "dy must have the output's shape"),
    "embedding float ids": (lambda: _emb().forward(np.array([1.0])), "integer.*float64"),
    "embedding bool ids": (lambda: _emb().forward(np.array([True])), "integer.*bool"),
    "embedding id too big": (lambda: _emb().forward(np.array([3, 10])), r"\[0, 10\).*id 10"),
    "embedding id negative": (lambda: _emb().forward(np.array([-1, 3])), "id -1"),
    "embedding dtype": (lambda: Embedding(3, 2, dtype=np.float16, rng=np.random.default_rng()),
                        "float16"),
    "embedding dy dtype": (_embedding_backward_bad_dtype, "dy has dtype float64"),
    "dropout p=1": (lambda: Dropout(1.0, rng=np.random.default_rng()), "0 <= p < 1"),
    "dropout p<0": (lambda: Dropout(-0.1, rng=np.random.default_rng()), "0 <= p < 1"),
    "dropout int x": (lambda: Dropout(rng=np.random.default_rng()).forward(np.zeros(3, int)),
                      "float32 or float64.*int64"),
    "dropout mask shape": (
        lambda: Dropout(rng=np.random.default_rng()).forward(np.zeros((2, 3)), np.ones((3, 3))),
        "does not broadcast",
    ),
    "dropout mask dtype": (
        lambda: Dropout(rng=np.random.default_rng()).forward(np.zeros((2, 3)), np.ones(3, F32)),
        "mask has dtype float32",
    ),
    "ce targets shape": (
        lambda: SoftmaxCrossEntropy().forward(np.zeros((2, 3, 4)), np.zeros((3, 2), int)),
        r"logits\.shape\[:-1\]",
    ),
    "ce float targets": (
        lambda: SoftmaxCrossEntropy().forward(np.zeros((2, 4)), np.zeros(2)),
        "targets must be an integer array",
    ),
    "ce target too big": (
        lambda: SoftmaxCrossEntropy().forward(np.zeros((2, 4)), np.array([0, 4])),
        r"\[0, 4\).*target 4",
    ),
    "ce target negative": (
        lambda: SoftmaxCrossEntropy(ignore_index=-100).forward(np.zeros((2, 4)), np.array([-1, 0])),
        "target -1",
    ),
    "ce int logits": (
        lambda: SoftmaxCrossEntropy().forward(np.zeros((2, 4), int), np.array([0, 1])),
        "logits must be float32 or float64",
    ),
    "ce mask dtype": (
        lambda: SoftmaxCrossEntropy().forward(np.zeros((2, 4)), np.array([0, 1]), np.ones(2)),
        "mask must be a boolean array",
    ),
    "ce mask shape": (
        lambda: SoftmaxCrossEntropy().forward(np.zeros((2, 4)), np.array([0, 1]),
                                              np.ones(3, bool)),
        "mask shape",
    ),
    "ce dtype": (
        lambda: SoftmaxCrossEntropy(dtype=np.float32).forward(np.zeros((2, 4)), np.array([0, 1])),
        "logits has dtype float64",
    ),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_raises_value_error_naming_the_problem(name):
    fn, match = BAD_INPUTS[name]
    with pytest.raises(ValueError, match=match):
        fn()


BACKWARD_FIRST = {
    "linear": lambda: _linear().backward(np.zeros((1, 3), F32)),
    "embedding": lambda: _emb().backward(np.zeros((1, 3), F32)),
    "dropout": lambda: Dropout(rng=np.random.default_rng()).backward(np.zeros(3)),
    "cross entropy": lambda: SoftmaxCrossEntropy().backward(),
}


@pytest.mark.parametrize("name", list(BACKWARD_FIRST))
def test_backward_before_forward_is_a_clear_error(name):
    with pytest.raises(RuntimeError, match="before forward|needs a forward"):
        BACKWARD_FIRST[name]()


def test_cross_entropy_backward_runs_once_per_forward():
    loss = SoftmaxCrossEntropy()
    loss.forward(np.zeros((2, 3)), np.array([0, 1]))
    loss.backward()
    with pytest.raises(RuntimeError, match="once per forward"):
        loss.backward()
