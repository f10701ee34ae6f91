"""Embedding lookup table."""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from rnnlab._array import Array, check_array, check_float_dtype, check_ids, check_rng, check_sizes
from rnnlab.device import Device, array_module, to_device
from rnnlab.nn._cuda import launch
from rnnlab.nn.module import Module, Parameter

# add_rows_at: up to this many rows of `out`, the one-hot matmul wins (measured at V = 65,
# 2500 x 512 rows: 0.9 ms against 4.1 ms for sort and reduceat; it costs 2*V*M*W FLOPs)
ONE_HOT_MAX = 256


def add_rows_at(out: Array, ids: Array, rows: Array, *,
                segment_kernel: bool | None = None) -> None:
    """``out[v] += sum of rows[i] over all i with ids[i] = v``: a scatter-add, in place.

    out: (V, W). ids: (...) ints in [0, V). rows: (..., W). ``out[ids] += rows`` would keep
    only one row per repeated id, and np.add.at (the unbuffered scatter-add) is slow. For a
    small V the sum is one matmul with the one-hot matrix, ``onehot (V, M) @ rows (M, W)``;
    for a large V, sort the ids and sum each run of equal ones (np.add.reduceat).
    On a GPU the large-V sum is :data:`SEGMENT_SUM_CUDA` (``segment_kernel``: None
    decides by the array's type; True forces the kernel, False NumPy's lines).
    Both are deterministic: no atomics, a fixed order of additions.

    >>> out = np.zeros((3, 1))
    >>> add_rows_at(out, np.array([2, 0, 2]), np.array([[1.0], [10.0], [100.0]]))
    >>> out[:, 0]
    array([ 10.,   0., 101.])
    """
    V, W = out.shape
    xp = array_module(out)
    flat, rows = ids.reshape(-1), rows.reshape(-1, W)  # (M,), (M, W)
    if flat.size == 0:
        return
    if V <= ONE_HOT_MAX:
        onehot = xp.zeros((V, flat.size), out.dtype)  # (V, M)
        onehot[flat, xp.arange(flat.size)] = 1
        out += onehot @ rows  # (V, W)
        return
    if segment_kernel is None:  # CuPy's arrays (a module with RawKernel): the kernel
        segment_kernel = hasattr(xp, "RawKernel")
    if segment_kernel:
        segment_sum_cuda(out, flat, rows)
        return
    order = xp.argsort(flat, kind="stable")  # (M,)
    sorted_ids = flat[order]
    first = xp.ones(flat.size, dtype=bool)  # where a run of equal ids starts
    first[1:] = sorted_ids[1:] != sorted_ids[:-1]
    starts = xp.flatnonzero(first)
    out[sorted_ids[starts]] += xp.add.reduceat(rows[order], starts, axis=0)  # (U, W)


# add_rows_at's sort-and-sum on a GPU: thread (u, w) adds column w of the u-th distinct id's
# rows one after another in their original order (the sort is stable). The order is fixed,
# with no atomics whose order could change the sum: the same ids and rows give the same
# bits every run. (np.add.reduceat groups its additions differently: equal up to rounding.)
SEGMENT_SUM_CUDA = r"""
extern "C" __global__ void segment_sum(
        const real *rows,             // (M, W) the rows to add
        const long long *order,       // (M,) row numbers sorted by id, stable
        const long long *sorted_ids,  // (M,) ids[order]
        const long long *starts,      // (U,) where each distinct id's run starts in order
        int U, int M, int W,
        real *out) {                  // (V, W) out[v] += sum of v's rows
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= U * W) return;
    int u = idx / W, w = idx - u * W;
    long long start = starts[u], end = u + 1 < U ? starts[u + 1] : M;
    real sum = rows[order[start] * W + w];
    for (long long r = start + 1; r < end; ++r) sum += rows[order[r] * W + w];
    out[sorted_ids[start] * W + w] += sum;
}
"""


