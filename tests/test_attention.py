"""Attention: gradient checks, a PyTorch autograd reference, masking, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_parity import assert_close

from rnnlab.nn import Attention, gradcheck
from rnnlab.nn.attention import by_rows, mix, mix_back, scores

T, S, N, H, HK, A = 3, 5, 3, 4, 6, 3
LENGTHS = np.array([5, 2, 4])
SCORES = pytest.mark.parametrize("score", ["dot", "additive"])


def make(score, dtype=np.float64, seed=0):
    key_size = H if score == "dot" else HK
    layer = Attention(H, score, key_size=key_size, attn_size=A, dtype=dtype,
                      rng=np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    q = rng.standard_normal((T, N, H)).astype(dtype)
    k = rng.standard_normal((S, N, key_size)).astype(dtype)
    return layer, q, k


@SCORES
@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "masked"])
def test_gradcheck(score, lengths):
    layer, q, k = make(score)

    def backward(g):
        dq, dk = layer.backward(g[0])
        return {"q": dq, "k": dk}

    errors = gradcheck.check_module(
        layer, lambda: (layer.forward(q, k, lengths)[0], None), backward, {"q": q, "k": k},
        rng=np.random.default_rng(2))
    assert len(errors) == len(layer.named_params()) + 2
    assert len(layer.named_params()) == (3 if score == "additive" else 0)
    assert max(errors.values()) < 1e-6, errors


def torch_attention(layer, q, k, lengths):
    """The module doc's equations in torch autograd, with the layer's weights copied."""
    S_, N_ = k.shape[:2]
    tq = torch.tensor(q, requires_grad=True)
    tk = torch.tensor(k, requires_grad=True)
    params = {n: torch.tensor(p.value, requires_grad=True)
              for n, p in layer.named_params().items()}
    if layer.score == "dot":
        s = torch.einsum("tnh,snh->tns", tq, tk)
    else:
        u = torch.tanh((tq @ params["weight_query"].T)[:, :, None, :]
                       + (tk @ params["weight_key"].T).permute(1, 0, 2)[None])
        s = u @ params["v"]
    real = torch.arange(S_)[None, :] < torch.tensor(lengths)[:, None]  # (N, S)
    a = torch.softmax(s.masked_fill(~real[None], float("-inf")), dim=-1)
    c = torch.einsum("tns,snh->tnh", a, tk)
    return tq, tk, params, c, a


@SCORES
def test_matches_torch(score):
    """Outputs, weights, and the gradients of q, k and every parameter at 1e-9 (float64)."""
    layer, q, k = make(score, seed=3)
    c, a = layer.forward(q, k, LENGTHS)
    tq, tk, params, tc, ta = torch_attention(layer, q, k, LENGTHS)
    assert_close("context", c, tc, np.float64)
    assert_close("weights", a, ta, np.float64)
    dc = np.random.default_rng(4).standard_normal(c.shape)
    dq, dk = layer.backward(dc)
    tc.backward(torch.tensor(dc))
    assert_close("dq", dq, tq.grad, np.float64)
    assert_close("dk", dk, tk.grad, np.float64)
    for name, p in layer.named_params().items():
        assert_close(name, p.grad, params[name].grad, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_batched_products_are_the_einsums_and_matmuls(dtype):
    rng = np.random.default_rng(3)
    q, d = (rng.standard_normal((T, N, H)).astype(dtype) for _ in range(2))
    k = rng.standard_normal((S, N, H)).astype(dtype)
    a = rng.random((T, N, S)).astype(dtype)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12}
    np.testing.assert_allclose(scores(q, k), np.einsum("tnh,snh->tns", q, k), **tol)
    np.testing.assert_allclose(mix(a, k), np.einsum("tns,snh->tnh", a, k), **tol)
    np.testing.assert_allclose(mix_back(a, d), np.einsum("tns,tnh->snh", a, d), **tol)
    assert scores(q, k).dtype == mix(a, k).dtype == mix_back(a, d).dtype == dtype
    W, v = rng.standard_normal((H, 5)).astype(dtype), rng.standard_normal(H).astype(dtype)
    np.testing.assert_allclose(by_rows(q, W), q @ W, **tol)
    np.testing.assert_allclose(by_rows(k.transpose(1, 0, 2), W), k.transpose(1, 0, 2) @ W, **tol)
    u = rng.standard_normal((T, N, S, H)).astype(dtype)
    np.testing.assert_allclose(by_rows(u, v), u @ v, **tol)
    assert by_rows(u, v).shape == (T, N, S) and by_rows(q, W).dtype == dtype


def test_the_additive_scores_tensor_is_stored_in_c_order():
    """u (T, N, S, A) is reshaped to rows three times: stored in C order it is never copied
    (a plain broadcast sum would follow the keys' transposed layout)."""
    layer, q, k = make("additive")
    layer.forward(q, k, LENGTHS)
    u = layer._cache["u"]
    assert u.shape == (T, N, S, A) and u.flags.c_contiguous


@SCORES
def test_padding_gets_exactly_zero_weight(score):
    layer, q, k = make(score)
    k[LENGTHS[1]:, 1] = 1e3  # huge padded keys: still no weight
    _, a = layer.forward(q, k, LENGTHS)
    for n, length in enumerate(LENGTHS):
        assert np.all(a[:, n, length:] == 0.0)
        assert np.all(a[:, n, :length] > 0.0)
    np.testing.assert_allclose(a.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    _, dk = layer.backward(np.ones((T, N, k.shape[2])))
    assert np.all(dk[LENGTHS[1]:, 1] == 0.0)


def test_mask_equals_lengths():
    layer, q, k = make("additive")
    c1, a1 = layer.forward(q, k, LENGTHS)
    mask = np.arange(S)[:, None] < LENGTHS[None, :]
    c2, a2 = layer.forward(q, k, mask=mask)
    np.testing.assert_allclose(c1, c2, rtol=0, atol=1e-12)
    np.testing.assert_allclose(a1, a2, rtol=0, atol=1e-12)


def test_float32():
    layer, q, k = make("additive", dtype=np.float32)
    c, a = layer.forward(q, k, LENGTHS)
    assert c.dtype == a.dtype == np.float32
    dq, dk = layer.backward(np.ones_like(c))
    assert dq.dtype == dk.dtype == np.float32


@pytest.mark.parametrize("call, message", [
    (lambda L, q, k: L.forward(q[:, :2], k), "batch sizes must match"),
    (lambda L, q, k: L.forward(q[..., :2], k), "hidden_size"),
    (lambda L, q, k: L.forward(q, k[..., :2]), "key_size"),
    (lambda L, q, k: L.forward(q[0], k), "3 dimensions"),
    (lambda L, q, k: L.forward(q, k, np.array([5, 2])), "3 integers"),
    (lambda L, q, k: L.forward(q, k, np.array([5, 0, 1])), r"\[1, S=5\]"),
    (lambda L, q, k: L.forward(q, k, np.array([6, 1, 1])), r"\[1, S=5\]"),
    (lambda L, q, k: L.forward(q, k, mask=np.zeros((S, N), bool)), "at least one"),
    (lambda L, q, k: L.forward(q, k, mask=np.ones((S, 2), bool)), "boolean array"),
    (lambda L, q, k: L.forward(q.astype(np.float32), k), "dtype"),
    (lambda L, q, k: L.backward(np.ones((T, N, 2))), "context's shape"),
])
def test_bad_inputs(call, message):
    layer, q, k = make("additive")
    layer.forward(q, k)
    with pytest.raises(ValueError, match=message):
        call(layer, q, k)


def test_bad_construction():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="key_size == hidden_size"):
        Attention(4, "dot", key_size=6, rng=rng)
    with pytest.raises(ValueError, match="score must be"):
        Attention(4, "general", rng=rng)
    with pytest.raises(ValueError, match="backward called before forward"):
        Attention(4, rng=rng).backward(np.ones((1, 1, 4), np.float32))
