"""rnnlab on a GPU: the one script the device machine runs (tests, parity, speed vs cuDNN).

    python benchmarks/gpu.py                 # on the GPU machine: all three parts, < 10 min
    python benchmarks/gpu.py --dry-run       # anywhere: the same code on device cpu, tiny sizes
    python benchmarks/gpu.py --parts speed --only ptb-medium --repeats 7

1. ``pytest -m gpu``: the tests marked ``gpu`` (they skip without CuPy or a GPU).
2. The parity table (``gpu_parity.py``): every cell and option, per tensor, device vs CPU.
3. The speed table: the training step of a 2-layer LSTM language model (embed = hidden),
   rnnlab on the GPU against PyTorch's cuDNN LSTM on the same GPU, same weights and token
   windows (``worker.py``'s two sides), float32; the word-level ones read Zipf-distributed
   ids over V = 10k (the speed does not depend on the text; PTB does not travel there).
   The ratio is cuDNN's step time with TF32 off over rnnlab's (full float32 products:
   ``nn._cuda.float32_matmul(False)``), the median over ``--repeats`` interleaved repeats
   (rnnlab, cuDNN off, cuDNN default, then reversed, ...); cuDNN's TF32 default
   (``torch.backends.cudnn.allow_tf32``) beside it. Peak GPU memory: PyTorch's
   ``max_memory_allocated`` and, for rnnlab, the most bytes in use in CuPy's pool during
   warm-up steps (a counting allocator; not while timing). Kernel launches per step: the
   GPU kernels CUPTI records (``torch.profiler``) during one step, CuPy's included.
Everything is printed and written as JSON under ``$OUT`` (default ./gpu-out).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from gpu_meters import Sync, cupy_peak, launches, torch_peak
from gpu_parity import parity, parity_table, upload
from worker import MAX_WINDOWS, RnnlabSide, TorchSide, token_ids

from rnnlab.data import BPTTBatches
from rnnlab.models import LanguageModel

ROOT = Path(__file__).resolve().parent.parent
# name: (vocab, hidden, batch, bptt, target ratio from issue 21)
CONFIGS = {
    "char-small": (65, 128, 50, 50, 0.5), "char-large": (65, 512, 50, 50, 0.6),
    "ptb-small": (10000, 200, 20, 20, 0.5), "ptb-medium": (10000, 650, 20, 35, 0.6),
    "ptb-large": (10000, 1500, 20, 35, 0.6), "big-batch": (10000, 1024, 128, 64, 0.6),
}
DRY = {"char-small": (65, 16, 4, 6, 0.5), "ptb-small": (300, 24, 3, 5, 0.5)}


def config(name: str, dry: bool) -> dict[str, Any]:
    V, Hd, B, T, target = (DRY if dry else CONFIGS)[name]
    return {"name": name, "cell": "lstm", "vocab": V, "hidden": Hd, "batch": B, "bptt": T,
            "layers": 2, "data": "char" if V < 100 else "word", "ptb": "", "lr": 1.0,
            "clip": 0.25, "kind": "train", "target": target}


class Side:
    """One framework's training step on its device: windows uploaded once, timed calls."""

    def __init__(self, name: str, step: Any, windows: list[Any], sync: Sync,
                 before: Any = None) -> None:
        self.name, self.step, self.windows, self.sync = name, step, windows, sync
        self.before, self.pos = before or (lambda: None), 0

    def train(self, steps: int) -> tuple[float, float]:
        """(seconds per step, mean loss) over ``steps`` steps."""
        self.before()
        losses = []
        start = time.perf_counter()
        for _ in range(steps):
            x, y = self.windows[self.pos]
            losses.append(float(self.step(x, y, self.pos == 0)))
            self.pos = (self.pos + 1) % len(self.windows)
        self.sync()
        return (time.perf_counter() - start) / steps, float(np.mean(losses))


