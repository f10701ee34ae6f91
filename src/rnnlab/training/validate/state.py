"""What only training uses of a checkpoint, checked before ``train --resume`` changes anything::

    check_resume_state(ckpt, ...)    what every resume restores (the task's feed checks its
                                     own part: Feed.check): the model's configuration,
                                     meta.progress (data position in range), schedule, RNG,
                                     optimizer state matching the parameters
    check_rng(state, where)          a PCG64 generator's state
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rnnlab.errors import CheckpointError
from rnnlab.training.validate.checkpoint_files import CheckpointFiles, check_arrays
from rnnlab.training.validate.rules import (
    ADVICE,
    NONNEG,
    OPTIONAL_PROGRESS_RULES,
    PROGRESS_RULES,
    check_fields,
    not_nan,
    one_line,
    show,
)


def check_resume_state(ckpt: CheckpointFiles, saved: Any, model: Any, optimizer: Any,
                       n_batches: int, progress_rules: Mapping[str, Any] | None = None
                       ) -> None:
    """What every resume restores: ``saved`` (the checkpoint's model) configured as ``model``
    (the run's, from config.json); meta.progress (``PROGRESS_RULES`` and ``progress_rules``,
    its batch in [0, ``n_batches``)), schedule, rng and optimizer (``optimizer``'s)."""
    meta, where = ckpt.meta, f"checkpoint {ckpt.json_path} field meta"
    if saved.config() != model.config():
        raise CheckpointError(f"{where}.model is {saved.config()}, but config.json "
                              f"builds {model.config()}: {ADVICE}")
    for key in ("progress", "optimizer", "rng", "schedule"):
        if key not in meta:
            raise CheckpointError(f"{where}.{key} is missing: {ADVICE}")
    rules = {**PROGRESS_RULES, **(progress_rules or {})}
    check_fields(meta["progress"], rules, f"{where}.progress", CheckpointError, required=True)
    check_fields(meta["progress"], OPTIONAL_PROGRESS_RULES, f"{where}.progress",
                 CheckpointError, required=False)
    extra = sorted(set(meta["progress"]) - set(rules) - set(OPTIONAL_PROGRESS_RULES))
    if extra:
        raise CheckpointError(f"{where}.progress has unknown key {extra[0]!r}: {ADVICE}")
    if meta["progress"]["batch"] >= n_batches:
        raise CheckpointError(f"{where}.progress.batch: expected a data position in [0, "
                              f"{n_batches}), got {meta['progress']['batch']}: {ADVICE}")
    _check_schedule(meta["schedule"], f"{where}.schedule")
    check_rng(meta["rng"], f"{where}.rng")
    _check_optimizer(ckpt, optimizer, f"{where}.optimizer")


def _check_schedule(s: Any, where: str) -> None:
    if s is None:
        return
    if not isinstance(s, dict) or set(s) - {"best"}:
        raise CheckpointError(f"{where}: expected null or {{\"best\": number}}, got {show(s)}:"
                              f" {ADVICE}")
    best = s.get("best", math.inf)
    if not not_nan(best):
        raise CheckpointError(f"{where}.best: expected a number or Infinity, got "
                              f"{show(best)}: {ADVICE}")


def check_rng(state: Any, where: str) -> None:
    """``state`` is a PCG64 generator's state; else a CheckpointError naming ``where``."""
    try:  # the generator's own check, on a throwaway generator
        np.random.default_rng(0).bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError) as e:
        raise CheckpointError(f"{where}: expected the state of a PCG64 generator "
                              f"({one_line(e)}): {ADVICE}") from None


def _check_optimizer(ckpt: CheckpointFiles, optimizer: Any, where: str) -> None:
    meta = ckpt.meta["optimizer"]
    if not isinstance(meta, dict) or meta.get("optimizer") != type(optimizer).__name__:
        found = meta.get("optimizer") if isinstance(meta, dict) else meta
        raise CheckpointError(f"{where}.optimizer: expected {type(optimizer).__name__!r} "
                              f"(config.json's optimizer), got {show(found)}: {ADVICE}")
    hyper = meta.get("hyperparams")
    if not isinstance(hyper, dict) or not all(_hyper_ok(v) for v in hyper.values()):
        raise CheckpointError(f"{where}.hyperparams: expected an object of finite numbers and "
                              f"booleans, got {show(hyper)}: {ADVICE}")
    if NONNEG(meta.get("step")) is not None:
        raise CheckpointError(f"{where}.step: expected an integer >= 0, got "
                              f"{show(meta.get('step'))}: {ADVICE}")
    try:  # the constructor checks the hyperparameters and allocates the buffers they need
        fresh = type(optimizer)(optimizer.params, **hyper)
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"{where}.hyperparams: {one_line(e)}: {ADVICE}") from None
    check_arrays(ckpt, "optim/", ckpt.part("optim/"), fresh.state_dict()[0])


def _hyper_ok(v: Any) -> bool:
    if isinstance(v, list):
        return all(_hyper_ok(x) for x in v) and len(v) <= 8
    return isinstance(v, bool) or (not_nan(v) and math.isfinite(v))
