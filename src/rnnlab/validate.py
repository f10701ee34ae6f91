"""The one place where a run folder's files are checked before anything uses them.

Every command that reads a run folder comes through here, so ``train --resume``,
``sample`` and ``eval`` accept and refuse the same files::

    check_config(d, where)           config.json's / a checkpoint's "config": every TrainConfig
                                     field's type and range (a missing field takes its default)
    check_size(kwargs, V, B, T)      parameters + optimizer buffers + one step's activations
                                     fit in this machine's memory, before anything is allocated
    read_checkpoint(dir, name)       checkpoint.load (format, integrity hash), then its "model",
                                     "vocab" and "config" fields, the model built from them and
                                     every model/ array: names, shapes, dtypes, finite values
    read_run_record(dir)             config.json: JSON, its config (check_config), data hashes
    check_training_state(ckpt, ...)  what only training uses: optimizer state matching the
                                     parameters, RNG, progress (data position in range),
                                     schedule, the carried state; before anything is changed
                                     (check_resume_state: the part task runs share, see
                                     rnnlab.tasks.checks)

Each problem is a :class:`CheckpointError` (or :class:`RunFolderError` for ``config.json``)
naming the file, the field or array, what was expected and what was found. Everything rnnlab
writes is accepted (e.g. a schedule's best loss is infinite before the first evaluation).
Parameters must be finite: a checkpoint holding NaN or infinity is refused, so a command
that exits 0 never reports a NaN model's loss.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab import checkpoint
from rnnlab.config import TrainConfig
from rnnlab.data import LEVELS, Vocab
from rnnlab.errors import CheckpointError, DataError, RnnlabError, RunFolderError, UsageError
from rnnlab.models import LanguageModel
from rnnlab.models.language_model import CELLS
from rnnlab.optim import OPTIMIZERS
from rnnlab.schedule import SCHEDULES

__all__ = ["Checkpoint", "CheckpointFiles", "check_arrays", "check_config",
           "check_resume_state", "check_rng", "check_size", "check_training_state", "not_nan",
           "number", "read_checkpoint", "read_run_record"]

_ADVICE = "resume from another checkpoint or retrain"
DTYPES = ("float32", "float64")


# ------------------------------------------------------------------ field rules
def number(v: Any) -> float | None:
    """A JSON number ``v`` as a float; None for anything else: true and false, and an integer
    past float's range (``math.isfinite(10**400)`` would raise OverflowError)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        return float(v)
    except OverflowError:
        return None


def not_nan(v: Any) -> bool:
    """``v`` is a JSON number other than NaN (infinities included)."""
    x = number(v)
    return x is not None and not math.isnan(x)


def _int(low: int, none: bool = False) -> Callable[[Any], str | None]:
    def rule(v: Any) -> str | None:
        if v is None and none:
            return None
        ok = isinstance(v, int) and not isinstance(v, bool) and low <= v < 2**63
        return None if ok else f"an integer >= {low}" + (" or null" if none else "")
    return rule


def _num(low: float, strict: bool, high: float = math.inf, none: bool = False
         ) -> Callable[[Any], str | None]:
    def rule(v: Any) -> str | None:
        if v is None and none:
            return None
        x = number(v)
        ok = (x is not None and math.isfinite(x) and (x > low if strict else x >= low)
              and x < high)
        what = f"a finite number {'>' if strict else '>='} {low:g}"
        return None if ok else what + (f" and < {high:g}" if high < math.inf else "") + (
            " or null" if none else "")
    return rule


def _one_of(choices: Any) -> Callable[[Any], str | None]:
    return lambda v: None if isinstance(v, str) and v in choices else f"one of {list(choices)}"


def _str(none: bool) -> Callable[[Any], str | None]:
    return lambda v: None if isinstance(v, str) or (none and v is None) else (
        "a string" + (" or null" if none else ""))


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def _split(v: Any) -> str | None:
    ok = (isinstance(v, (list, tuple)) and len(v) >= 2
          and all(_num(0, True, 1)(p) is None for p in v) and sum(v) <= 1 + 1e-9)
    return None if ok else "a list of >= 2 fractions in (0, 1) summing to <= 1"


