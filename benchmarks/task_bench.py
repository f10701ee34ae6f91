"""The task configurations of ``bench.py``: classify, tag, seq2seq training and decoding.

Each runs ``task_worker.py`` for rnnlab and for PyTorch (same weights, same batches, see
``torch_tasks.py``), interleaved as the language-model configurations are. Training rows
count real (unpadded) input tokens per second (seq2seq: source tokens, as ``rnnlab train``
counts them) and compare the two sides' losses step by step; decoding rows count decoded
tokens (up to and including each row's EOS) and compare the summed log-probability of
each decoded batch.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from traced_floor import traced_floor

SHAPE = {"hidden": 256, "embed": 64, "batch": 64, "lr": 1e-3, "seed": 1}
# name: (task, attention, source vocabulary, classes / target vocabulary, lengths)
TASKS: dict[str, tuple[str, str | None, int, int, tuple[int, int]]] = {
    "classify": ("classify", None, 10000, 4, (30, 50)),
    "tag": ("tag", None, 10000, 17, (15, 35)),
    "seq2seq-none": ("seq2seq", None, 64, 64, (5, 11)),
    "seq2seq-dot": ("seq2seq", "dot", 64, 64, (5, 11)),
    "seq2seq-additive": ("seq2seq", "additive", 64, 64, (5, 11)),
    "decode-none": ("seq2seq", None, 64, 64, (5, 11)),
    "decode-dot": ("seq2seq", "dot", 64, 64, (5, 11)),
    "decode-additive": ("seq2seq", "additive", 64, 64, (5, 11)),
}
WEIGHT_ATOL = 1e-4  # a tenth of one Adam step (lr): far above rounding, far below a sign flip
MAX_LENGTH = 16  # greedy decoding's bound: twice the mean target length


def task_config(name: str, bucket: bool = True) -> dict[str, Any]:
    """The worker's configuration of task ``name``; ``bucket``: length-bucketed batches (as
    ``rnnlab train`` makes them: almost no padding), else batches of mixed lengths."""
    task, attention, vocab, classes, lengths = TASKS[name]
    cfg = {"name": name, "task": task, "attention": attention, "vocab": vocab,
           "lengths": lengths, "target": 1.0, "max_length": MAX_LENGTH,
           "kind": "decode" if name.startswith("decode") else "train", "bucket": bucket,
           **SHAPE}
    cfg["classes" if task != "seq2seq" else "tgt_vocab"] = classes
    return cfg


def rel_diffs(ours: list[float], theirs: list[float]) -> list[float]:
    """|ours - theirs| / |theirs| per step."""
    return [abs(a - b) / abs(b) for a, b in zip(ours, theirs, strict=True)]


def weight_diff(workers: list[Any]) -> float:
    """The largest absolute difference between the two sides' weights, over every entry."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = [str(Path(tmp) / f"{w.framework}.npz") for w in workers]
        for w, path in zip(workers, paths, strict=True):
            w.ask("weights", path=path)
        ours, theirs = (np.load(p) for p in paths)
        assert sorted(ours.files) == sorted(theirs.files), (ours.files, theirs.files)
        return max(float(np.abs(ours[k] - theirs[k]).max()) for k in ours.files)


def weights_note(rows: list[dict[str, Any]]) -> str:
    """A line under the table: how far apart the two sides' weights ended (training rows)."""
    done = [r for r in rows if "weight_abs_diff" in r]
    if not done:
        return ""
    return ("\nweights after the run, largest |rnnlab - torch| over every entry (at most "
            f"{WEIGHT_ATOL:g}): " + "; ".join(
                f"{r['config']} {r['weight_abs_diff']:.1e}" for r in done) + ".")


def bad_weights(rows: list[dict[str, Any]]) -> list[str]:
    """One message per training row whose two copies of the weights drifted apart."""
    return [f"{r['config']}: rnnlab's and torch's weights differ by {r['weight_abs_diff']:.2e} "
            f"after the run, more than {WEIGHT_ATOL:g}: the two Adam steps are not the same"
            for r in rows if not r.get("weight_abs_diff", 0.0) <= WEIGHT_ATOL]


def measure_task(cfg: dict[str, Any], args: argparse.Namespace, worker_cls: Any) -> dict:
    """Interleaved repeats of one task configuration (a row of bench.py's table)."""
    workers = [worker_cls(f, args.threads, "task_worker.py") for f in ("rnnlab", "torch")]
    try:
        for w in workers:
            w.ask("setup", config=cfg)
        op = cfg["kind"]
        count = {"train": args.steps, "decode": args.decode_batches}[op]
        warm = {"train": args.warmup, "decode": 1}[op]
        kw = (lambda n: {"steps": n}) if op == "train" else (lambda n: {"batches": n})
        losses: dict[str, list[float]] = {w.framework: [] for w in workers}
        speed: dict[str, list[float]] = {w.framework: [] for w in workers}
        for w in workers:  # warm-up (its losses are compared too)
            losses[w.framework] += w.ask(op, **kw(warm))["losses"]
        for r in range(args.repeats):
            for w in workers if r % 2 == 0 else workers[::-1]:
                reply = w.ask(op, **kw(count))
                speed[w.framework].append(reply["tokens"] / reply["seconds"])
                losses[w.framework] += reply["losses"]
        row: dict[str, Any] = {"config": cfg["name"], "target": cfg["target"],
                               "threads": args.threads}
        for w in workers:
            row[f"{w.framework}_about"] = w.ask("about")["line"]
            row[f"{w.framework}_tok_s"] = statistics.median(speed[w.framework])
            row[f"{w.framework}_peak_mib"] = w.ask("peak")["peak_mib"]
        row["ratio"] = row["rnnlab_tok_s"] / row["torch_tok_s"]
        row["loss_rel_diffs"] = rel_diffs(losses["rnnlab"], losses["torch"])
        if op == "train":  # Adam must keep the two copies of the weights equal
            row["weight_abs_diff"] = weight_diff(workers)
        floor = traced_floor(cfg, args.threads, workers[0].env)
        if floor is not None:  # per batch: a training step, or one decoded batch
            row["floor_ms"] = 1e3 * floor["seconds"]
            row["torch_step_ms"] = 1e3 * floor["tokens"] / row["torch_tok_s"]
        diffs = row["loss_rel_diffs"]  # a NaN fails the check
        row["loss_rel_diff"] = math.nan if any(map(math.isnan, diffs)) else max(diffs)
        return row
    finally:
        for w in workers:
            w.close()
