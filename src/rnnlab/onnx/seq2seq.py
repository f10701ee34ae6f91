"""Seq2Seq as two ONNX graphs: the encoder, and one decoder step (greedy or beam loops outside).

Encoder (S source steps, N sequences, L layers, H hidden)::

    src (S, N) int64, src_lengths (N,) int64
    ids    = ReverseSequence(src, src_lengths)    reverse_source: each source within its length
    keys, h, c = the stack over the lengths       (S, N, H), (L, N, H) [, c (L, N, H)]
                 bidirectional: the two directions summed (keys, and each layer's h and c)
    summary = h[L-1]                              (N, H)  peeky only

Decoder step (one token per sequence; feed h_n, c_n back as h, c)::

    ids (N,) int64, h (L, N, H) [, c], keys (S, N, H) and src_lengths (N,) with attention,
    summary (N, H) when peeky
    x      = [W_emb[ids], summary]                (1, N, E [+ H])
    q, h_n = decoder(x, h)                        (N, H), (L, N, H) [, c_n]
    a      = softmax over real source steps of q . k_j   or   v . tanh(W_q q + W_k k_j)
    ctx    = sum_j a_j k_j                        (N, H)
    logits = [q, ctx, summary] W_out^T + b_out    (N, V); outputs also h_n [, c_n], attention a
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.onnx._graph import Graph, recurrent

INT64, INT32, BOOL = 7, 6, 9  # onnx.TensorProto element types


def encoder(model: Any) -> Graph:
    enc = model.encoder
    g = Graph(model.dtype)
    L, H = enc.rnn.num_layers, enc.hidden_size
    src = g.input("src", ["S", "N"], INT64)
    lengths = g.input("src_lengths", ["N"], INT64)
    if enc.reverse_source:
        src = g.op("ReverseSequence", [src, lengths], batch_axis=1, time_axis=0)
    x = g.op("Gather", [g.init("encoder.embedding.weight", enc.embedding.weight.value), src],
             axis=0)
    y, hs, cs = recurrent(g, enc.rnn, x, "encoder.rnn", lengths=g.op("Cast", [lengths],
                                                                     to=INT32))
    if enc.bidirectional:  # (S, N, 2H) -> (S, N, 2, H) -> (S, N, H); (2, N, H) -> (1, N, H)
        y = g.op("ReduceSum", [g.op("Reshape", [y, g.ints(0, 0, 2, H)]), g.ints(2)],
                 keepdims=0)
        hs, cs = ([g.op("ReduceSum", [s, g.ints(0)], keepdims=1) for s in p] for p in (hs, cs))
    g.output(y, "keys", ["S", "N", H])
    h = hs[0] if L == 1 else g.op("Concat", hs, axis=0)
    g.output(h, "h", [L, "N", H])
    if cs:
        g.output(cs[0] if L == 1 else g.op("Concat", cs, axis=0), "c", [L, "N", H])
    if model.peeky:
        g.output(g.op("Squeeze", [hs[-1], g.ints(0)]), "summary", ["N", H])
    return g


def decoder_step(model: Any) -> Graph:
    g = Graph(model.dtype)
    dec, L, H = model.decoder, model.decoder.num_layers, model.decoder.hidden_size
    ids = g.input("ids", ["N"], INT64)
    h = g.input("h", [L, "N", H])
    c = g.input("c", [L, "N", H]) if dec.has_cell else ""
    keys = lengths = summary = ""
    if model.attention is not None:
        keys = g.input("keys", ["S", "N", H])
        lengths = g.input("src_lengths", ["N"], INT64)
    if model.peeky:
        summary = g.input("summary", ["N", H])
    e = g.op("Gather", [g.init("embedding.weight", model.embedding.weight.value),
                        g.op("Unsqueeze", [ids, g.ints(0)])], axis=0)  # (1, N, E)
    if summary:
        e = g.op("Concat", [e, g.op("Unsqueeze", [summary, g.ints(0)])], axis=-1)
    y, hs, cs = recurrent(g, dec, e, "decoder", h0=h, c0=c)
    q = g.op("Squeeze", [y, g.ints(0)])  # (N, H)
    parts = [q]
    if model.attention is not None:
        context, weights = _attention(g, model.attention, q, keys, lengths)
        parts.append(context)
        g.output(weights, "attention", ["N", "S"])
    if summary:
        parts.append(summary)
    z = parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=-1)
    g.output(g.linear(z, model.output, "output"), "logits", ["N", model.output.out_features])
    g.output(hs[0] if L == 1 else g.op("Concat", hs, axis=0), "h_n", [L, "N", H])
    if cs:
        g.output(cs[0] if L == 1 else g.op("Concat", cs, axis=0), "c_n", [L, "N", H])
    return g


def _attention(g: Graph, attn: Any, q: str, keys: str, lengths: str) -> tuple[str, str]:
    """Context (N, H) and weights (N, S) of one query per sequence (nn/attention.py)."""
    k = g.op("Transpose", [keys], perm=[1, 0, 2])  # (N, S, H)
    if attn.score == "dot":  # (N, 1, H) @ (N, H, S) -> (N, S)
        s = g.op("MatMul", [g.op("Unsqueeze", [q, g.ints(1)]),
                            g.op("Transpose", [k], perm=[0, 2, 1])])
        s = g.op("Squeeze", [s, g.ints(1)])
    else:  # v . tanh(W_q q + W_k k_j): (N, 1, A) + (N, S, A) -> (N, S, A) -> (N, S)
        wq = g.op("MatMul", [q, g.init("attention.weight_query_t", attn.weight_query.value.T)])
        wk = g.op("MatMul", [k, g.init("attention.weight_key_t", attn.weight_key.value.T)])
        u = g.op("Tanh", [g.op("Add", [g.op("Unsqueeze", [wq, g.ints(1)]), wk])])
        s = g.op("MatMul", [u, g.init("attention.v", attn.v.value)])
    S = g.op("Gather", [g.op("Shape", [keys]), g.init(g.fresh("zero"), np.array(0), np.int64)])
    steps = g.op("Range", [g.init(g.fresh("zero"), np.array(0), np.int64), S,
                           g.init(g.fresh("one"), np.array(1), np.int64)])  # (S,)
    real = g.op("Less", [g.op("Unsqueeze", [steps, g.ints(0)]),
                         g.op("Unsqueeze", [lengths, g.ints(1)])])  # (N, S) j < length
    s = g.op("Where", [real, s, g.init(g.fresh("minus_inf"), np.array(-np.inf))])
    a = g.op("Softmax", [s], axis=-1)  # exactly 0 at padding: exp(-inf)
    context = g.op("Squeeze", [g.op("MatMul", [g.op("Unsqueeze", [a, g.ints(1)]), k]),
                               g.ints(1)])  # (N, 1, S) @ (N, S, H) -> (N, H)
    return context, a
