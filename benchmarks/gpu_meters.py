"""What gpu.py measures beside time: device waits, peak GPU memory, kernel launches per step."""

from __future__ import annotations

from typing import Any


class Sync:
    """Waits for the device's queued work (nothing to wait for on the CPU)."""

    def __init__(self, device: str) -> None:
        self.cuda = device != "cpu"

    def __call__(self) -> None:
        if self.cuda:
            import cupy
            import torch

            cupy.cuda.Device().synchronize()
            torch.cuda.synchronize()


def torch_peak(side: Any, device: str, steps: int = 2) -> float | None:
    """MiB PyTorch allocated at most during ``steps`` of ``side``'s steps (gpu.Side)."""
    if device == "cpu":
        side.train(steps)
        return None
    import torch

    torch.cuda.reset_peak_memory_stats()
    side.train(steps)
    return torch.cuda.max_memory_allocated() / 2**20


def cupy_peak(side: Any, device: str, steps: int = 2) -> float | None:
    """MiB in use in CuPy's pool at most during ``steps`` steps (a counting allocator)."""
    if device == "cpu":
        side.train(steps)
        return None
    import cupy

    pool = cupy.get_default_memory_pool()
    most = [pool.used_bytes()]

    def malloc(size: int) -> Any:
        mem = pool.malloc(size)
        most[0] = max(most[0], pool.used_bytes())
        return mem

    cupy.cuda.set_allocator(malloc)
    try:
        side.train(steps)
    finally:
        cupy.cuda.set_allocator(pool.malloc)
    return most[0] / 2**20


def launches(side: Any, device: str) -> int | None:
    """GPU kernels CUPTI records during one step (torch.profiler; CuPy's included)."""
    if device == "cpu":
        return None
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        side.train(1)
    return sum(1 for e in prof.events() if e.device_type == DeviceType.CUDA
               and not e.name.startswith(("Memcpy", "Memset")))
