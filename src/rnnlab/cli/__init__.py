"""The ``rnnlab`` command line (also ``python -m rnnlab``): one module per verb.

::

    parser      the verbs, their flags and checks (train's in groups)
    train       start or --resume a run of any task, on the one training loop
    sample      text from a language model        eval       loss and metrics on a file
    predict     a task's prediction per line      inspect    gradients, gates, activations
    report      RUN/report.html                   gradcheck  every layer's backward pass
    export      a trained run's model as ONNX (rnnlab.onnx)
    load        a trained run's checked checkpoint, for sample, eval, predict and inspect

Errors a user can fix (bad flags, bad files, bad checkpoints: every
:class:`rnnlab.errors.RnnlabError`) print one line to stderr and exit with status 2, never a
traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from rnnlab.cli.parser import build_parser
from rnnlab.device import DeviceError, using
from rnnlab.errors import RnnlabError, UsageError

__all__ = ["UsageError", "build_parser", "main"]  # UsageError: importable here as before


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with using(getattr(args, "device", None) or "cpu"):  # cuda:N: its arrays on GPU N
            return int(args.func(args))
    except (RnnlabError, DeviceError) as e:  # DeviceError: a device the API was given
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
