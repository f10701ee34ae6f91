"""Embedding lookup table."""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from rnnlab._array import Array, check_array, check_float_dtype, check_rng, check_sizes
from rnnlab.nn.module import Module, Parameter


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
    Initialisation as in ``torch.nn.Embedding``: ``W ~ N(0, 1)``.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        *,
        dtype: DTypeLike = np.float32,
        rng: np.random.Generator,
    ) -> None:
        check_sizes(num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        check_rng(rng)
        self.xp = np
        self.dtype = check_float_dtype(dtype)
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        # Drawn on the host so the same seed gives the same table on any backend.
        w = rng.standard_normal((self.num_embeddings, self.embedding_dim)).astype(self.dtype)
        self.weight = Parameter(self.xp.asarray(w))  # (V, E)
        self._cache: Array | None = None

    def forward(self, ids: Array) -> Array:
        self.check_ids(ids)
        self._cache = ids
        return self.weight.value[ids]  # (..., E)

    def check_ids(self, ids: Array) -> None:
        """Raise a ValueError unless ``ids`` is an integer array of ids in [0, V)."""
        if not hasattr(ids, "dtype") or not hasattr(ids, "shape"):
            raise ValueError(f"ids must be an integer array, got {type(ids).__name__}")
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must be an integer array, got dtype {ids.dtype}")
        if ids.size:
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi >= self.num_embeddings:
                bad = lo if lo < 0 else hi
                raise ValueError(
                    f"ids must lie in [0, {self.num_embeddings}) (num_embeddings), got id {bad}"
                )

    def backward(self, dy: Array) -> None:
        if self._cache is None:
            raise RuntimeError("Embedding.backward called before forward")
        ids = self._cache
        out_shape = (*ids.shape, self.embedding_dim)
        check_array("dy", dy, self.dtype, len(out_shape))
        if tuple(dy.shape) != out_shape:
            raise ValueError(f"dy must have the output's shape {out_shape}, got {tuple(dy.shape)}")
        # `grad[ids] += dy` would keep only one row per repeated id, and np.add.at (the
        # unbuffered scatter-add) is slow, so sort the ids and sum each run of equal ones.
        xp, flat = self.xp, ids.reshape(-1)  # (M,)
        if flat.size == 0:
            return None
        order = xp.argsort(flat, kind="stable")  # (M,)
        sorted_ids = flat[order]
        starts = xp.flatnonzero(xp.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
        rows = dy.reshape(-1, self.embedding_dim)[order]  # (M, E) grouped by id
        self.weight.grad[sorted_ids[starts]] += xp.add.reduceat(rows, starts, axis=0)  # (U, E)
        return None

    def __repr__(self) -> str:
        return f"Embedding({self.num_embeddings}, {self.embedding_dim}, dtype={self.dtype})"