def build_sides(cfg: dict[str, Any], device: str, sync: Sync) -> tuple[list[Side], dict]:
    """rnnlab, cuDNN with TF32 off, cuDNN with its TF32 default; and peak memory per side."""
    import torch

    model = LanguageModel(cfg["vocab"], cell="lstm", embed_size=cfg["hidden"],
                          hidden_size=cfg["hidden"], num_layers=cfg["layers"], init_range=0.1,
                          rng=np.random.default_rng(0))
    batches = BPTTBatches(token_ids(cfg), cfg["batch"], cfg["bptt"])
    host = [batches[i] for i in range(min(MAX_WINDOWS, len(batches)))]
    tdev = torch.device("cpu" if device == "cpu" else "cuda")
    twin = [tuple(torch.from_numpy(np.ascontiguousarray(a, dtype=np.int64)).to(tdev)
                  for a in w) for w in host]
    peak: dict[str, float | None] = {}
    torch_sides = []
    for name, tf32 in (("cudnn", False), ("cudnn_tf32", True)):
        ts = TorchSide(cfg, model)
        ts.net.to(tdev)

        def before(tf32: bool = tf32) -> None:
            torch.backends.cudnn.allow_tf32 = tf32  # its default: True
            torch.backends.cuda.matmul.allow_tf32 = False  # its default: False

        side = Side(name, ts.step, twin, sync, before)
        if name == "cudnn":
            peak[name] = torch_peak(side, device)
        torch_sides.append(side)
    if device != "cpu":
        from rnnlab.nn._cuda import float32_matmul

        model = model.to(device)
        full32 = lambda: float32_matmul(False)  # noqa: E731
    else:
        full32 = None
    rs = RnnlabSide(cfg, model)
    ours = Side("rnnlab", rs.step, [tuple(upload(a, device) for a in w) for w in host], sync,
                full32)
    peak["rnnlab"] = cupy_peak(ours, device)
    return [ours, *torch_sides], peak


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    cfg, sync = config(name, args.dry_run), Sync(args.device)
    sides, peak = build_sides(cfg, args.device, sync)
    for s in sides:
        s.train(args.warmup)
    ms: dict[str, list[float]] = {s.name: [] for s in sides}
    loss: dict[str, list[float]] = {s.name: [] for s in sides}
    for r in range(args.repeats):
        for s in sides if r % 2 == 0 else sides[::-1]:
            sec, mean_loss = s.train(args.steps)
            ms[s.name].append(1e3 * sec)
            loss[s.name].append(mean_loss)
    ratios = [t / o for t, o in zip(ms["cudnn"], ms["rnnlab"], strict=True)]
    row = {"config": name, **{k: cfg[k] for k in ("vocab", "hidden", "batch", "bptt")},
           "target": cfg["target"], "ratio": statistics.median(ratios), "ratios": ratios,
           "loss_rel_diff": max(abs(a - b) / abs(b) for a, b in
                                zip(loss["rnnlab"], loss["cudnn"], strict=True))}
    for s in sides:
        row[f"{s.name}_ms"] = statistics.median(ms[s.name])
        row[f"{s.name}_all_ms"] = ms[s.name]
        row[f"{s.name}_launches"] = launches(s, args.device)
    row.update({f"{k}_peak_mib": v for k, v in peak.items()})
    del sides
    gc.collect()
    return row


def speed_table(rows: list[dict[str, Any]]) -> str:
    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    lines = ["| config | rnnlab ms | cuDNN ms (TF32 off) | cuDNN ms (TF32 default) | ratio "
             "(TF32 off) | target | rnnlab MiB | cuDNN MiB | launches/step rnnlab | cuDNN | "
             "loss diff |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        below = "" if r["ratio"] >= r["target"] else " (below)"
        lines.append(
            f"| {r['config']} | {r['rnnlab_ms']:.2f} | {r['cudnn_ms']:.2f} | "
            f"{r['cudnn_tf32_ms']:.2f} | {r['ratio']:.2f}x{below} | {r['target']:.1f}x | "
            f"{f(r['rnnlab_peak_mib'], '.0f')} | {f(r['cudnn_peak_mib'], '.0f')} | "
            f"{f(r['rnnlab_launches'], 'd')} | {f(r['cudnn_launches'], 'd')} | "
            f"{r['loss_rel_diff']:.1e} |")
    return "\n".join(lines)


def environment(device: str) -> dict[str, Any]:
    env: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           "python": platform.python_version(), "numpy": np.__version__,
                           "device": device}
    import torch

    env.update(torch=torch.__version__, cudnn=torch.backends.cudnn.version())
    if device != "cpu":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        env.update(cupy=cupy.__version__, gpu=props["name"].decode(),
                   driver=cupy.cuda.runtime.driverGetVersion(),
                   runtime=cupy.cuda.runtime.runtimeGetVersion(), **matmul_modes())
    return env


