"""The PyTorch side of ``quality.py``: a plain PyTorch recipe, trained to a quality metric.

    python benchmarks/quality_torch.py ptb --data ../shared/data/ptb --json out.json
    python benchmarks/quality_torch.py shakespeare --data input.txt --minutes 40 --json out.json

Written the way PyTorch's word_language_model example does it, nothing clever: the token
stream cut into B parallel streams (``batchify``), windows of ``bptt`` steps (``get_batch``),
the state carried from window to window and detached, the per-token mean cross-entropy,
``clip_grad_norm_``, validation with the state carried over the whole validation stream.

ptb          Zaremba et al.'s small model: Embedding(10000, 200) -> LSTM(200, 200, 2) ->
             Linear(200, 10000), every parameter U(-0.1, 0.1), no dropout; SGD lr 20, clip
             0.25, batch 20, bptt 20, 13 epochs; the lr halved at the end of every epoch from
             epoch ``decay_after`` on (rnnlab's ``--schedule zaremba``: epochs_done >=
             decay_after); validation at batch 20 after each epoch; the best-validation
             weights scored on the test file as one stream (batch 1), as ``rnnlab eval`` does.
shakespeare  2x512 character LSTM, embedding 512, dropout 0.2 (embedding, between the layers,
             output), clip 1, Adam lr 2e-3, batch 64, bptt 100, nanoGPT's 90/10 split;
             trained until the time budget, validated (32 streams, as rnnlab's default
             --eval-batch-size) after each epoch and once when the budget ends.

The JSON written: ``train_s`` (training wall time, its validations included), ``tokens``,
``steps``, ``evals`` (one row per validation), ``best_val_loss``, and for ptb ``test_ppl``.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn


class LM(nn.Module):
    """Embedding -> dropout -> LSTM (dropout between layers) -> dropout -> Linear."""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(vocab, embed)
        self.rnn = nn.LSTM(embed, hidden, layers, dropout=dropout if layers > 1 else 0.0)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        y, state = self.rnn(self.drop(self.encoder(x)), state)  # x (T, B) -> y (T, B, H)
        return self.decoder(self.drop(y)), state  # (T, B, V)


def batchify(ids: torch.Tensor, bsz: int) -> torch.Tensor:
    """(L,) -> (L // bsz, bsz): column b is the b-th contiguous piece of the stream."""
    n = ids.size(0) // bsz
    return ids[: n * bsz].view(bsz, n).t().contiguous()


def windows(data: torch.Tensor, bptt: int) -> Any:
    """(x, y) windows of up to ``bptt`` steps; y is each input's next token."""
    for i in range(0, data.size(0) - 1, bptt):
        seq_len = min(bptt, data.size(0) - 1 - i)
        yield data[i : i + seq_len], data[i + 1 : i + 1 + seq_len]


def detach(state: Any) -> Any:
    return None if state is None else tuple(s.detach() for s in state)


def evaluate(model: LM, data: torch.Tensor, bptt: int) -> float:
    """Mean loss (nats per token) over the streams of ``data``, state carried, eval mode."""
    model.eval()
    total, count, state = 0.0, 0, None
    with torch.no_grad():
        for x, y in windows(data, bptt):
            logits, state = model(x, state)
            total += nn.functional.cross_entropy(
                logits.view(-1, logits.size(-1)), y.reshape(-1), reduction="sum").item()
            count += y.numel()
    model.train()
    return total / count


class Trainer:
    """The training loop: epochs of windows until the epochs, steps or time are spent."""

    def __init__(self, model: LM, opt: torch.optim.Optimizer, clip: float, bptt: int,
                 budget_s: float, max_steps: int | None) -> None:
        self.model, self.opt, self.clip, self.bptt = model, opt, clip, bptt
        self.budget_s, self.max_steps = budget_s, max_steps
        self.steps, self.tokens, self.started = 0, 0, time.perf_counter()

    def out_of_budget(self) -> bool:
        over_steps = self.max_steps is not None and self.steps >= self.max_steps
        return over_steps or time.perf_counter() - self.started >= self.budget_s

    def epoch(self, data: torch.Tensor) -> bool:
        """One epoch from a zero state; False if the budget ended it early."""
        model, state, done = self.model, None, 0
        for x, y in windows(data, self.bptt):
            state = detach(state)  # truncated BPTT: no gradient across the window edge
            model.zero_grad()
            logits, state = model(x, state)
            loss = nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), self.clip)
            self.opt.step()
            self.steps += 1
            self.tokens += x.numel()
            done += 1
            if self.out_of_budget():
                break
        return done == -(-(data.size(0) - 1) // self.bptt)  # every window

    def train(self, train: torch.Tensor, val: torch.Tensor, epochs: int,
              decay: tuple[int, float] | None) -> dict[str, Any]:
        """Epochs with a validation after each (and when the budget ends); the best weights
        are loaded back at the end. ``decay``: (decay_after, factor), rnnlab's zaremba."""
        evals: list[dict[str, Any]] = []
        best, best_state = math.inf, None
        for done in range(1, epochs + 1):
            whole = self.epoch(train)
            val_loss = evaluate(self.model, val, self.bptt)
            lr = self.opt.param_groups[0]["lr"]
            evals.append({"epoch": done if whole else done - 1, "step": self.steps,
                          "val_loss": val_loss, "val_ppl": math.exp(val_loss), "lr": lr,
                          "elapsed_s": time.perf_counter() - self.started})
            if val_loss < best:
                best, best_state = val_loss, copy.deepcopy(self.model.state_dict())
            if whole and decay is not None and done >= decay[0]:
                for group in self.opt.param_groups:
                    group["lr"] = lr * decay[1]
            if not whole or self.out_of_budget():
                break
        train_s = time.perf_counter() - self.started
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return {"train_s": train_s, "tokens": self.tokens, "steps": self.steps,
                "evals": evals, "best_val_loss": best}


def word_ids(path: Path, vocab: dict[str, int]) -> torch.Tensor:
    """The PTB convention: whitespace-separated words, each line ending in ``<eos>``."""
    ids: list[int] = []
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            words = line.split() + ["<eos>"]
            for w in words:
                vocab.setdefault(w, len(vocab))
            ids.extend(vocab[w] for w in words)
    return torch.tensor(ids, dtype=torch.long)


def ptb(args: argparse.Namespace) -> dict[str, Any]:
    root, vocab = Path(args.data), dict[str, int]()
    train = word_ids(root / "ptb.train.txt", vocab)
    size = len(vocab)  # PTB's valid and test hold no word the train file lacks
    val = word_ids(Path(args.val_data) if args.val_data else root / "ptb.valid.txt", vocab)
    test = word_ids(Path(args.test_data) if args.test_data else root / "ptb.test.txt", vocab)
    if len(vocab) != size:
        raise SystemExit("the validation or test text has words the train file lacks")
    model = LM(size, 200, 200, 2, 0.0)
    for p in model.parameters():
        nn.init.uniform_(p, -0.1, 0.1)
    opt = torch.optim.SGD(model.parameters(), lr=20.0)
    trainer = Trainer(model, opt, 0.25, 20, math.inf, args.max_steps)
    out = trainer.train(batchify(train, 20), batchify(val, 20), args.epochs,
                        (args.decay_after, 0.5))
    start = time.perf_counter()
    out["test_loss"] = evaluate(model, batchify(test, 1), 20)
    out["test_ppl"], out["test_s"] = math.exp(out["test_loss"]), time.perf_counter() - start
    out["vocab"] = size
    return out


def shakespeare(args: argparse.Namespace) -> dict[str, Any]:
    text = Path(args.data).read_text(encoding="utf-8-sig")
    chars = sorted(set(text))  # by code point, as rnnlab's char vocabulary (and nanoGPT's)
    index = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([index[c] for c in text], dtype=torch.long)
    cut = int(len(ids) * 0.9)  # nanoGPT's split: validation = the last 10% of characters
    model = LM(len(chars), 512, 512, 2, 0.2)
    nn.init.uniform_(model.encoder.weight, -0.1, 0.1)  # the example's init_weights
    nn.init.uniform_(model.decoder.weight, -0.1, 0.1)
    nn.init.zeros_(model.decoder.bias)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    trainer = Trainer(model, opt, 1.0, 100, args.minutes * 60, args.max_steps)
    out = trainer.train(batchify(ids[:cut], 64), batchify(ids[cut:], 32), args.epochs, None)
    out["vocab"] = len(chars)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=["ptb", "shakespeare"])
    p.add_argument("--data", required=True, help="ptb: the folder; shakespeare: the file")
    p.add_argument("--val-data", help="ptb: validation text (default DATA/ptb.valid.txt)")
    p.add_argument("--test-data", help="ptb: test text (default DATA/ptb.test.txt)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, help="default: ptb 13, shakespeare 50")
    p.add_argument("--decay-after", type=int, default=4, help="ptb: epochs at lr 20")
    p.add_argument("--minutes", type=float, default=40.0, help="shakespeare: time budget")
    p.add_argument("--max-steps", type=int, help="stop after this many steps (quick runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", required=True, help="write the result here")
    args = p.parse_args(argv)
    args.epochs = args.epochs or (13 if args.mode == "ptb" else 50)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)  # fail before training, not after
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(args.seed)
    out = ptb(args) if args.mode == "ptb" else shakespeare(args)
    out.update(threads=args.threads, torch=torch.__version__, seed=args.seed)
    Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
