"""Shared by the seq2seq tests: padded batches of (source, target) id sequences, a trainer."""

from __future__ import annotations

import numpy as np

from rnnlab.optim import Adam


def pad(seqs, fill=0):
    """(T, N) ids, column n holding seqs[n] then ``fill``; and the lengths (N,)."""
    lengths = np.array([len(s) for s in seqs])
    out = np.full((max(lengths.max(), 1), len(seqs)), fill)
    for n, s in enumerate(seqs):
        out[:len(s), n] = s
    return out, lengths


def batch(sources, targets, bos, eos):
    """src, src_lengths, tgt_in = [BOS, y], tgt_out = [y, EOS], tgt_lengths (len(y) + 1)."""
    src, src_lengths = pad(sources)
    tgt_in, tgt_lengths = pad([[bos, *t] for t in targets])
    tgt_out, _ = pad([[*t, eos] for t in targets])
    return src, src_lengths, tgt_in, tgt_out, tgt_lengths


def digit_strings(rng, n, low=1, high=5):
    return [list(rng.integers(0, 10, rng.integers(low, high + 1))) for _ in range(n)]


def train(model, make_batch, steps, lr, rng):
    """Adam on ``model.loss(*make_batch(rng))``; returns the first and the last losses."""
    opt = Adam(model.named_params(), lr=lr)
    losses = []
    for _ in range(steps):
        losses.append(model.loss(*make_batch(rng)))
        model.zero_grad()
        model.backward_loss()
        opt.step()
    return losses[0], losses[-1]