def matmul_modes() -> dict[str, Any]:
    """float32_matmul's effect, measured: a float32 product's error against float64 with
    TF32 off (full float32: about 1e-7 relative) and on (TF32's 10-bit mantissa: about
    1e-4), each in 2-D (cublasGemmEx) and batched (3-D) form; then left off."""
    import cupy
    from cupy._core import _routines_linalg as linalg

    from rnnlab.nn._cuda import float32_matmul

    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 512, 512))
    b = rng.standard_normal((512, 512))
    exact = a @ b
    a32, b32 = cupy.asarray(a, np.float32), cupy.asarray(b, np.float32)
    modes: dict[str, Any] = {}
    for tf32 in (True, False):
        float32_matmul(tf32)
        for form, got in (("2d", a32[0] @ b32), ("batched", a32 @ b32)):
            want = exact[0] if form == "2d" else exact
            err = np.linalg.norm(cupy.asnumpy(got) - want) / np.linalg.norm(want)
            modes[f"matmul_rel_err_{form}_tf32_{'on' if tf32 else 'off'}"] = float(err)
    modes["cupy_compute_type_float32"] = linalg.compute_type_to_str(
        linalg.get_compute_type(np.float32))
    return modes


def run_tests(out: Path, timeout: float) -> int:
    """``pytest -m gpu`` over tests/, its output saved; its exit status (5: none collected;
    124: stopped after ``timeout`` seconds)."""
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                               "-m", "gpu", "-rs", str(ROOT / "tests")], cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        text, status = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as e:
        text = f"{e.stdout or ''}{e.stderr or ''}\npytest -m gpu: stopped after {timeout:.0f} s"
        status = 124
    (out / "tests.txt").write_text(text)
    print("\n".join(text.splitlines()[-25:]), flush=True)
    return status


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true",
                   help="device cpu, tiny sizes: checks this script without a GPU")
    p.add_argument("--device", default=None, help="default cuda (cpu with --dry-run)")
    p.add_argument("--parts", nargs="+", default=["tests", "parity", "speed"],
                   choices=["tests", "parity", "speed"])
    p.add_argument("--only", nargs="+", choices=list(CONFIGS), help="speed configurations")
    p.add_argument("--repeats", type=int, default=5, help="interleaved repeats (median)")
    p.add_argument("--steps", type=int, default=10, help="training steps per repeat")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    p.add_argument("--budget", type=float, default=540,
                   help="seconds: no speed configuration starts after this (the call has 600)")
    p.add_argument("--tests-timeout", type=float, default=240, help="seconds for pytest -m gpu")
    args = p.parse_args(argv)
    args.device = args.device or ("cpu" if args.dry_run else "cuda")
    if args.dry_run:
        args.steps, args.warmup = 2, 1
    start = time.perf_counter()
    out = Path(os.environ.get("OUT", "gpu-out"))
    out.mkdir(parents=True, exist_ok=True)
    env = environment(args.device)
    (out / "env.json").write_text(json.dumps(env, indent=1) + "\n")
    print(json.dumps(env), flush=True)
    status = 0
    if "tests" in args.parts:
        # 5: no test marked gpu was collected
        status |= run_tests(out, args.tests_timeout) not in (0, 5)
        print(f"tests: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    if "parity" in args.parts:
        rows = parity(args.device)
        (out / "parity.json").write_text(json.dumps(rows, indent=1) + "\n")
        print(parity_table(rows, args.device), flush=True)
        status |= not all(r.get("ok") for r in rows)
    if "speed" in args.parts:
        rows = []
        for name in args.only or (list(DRY) if args.dry_run else list(CONFIGS)):
            if time.perf_counter() - start > args.budget:
                print(f"{name}: not run, the time budget ({args.budget:.0f} s) is spent",
                      file=sys.stderr, flush=True)
                status = 1
                continue
            try:
                rows.append(measure(name, args))
            except Exception as e:  # noqa: BLE001 - say it, go on to the next configuration
                print(f"{name}: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                status = 1
                continue
            (out / "speed.json").write_text(json.dumps(rows, indent=1) + "\n")
            print(f"{name}: ratio {rows[-1]['ratio']:.2f}", file=sys.stderr, flush=True)
        print(speed_table(rows), flush=True)
        status |= any(not r["loss_rel_diff"] <= 1e-3 for r in rows)
    print(f"gpu.py: {time.perf_counter() - start:.0f} s in all", file=sys.stderr)
    return int(status)


if __name__ == "__main__":
    raise SystemExit(main())
