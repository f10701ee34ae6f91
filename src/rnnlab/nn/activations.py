"""The cells' numerical tricks, each one named, with the identity it relies on.

The recurrent cells (``rnn.py``, ``lstm.py``, ``gru.py``) compute their nonlinearities in
place, in preallocated buffers, and several gate blocks in one NumPy pass. Each such trick
lives here as a small function, so that a cell's step reads like the equations of its
docstring. Every function ending in ``_`` overwrites its first argument and returns it.

Identities used::

    sigma(x) = 1 / (1 + exp(-x)) = (1 + tanh(x / 2)) / 2       no exp: cannot overflow
    tanh(x)  = 1 * tanh(1 * x) + 0                            same form, scale 1, shift 0
    sigma'(x) = s (1 - s),  tanh'(x) = 1 - g^2 = (1 + g)(1 - g)    from the outputs s, g

The plain, allocating versions of the cells (``reference.py``) use none of this. Each
function takes its array module from its first argument (numpy, or cupy on a GPU).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from rnnlab._array import Array
from rnnlab.device import array_module


def _xp(a: Array) -> ModuleType:
    """numpy for a NumPy array (the fast path: one type check), else the array's module."""
    return np if type(a) is np.ndarray else array_module(a)


def sigmoid_(a: Array) -> Array:
    """Logistic sigmoid in place, overflow-safe: sigma(x) = (1 + tanh(x/2)) / 2.

    ``1 / (1 + exp(-x))`` overflows exp for x < -709 (float64) or -88 (float32); tanh
    saturates instead, so any finite input gives a result in [0, 1].

    >>> a = np.array([-1000.0, 0.0, 2.0])
    >>> np.round(sigmoid_(a), 4)
    array([0.    , 0.5   , 0.8808])
    """
    xp = _xp(a)
    a *= 0.5
    xp.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


def tanh_(a: Array) -> Array:
    """tanh in place.

    >>> tanh_(np.array([0.0, 100.0]))
    array([0., 1.])
    """
    xp = _xp(a)
    return xp.tanh(a, out=a)


def relu_(a: Array) -> Array:
    """max(a, 0) in place.

    >>> relu_(np.array([-1.0, 2.0]))
    array([0., 2.])
    """
    xp = _xp(a)
    return xp.maximum(a, 0, out=a)


def gate_constants(kinds: str, H: int, dtype: np.dtype) -> tuple[Array, Array, Array]:
    """Per-column constants (scale, shift, beta) of fused gate blocks, H columns per block.

    ``kinds`` has one letter per block: ``s`` a sigmoid block, ``t`` a tanh block. For
    ``gate_activations_``: scale 1/2, shift 1/2 on sigmoid blocks; scale 1, shift 0 on tanh
    blocks. For ``gate_derivatives``: beta 0 on sigmoid blocks, 1 on tanh blocks.

    >>> scale, shift, beta = gate_constants("st", 2, np.float64)
    >>> scale, shift, beta
    (array([0.5, 0.5, 1. , 1. ]), array([0.5, 0.5, 0. , 0. ]), array([0., 0., 1., 1.]))
    """
    tanh = np.repeat([k == "t" for k in kinds], H)  # (blocks*H,) booleans
    scale = np.where(tanh, 1.0, 0.5).astype(dtype)
    shift = np.where(tanh, 0.0, 0.5).astype(dtype)
    return scale, shift, tanh.astype(dtype)


def gate_activations_(a: Array, scale: Array, shift: Array) -> Array:
    """Sigmoid and tanh gate blocks in one pass each: a <- scale * tanh(scale * a) + shift.

    With scale = shift = 1/2 that is sigma(a) = (1 + tanh(a/2)) / 2; with scale 1, shift 0
    it is tanh(a). So the LSTM's four blocks [i f g o] = [sigma sigma tanh sigma] of the
    pre-activations (N, 4H) take four whole-array passes instead of four per block.

    >>> scale, shift, _ = gate_constants("st", 1, np.float64)
    >>> a = np.array([[0.0, 0.0], [2.0, 2.0]])
    >>> np.round(gate_activations_(a, scale, shift), 4)  # columns: sigma, tanh
    array([[0.5   , 0.    ],
           [0.8808, 0.964 ]])
    """
    xp = _xp(a)
    a *= scale
    xp.tanh(a, out=a)
    a *= scale
    a += shift
    return a


def gate_derivatives(s: Array, beta: Array, out: Array, tmp: Array) -> Array:
    """Each gate's derivative from its output: out <- (s + beta) * (1 - s).

    beta 0 gives sigma' = s (1 - s); beta 1 gives tanh' = 1 - g^2 = (1 + g)(1 - g). For
    the LSTM's [i f g o] that is [i(1-i) f(1-f) 1-g^2 o(1-o)] in one pass. tmp: scratch of
    s's shape.

    >>> s = np.array([[0.5, 0.5]])
    >>> _, _, beta = gate_constants("st", 1, np.float64)
    >>> gate_derivatives(s, beta, np.empty_like(s), np.empty_like(s))  # 0.5*0.5, 1-0.5^2
    array([[0.25, 0.75]])
    """
    xp = _xp(s)
    xp.add(s, beta, out=out)
    xp.subtract(1, s, out=tmp)
    out *= tmp
    return out


def tanh_backward(dy: Array, y: Array, out: Array) -> Array:
    """The gradient through y = tanh(a): out <- dy * (1 - y^2), from the output y.

    out must not be dy itself; it may broadcast y over a leading axis of dy (the ages of
    the truncated backward).

    >>> tanh_backward(np.array([2.0]), np.array([0.5]), np.empty(1))
    array([1.5])
    """
    xp = _xp(dy)
    xp.multiply(y, y, out=out)
    xp.subtract(1, out, out=out)
    out *= dy
    return out


def relu_backward(dy: Array, y: Array, out: Array) -> Array:
    """The gradient through y = relu(a): out <- dy * [y > 0] (y > 0 exactly where a > 0).

    >>> relu_backward(np.array([2.0, 2.0]), np.array([0.0, 3.0]), np.empty(2))
    array([0., 2.])
    """
    xp = _xp(dy)
    return xp.multiply(dy, y > 0, out=out)


def interpolate(n: Array, h_prev: Array, z: Array, out: Array) -> Array:
    """The GRU's update, out <- (1 - z) * n + z * h_prev, as n + z * (h_prev - n).

    One subtraction, one product, one sum, and no (1 - z) temporary.

    >>> interpolate(np.array([1.0]), np.array([3.0]), np.array([0.25]), np.empty(1))
    array([1.5])
    """
    xp = _xp(n)
    xp.subtract(h_prev, n, out=out)
    out *= z
    out += n
    return out
