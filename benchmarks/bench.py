"""rnnlab against PyTorch on this CPU: one command, both frameworks interleaved in one run.

    python benchmarks/bench.py                       # every configuration, 2 threads each
    python benchmarks/bench.py --only char-small --repeats 3
    python benchmarks/bench.py --quick               # seconds: a smoke test (CI)
    python benchmarks/bench.py --threads 1 2         # both tables and each side's speed-up

The training step is the same on both sides: Embedding -> 2-layer recurrent stack ->
Linear, mean softmax cross-entropy, backward through the window with the state carried
from the previous window (truncated BPTT), global-norm clipping, plain SGD, float32, the
same initial weights and the same token windows, so the two losses must agree: the
table shows their largest relative difference, and the command exits with status 1 when
any exceeds LOSS_RTOL (1e-3, room for float32 rounding over a long window; the largest
measured was 9.2e-5). Each configuration runs in a fresh pair of worker processes, one per
framework; the repeats alternate between them (rnnlab then torch, torch then rnnlab, ...)
so that machine noise hits both alike, and the median of the repeats is reported.

The task configurations (classify, tag, seq2seq-*, decode-*: task_bench.py) time the
task models' Adam training step and greedy decoding the same way, on generated padded
batches, and compare the losses step by step and the weights after the run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

from floor import GATES
from task_bench import TASKS, bad_weights, measure_task, task_config, weights_note
from worker import PIN

HERE = Path(__file__).resolve().parent
MODEL_THREADS = 16  # the scaling table's Amdahl bound: the device machine's cores
LOSS_RTOL = 1e-3  # largest relative difference between the two sides' losses
PTB = HERE.parent.parent / "shared" / "data" / "ptb" / "ptb.train.txt"

# name: (cell, vocab, hidden, batch, bptt, data, target ratio)
CONFIGS: dict[str, tuple[str, int, int, int, int, str, float]] = {
    "char-small": ("lstm", 65, 128, 50, 50, "char", 1.2),  # stretch: 1.5x
    "char-large": ("lstm", 65, 512, 50, 50, "char", 1.0),
    "ptb-small": ("lstm", 10000, 200, 20, 20, "word", 1.0),
    "ptb-medium": ("lstm", 10000, 650, 20, 35, "word", 1.0),
    "gru-char-small": ("gru", 65, 128, 50, 50, "char", 1.0),
    "rnn-char-small": ("rnn", 65, 128, 50, 50, "char", 1.0),
    "generate": ("lstm", 65, 512, 1, 1, "char", 10.0),  # batch 1, one token per step
}


def config(name: str, ptb: str) -> dict[str, Any]:
    cell, vocab, hidden, batch, bptt, data, target = CONFIGS[name]
    return {"name": name, "cell": cell, "vocab": vocab, "hidden": hidden, "batch": batch,
            "bptt": bptt, "layers": 2, "data": data, "ptb": ptb, "lr": 1.0, "clip": 0.25,
            "kind": "generate" if name == "generate" else "train", "target": target}


def train_flops(cfg: dict[str, Any]) -> float:
    """Matmul FLOPs of one training step (forward, input and weight gradients: 3x forward)."""
    rows, H, GH = cfg["batch"] * cfg["bptt"], cfg["hidden"], GATES[cfg["cell"]] * cfg["hidden"]
    per_layer = 2 * rows * GH * (H + H)  # input projection (embed = hidden) + recurrent
    return 3 * (cfg["layers"] * per_layer + 2 * rows * H * cfg["vocab"])


class Worker:
    """A benchmark worker process (worker.py) for one framework."""

    def __init__(self, framework: str, threads: int, script: str = "worker.py",
                 unpin: bool = False) -> None:
        self.framework = framework
        self.env = {k: v for k, v in os.environ.items() if not (unpin and k in PIN)}
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / script), framework, str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=self.env)

    def ask(self, op: str, **kw: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.framework} worker died during {op!r}")
        return json.loads(line)

    def close(self) -> None:
        assert self.proc.stdin is not None
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def measure(cfg: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved repeats of one configuration; tokens/s medians and peak memory per side."""
    workers = [Worker(f, args.threads, unpin=args.unpin_openblas) for f in ("rnnlab", "torch")]
    try:
        for w in workers:
            w.ask("setup", config=cfg)
        gen = cfg["kind"] == "generate"
        unit = args.tokens if gen else args.steps * cfg["batch"] * cfg["bptt"]
        for w in workers:  # warm-up: first-touch of buffers, BLAS thread start-up
            w.ask("generate", tokens=max(args.tokens // 10, 1)) if gen else w.ask(
                "train", steps=args.warmup)
        speed: dict[str, list[float]] = {w.framework: [] for w in workers}
        loss: dict[str, list[float]] = {w.framework: [] for w in workers}
        for r in range(args.repeats):
            for w in workers if r % 2 == 0 else workers[::-1]:
                reply = w.ask("generate", tokens=args.tokens) if gen else w.ask(
                    "train", steps=args.steps)
                speed[w.framework].append(unit / reply["seconds"])
                loss[w.framework].append(reply.get("loss", float("nan")))
        row = {"config": cfg["name"], "target": cfg["target"], "threads": args.threads}
        for w in workers:
            row[f"{w.framework}_about"] = w.ask("about")["line"]
            row[f"{w.framework}_tok_s"] = statistics.median(speed[w.framework])
            row[f"{w.framework}_peak_mib"] = w.ask("peak")["peak_mib"]
        row["ratio"] = row["rnnlab_tok_s"] / row["torch_tok_s"]
        if not gen:  # same weights, same windows: the same losses, up to float32 rounding
            row["loss_rel_diff"] = max(abs(a - b) / abs(b) for a, b in
                                       zip(loss["rnnlab"], loss["torch"], strict=True))
            row["rnnlab_gflops"] = train_flops(cfg) * row["rnnlab_tok_s"] / unit * args.steps / 1e9
            row["torch_gflops"] = train_flops(cfg) * row["torch_tok_s"] / unit * args.steps / 1e9
            row["torch_step_ms"] = 1e3 * unit / args.steps / row["torch_tok_s"]
            row["floor_ms"] = 1e3 * workers[0].ask("floor")["seconds"]
        if cfg["name"] == "ptb-medium" or args.peak:
            row["matmul_peak_gflops"] = workers[0].ask("matmul_peak")["gflops"]
        return row
    finally:
        for w in workers:
            w.close()


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| config | rnnlab tok/s | torch tok/s | ratio | target | ceiling | rnnlab MiB "
             "| torch MiB | loss diff |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        diff = f"{r['loss_rel_diff']:.1e}" if "loss_rel_diff" in r else "-"
        ok = "" if r["ratio"] >= r["target"] else " (below)"
        ceiling = f"{r['torch_step_ms'] / r['floor_ms']:.2f}x" if "floor_ms" in r else "-"
        lines.append(f"| {r['config']} | {r['rnnlab_tok_s']:,.0f} | {r['torch_tok_s']:,.0f} | "
                     f"{r['ratio']:.2f}x{ok} | {r['target']:.1f}x | {ceiling} | "
                     f"{r['rnnlab_peak_mib']:.0f} | {r['torch_peak_mib']:.0f} | {diff} |")
    if any("floor_ms" in r for r in rows):
        lines.append("\nceiling: PyTorch's step time over rnnlab's matmul floor (its matmuls "
                     "alone, timed one by one; floor.py, the task rows' traced: "
                     "traced_floor.py; a decode row's step is one batch), the highest ratio "
                     "NumPy's matmul allows here. " + "; ".join(
                         f"{r['config']}: torch {r['torch_step_ms']:.1f} ms, floor "
                         f"{r['floor_ms']:.1f} ms" for r in rows if "floor_ms" in r) + ".")
    for r in rows:
        if "matmul_peak_gflops" in r and "rnnlab_gflops" in r:
            peak = r["matmul_peak_gflops"]
            lines.append(
                f"\nEfficiency at {r['config']}: rnnlab {r['rnnlab_gflops']:.0f} GFLOP/s = "
                f"{100 * r['rnnlab_gflops'] / peak:.0f}% of NumPy's float32 matmul peak here "
                f"({peak:.0f} GFLOP/s); PyTorch {r['torch_gflops']:.0f} GFLOP/s = "
                f"{100 * r['torch_gflops'] / peak:.0f}%.")
    return "\n".join(lines) + weights_note(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", nargs="+", choices=[*CONFIGS, *TASKS],
                   help="these configurations (default: all)")
    p.add_argument("--threads", type=int, nargs="+", default=[2],
                   help="threads for each framework; several: a table per count, then each "
                        "side's speed-up from the first count to each other")
    p.add_argument("--unpin-openblas", action="store_true",
                   help=f"unset {' and '.join(PIN)} for the workers (some machines pin "
                        "OpenBLAS to older kernels); the kernel then run is printed")
    p.add_argument("--repeats", type=int, default=5, help="alternating repeats per side")
    p.add_argument("--steps", type=int, default=10, help="training steps per repeat")
    p.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    p.add_argument("--tokens", type=int, default=1000, help="generated tokens per repeat")
    p.add_argument("--decode-batches", type=int, default=5,
                   help="batches greedily decoded per repeat (decode-*)")
    p.add_argument("--ptb", default=str(PTB), help="PTB training text (else Zipf ids)")
    p.add_argument("--no-bucket", action="store_true",
                   help="task batches of mixed lengths (padding) instead of length-bucketed")
    p.add_argument("--peak", action="store_true", help="measure the matmul peak everywhere")
    p.add_argument("--quick", action="store_true", help="smoke test: tiny counts")
    p.add_argument("--json", help="also write the rows to this file")
    p.add_argument("--loss-rtol", type=float, default=LOSS_RTOL,
                   help="largest relative loss difference accepted (exit status 1 above it)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.steps, args.warmup, args.tokens = 2, 1, 1, 20
        args.decode_batches = 1
        args.unpin_openblas = False  # the smoke test runs what the machine is set to
    rows = []
    for threads in args.threads:
        rows += measure_all(argparse.Namespace(**{**vars(args), "threads": threads}))
        done = [r for r in rows if r["threads"] == threads]
        print(f"\n{threads} thread(s) per side.\n" + "\n".join(
            f"{side}: {done[0][side + '_about']}" for side in ("rnnlab", "torch")) + "\n")
        print(table(done))
    if len(args.threads) > 1:
        print("\n" + scaling(rows, args.threads))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return check_losses(rows, args.loss_rtol)


def measure_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every configuration asked for, at ``args.threads`` threads per side."""
    rows = []
    for name in args.only or [*CONFIGS, *TASKS]:
        if name in TASKS:
            worker = partial(Worker, unpin=args.unpin_openblas)
            rows.append(measure_task(task_config(name, not args.no_bucket), args, worker))
        else:
            rows.append(measure(config(name, args.ptb), args))
        print(f"{name} ({args.threads} threads): rnnlab {rows[-1]['rnnlab_tok_s']:,.0f} tok/s, "
              f"torch {rows[-1]['torch_tok_s']:,.0f} tok/s, ratio {rows[-1]['ratio']:.2f}",
              file=sys.stderr, flush=True)
    return rows


def parallel_share(speedup: float, t0: int, t1: int) -> float:
    """Amdahl's f: the share of the one-thread time that splits perfectly over threads, the
    rest none, so that going from t0 to t1 threads gives ``speedup``. From
    ((1 - f) + f / t0) / ((1 - f) + f / t1) = speedup."""
    return (speedup - 1) / (speedup - speedup / t1 - 1 + 1 / t0)


def amdahl(f: float, t0: int, t1: int) -> float:
    """The speed-up from t0 to t1 threads of a step whose share f splits perfectly."""
    return ((1 - f) + f / t0) / ((1 - f) + f / t1)


def scaling(rows: list[dict[str, Any]], threads: list[int], model: int = MODEL_THREADS) -> str:
    """Each side's speed-up from the first thread count to each other, per configuration,
    and what Amdahl's law makes of it at ``model`` threads: the parallel share f that the
    measured speed-up implies, and the speed-up f would give from the last count to
    ``model`` threads (an upper bound: at many threads the products split less well)."""
    first = {r["config"]: r for r in rows if r["threads"] == threads[0]}
    last = threads[-1]
    lines = [f"| config | threads | rnnlab speed-up | torch speed-up | ratio at {threads[0]} "
             f"| ratio | f rnnlab / torch | bound {last} -> {model}: rnnlab / torch |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["threads"] == threads[0]:
            continue
        f0, t1 = first[r["config"]], r["threads"]
        ups = [r[f"{side}_tok_s"] / f0[f"{side}_tok_s"] for side in ("rnnlab", "torch")]
        shares = [min(max(parallel_share(u, threads[0], t1), 0.0), 1.0) for u in ups]
        bounds = [amdahl(f, last, model) for f in shares]
        lines.append(f"| {r['config']} | {threads[0]} -> {t1} | {ups[0]:.2f}x | {ups[1]:.2f}x "
                     f"| {f0['ratio']:.2f}x | {r['ratio']:.2f}x | {shares[0]:.2f} / "
                     f"{shares[1]:.2f} | {bounds[0]:.2f}x / {bounds[1]:.2f}x |")
    return "\n".join(lines)


def check_losses(rows: list[dict[str, Any]], rtol: float) -> int:
    """1 (and one line per configuration on stderr) if the two sides' losses (or a task's
    weights) disagree."""
    bad = [r for r in rows if not r.get("loss_rel_diff", 0.0) <= rtol]  # NaN fails too
    for r in bad:
        print(f"{r['config']}: rnnlab's and torch's losses differ by {r['loss_rel_diff']:.2e} "
              f"(relative), more than {rtol:g}: the two sides no longer compute the same step",
              file=sys.stderr)
    for message in bad_weights(rows):
        print(message, file=sys.stderr)
    return 1 if bad or bad_weights(rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
