"""``rnnlab export``: a trained run's model as an ONNX file (:mod:`rnnlab.onnx`).

The vocabulary (and a task's label names or target vocabulary) travel in the file's
``metadata_props`` as JSON: ``rnnlab.task``, ``rnnlab.vocab``, ``rnnlab.labels``, ...
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rnnlab.cli.load import load_run
from rnnlab.errors import UsageError


def task_metadata(task: Any) -> dict[str, str]:
    """``rnnlab.task`` and the task's vocabularies and labels, each as a JSON string."""
    fields = task.to_meta()
    fields = fields.get("vocabularies", fields)  # a sequence task's are nested once
    return {"rnnlab.task": task.name, **{f"rnnlab.{k}": json.dumps(v)
                                        for k, v in fields.items() if k != "task"}}


def cmd_export(args: argparse.Namespace) -> int:
    ckpt = load_run(args.checkpoint)
    try:
        from rnnlab.onnx import export
    except ImportError:  # pragma: no cover - the extra is installed where tests run
        raise UsageError("rnnlab export needs the onnx extra: pip install 'rnnlab[onnx]'"
                         ) from None
    try:
        written = export(ckpt.model, args.out, metadata=task_metadata(ckpt.task))
    except ImportError as e:
        raise UsageError(f"{e}") from None
    except OSError as e:
        raise UsageError(f"cannot write {args.out}: {e.strerror or e}: pass --out a path in a "
                         "writable folder") from None
    print(" ".join(str(p) for p in written))
    return 0
