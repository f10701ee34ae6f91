"""Greedy generation, tokens per second: onnxruntime on an exported model against rnnlab.

    python benchmarks/onnx_generate.py                          # char LSTM, 2 x 256, V = 65
    python benchmarks/onnx_generate.py --checkpoint runs/shakespeare --tokens 2000
    python benchmarks/onnx_generate.py --cell gru --hidden 512 --threads 2

The same model on both sides (a run's checkpoint, or a fresh one of the given size: the
speed does not depend on the weights), batch 1, float32, one token per step after a
prime: rnnlab's ``models.generate.sample(..., greedy=True)``, and the loop of the README
through onnxruntime (``ids`` (1, 1), the state fed back, argmax of the logits). Both are
limited to ``--threads`` threads (BLAS via threadpoolctl; onnxruntime's intra-op pool).
The two must emit the same tokens (checked; float32 rounding may break a near tie, which
is reported, not hidden). The median of ``--repeats`` alternating runs is printed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from threadpoolctl import threadpool_limits

from rnnlab.cli.load import load_run
from rnnlab.models import LanguageModel
from rnnlab.models.generate import sample
from rnnlab.onnx import export


def rnnlab_tokens(model: LanguageModel, prime: list[int], n: int) -> list[int]:
    return list(sample(model, prime, n, greedy=True, rng=np.random.default_rng(0)))


def onnx_tokens(sess: ort.InferenceSession, model: LanguageModel, prime: list[int],
                n: int) -> list[int]:
    shape = (model.rnn.num_layers, 1, model.rnn.hidden_size)
    feed = {"ids": np.asarray(prime, np.int64)[:, None], "h0": np.zeros(shape, np.float32)}
    if model.rnn.has_cell:
        feed["c0"] = np.zeros(shape, np.float32)
    names = [o.name for o in sess.get_outputs()]  # logits, h_n (, c_n)
    out = []
    for _ in range(n):
        logits, *state = sess.run(names, feed)
        token = int(logits[-1, 0].argmax())
        out.append(token)
        feed = {"ids": np.array([[token]], np.int64),
                **dict(zip(("h0", "c0"), state, strict=False))}  # c0: an LSTM's only
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="a language model's run folder (default: fresh)")
    p.add_argument("--cell", default="lstm", choices=("rnn", "lstm", "gru"))
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--vocab", type=int, default=65)
    p.add_argument("--tokens", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    if args.checkpoint:
        model = load_run(args.checkpoint, want="lm").model
    else:
        model = LanguageModel(args.vocab, cell=args.cell, embed_size=args.embed,
                              hidden_size=args.hidden, num_layers=args.layers,
                              init_range=0.1, rng=np.random.default_rng(0)).eval()
    path = Path(tempfile.mkdtemp()) / "model.onnx"
    export(model, path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = args.threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    prime = [1, 2, 3]
    times: dict[str, list[float]] = {"rnnlab": [], "onnxruntime": []}
    with threadpool_limits(args.threads):
        want = rnnlab_tokens(model, prime, args.tokens)  # warm-up, and the reference
        got = onnx_tokens(sess, model, prime, args.tokens)
        for _ in range(args.repeats):
            for name, fn in (("rnnlab", lambda: rnnlab_tokens(model, prime, args.tokens)),
                             ("onnxruntime", lambda: onnx_tokens(sess, model, prime,
                                                                 args.tokens))):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    same = next((i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b), None)
    print(f"{model!r}, batch 1, {args.tokens} tokens, {args.threads} thread(s), "
          f"median of {args.repeats}")
    for name, t in times.items():
        print(f"{name:12s} {args.tokens / statistics.median(t):10.0f} tokens/s")
    print("tokens: identical" if same is None else f"tokens: first difference at {same}")


if __name__ == "__main__":
    main()
