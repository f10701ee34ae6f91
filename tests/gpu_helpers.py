"""Whether this machine can run the GPU tests: CuPy installed and an NVIDIA GPU there.

``needs_gpu`` skips a test otherwise, saying which of the two is missing; GPU tests also
carry the ``gpu`` marker (pyproject), so ``pytest -m gpu`` selects them on a GPU machine.
"""

from __future__ import annotations

import pytest

from rnnlab.device import Device, DeviceError


def gpu_status() -> tuple[bool, str]:
    """(usable, why not): the DeviceError's line when cuda:0 cannot be used."""
    try:
        Device("cuda").check()
    except DeviceError as e:
        return False, str(e)
    return True, ""


GPU, WHY_NOT = gpu_status()
needs_gpu = pytest.mark.skipif(not GPU, reason=f"no GPU to test on: {WHY_NOT}")
