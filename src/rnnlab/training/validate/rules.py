"""Field rules: what each JSON field of config.json and a checkpoint's meta may hold.

A rule takes a field's value and returns None when it is acceptable, else what was expected
(``"an integer >= 1"``), which :func:`check_fields` puts in a one-line error naming the file
and field::

    CONFIG_RULES       every TrainConfig field (check_config: a missing one takes its default)
    MODEL_RULES        a checkpoint's meta.model (OPTIONAL_MODEL_RULES: fields added later)
    PROGRESS_RULES     a checkpoint's meta.progress (OPTIONAL_PROGRESS_RULES: added later)

with the message helpers the other checks share (:data:`ADVICE`, :func:`show`,
:func:`one_line`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from rnnlab.data import LEVELS
from rnnlab.device import Device
from rnnlab.errors import CheckpointError
from rnnlab.models._cells import CELLS
from rnnlab.optim import OPTIMIZERS
from rnnlab.optim.schedule import SCHEDULES
from rnnlab.training.config import MAX_SAMPLE_LENGTH, TrainConfig

ADVICE = "resume from another checkpoint or retrain"
DTYPES = ("float32", "float64")
Rule = Callable[[Any], str | None]  # None: acceptable; else what was expected


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


def _int(low: int, none: bool = False, high: int = 2**63 - 1) -> Rule:
    def rule(v: Any) -> str | None:
        if v is None and none:
            return None
        ok = isinstance(v, int) and not isinstance(v, bool) and low <= v <= high
        top = f" and <= {high}" if high < 2**63 - 1 else ""
        return None if ok else f"an integer >= {low}{top}" + (" or null" if none else "")
    return rule


def _num(low: float, strict: bool, high: float = math.inf, none: bool = False) -> Rule:
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


def _one_of(choices: Any) -> Rule:
    return lambda v: None if isinstance(v, str) and v in choices else f"one of {list(choices)}"


def _str(none: bool) -> Rule:
    return lambda v: None if isinstance(v, str) or (none and v is None) else (
        "a string" + (" or null" if none else ""))


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def _split(v: Any) -> str | None:
    ok = (isinstance(v, (list, tuple)) and len(v) >= 2
          and all(_num(0, True, 1)(p) is None for p in v) and sum(v) <= 1 + 1e-9)
    return None if ok else "a list of >= 2 fractions in (0, 1) summing to <= 1"


def _device(v: Any) -> str | None:
    try:
        Device.parse(v)
    except (ValueError, AttributeError):
        return "'cpu', 'cuda' or 'cuda:N'"
    return None


POS, NONNEG = _int(1), _int(0)
CONFIG_RULES: dict[str, Rule] = {
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
    "peeky": _bool, "sample_length": _int(0, high=MAX_SAMPLE_LENGTH), "log_every": NONNEG,
    "peephole": _bool, "check_weights_every": NONNEG, "device": _device,
}
MODEL_RULES: dict[str, Rule] = {
    "vocab_size": POS, "cell": _one_of(CELLS), "embed_size": POS, "hidden_size": POS,
    "num_layers": POS, "dropout": _num(0, False, 1), "tie_weights": _bool,
    "init_range": _num(0, True, none=True), "dtype": _one_of(DTYPES),
}
OPTIONAL_MODEL_RULES = {k: CONFIG_RULES[k] for k in ("nonlinearity", "forget_bias",
                                                    "peephole")}  # added later
PROGRESS_RULES: dict[str, Rule] = {
    "epoch": NONNEG, "batch": NONNEG, "step": NONNEG, "tokens": NONNEG,
    "elapsed_s": _num(0, False), "train_loss_sum": _num(-math.inf, False),
    "train_loss_count": NONNEG,
    "last_loss": lambda v: None if number(v) is not None
    else "a number (NaN before the first step)",
    "best_val": lambda v: None if not_nan(v)
    else "a number or Infinity (before the first evaluation)",
}
OPTIONAL_PROGRESS_RULES = {  # added later: runs saved before have none
    "grad_norm_sum": _num(0, False), "clipped_count": NONNEG,
    "log_loss_sum": _num(-math.inf, False), "log_norm_sum": _num(0, False), "log_count": NONNEG,
}


def check_fields(d: Any, rules: Mapping[str, Rule], where: str,
                 error: type[CheckpointError], *, required: bool) -> None:
    """Each of ``rules``' fields of the JSON object ``d`` passes its rule (``required``: and
    is present); else ``error`` naming ``where``, the field, what was expected and found."""
    if not isinstance(d, dict):
        raise error(f"{where}: expected a JSON object, got {type(d).__name__}: {ADVICE}")
    for name, rule in rules.items():
        if name not in d:
            if required:
                raise error(f"{where}.{name} is missing: {ADVICE}")
            continue
        expected = rule(d[name])
        if expected is not None:
            raise error(f"{where}.{name}: expected {expected}, got {show(d[name])}: {ADVICE}")


def show(v: Any) -> str:
    """``repr(v)``, cut to 60 characters for a one-line message."""
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def one_line(e: BaseException) -> str:
    """An exception's message on one line, at most 200 characters (its class if empty)."""
    return " ".join(str(e).split())[:200] or type(e).__name__


def check_config(d: Any, where: str, error: type[CheckpointError] = CheckpointError
                 ) -> TrainConfig:
    """The :class:`TrainConfig` of a JSON dict, every present field checked (``where`` names
    the file and field in the message); a missing field takes its default."""
    check_fields(d, CONFIG_RULES, where, error, required=False)
    cfg = TrainConfig.from_json(d)
    if cfg.tie_weights and cfg.embed != cfg.hidden:
        raise error(f"{where}: tie_weights needs embed == hidden, got {cfg.embed} and "
                    f"{cfg.hidden}: {ADVICE}")
    return cfg