POS, NONNEG = _int(1), _int(0)
CONFIG_RULES: dict[str, Callable[[Any], str | None]] = {
    "data": _str(True), "val_data": _str(True), "split": _split, "level": _one_of(LEVELS),
    "max_vocab": _int(1, none=True), "min_freq": POS, "cell": _one_of(CELLS), "layers": POS,
    "hidden": POS, "embed": POS, "dropout": _num(0, False, 1), "tie_weights": _bool,
    "init_range": _num(0, True, none=True), "batch_size": POS, "eval_batch_size": POS,
    "bptt": POS, "epochs": POS, "max_steps": _int(1, none=True),
    "time_budget": _num(0, True, none=True), "optimizer": _one_of(OPTIMIZERS),
    "lr": _num(0, True), "schedule": _one_of(SCHEDULES), "lr_decay": _num(0, True),
    "decay_after": NONNEG, "clip": _num(0, False), "diverge_factor": _num(0, False),
    "eval_every": NONNEG, "seed": NONNEG, "dtype": _one_of(DTYPES), "threads": _int(1, True),
    "out": _str(False), "cache_dir": _str(True),
    "nonlinearity": _one_of(("tanh", "relu")), "forget_bias": _num(-1e6, False, 1e6, none=True),
    "task": _one_of(("lm", "classify", "tag", "seq2seq")), "val_fraction": _num(0, True, 1),
    "bidirectional": _bool, "pooling": _one_of(("last", "cell", "mean")),
    "attention": _one_of(("none", "dot", "additive")), "reverse_source": _bool,
    "peeky": _bool, "sample_length": NONNEG,
}
MODEL_RULES: dict[str, Callable[[Any], str | None]] = {
    "vocab_size": POS, "cell": _one_of(CELLS), "embed_size": POS, "hidden_size": POS,
    "num_layers": POS, "dropout": _num(0, False, 1), "tie_weights": _bool,
    "init_range": _num(0, True, none=True), "dtype": _one_of(DTYPES),
}
OPTIONAL_MODEL_RULES = {k: CONFIG_RULES[k] for k in ("nonlinearity", "forget_bias")}  # newer


def _check_fields(d: Any, rules: Mapping[str, Callable[[Any], str | None]], where: str,
                  error: type[CheckpointError], *, required: bool) -> None:
    if not isinstance(d, dict):
        raise error(f"{where}: expected a JSON object, got {type(d).__name__}: {_ADVICE}")
    for name, rule in rules.items():
        if name not in d:
            if required:
                raise error(f"{where}.{name} is missing: {_ADVICE}")
            continue
        expected = rule(d[name])
        if expected is not None:
            raise error(f"{where}.{name}: expected {expected}, got {_show(d[name])}: {_ADVICE}")


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def check_config(d: Any, where: str, error: type[CheckpointError] = CheckpointError
                 ) -> TrainConfig:
    """The :class:`TrainConfig` of a JSON dict, every present field checked (``where`` names
    the file and field in the message); a missing field takes its default."""
    _check_fields(d, CONFIG_RULES, where, error, required=False)
    cfg = TrainConfig.from_json(d)
    if cfg.tie_weights and cfg.embed != cfg.hidden:
        raise error(f"{where}: tie_weights needs embed == hidden, got {cfg.embed} and "
                    f"{cfg.hidden}: {_ADVICE}")
    return cfg


# ------------------------------------------------------------------------ size
def parameter_count(kw: Mapping[str, Any], vocab_size: int) -> int:
    """Parameters of ``LanguageModel(vocab_size, **kw)`` (a tied decoder weight counted once)."""
    E, H, L = kw["embed_size"], kw["hidden_size"], kw["num_layers"]
    G = CELLS[kw["cell"]].gates
    rnn = G * H * (E + H + 2) + (L - 1) * G * H * (2 * H + 2)  # layer 0 reads E, the rest H
    decoder = (0 if kw["tie_weights"] else H * vocab_size) + vocab_size
    return vocab_size * E + rnn + decoder


def memory_bytes(kw: Mapping[str, Any], vocab_size: int, batch: int, bptt: int) -> int:
    """About what training needs: value, gradient and two optimizer buffers per parameter,
    and one window's activations (gates and states per layer, logits and their gradient)."""
    H, L, E = kw["hidden_size"], kw["num_layers"], kw["embed_size"]
    G = CELLS[kw["cell"]].gates
    activations = batch * bptt * (E + L * (2 * G + 4) * H + 3 * vocab_size)
    return np.dtype(kw["dtype"]).itemsize * (4 * parameter_count(kw, vocab_size) + activations)


def _physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): no limit known
        return None


def check_size(kw: Mapping[str, Any], vocab_size: int, batch: int, bptt: int, where: str,
               error: type[RnnlabError] = UsageError) -> None:
    """Refuse a model (``LanguageModel`` arguments ``kw``) too big for this machine's memory."""
    need, have = memory_bytes(kw, vocab_size, batch, bptt), _physical_memory()
    if have is not None and need > have:
        raise error(f"{where}: a {kw['num_layers']}x{kw['hidden_size']} {kw['cell'].upper()} "
                    f"(embed {kw['embed_size']}, {vocab_size} tokens, batch {batch} x bptt "
                    f"{bptt}) needs about {_gib(need)} GiB but this machine has "
                    f"{_gib(have)} GiB: lower --hidden, --embed, --layers, --batch-size "
                    "or --bptt")


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g}" if n < 2**1000 else "more than 1e290"


