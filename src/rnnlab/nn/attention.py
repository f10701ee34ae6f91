"""Attention over the encoder's outputs, applied to every decoder hidden state (Luong).

Placement as in Luong, Pham & Manning (2015) and "Deep Learning from Scratch 2", ch. 8:
the decoder runs first; then each of its hidden states q_t looks at the encoder outputs
k_j and reads a context vector c_t, which the model joins to q_t before its output layer.
Shapes, with T decoder steps, S source steps, N sequences, H the decoder's hidden size,
H_enc the encoder's output size and A the additive network's size::

    q : (T, N, H)       decoder hidden states (queries)
    k : (S, N, H_enc)   encoder outputs (keys and values)
    m : (S, N)          m_jn = 1 where source step j of sequence n is real, 0 for padding

    score "dot" (H == H_enc):   s_tnj = q_tn . k_jn
    score "additive":           u_tnj = tanh(W_q q_tn + W_k k_jn)         (T, N, S, A)
                                s_tnj = v . u_tnj       (Bahdanau, Cho & Bengio 2015)
    softmax over the real steps: a_tnj = m_jn exp(s_tnj - M_tn) / sum_i m_in exp(s_tni - M_tn)
                                (M_tn the maximum of s_tn. over real steps; padding gets
                                exactly a = 0, as if its score were -inf)
    context:                    c_tn = sum_j a_tnj k_jn                   (T, N, H_enc)

Backward, for an upstream gradient dc (T, N, H_enc)::

    da_tnj  = dc_tn . k_jn
    dk_jn  += sum_t a_tnj dc_tn                       (the values' share)
    ds_tnj  = a_tnj (da_tnj - sum_i a_tni da_tni)     (softmax Jacobian; 0 at padding)
    "dot":       dq_tn = sum_j ds_tnj k_jn,   dk_jn += sum_t ds_tnj q_tn
    "additive":  dz_tnj = ds_tnj v (1 - u_tnj^2)      (T, N, S, A), through tanh
                 dv    += sum_tnj ds_tnj u_tnj
                 dW_q  += (sum_j dz_tnj)^T q_tn,  dq_tn = (sum_j dz_tnj) W_q
                 dW_k  += (sum_t dz_tnj)^T k_jn,  dk_jn += (sum_t dz_tnj) W_k

A sequence with no real source step (length 0) would have nothing to attend to (0/0):
``forward`` rejects it with a ValueError rather than return NaN or an arbitrary context.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from rnnlab._array import Array, check_array, check_float_dtype, check_rng, check_sizes, uniform
from rnnlab.device import Device, array_module, to_device, to_host
from rnnlab.nn.module import Module, Parameter

SCORES = ("dot", "additive")


def source_mask(lengths: Any, S: int, N: int) -> Array:
    """(S, N) booleans, True at real source steps (j < lengths[n]); every length in [1, S]."""
    lengths = to_host(lengths)
    if lengths.shape != (N,) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths must be {N} integers (one per sequence), got shape "
                         f"{lengths.shape} dtype {lengths.dtype}")
    if lengths.min() < 1 or lengths.max() > S:
        raise ValueError(f"source lengths must lie in [1, S={S}] (a sequence with no source "
                         f"step has nothing to attend to), got min {lengths.min()} "
                         f"max {lengths.max()}")
    return np.arange(S)[:, None] < lengths[None, :]


def masked_softmax(s: Array, mask: Array) -> Array:
    """softmax over the last axis of s, restricted to mask (True = kept); 0 elsewhere, exactly.

    s: (..., S); mask broadcastable to s. Each row needs at least one kept entry.
    """
    xp = array_module(s)
    s = xp.where(mask, s, -np.inf)  # masked scores -inf: exp gives exactly 0 there
    e = xp.exp(s - s.max(axis=-1, keepdims=True))  # (..., S)
    return e / e.sum(axis=-1, keepdims=True)


# The three contractions, each one batched matmul over the N sequences (the named trick
# "per-sequence matmul": NumPy's einsum without optimize= runs its own loops, 5-11x slower
# than these at T = S = 8, N = 64, H = 256: 150-300 us against 27 us, one or two threads).
def scores(q: Array, k: Array) -> Array:
    """s_tnj = q_tn . k_jn: q (T, N, H), k (S, N, H) -> (T, N, S); einsum "tnh,snh->tns"."""
    return (q.transpose(1, 0, 2) @ k.transpose(1, 2, 0)).transpose(1, 0, 2)


def mix(a: Array, k: Array) -> Array:
    """c_tn = sum_j a_tnj k_jn: a (T, N, S), k (S, N, H) -> (T, N, H); "tns,snh->tnh"."""
    return (a.transpose(1, 0, 2) @ k.transpose(1, 0, 2)).transpose(1, 0, 2)


def mix_back(a: Array, d: Array) -> Array:
    """sum_t a_tnj d_tn: a (T, N, S), d (T, N, H) -> (S, N, H); "tns,tnh->snh"."""
    return (a.transpose(1, 2, 0) @ d.transpose(1, 0, 2)).transpose(1, 0, 2)


def by_rows(x: Array, W: Array) -> Array:
    """x (..., D) @ W (D, F) or (D,) -> (..., F) or (...), as one product over all rows.

    Named trick, *one product, not T*: NumPy runs a 3-D @ 2-D matmul as one GEMM per
    leading index, and a 4-D @ 1-D one as one GEMV per (S, A) block (additive attention's
    ``u @ v``: T N calls of a few microseconds each); reshaped, every row goes in one call.
    """
    return (x.reshape(-1, x.shape[-1]) @ W).reshape(*x.shape[:-1], *W.shape[1:])


class Attention(Module):
    """Luong-placed attention with a dot or an additive (Bahdanau) score; see the module doc.

    ``context, weights = attn.forward(q, k, lengths)`` with q (T, N, H) the decoder's
    states, k (S, N, H_enc) the encoder's outputs and lengths the N source lengths (or
    ``mask=`` an (S, N) boolean array); context is (T, N, H_enc), weights (T, N, S).
    ``dq, dk = attn.backward(dcontext)`` adds the parameter gradients (additive only:
    ``weight_query (A, H)``, ``weight_key (A, H_enc)``, ``v (A,)``, each ~ U(-1/sqrt(fan_in),
    1/sqrt(fan_in))). ``key_size`` defaults to ``hidden_size``, ``attn_size`` to ``hidden_size``.

    Examples::

        >>> import numpy as np
        >>> attn = Attention(4, "additive", key_size=6, dtype=np.float64,
        ...                  rng=np.random.default_rng(0))
        >>> q, k = np.ones((3, 2, 4)), np.ones((5, 2, 6))
        >>> context, weights = attn.forward(q, k, lengths=np.array([5, 2]))
        >>> context.shape, weights.shape, bool((weights[:, 1, 2:] == 0).all())
        ((3, 2, 6), (3, 2, 5), True)
        >>> dq, dk = attn.backward(np.ones((3, 2, 6)))
        >>> dq.shape, dk.shape
        ((3, 2, 4), (5, 2, 6))
    """

    def __init__(
        self,
        hidden_size: int,
        score: str = "dot",
        *,
        key_size: int | None = None,
        attn_size: int | None = None,
        dtype: DTypeLike = np.float32,
        device: str | Device = "cpu",
        rng: np.random.Generator,
    ) -> None:
        key_size = hidden_size if key_size is None else key_size
        attn_size = hidden_size if attn_size is None else attn_size
        check_sizes(hidden_size=hidden_size, key_size=key_size, attn_size=attn_size)
        check_rng(rng)
        if score not in SCORES:
            raise ValueError(f"score must be 'dot' or 'additive', got {score!r}")
        if score == "dot" and key_size != hidden_size:
            raise ValueError(f"the dot score needs key_size == hidden_size, got {key_size} and "
                             f"{hidden_size}: use score='additive' for different sizes")
        self.dtype = check_float_dtype(dtype)
        self.hidden_size, self.key_size, self.score = int(hidden_size), int(key_size), score
        self.attn_size = int(attn_size) if score == "additive" else 0
        if score == "additive":
            A = self.attn_size
            self.weight_query = Parameter(
                uniform(rng, 1 / math.sqrt(hidden_size), (A, hidden_size), self.dtype))
            self.weight_key = Parameter(
                uniform(rng, 1 / math.sqrt(key_size), (A, key_size), self.dtype))
            self.v = Parameter(uniform(rng, 1 / math.sqrt(A), (A,), self.dtype))
        self._cache: dict[str, Array] | None = None
        self._place(device)

    # ----------------------------------------------------------------- forward
    def forward(
        self, q: Array, k: Array, lengths: Any = None, *, mask: Array | None = None
    ) -> tuple[Array, Array]:
        """``context (T, N, H_enc), weights (T, N, S) = attn.forward(q, k, lengths)``."""
        m = to_device(self._check(q, k, lengths, mask), self.device)  # (S, N)
        xp = self.xp
        mT = m.T[None]  # (1, N, S)
        cache: dict[str, Array] = {"q": q, "k": k}
        if self.score == "dot":
            s = scores(q, k)  # (T, N, S)
        else:
            Wq_q = by_rows(q, self.weight_query.value.T)  # (T, N, A)
            Wk_k = by_rows(k, self.weight_key.value.T)  # (S, N, A)
            # (T, N, S, A), C-ordered: a plain sum follows Wk_k's transposed layout, and
            # every reshape of u below would copy it (forward and backward at T = S = 9,
            # N = 64, A = 256: 10.8 -> 6.0 ms at 2 threads)
            u = xp.add(Wq_q[:, :, None, :], Wk_k.transpose(1, 0, 2)[None],
                       out=xp.empty((*Wq_q.shape[:2], k.shape[0], self.attn_size), q.dtype))
            xp.tanh(u, out=u)  # in place, as dz below: no second (T, N, S, A) temporary
            s = by_rows(u, self.v.value)  # (T, N, S) = u @ v
            cache["u"] = u
        a = masked_softmax(s, mT)  # (T, N, S)
        c = mix(a, k)  # (T, N, H_enc)
        cache["a"] = a
        self._cache = cache
        return c, a.copy()

    def _check(self, q: Array, k: Array, lengths: Any, mask: Array | None) -> Array:
        check_array("decoder states q", q, self.dtype, 3)
        check_array("encoder outputs k", k, self.dtype, 3)
        if q.shape[2] != self.hidden_size:
            raise ValueError(f"decoder states have {q.shape[2]} features but hidden_size is "
                             f"{self.hidden_size}")
        if k.shape[2] != self.key_size:
            raise ValueError(f"encoder outputs have {k.shape[2]} features but key_size is "
                             f"{self.key_size}")
        S, N = k.shape[:2]
        if q.shape[1] != N:
            raise ValueError(f"decoder states hold {q.shape[1]} sequences but encoder outputs "
                             f"hold {N}: the batch sizes must match")
        if lengths is not None and mask is not None:
            raise ValueError("give the source lengths or a mask, not both")
        if mask is None:
            return source_mask(np.full(N, S) if lengths is None else lengths, S, N)
        if getattr(mask, "dtype", None) != np.bool_ or mask.shape != (S, N):
            raise ValueError(f"mask must be an (S, N) = {(S, N)} boolean array, got "
                             f"{getattr(mask, 'shape', type(mask).__name__)}")
        if not mask.any(axis=0).all():
            raise ValueError("every sequence needs at least one unmasked source step")
        return mask

    # ---------------------------------------------------------------- backward
    def backward(self, dc: Array) -> tuple[Array, Array]:
        """``dq (T, N, H), dk (S, N, H_enc) = attn.backward(dcontext (T, N, H_enc))``."""
        if self._cache is None:
            raise ValueError("Attention.backward called before forward")
        q, k, a = self._cache["q"], self._cache["k"], self._cache["a"]
        check_array("dcontext", dc, self.dtype, 3)
        if dc.shape != (*q.shape[:2], self.key_size):
            raise ValueError(f"dcontext must have the context's shape "
                             f"{(*q.shape[:2], self.key_size)}, got {tuple(dc.shape)}")
        da = scores(dc, k)  # (T, N, S)
        dk = mix_back(a, dc)  # (S, N, H_enc) the values' share
        ds = a * (da - (a * da).sum(axis=-1, keepdims=True))  # (T, N, S)
        if self.score == "dot":
            dq = mix(ds, k)  # (T, N, H)
            dk += mix_back(ds, q)
            return dq, dk
        u = self._cache["u"]  # (T, N, S, A)
        self.v.grad += ds.reshape(-1) @ u.reshape(-1, self.attn_size)  # sum_tnj ds u
        # dz = ds v (1 - u^2), (T, N, S, A), in place: one array, not four temporaries
        # of this size (5x faster alone at T = S = 9, N = 64, A = 256: 3.3 ms -> 0.67 ms)
        dz = self.xp.multiply(u, u)
        self.xp.subtract(1, dz, out=dz)
        dz *= self.v.value
        dz *= ds[..., None]
        dWq_q = dz.sum(axis=2)  # (T, N, A)
        dWk_k = dz.sum(axis=0).transpose(1, 0, 2)  # (S, N, A)
        A = self.attn_size
        self.weight_query.grad += dWq_q.reshape(-1, A).T @ q.reshape(-1, self.hidden_size)
        self.weight_key.grad += dWk_k.reshape(-1, A).T @ k.reshape(-1, self.key_size)
        dq = by_rows(dWq_q, self.weight_query.value)  # (T, N, H)
        dk += by_rows(dWk_k, self.weight_key.value)  # (S, N, H_enc)
        return dq, dk

    def __repr__(self) -> str:
        extra = f", attn_size={self.attn_size}" if self.score == "additive" else ""
        return (f"Attention({self.hidden_size}, {self.score!r}, key_size={self.key_size}"
                f"{extra}, dtype={self.dtype})")
