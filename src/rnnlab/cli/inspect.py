"""What ``rnnlab inspect gradients | gates | activations`` do (the parser is in cli.py).

Each ``cmd_*`` takes the parsed flags and returns the exit status; a problem the user can
fix is raised as an :class:`rnnlab.errors.RnnlabError` (one line, exit status 2): a
checkpoint that is not a run, a text file that is missing, empty, binary or not UTF-8, a
layer or cell index out of range, an output path in a folder that does not exist.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.atomic import atomic_write_text
from rnnlab.cli.load import load_run as load
from rnnlab.data import Vocab, bundled_corpus, encode_file, read_text
from rnnlab.errors import DataError, RunFolderError, UsageError
from rnnlab.inspect.activations_page import activations_page, top_predictions
from rnnlab.inspect.gates import gate_report, plot_gates
from rnnlab.inspect.gradient_flow import gradient_flow_report, plot_gradient_flow
from rnnlab.inspect.model import read_text as run_over_text
from rnnlab.inspect.model import state_grad_norms, windows
from rnnlab.metrics import json_line
from rnnlab.models import LanguageModel

FRESH: dict[str, tuple[str, dict[str, Any]]] = {
    "rnn-tanh": ("rnn", {"nonlinearity": "tanh"}), "rnn-relu": ("rnn", {"nonlinearity": "relu"}),
    "lstm": ("lstm", {}), "gru": ("gru", {})}
ALIASES = {"rnn": ("rnn-tanh", "rnn-relu")}  # --cells rnn: both nonlinearities


def check_out(path: str | Path) -> Path:
    """An output path whose folder exists (UsageError otherwise)."""
    out = Path(path)
    if not out.parent.is_dir():
        raise UsageError(f"the folder of {out} does not exist: create {out.parent} first, "
                         "or write elsewhere")
    if out.is_dir():
        raise UsageError(f"{out} is a folder: give a file name to write")
    return out


def load_run(path: str) -> tuple[LanguageModel, Vocab, dict[str, Any]]:
    """The model, vocabulary and checkpoint meta of a run folder (RunFolderError if none)."""
    directory = Path(path)
    if directory.is_dir() and not any((directory / f"{n}.json").is_file() for n in ("best",
                                                                                 "last")):
        raise RunFolderError(f"{directory} is not a run folder (no checkpoint in it): pass the "
                             "--out folder of an rnnlab train run")
    ckpt = load(path, want="lm")
    return ckpt.model, ckpt.task.vocab, {**ckpt.meta, "config": ckpt.config.to_json()}


def text_ids(path: str, vocab: Vocab) -> np.ndarray:
    """A text file's token ids in the run's vocabulary (clear DataErrors for bad files)."""
    if vocab.level != "byte":
        read_text(path)  # missing, empty, binary or not UTF-8: one line naming the file
    ids = encode_file(path, vocab)
    if ids.size == 0:
        raise DataError(f"{path} has no tokens: give a text with some")
    return ids


def run_data(meta: dict[str, Any]) -> str:
    """The training text of a run (its --data, else the bundled corpus)."""
    return meta.get("config", {}).get("data") or str(bundled_corpus())


def layer_range(layer: int | None, L: int) -> list[int]:
    if layer is None:
        return list(range(L))
    if not 0 <= layer < L:
        raise UsageError(f"--layer {layer} is out of range: the model has {L} layer"
                         f"{'s' if L > 1 else ''} (0 to {L - 1})")
    return [layer]


# ---------------------------------------------------------------- gradients
def gradient_curves(model: LanguageModel, ids: np.ndarray, steps: int, count: int,
                    label: str, text: str = "the text") -> dict[str, np.ndarray]:
    """:func:`rnnlab.inspect.model.state_grad_norms` over ``count`` windows of ``ids`` (of the
    file ``text``, named in a DataError)."""
    try:
        x, y = windows(ids, steps, count)
    except ValueError as e:
        raise DataError(f"{text}: {e}: give a longer text or fewer --steps") from None
    return state_grad_norms(model, x, y, label)


def fresh_curves(cells: list[str], ids: np.ndarray, vocab_size: int, args: Any,
                 text: str = "the text") -> dict[str, np.ndarray]:
    """Freshly initialised one-layer models of each cell (float64, seed ``args.seed``)."""
    curves: dict[str, np.ndarray] = {}
    for name in cells:
        cell, kw = FRESH[name]
        if cell == "lstm" and args.forget_bias is not None:
            kw = {"forget_bias": args.forget_bias}
        model = LanguageModel(vocab_size, cell=cell, embed_size=64, hidden_size=args.hidden,
                              dtype=np.float64, rng=np.random.default_rng(args.seed), **kw)
        curves.update(gradient_curves(model, ids, args.steps, args.windows, name, text))
    return curves


def parse_cells(text: str) -> list[str]:
    names: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if part not in FRESH and part not in ALIASES:
            raise UsageError(f"--cells: unknown cell {part!r} (choose from rnn, "
                             f"{', '.join(FRESH)})")
        names += [n for n in ALIASES.get(part, (part,)) if n not in names]
    return names


def checkpoint_curves(run: str, steps: int, count: int, text: str | None = None,
                      layer: int | None = None) -> tuple[dict[str, np.ndarray], str]:
    """Gradient-flow curves of a run's checkpoint over windows of ``text`` (default: the
    run's training text), and the text's path."""
    model, vocab, meta = load_run(run)
    if text:
        ids = text_ids(text, vocab)
    else:
        text = run_data(meta)
        try:
            ids = text_ids(text, vocab)
        except DataError as e:  # the checkpoint's config names it (the bundled corpus if none)
            raise DataError(f"run {run}, its training text: {e}; or pass --text FILE") from None
    curves = gradient_curves(model, ids, steps, count, model.cell, text)
    keep = layer_range(layer, model.rnn.num_layers)
    if len(keep) < model.rnn.num_layers:
        curves = {k: v for k, v in curves.items() if k.endswith(f"layer {keep[0]}")}
    return curves, text


def cmd_gradients(args: argparse.Namespace) -> int:
    out = check_out(args.out)
    if args.checkpoint:
        if args.cells is not None or args.forget_bias is not None:
            raise UsageError("--cells and --forget-bias choose fresh models: drop them with "
                             "--checkpoint")
        curves, text = checkpoint_curves(args.checkpoint, args.steps, args.windows,
                                         args.text, args.layer)
        title = f"Gradient flow through time: {args.checkpoint}"
    else:
        if args.layer not in (None, 0):
            layer_range(args.layer, 1)
        text = args.text or str(bundled_corpus())
        body = read_text(text)
        vocab = Vocab.build(body, "char")
        ids = vocab.encode(body)
        curves = fresh_curves(parse_cells(args.cells or "rnn,lstm,gru"), ids, len(vocab), args,
                              text)
        title = "Gradient flow through time at initialisation"
    plot_gradient_flow(curves, out, title=title)
    if args.json:
        report = gradient_flow_report(curves)
        print(json_line({"steps": args.steps, "windows": args.windows, "text": text,
                         "checkpoint": args.checkpoint, "curves": {
                             k: {**report[k], "norms": v.tolist()} for k, v in curves.items()}}))
    print(f"wrote {out}", file=sys.stderr)
    return 0


# -------------------------------------------------------------------- gates
def cmd_gates(args: argparse.Namespace) -> int:
    out = check_out(args.out)
    model, vocab, _ = load_run(args.checkpoint)
    if model.rnn.gate_buffer is None:
        raise UsageError(f"{args.checkpoint} is an RNN run: it has no gates (inspect gates "
                         "needs an LSTM or GRU run)")
    ids = text_ids(args.text, vocab)[:args.max_tokens]
    _, _, gates = run_over_text(model, ids, gates=True)
    keep = layer_range(args.layer, len(gates))
    report = gate_report([gates[k] for k in keep])
    for row, k in zip(report["layers"], keep, strict=True):
        row["layer"] = k
    report["tokens"] = int(ids.size)
    plot_gates(report, out)
    if args.json:
        print(json.dumps(report))
    print(f"wrote {out}", file=sys.stderr)
    return 0


# -------------------------------------------------------------- activations
def parse_units(text: str | None, H: int) -> list[int]:
    """``"3,5,10-20"`` -> cell indices, each checked against H (UsageError)."""
    if text is None:
        return list(range(H))
    units: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            units += range(int(lo), int(hi or lo) + 1)
    except ValueError:
        raise UsageError(f"--units: expected indices like 3,5,10-20, got {text!r}") from None
    bad = [u for u in units if not 0 <= u < H]
    if bad or not units:
        raise UsageError(f"--units: cell {bad[0] if bad else text} is out of range: each "
                         f"layer has {H} cells (0 to {H - 1})")
    return units


def cmd_activations(args: argparse.Namespace) -> int:
    out = check_out(args.out)
    model, vocab, _ = load_run(args.checkpoint)
    ids = text_ids(args.text, vocab)[:args.max_tokens]
    keep = layer_range(args.layer, model.rnn.num_layers)
    units = parse_units(args.units, model.rnn.hidden_size)
    probs, states, _ = run_over_text(model, ids)
    states = {n: s[keep][:, :, units] for n, s in states.items()}  # (L', T, H')
    top_tokens, top_probs = top_predictions(probs, vocab.tokens, k=5)
    tokens = [vocab.tokens[int(i)] for i in ids]
    page = activations_page(tokens, vocab.level, states, top_tokens, top_probs,
                            title=f"rnnlab: {args.checkpoint} on {Path(args.text).name}")
    atomic_write_text(out, page)
    print(f"wrote {out}", file=sys.stderr)
    return 0