def segment_sum_cuda(out: Array, flat: Array, rows: Array) -> None:
    """``out[v] += rows[flat == v].sum(0)`` by :data:`SEGMENT_SUM_CUDA`: one launch after a sort.

    out: (V, W). flat: (M,) ids. rows: (M, W). NumPy arrays too (the CPU tests' g++ build).
    """
    xp = array_module(out)  # NumPy: the host build in tests; CuPy on a GPU
    # (M,) a stable sort; CuPy's argsort is stable (radix sort) and takes no ``kind``
    order = np.argsort(flat, kind="stable") if xp is np else flat.argsort()
    order = order.astype(xp.int64, copy=False)
    sorted_ids = flat[order].astype(xp.int64, copy=False)  # (M,)
    starts = xp.flatnonzero(xp.concatenate((xp.ones(1, bool),
                                            sorted_ids[1:] != sorted_ids[:-1])))  # (U,)
    M, W = rows.shape
    launch(SEGMENT_SUM_CUDA, "segment_sum", out.dtype, starts.size * W,
           xp.ascontiguousarray(rows), order, sorted_ids, starts.astype(xp.int64, copy=False),
           starts.size, M, W, out)


class Embedding(Module):
    """Row lookup ``y[...] = W[ids[...]]``: token ids to dense vectors.

    Shapes, with ``M`` the number of ids (e.g. ``T * N``)::

        ids : (...) integers in [0, V)
        W   : (V, E)
        y   = W[ids]          : (..., E)

    Backward: each row of the upstream gradient ``dy`` (..., E) is added to the row of
    ``dW`` it was read from; a repeated id receives the sum of its rows::

        dW[v] += sum_{i : ids_i = v} dy_i      : (V, E)

    The ids are not differentiable, so ``backward`` returns ``None``.
    Initialisation as in ``torch.nn.Embedding``: ``W ~ N(0, 1)``. On a GPU (``device=``) the
    ids may be NumPy arrays: they are checked on the host, then uploaded.

    Examples::

        >>> emb = Embedding(10, 3, rng=np.random.default_rng(0))
        >>> ids = np.array([[1, 2], [1, 9]])        # (T, N)
        >>> y = emb.forward(ids)                    # (T, N, E)
        >>> y.shape, bool((y[0, 0] == y[1, 0]).all())
        ((2, 2, 3), True)
        >>> emb.backward(np.ones((2, 2, 3), dtype=np.float32))
        >>> emb.weight.grad[:3, 0]                  # id 1 read twice, id 2 once, id 0 never
        array([0., 2., 1.], dtype=float32)
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        *,
        dtype: DTypeLike = np.float32,
        device: str | Device = "cpu",
        rng: np.random.Generator,
    ) -> None:
        check_sizes(num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        check_rng(rng)
        self.dtype = check_float_dtype(dtype)
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        w = rng.standard_normal((self.num_embeddings, self.embedding_dim)).astype(self.dtype)
        self.weight = Parameter(w)  # (V, E)
        self._cache: Array | None = None
        self._place(device)

    def forward(self, ids: Array) -> Array:
        self.check_ids(ids)
        ids = to_device(ids, self.device)
        self._cache = ids
        return self.weight.value[ids]  # (..., E)

    def check_ids(self, ids: Array) -> None:
        """Raise a ValueError unless ``ids`` is an integer array of ids in [0, V)."""
        check_ids(ids, self.num_embeddings, "num_embeddings")

    def backward(self, dy: Array) -> None:
        if self._cache is None:
            raise RuntimeError("Embedding.backward called before forward")
        ids = self._cache
        out_shape = (*ids.shape, self.embedding_dim)
        check_array("dy", dy, self.dtype, len(out_shape))
        if tuple(dy.shape) != out_shape:
            raise ValueError(f"dy must have the output's shape {out_shape}, got {tuple(dy.shape)}")
        add_rows_at(self.weight.grad, ids, dy)
        return None

    def __repr__(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}, dtype={self.dtype})"
