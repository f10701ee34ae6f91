"""A checkpoint's files, loaded and checked as far as every command needs them::

    read_checkpoint(dir, name)       checkpoint.load (format, integrity hash), then its "model",
                                     "vocab" and "config" fields, the model built from them
                                     (after check_size) and every model/ array
    check_arrays(ckpt, prefix, ...)  one part's arrays: names, shapes, dtypes, finite values

What only training uses (optim/, state/, progress, RNG) is checked in
:mod:`rnnlab.validate.state`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab import checkpoint
from rnnlab.config import TrainConfig
from rnnlab.data import Vocab
from rnnlab.errors import CheckpointError, DataError
from rnnlab.models import LanguageModel
from rnnlab.validate.rules import (
    ADVICE,
    MODEL_RULES,
    OPTIONAL_MODEL_RULES,
    check_config,
    check_fields,
)
from rnnlab.validate.sizes import check_size


@dataclass
class CheckpointFiles:
    """A loaded checkpoint's files: where they are, their arrays and meta."""

    json_path: Path
    npz_path: Path
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]

    def part(self, prefix: str) -> dict[str, np.ndarray]:
        return checkpoint.part(self.arrays, prefix)


@dataclass
class Checkpoint(CheckpointFiles):
    """A language model's checkpoint whose model part is checked: ``model`` holds its
    parameters."""

    config: TrainConfig
    vocab: Vocab
    model: LanguageModel


PARTS = ("model/", "optim/", "state/")


def read_checkpoint(directory: str | os.PathLike[str], name: str) -> Checkpoint:
    """Load ``<directory>/<name>`` and check everything every command uses (see the module
    doc); the model it describes is built (after :func:`check_size`) and filled."""
    arrays, meta = checkpoint.load(directory, name)
    js, npz = Path(directory) / f"{name}.json", Path(directory) / f"{name}.npz"
    if meta.get("task", "lm") != "lm":  # a checkpoint without "task" predates tasks: an LM
        raise CheckpointError(f"{Path(directory)} holds a {meta['task']!r} model, not a "
                              "language model: use rnnlab predict or rnnlab eval")
    where = f"checkpoint {js} field meta"
    for key in ("model", "vocab", "config"):
        if key not in meta:
            raise CheckpointError(f"{where}.{key} is missing: {ADVICE}")
    check_fields(meta["model"], MODEL_RULES, f"{where}.model", CheckpointError, required=True)
    check_fields(meta["model"], OPTIONAL_MODEL_RULES, f"{where}.model", CheckpointError,
                 required=False)
    extra = sorted(set(meta["model"]) - set(MODEL_RULES) - set(OPTIONAL_MODEL_RULES))
    if extra:
        raise CheckpointError(f"{where}.model has unknown key {extra[0]!r} (expected only "
                              f"{', '.join(MODEL_RULES)}): {ADVICE}")
    config = check_config(meta["config"], f"{where}.config")
    try:
        vocab = Vocab.from_json(meta["vocab"])
    except DataError as e:
        raise CheckpointError(f"{where}.vocab: {e}") from None
    kw = dict(meta["model"])
    if kw["vocab_size"] != len(vocab):
        raise CheckpointError(f"{where}.model.vocab_size: expected {len(vocab)} (the size of "
                              f"meta.vocab), got {kw['vocab_size']}: {ADVICE}")
    if kw["tie_weights"] and kw["embed_size"] != kw["hidden_size"]:
        raise CheckpointError(f"{where}.model: tie_weights needs embed_size == hidden_size: "
                              f"{ADVICE}")
    check_size(kw, kw.pop("vocab_size"), 1, 1, f"{where}.model", CheckpointError)
    model = LanguageModel(len(vocab), **kw, rng=np.random.default_rng(0))
    unknown = sorted(k for k in arrays if not k.startswith(PARTS))
    if unknown:
        raise CheckpointError(f"checkpoint {npz} holds unknown array {unknown[0]!r} (expected "
                              f"names starting {', '.join(PARTS)}): {ADVICE}")
    ckpt = Checkpoint(js, npz, arrays, meta, config, vocab, model)
    template = checkpoint.model_state(model)
    check_arrays(ckpt, "model/", ckpt.part("model/"), template)
    checkpoint.load_model_state(model, ckpt.part("model/"))
    return ckpt


def check_arrays(ckpt: CheckpointFiles, prefix: str, given: Mapping[str, np.ndarray],
                 template: Mapping[str, np.ndarray]) -> None:
    """``given`` has exactly ``template``'s names, shapes and dtypes, and finite values."""
    def fail(name: str, what: str) -> CheckpointError:
        return CheckpointError(f"checkpoint {ckpt.npz_path} array {prefix + name!r} {what}: "
                               f"{ADVICE}")

    for name in sorted(template.keys() - given.keys()):
        raise fail(name, "is missing (a checkpoint of another model or optimizer?)")
    for name in sorted(given.keys() - template.keys()):
        raise fail(name, "is not expected here (a checkpoint of another model or optimizer?)")
    for name, want in template.items():
        a = given[name]
        if a.shape != want.shape or a.dtype != want.dtype:
            raise fail(name, f"has shape {a.shape} {a.dtype}, expected {want.shape} "
                       f"{want.dtype}")
        if not np.isfinite(a).all():
            raise fail(name, "holds NaN or infinity (the model diverged before this save?)")
