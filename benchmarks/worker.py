"""One side of the benchmark (rnnlab or PyTorch), driven by ``bench.py`` over stdin/stdout.

Each configuration gets a fresh pair of worker processes, so each one's peak memory is
its own: the resident-set high-water mark after the model is built and run, minus the
resident set once the libraries are imported (the price of importing torch is not
counted against it). Protocol: one JSON object per line in, one per line out.

    {"op": "setup", "config": {...}}   build the model (same seed, same weights both sides)
    {"op": "train", "steps": S}        S training steps -> seconds, mean loss
    {"op": "generate", "tokens": n}    sample n tokens at batch 1 -> seconds
    {"op": "peak"}                     -> peak MiB above the post-import baseline
    {"op": "floor"}                    -> seconds of one rnnlab step's matmuls (floor.py)
    {"op": "matmul_peak"}              -> best float32 GEMM GFLOP/s of NumPy here
    {"op": "about"}                    -> what this side runs: library, BLAS, kernel, threads
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from floor import matmul_floor
from threadpoolctl import threadpool_info, threadpool_limits

from rnnlab.data import BPTTBatches, Vocab, bundled_corpus, read_text
from rnnlab.models import LanguageModel
from rnnlab.models.generate import sample
from rnnlab.optim import SGD, clip_grad_norm

PIN = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # some machines' pin (bench.py --unpin-openblas)
MAX_WINDOWS = 64  # windows materialised up front; the stream wraps (state reset) after them


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    try:  # Linux >= 4.0: "5" resets the VmHWM high-water mark to the current RSS
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def about(framework: str) -> dict[str, Any]:
    """One line naming what this side's products run on: the library, its BLAS (kernel and
    threads as threadpoolctl reports them), and the OpenBLAS pin this process saw, if any."""
    pin = ", ".join(f"{k}={os.environ[k]}" for k in PIN if k in os.environ) or "no OpenBLAS pin"
    if framework == "torch":
        import torch

        config = torch.__config__.show()  # names the oneDNN (MKL-DNN) and BLAS it was built with
        onednn = next((w for w in config.split() if w.startswith("v3") or w.startswith("v2")), "?")
        blas = "MKL" if "BLAS_INFO=mkl" in config else "its BLAS"
        return {"line": f"torch {torch.__version__}: CPU capability "
                        f"{torch.backends.cpu.get_cpu_capability()}, oneDNN {onednn}, {blas}, "
                        f"{torch.get_num_threads()} threads ({pin})"}
    blas = [f"{i['internal_api']} {i['version']} {i.get('architecture', '?')} kernels, "
            f"{i['num_threads']} threads" for i in threadpool_info() if i["user_api"] == "blas"]
    return {"line": f"rnnlab on NumPy {np.__version__}: {'; '.join(blas) or 'no BLAS found'} "
                    f"({pin})"}


def token_ids(cfg: dict[str, Any]) -> np.ndarray:
    """The bundled tiny-shakespeare by character, or PTB (else Zipf-distributed ids) by word."""
    if cfg["data"] == "char":
        text = read_text(bundled_corpus())
        return Vocab.build(text, level="char").encode(text)
    ptb = Path(cfg["ptb"])
    if ptb.is_file():
        text = read_text(ptb)
        return Vocab.build(text, level="word").encode(text)
    rng = np.random.default_rng(1)
    return np.minimum(rng.zipf(1.2, size=400_000) - 1, cfg["vocab"] - 1)


class RnnlabSide:
    def __init__(self, cfg: dict[str, Any], model: LanguageModel) -> None:
        self.cfg, self.model = cfg, model
        self.params = model.named_params()
        self.opt = SGD(self.params, lr=cfg["lr"])
        self.state: Any = None

    def step(self, x: np.ndarray, y: np.ndarray, reset: bool) -> float:
        m = self.model
        loss, self.state = m.loss(x, y, None if reset else self.state)
        m.zero_grad()
        m.backward_loss()
        clip_grad_norm(self.params, self.cfg["clip"])
        self.opt.step()
        return loss

    def generate(self, n: int) -> None:
        for _ in sample(self.model, [0], n, rng=np.random.default_rng(0)):
            pass


class TorchSide:
    def __init__(self, cfg: dict[str, Any], model: LanguageModel) -> None:
        import torch

        from rnnlab.nn.torch_compat import export_params

        self.torch, self.cfg = torch, cfg
        cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cfg["cell"]]
        net = torch.nn.Module()
        net.embedding = torch.nn.Embedding(cfg["vocab"], cfg["hidden"])
        net.rnn = cls(cfg["hidden"], cfg["hidden"], cfg["layers"])
        net.decoder = torch.nn.Linear(cfg["hidden"], cfg["vocab"])
        net.load_state_dict({k: torch.from_numpy(v) for k, v in export_params(model).items()})
        self.net = net
        self.opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"])
        self.state: Any = None

    def forward(self, x: Any, state: Any) -> tuple[Any, Any]:
        y, state = self.net.rnn(self.net.embedding(x), state)
        return self.net.decoder(y), state

    def step(self, x: Any, y: Any, reset: bool) -> float:
        torch = self.torch
        state = None if reset else self.state
        if state is not None:  # truncated BPTT: no gradient across the window edge
            state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        self.net.zero_grad()
        logits, self.state = self.forward(x, state)
        loss = torch.nn.functional.cross_entropy(logits.view(-1, self.cfg["vocab"]), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg["clip"])
        self.opt.step()
        return loss.item()

    def generate(self, n: int) -> None:
        torch = self.torch
        gen = torch.Generator().manual_seed(0)
        with torch.inference_mode():
            x, state = torch.zeros((1, 1), dtype=torch.long), None
            for _ in range(n):
                logits, state = self.forward(x, state)
                probs = torch.softmax(logits[-1, 0], dim=-1)
                x = torch.multinomial(probs, 1, generator=gen).view(1, 1)


class Worker:
    def __init__(self, framework: str, threads: int) -> None:
        self.framework, self.side, self.windows, self.pos = framework, None, [], 0
        self.limits = threadpool_limits(threads)  # NumPy's BLAS (and any other one loaded)
        if framework == "torch":
            import torch

            torch.set_num_threads(threads)
            torch.set_num_interop_threads(1)
        self.base_kib = 0

    def setup(self, cfg: dict[str, Any]) -> dict[str, Any]:
        self.cfg = cfg
        ids = token_ids(cfg) if cfg["kind"] == "train" else None
        _reset_peak()
        self.base_kib = _rss_kib("VmRSS")
        model = LanguageModel(cfg["vocab"], cell=cfg["cell"], embed_size=cfg["hidden"],
                              hidden_size=cfg["hidden"], num_layers=cfg["layers"],
                              init_range=0.1, rng=np.random.default_rng(0))
        side_cls = TorchSide if self.framework == "torch" else RnnlabSide
        self.side = side_cls(cfg, model)
        if self.framework == "torch":
            del model  # the torch side keeps only its own copy of the weights
        if ids is not None:
            batches = BPTTBatches(ids, cfg["batch"], cfg["bptt"])
            windows = [batches[i] for i in range(min(MAX_WINDOWS, len(batches)))]
            if self.framework == "torch":
                import torch

                windows = [(torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64)),
                            torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64)))
                           for x, y in windows]
            self.windows = windows
        return {}

    def train(self, steps: int) -> dict[str, Any]:
        losses = []
        start = time.perf_counter()
        for _ in range(steps):
            x, y = self.windows[self.pos]
            losses.append(self.side.step(x, y, reset=self.pos == 0))
            self.pos = (self.pos + 1) % len(self.windows)
        return {"seconds": time.perf_counter() - start, "loss": float(np.mean(losses))}

    def generate(self, tokens: int) -> dict[str, Any]:
        start = time.perf_counter()
        self.side.generate(tokens)
        return {"seconds": time.perf_counter() - start}

    def about(self) -> dict[str, Any]:
        return about(self.framework)

    def floor(self) -> dict[str, Any]:
        return {"seconds": matmul_floor(self.cfg)}

    def peak(self) -> dict[str, Any]:
        return {"peak_mib": (_rss_kib("VmHWM") - self.base_kib) / 1024}

    def matmul_peak(self) -> dict[str, Any]:
        best = 0.0
        rng = np.random.default_rng(0)
        for n in (1024, 2048, 3072):
            a = rng.standard_normal((n, n), dtype=np.float32)
            b = rng.standard_normal((n, n), dtype=np.float32)
            out = np.empty((n, n), dtype=np.float32)
            np.matmul(a, b, out=out)  # warm-up
            for _ in range(3):
                t = time.perf_counter()
                np.matmul(a, b, out=out)
                best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
        return {"gflops": best}


def serve(worker: Any, fields: dict[str, tuple[str, ...]]) -> None:
    """Answer bench.py's requests, one JSON line each, until "quit" or end of input: op
    ``name`` calls ``worker.name`` with the message's ``fields[name]`` (none by default)."""
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but replies may reach the pipe
    for line in sys.stdin:
        msg = json.loads(line)
        op = msg.pop("op")
        if op == "quit":
            break
        reply = getattr(worker, op)(*(msg[k] for k in fields.get(op, ())))
        out.write(json.dumps(reply) + "\n")
        out.flush()


def main() -> None:
    serve(Worker(sys.argv[1], int(sys.argv[2])),
          {"setup": ("config",), "train": ("steps",), "generate": ("tokens",)})


if __name__ == "__main__":
    main()
