"""The ``rnnlab`` command line (also ``python -m rnnlab``).

Errors a user can fix (bad flags, bad files, bad checkpoints) print one line to stderr and
exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rnnlab import __version__


class UsageError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from rnnlab.gradcheck_suite import cases

    all_cases = cases()
    chosen = [n for n in all_cases if not args.only or args.only.lower() in n.lower()]
    if not chosen:
        raise UsageError(f"no gradient-check case matches {args.only!r}; run without --only")
    width = max(len(n) for n in chosen)
    print(f"{'case':<{width}}  {'max rel. error':>14}  {'worst array':<16}  ok")
    failed = 0
    for name in chosen:
        errors = all_cases[name]()
        worst = max(errors, key=errors.__getitem__)
        ok = errors[worst] <= args.tol
        failed += not ok
        print(f"{name:<{width}}  {errors[worst]:>14.2e}  {worst:<16}  {'yes' if ok else 'NO'}")
    print(f"{len(chosen) - failed} of {len(chosen)} cases within {args.tol:g}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnnlab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("gradcheck", help="check every layer's backward pass against "
                       "central differences in float64")
    p.add_argument("--only", default="", help="run only the cases whose name contains this")
    p.add_argument("--tol", type=float, default=1e-6, help="largest relative error accepted")
    p.set_defaults(func=cmd_gradcheck)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as e:
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