# ------------------------------------------------------------------ checkpoint
@dataclass
class CheckpointFiles:
    """A loaded checkpoint's files: where they are, their arrays and meta."""

    json_path: Path
    npz_path: Path
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]

    def part(self, prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix):]: v for k, v in self.arrays.items() if k.startswith(prefix)}


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
            raise CheckpointError(f"{where}.{key} is missing: {_ADVICE}")
    _check_fields(meta["model"], MODEL_RULES, f"{where}.model", CheckpointError, required=True)
    _check_fields(meta["model"], OPTIONAL_MODEL_RULES, f"{where}.model", CheckpointError,
                  required=False)
    extra = sorted(set(meta["model"]) - set(MODEL_RULES) - set(OPTIONAL_MODEL_RULES))
    if extra:
        raise CheckpointError(f"{where}.model has unknown key {extra[0]!r} (expected only "
                              f"{', '.join(MODEL_RULES)}): {_ADVICE}")
    config = check_config(meta["config"], f"{where}.config")
    try:
        vocab = Vocab.from_json(meta["vocab"])
    except DataError as e:
        raise CheckpointError(f"{where}.vocab: {e}") from None
    kw = dict(meta["model"])
    if kw["vocab_size"] != len(vocab):
        raise CheckpointError(f"{where}.model.vocab_size: expected {len(vocab)} (the size of "
                              f"meta.vocab), got {kw['vocab_size']}: {_ADVICE}")
    if kw["tie_weights"] and kw["embed_size"] != kw["hidden_size"]:
        raise CheckpointError(f"{where}.model: tie_weights needs embed_size == hidden_size: "
                              f"{_ADVICE}")
    check_size(kw, kw.pop("vocab_size"), 1, 1, f"{where}.model", CheckpointError)
    model = LanguageModel(len(vocab), **kw, rng=np.random.default_rng(0))
    unknown = sorted(k for k in arrays if not k.startswith(PARTS))
    if unknown:
        raise CheckpointError(f"checkpoint {npz} holds unknown array {unknown[0]!r} (expected "
                              f"names starting {', '.join(PARTS)}): {_ADVICE}")
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
                               f"{_ADVICE}")

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


# ------------------------------------------------------------- training state
PROGRESS_RULES: dict[str, Callable[[Any], str | None]] = {
    "epoch": NONNEG, "batch": NONNEG, "step": NONNEG, "tokens": NONNEG,
    "elapsed_s": _num(0, False), "train_loss_sum": _num(-math.inf, False),
    "train_loss_count": NONNEG,
    "last_loss": lambda v: None if number(v) is not None
    else "a number (NaN before the first step)",
    "best_val": lambda v: None if not_nan(v)
    else "a number or Infinity (before the first evaluation)",
}
OPTIONAL_PROGRESS_RULES = {"grad_norm_sum": _num(0, False), "clipped_count": NONNEG}  # newer


def check_training_state(ckpt: Checkpoint, model: LanguageModel, optimizer: Any,
                         n_batches: int, batch_size: int) -> None:
    """Check what resuming restores, against the run's ``model``, ``optimizer`` (built from
    config.json), its ``n_batches`` windows per epoch and ``batch_size``. Nothing is changed."""
    check_resume_state(ckpt, ckpt.model, model, optimizer, n_batches)
    if "sample_rng" in ckpt.meta:  # absent in runs saved before samples were recorded
        check_rng(ckpt.meta["sample_rng"], f"checkpoint {ckpt.json_path} field meta.sample_rng")
    state = model.init_state(batch_size)
    parts = state if isinstance(state, tuple) else (state,)
    given = ckpt.part("state/")
    if given:  # absent before the first window: training starts from zeros
        check_arrays(ckpt, "state/", given, {str(i): s for i, s in enumerate(parts)})


