"""The types of the command line's values: each parses one flag's text or raises
``argparse.ArgumentTypeError`` with what was expected (argparse makes it one line)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from rnnlab.device import Device
from rnnlab.training.config import MAX_SAMPLE_LENGTH


def check(kind: type, low: float, strict: bool, what: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if (kind is float and not math.isfinite(value)) or value < low or (
                strict and value == low):  # math.isfinite(int) overflows past 1e308
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    return parse


def device(text: str) -> str:
    """``--device``: cpu, cuda or cuda:N (whether it can be used here is checked later)."""
    try:
        return str(Device.parse(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


DEVICE_HELP = "cpu (default), cuda or cuda:N: an NVIDIA GPU, through CuPy"
POS_INT = check(int, 0, True, "a positive integer")
NONNEG_INT = check(int, 0, False, "a non-negative integer")
POS_FLOAT = check(float, 0.0, True, "a positive number")
NONNEG_FLOAT = check(float, 0.0, False, "a non-negative number")


def sample_length(text: str) -> int:
    """``--sample-length``: 0 to MAX_SAMPLE_LENGTH tokens (each evaluation writes them)."""
    value = int(NONNEG_INT(text))
    if value > MAX_SAMPLE_LENGTH:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_SAMPLE_LENGTH} tokens, got "
                                         f"{text!r}")
    return value


def finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def probability(text: str) -> float:
    value = NONNEG_FLOAT(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return float(value)


def top_p(text: str) -> float:
    value = POS_FLOAT(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return float(value)


def split(text: str) -> tuple[float, ...]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) < 2 or any(not 0 < p < 1 for p in parts) or sum(parts) > 1 + 1e-9:
        raise argparse.ArgumentTypeError(
            f"expected fractions like 0.9,0.05,0.05 (each in (0, 1), sum <= 1), got {text!r}")
    return parts
