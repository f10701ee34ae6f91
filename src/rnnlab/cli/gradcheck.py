"""``rnnlab gradcheck``: every layer's backward pass against central differences."""

from __future__ import annotations

import argparse

from rnnlab.errors import UsageError
from rnnlab.nn.gradcheck_suite import cases


def cmd_gradcheck(args: argparse.Namespace) -> int:
    all_cases = cases()
    chosen = [n for n in all_cases if not args.only or args.only.lower() in n.lower()]
    if not chosen:
        raise UsageError(f"no gradient-check case matches {args.only!r}; run without --only")
    width = max(len(n) for n in chosen)
    # the array column fits the longest parameter name, "weight_ih_l1_reverse" (20)
    print(f"{'case':<{width}}  {'max rel. error':>14}  {'worst array':<20}  ok")
    failed = 0
    for name in chosen:
        errors = all_cases[name]()
        worst = max(errors, key=errors.__getitem__)
        ok = errors[worst] <= args.tol
        failed += not ok
        print(f"{name:<{width}}  {errors[worst]:>14.2e}  {worst:<20}  {'yes' if ok else 'NO'}")
    print(f"{len(chosen) - failed} of {len(chosen)} cases within {args.tol:g}")
    return 1 if failed else 0
