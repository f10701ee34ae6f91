"""The ``rnnlab`` command line (also ``python -m rnnlab``).

Errors a user can fix (bad flags, bad files, bad checkpoints: every
:class:`rnnlab.errors.RnnlabError`) print one line to stderr and exit with status 2, never a
traceback. This module only parses; what each command does is in :mod:`rnnlab.commands`.
The choices of ``--cell``, ``--optimizer``, ``--schedule`` and ``--level`` are the code's own
registries, and each ``train`` flag sets the :class:`rnnlab.config.TrainConfig` field of the
same name.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from rnnlab import __version__, commands
from rnnlab.data import LEVELS
from rnnlab.errors import RnnlabError, UsageError
from rnnlab.models.language_model import CELLS
from rnnlab.optim import OPTIMIZERS
from rnnlab.schedule import SCHEDULES

__all__ = ["UsageError", "build_parser", "main"]  # UsageError: importable here as before


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + traceback
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _check(kind: type, low: float, strict: bool, what: str) -> Callable[[str], Any]:
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


POS_INT = _check(int, 0, True, "a positive integer")
NONNEG_INT = _check(int, 0, False, "a non-negative integer")
POS_FLOAT = _check(float, 0.0, True, "a positive number")
NONNEG_FLOAT = _check(float, 0.0, False, "a non-negative number")


def _probability(text: str) -> float:
    value = NONNEG_FLOAT(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return float(value)


def _top_p(text: str) -> float:
    value = POS_FLOAT(text)
    if value > 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return float(value)


def _split(text: str) -> tuple[float, ...]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) < 2 or any(not 0 < p < 1 for p in parts) or sum(parts) > 1 + 1e-9:
        raise argparse.ArgumentTypeError(
            f"expected fractions like 0.9,0.05,0.05 (each in (0, 1), sum <= 1), got {text!r}")
    return parts


def _add_data_flags(a: Callable[..., Any]) -> None:
    a("--data", help="UTF-8 training text (default: bundled tiny-shakespeare)")
    a("--val-data", help="validation text (default: the tail of --data, see --split)")
    a("--split", type=_split, help="train,val[,test] fractions of a single file (0.9,0.05,0.05)")
    a("--level", choices=LEVELS)
    a("--max-vocab", type=POS_INT, help="word level: keep the most frequent, rest -> <unk>")
    a("--min-freq", type=POS_INT, help="word level: rarer words -> <unk>")


def _add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train a language model (no arguments: a character "
                       "LSTM on the bundled tiny-shakespeare, about 5 minutes)")
    _add_data_flags(p.add_argument)
    a = p.add_argument
    a("--cell", choices=tuple(CELLS))
    a("--layers", type=POS_INT, help="num_layers: stacked recurrent layers")
    a("--hidden", type=POS_INT, help="hidden_size: units per layer")
    a("--embed", type=POS_INT, help="embed_size: embedding width")
    a("--dropout", type=_probability)
    a("--tie-weights", action="store_true", default=None)
    a("--init-range", type=POS_FLOAT, help="init every weight U(-r, r) (Zaremba: 0.1)")
    a("--batch-size", type=POS_INT)
    a("--bptt", type=POS_INT, help="steps per truncated-BPTT window")
    a("--epochs", type=POS_INT)
    a("--max-steps", type=POS_INT)
    a("--time-budget", type=POS_FLOAT, help="seconds of training")
    a("--optimizer", choices=tuple(OPTIMIZERS))
    a("--lr", type=POS_FLOAT)
    a("--schedule", choices=SCHEDULES)
    a("--lr-decay", type=POS_FLOAT)
    a("--decay-after", type=NONNEG_INT, help="zaremba: epochs at constant lr")
    a("--clip", type=NONNEG_FLOAT, help="max global gradient L2 norm (0: off)")
    a("--diverge-factor", type=NONNEG_FLOAT, metavar="F",
      help="stop when a training or validation loss exceeds F x ln(vocabulary size), "
      "uniform guessing's loss (default 100; 0: only NaN stops)")
    a("--eval-every", type=NONNEG_INT, help="steps between evaluations (0: epoch ends)")
    a("--eval-batch-size", type=POS_INT, help="parallel streams when validating (32)")
    a("--seed", type=NONNEG_INT)
    a("--dtype", choices=("float32", "float64"))
    a("--threads", type=POS_INT, help="BLAS threads")
    a("--out", help="run folder (default runs/shakespeare)")
    a("--resume", metavar="RUN", help="continue the run in this folder from its last checkpoint")
    a("--force", action="store_true", help="start anew in an existing run folder")
    a("--no-progress", action="store_true", help="no progress bar")
    a("--no-sample", action="store_true", help="don't print a sample at the end")
    p.set_defaults(func=commands.cmd_train)


def _add_sample_eval(sub: Any) -> None:
    p = sub.add_parser("sample", help="generate text from a trained run")
    a = p.add_argument
    a("--checkpoint", default="runs/shakespeare", metavar="RUN", help="run folder")
    a("--prime", help="text to start from")
    a("--length", type=NONNEG_INT, default=500, help="tokens to generate")
    a("--temperature", type=POS_FLOAT, default=1.0)
    a("--top-k", type=POS_INT)
    a("--top-p", type=_top_p)
    a("--greedy", action="store_true")
    a("--skip", action="append", default=[], metavar="TOKEN", help="never emit TOKEN")
    a("--stop", metavar="TOKEN", help="stop when TOKEN is drawn")
    a("--seed", type=NONNEG_INT, default=0)
    p.set_defaults(func=commands.cmd_sample)
    p = sub.add_parser("eval", help="loss, perplexity and bits per character on a file")
    p.add_argument("--checkpoint", default="runs/shakespeare", metavar="RUN")
    p.add_argument("--data", required=True, help="UTF-8 text to evaluate on")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=commands.cmd_eval)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rnnlab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train(sub)
    _add_sample_eval(sub)
    p = sub.add_parser("gradcheck", help="check every layer's backward pass against "
                       "central differences in float64")
    p.add_argument("--only", default="", help="run only the cases whose name contains this")
    p.add_argument("--tol", type=float, default=1e-6, help="largest relative error accepted")
    p.set_defaults(func=commands.cmd_gradcheck)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RnnlabError as e:
        print(f"rnnlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. piped into head: not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
