"""One side (rnnlab or PyTorch) of the task benchmark, driven by ``bench.py`` over stdin/stdout.

The task models (classify, tag, seq2seq) on generated padded batches: the same seed gives
both sides the same batches (``batches``) and the same weights (rnnlab's initialisation,
copied into the PyTorch twin of ``torch_tasks.py``). Protocol, one JSON object per line,
as ``worker.py``:

    {"op": "setup", "config": {...}}   build the model and the batches
    {"op": "train", "steps": S}        S Adam steps -> seconds, real tokens, per-step losses
    {"op": "decode", "batches": B}     greedy decoding of B batches -> seconds, decoded
                                       tokens, their summed log-probability ("losses")
    {"op": "weights", "path": p}       write every parameter (rnnlab's names) to p (.npz)
    {"op": "peak"}                     -> peak MiB above the post-import baseline
    {"op": "about"}                    -> what this side runs (worker.about)
"""

from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from worker import _reset_peak, _rss_kib, about, serve

from rnnlab.data.padded import PaddedBatches, pad
from rnnlab.models import Seq2Seq, SequenceClassifier, SequenceTagger
from rnnlab.nn.torch_compat import export_params
from rnnlab.optim import Adam

N_BATCHES = 16  # batches materialised up front, then cycled
N_EXAMPLES = 64 * 50  # one bucketing pool: the batches hold examples of similar length