def check_resume_state(ckpt: CheckpointFiles, saved: Any, model: Any, optimizer: Any,
                       n_batches: int, progress_rules: Mapping[str, Any] | None = None
                       ) -> None:
    """What every resume restores: ``saved`` (the checkpoint's model) configured as ``model``
    (the run's, from config.json); meta.progress (``PROGRESS_RULES`` and ``progress_rules``,
    its batch in [0, ``n_batches``)), schedule, rng and optimizer (``optimizer``'s)."""
    meta, where = ckpt.meta, f"checkpoint {ckpt.json_path} field meta"
    if saved.config() != model.config():
        raise CheckpointError(f"{where}.model is {saved.config()}, but config.json "
                              f"builds {model.config()}: {_ADVICE}")
    for key in ("progress", "optimizer", "rng", "schedule"):
        if key not in meta:
            raise CheckpointError(f"{where}.{key} is missing: {_ADVICE}")
    rules = {**PROGRESS_RULES, **(progress_rules or {})}
    _check_fields(meta["progress"], rules, f"{where}.progress", CheckpointError, required=True)
    _check_fields(meta["progress"], OPTIONAL_PROGRESS_RULES, f"{where}.progress",
                  CheckpointError, required=False)
    extra = sorted(set(meta["progress"]) - set(rules) - set(OPTIONAL_PROGRESS_RULES))
    if extra:
        raise CheckpointError(f"{where}.progress has unknown key {extra[0]!r}: {_ADVICE}")
    if meta["progress"]["batch"] >= n_batches:
        raise CheckpointError(f"{where}.progress.batch: expected a data position in [0, "
                              f"{n_batches}), got {meta['progress']['batch']}: {_ADVICE}")
    _check_schedule(meta["schedule"], f"{where}.schedule")
    check_rng(meta["rng"], f"{where}.rng")
    _check_optimizer(ckpt, optimizer, f"{where}.optimizer")


def _check_schedule(s: Any, where: str) -> None:
    if s is None:
        return
    if not isinstance(s, dict) or set(s) - {"best"}:
        raise CheckpointError(f"{where}: expected null or {{\"best\": number}}, got {_show(s)}:"
                              f" {_ADVICE}")
    best = s.get("best", math.inf)
    if not not_nan(best):
        raise CheckpointError(f"{where}.best: expected a number or Infinity, got "
                              f"{_show(best)}: {_ADVICE}")


def check_rng(state: Any, where: str) -> None:
    try:  # the generator's own check, on a throwaway generator
        np.random.default_rng(0).bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError) as e:
        raise CheckpointError(f"{where}: expected the state of a PCG64 generator "
                              f"({_one_line(e)}): {_ADVICE}") from None


def _check_optimizer(ckpt: CheckpointFiles, optimizer: Any, where: str) -> None:
    meta = ckpt.meta["optimizer"]
    if not isinstance(meta, dict) or meta.get("optimizer") != type(optimizer).__name__:
        found = meta.get("optimizer") if isinstance(meta, dict) else meta
        raise CheckpointError(f"{where}.optimizer: expected {type(optimizer).__name__!r} "
                              f"(config.json's optimizer), got {_show(found)}: {_ADVICE}")
    hyper = meta.get("hyperparams")
    if not isinstance(hyper, dict) or not all(_hyper_ok(v) for v in hyper.values()):
        raise CheckpointError(f"{where}.hyperparams: expected an object of finite numbers and "
                              f"booleans, got {_show(hyper)}: {_ADVICE}")
    if _int(0)(meta.get("step")) is not None:
        raise CheckpointError(f"{where}.step: expected an integer >= 0, got "
                              f"{_show(meta.get('step'))}: {_ADVICE}")
    try:  # the constructor checks the hyperparameters and allocates the buffers they need
        fresh = type(optimizer)(optimizer.params, **hyper)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{where}.hyperparams: {_one_line(e)}: {_ADVICE}") from None
    check_arrays(ckpt, "optim/", ckpt.part("optim/"), fresh.state_dict()[0])


def _hyper_ok(v: Any) -> bool:
    if isinstance(v, list):
        return all(_hyper_ok(x) for x in v) and len(v) <= 8
    return isinstance(v, bool) or (not_nan(v) and math.isfinite(v))


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__


# ------------------------------------------------------------------ config.json
def read_run_record(directory: Path) -> tuple[TrainConfig, dict[str, str]]:
    """config.json of a run folder: its checked :class:`TrainConfig` and data file hashes."""
    path = directory / "config.json"
    if not path.is_file():
        raise RunFolderError(f"{directory} is not a run folder (no config.json): "
                             "check the path, or start a run with rnnlab train --out")
    fix = "restore it from a backup, or start a new run with --out"
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RunFolderError(f"{path} is not UTF-8 text (byte offset {e.start}): {fix}") from None
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{path} is not valid JSON ({e.msg} at line {e.lineno} column "
                             f"{e.colno}): {fix}") from None
    except (ValueError, OSError, RecursionError) as e:  # e.g. an integer of 5000 digits
        raise RunFolderError(f"{path} cannot be read ({_one_line(e)}): {fix}") from None
    if not isinstance(record, dict) or "config" not in record:
        raise RunFolderError(f"{path}: expected a JSON object with a \"config\" field: {fix}")
    config = check_config(record["config"], f"{path} field config", RunFolderError)
    hashes = record.get("data_sha256")
    if not isinstance(hashes, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in hashes.items()):
        raise RunFolderError(f"{path} field data_sha256: expected an object mapping each data "
                             f"file to its sha256, got {_show(hashes)}: {fix}")
    return config, hashes

