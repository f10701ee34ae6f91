"""``--device`` on the command line: is it usable here, and out of GPU memory as one line.

A device that cannot be used (no CuPy, no GPU, no such GPU) is a :class:`UsageError`
naming what is missing and what to install, raised before a run folder or a checkpoint is
touched. Running out of GPU memory (CuPy's ``OutOfMemoryError``) becomes one line naming
the model and batch sizes and what to make smaller.
"""

from __future__ import annotations

import sys
from typing import Any

from rnnlab.device import Device, DeviceError
from rnnlab.errors import UsageError


def usable(device: str | Device) -> Device:
    """``device`` parsed and checked (CuPy imported for a CUDA device), or a UsageError."""
    try:
        return Device.parse(device).check()
    except DeviceError as e:
        raise UsageError(str(e)) from None


def out_of_memory_types() -> tuple[type[BaseException], ...]:
    """CuPy's OutOfMemoryError when CuPy is loaded (a CUDA run), else nothing to catch."""
    cupy = sys.modules.get("cupy")
    if cupy is None:
        return ()
    return (cupy.cuda.memory.OutOfMemoryError,)


def out_of_memory(config: Any, kept: str) -> UsageError:
    """The one-line error for a run that ran out of GPU memory; ``kept``: what of the run
    folder is as it was."""
    c = config
    model = (f"--cell {c.cell} --layers {c.layers} --hidden {c.hidden} --embed {c.embed}, "
             f"{c.dtype}")
    batch = f"--batch-size {c.batch_size} --eval-batch-size {c.eval_batch_size}"
    if c.task == "lm":
        batch += f" --bptt {c.bptt}"
    return UsageError(f"out of GPU memory on {c.device} training the model ({model}) with "
                      f"{batch}: lower --batch-size{' or --bptt' if c.task == 'lm' else ''}, "
                      f"--eval-batch-size or --hidden, or use --device cpu; {kept}")