def batches(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """Padded batches of generated examples (ids, lengths, targets), length-bucketed or not
    (``cfg["bucket"]``)."""
    rng = np.random.default_rng(cfg["seed"])
    lo, hi = cfg["lengths"]
    seqs = [rng.integers(1, cfg["vocab"], rng.integers(lo, hi + 1)) for _ in range(N_EXAMPLES)]
    if cfg["task"] == "classify":
        targets: Any = rng.integers(0, cfg["classes"], N_EXAMPLES)
    elif cfg["task"] == "tag":
        targets = [rng.integers(0, cfg["classes"], len(s)) for s in seqs]
    else:  # seq2seq: the target of example i is outs[i]; BOS, EOS are the last two ids
        outs = [rng.integers(0, cfg["tgt_vocab"] - 2, rng.integers(lo, hi + 1))
                for _ in range(N_EXAMPLES)]
        targets = np.arange(N_EXAMPLES)
    data = PaddedBatches(seqs, targets, cfg["batch"], rng=rng, bucket=cfg["bucket"])
    out = []
    for index in data.order()[:N_BATCHES]:
        b = data.batch(index)
        item = {"x": b.x, "lengths": b.lengths, "y": b.y, "tokens": int(b.lengths.sum())}
        if cfg["task"] == "seq2seq":
            bos, eos = cfg["tgt_vocab"] - 2, cfg["tgt_vocab"] - 1
            item["tgt_in"], item["tgt_lengths"] = pad([np.r_[bos, outs[i]] for i in b.y])
            item["y"], _ = pad([np.r_[outs[i], eos] for i in b.y], -100)  # -100: padding
        out.append(item)
    return out


def rnnlab_model(cfg: dict[str, Any]) -> Any:
    """The rnnlab model of the configuration, seeded (the weights both sides start from)."""
    kw = {"embed_size": cfg["embed"], "hidden_size": cfg["hidden"],
          "rng": np.random.default_rng(0)}
    if cfg["task"] == "classify":
        return SequenceClassifier(cfg["classes"], cfg["vocab"], pooling="mean",
                                  bidirectional=True, **kw)
    if cfg["task"] == "tag":
        return SequenceTagger(cfg["classes"], cfg["vocab"], bidirectional=True, **kw)
    return Seq2Seq(cfg["vocab"], cfg["tgt_vocab"], attention=cfg["attention"], **kw)


class RnnlabSide:
    """rnnlab's training step (loss, backward, Adam) and greedy decoding."""

    def __init__(self, cfg: dict[str, Any], model: Any) -> None:
        self.cfg, self.model = cfg, model
        self.opt = Adam(model.named_params(), lr=cfg["lr"])

    def step(self, b: dict[str, Any]) -> float:
        """One training step on batch ``b``: the loss, backward, Adam; returns the loss."""
        m = self.model
        if self.cfg["task"] == "seq2seq":
            tgt_out = np.where(b["y"] < 0, 0, b["y"])  # any id at masked steps
            loss = m.loss(b["x"], b["lengths"], b["tgt_in"], tgt_out, b["tgt_lengths"])
        else:
            loss = m.loss(b["x"], b["y"], b["lengths"])
        m.zero_grad()
        m.backward_loss()
        self.opt.step()
        return float(loss)

    def decode(self, b: dict[str, Any]) -> tuple[int, float]:
        """Greedy decoding of batch ``b``: decoded tokens and their summed log-probability."""
        V = self.cfg["tgt_vocab"]
        out = self.model.greedy(b["x"], b["lengths"], bos_id=V - 2, eos_id=V - 1,
                                max_length=self.cfg["max_length"])
        return sum(len(t) for t in out.tokens), float(out.log_probs.sum())


class TorchSide:
    """The PyTorch twin's training step (torch.optim.Adam, same hyper-parameters)."""

    def __init__(self, cfg: dict[str, Any], model: Any) -> None:
        import torch
        import torch_tasks

        self.torch, self.cfg = torch, cfg
        self.net: Any = torch_tasks.build(cfg, export_params(model))
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg["lr"])

    def convert(self, b: dict[str, Any]) -> dict[str, Any]:
        """Tensors of a batch (int64 ids; lengths stay on the CPU for packing)."""
        return {k: self.torch.from_numpy(np.ascontiguousarray(v, dtype=np.int64))
                if isinstance(v, np.ndarray) else v for k, v in b.items()}

    def step(self, b: dict[str, Any]) -> float:
        """One training step on batch ``b``: the loss, backward, Adam; returns the loss."""
        if self.cfg["task"] == "seq2seq":
            loss = self.net.loss(b["x"], b["lengths"], b["tgt_in"], b["y"])
        else:
            y = b["y"].masked_fill(b["y"] < 0, -100) if self.cfg["task"] == "tag" else b["y"]
            loss = self.net.loss(b["x"], b["lengths"], y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss.item()

    def decode(self, b: dict[str, Any]) -> tuple[int, float]:
        """Greedy decoding of batch ``b``: decoded tokens and their summed log-probability."""
        V = self.cfg["tgt_vocab"]
        return self.net.greedy(b["x"], b["lengths"], V - 2, V - 1, self.cfg["max_length"])


class Worker:
    """One framework's side: the model, its batches, and the protocol's operations."""

    def __init__(self, framework: str, threads: int) -> None:
        self.framework, self.pos, self.base_kib = framework, 0, 0
        self.limits = threadpool_limits(threads)
        if framework == "torch":
            import torch

            torch.set_num_threads(threads)
            torch.set_num_interop_threads(1)

    def setup(self, cfg: dict[str, Any]) -> dict[str, Any]:
        """The batches, then the model (its memory counted from here) and its optimiser."""
        data = batches(cfg)
        _reset_peak()
        self.base_kib = _rss_kib("VmRSS")
        model = rnnlab_model(cfg)
        if self.framework == "torch":
            self.side: Any = TorchSide(cfg, model)
            del model  # the torch side keeps only its own copy of the weights
            data = [self.side.convert(b) for b in data]
        else:
            self.side = RnnlabSide(cfg, model)
        self.data: list[dict[str, Any]] = data
        return {}

    def run(self, op: str, count: int) -> dict[str, Any]:
        """``count`` training steps or decoded batches, cycling through the batches."""
        losses: list[float] = []
        tokens = 0
        start = time.perf_counter()
        for _ in range(count):
            b = self.data[self.pos]
            if op == "train":
                losses.append(self.side.step(b))
                tokens += b["tokens"]
            else:
                n, score = self.side.decode(b)
                losses.append(score)
                tokens += n
            self.pos = (self.pos + 1) % len(self.data)
        return {"seconds": time.perf_counter() - start, "tokens": tokens, "losses": losses}

    def peak(self) -> dict[str, Any]:
        """Peak resident memory since ``setup`` began, less what was resident then."""
        return {"peak_mib": (_rss_kib("VmHWM") - self.base_kib) / 1024}

    def train(self, steps: int) -> dict[str, Any]:
        return self.run("train", steps)

    def about(self) -> dict[str, Any]:
        return about(self.framework)

    def decode(self, batches: int) -> dict[str, Any]:
        return self.run("decode", batches)

    def weights(self, path: str) -> dict[str, Any]:
        """Save the current weights, so that bench.py can compare the two sides'."""
        side = self.side
        if isinstance(side, TorchSide):
            params = {k: v.detach().numpy() for k, v in side.net.state_dict().items()}
        else:
            params = export_params(side.model)
        np.savez(path, **params)
        return {}


def main() -> None:
    serve(Worker(sys.argv[1], int(sys.argv[2])),
          {"setup": ("config",), "weights": ("path",), "train": ("steps",),
           "decode": ("batches",)})


if __name__ == "__main__":
    main()
