"""Moving weights between rnnlab and PyTorch (importable without torch installed).

rnnlab names and lays out parameters exactly as PyTorch does (``weight_ih_l0`` of shape
(4H, D) for an LSTM, gates i, f, g, o; ``weight`` (out, in) for Linear; dotted names for
sub-modules), so interchange is a dictionary of arrays::

    import torch, rnnlab
    from rnnlab.nn.torch_compat import export_params, import_params

    ours = rnnlab.LSTM(10, 20, num_layers=2, dtype=np.float32, rng=np.random.default_rng(0))
    theirs = torch.nn.LSTM(10, 20, num_layers=2)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in export_params(ours).items()})
    import_params(ours, theirs.state_dict())          # and back

Parameters PyTorch has no counterpart for (LSTM peepholes ``weight_ci_l0`` ...) are
exported under their rnnlab names; a PyTorch module will reject them.

Without torch, a round trip through plain arrays (a torch ``state_dict`` works the same)::

>>> from rnnlab.nn import LSTM
>>> a = LSTM(3, 4, dtype=np.float32, rng=np.random.default_rng(0))
>>> b = LSTM(3, 4, dtype=np.float32, rng=np.random.default_rng(1))
>>> sorted(export_params(a))
['bias_hh_l0', 'bias_ih_l0', 'weight_hh_l0', 'weight_ih_l0']
>>> import_params(b, export_params(a))
>>> all(np.array_equal(v, export_params(a)[k]) for k, v in export_params(b).items())
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rnnlab.device import device_of, to_device, to_host
from rnnlab.nn.module import Module


def export_params(module: Module, grads: bool = False) -> dict[str, np.ndarray]:
    """Name -> copy of each parameter (or its gradient, with ``grads=True``), PyTorch names."""
    params = module.named_params(remove_duplicate=False)
    return {name: np.array(to_host(p.grad if grads else p.value), copy=True)
            for name, p in params.items()}


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch.Tensor, without importing torch
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def import_params(module: Module, state_dict: Mapping[str, Any]) -> None:
    """Copy ``state_dict`` (numpy arrays or torch tensors) into ``module``'s parameters.

    Every parameter must be present with its exact shape, and no unknown name may appear:
    otherwise a ValueError names the offending entry and nothing is changed. Values are
    cast to each parameter's dtype.
    """
    params = module.named_params(remove_duplicate=False)
    missing = [name for name in params if name not in state_dict]
    if missing:
        raise ValueError(f"state_dict lacks parameter {missing[0]!r} "
                         f"({len(missing)} missing; expected names: {', '.join(params)})")
    unexpected = [name for name in state_dict if name not in params]
    if unexpected:
        raise ValueError(f"state_dict has unknown parameter {unexpected[0]!r} "
                         f"(expected names: {', '.join(params)})")
    arrays = {name: _to_numpy(state_dict[name]) for name in params}
    for name, p in params.items():
        if arrays[name].shape != p.value.shape:
            raise ValueError(f"parameter {name!r} has shape {arrays[name].shape} in the "
                             f"state_dict but {p.value.shape} in the module")
    for name, p in params.items():
        p.value[...] = to_device(arrays[name].astype(p.value.dtype, copy=False),
                                 device_of(p.value))
