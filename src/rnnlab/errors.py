"""Every error a user can fix, under one base class.

::

    RnnlabError                         a problem the user can fix; `rnnlab` prints it, exits 2
    ├── UsageError                      bad flags or flag combinations
    ├── DataError (ValueError)          a data file or data option
    ├── CheckpointError (ValueError)    a checkpoint that cannot be loaded
    │   └── RunFolderError (also DataError)   a run folder: missing, taken, or out of date
    └── TrainingDiverged (RuntimeError) the loss or gradient norm became NaN or exploded

Each message is one line: what is wrong, then what to do. The command line catches
:class:`RnnlabError` alone, so a new error class only has to derive from it (or from one
of its subclasses) to be reported that way. Some are also importable from where they
were defined before this module existed (``rnnlab.cli``, ``rnnlab.data``,
``rnnlab.training.checkpoint``).

>>> issubclass(DataError, RnnlabError) and issubclass(DataError, ValueError)
True
>>> issubclass(RunFolderError, DataError) and issubclass(RunFolderError, CheckpointError)
True
"""

from __future__ import annotations


class RnnlabError(Exception):
    """A problem the user can fix; its message is one line, ending with what to do.

    ``every_rank``: raised alike by every rank of a data-parallel run (a check of what they
    all agree on, such as a loss after the all-reduce), so they all exit without an abort
    and rank 0 alone prints it (:mod:`rnnlab.training.ranks`).
    """

    every_rank: bool = False


class UsageError(RnnlabError):
    """A problem with the command line's flags; printed as one line, exit status 2."""


class DataError(RnnlabError, ValueError):
    """A problem with the user's data or data options.

    The message is a single line: what is wrong, a colon, then what to do about it.
    """


class CheckpointError(RnnlabError, ValueError):
    """A checkpoint that cannot be loaded; the message is one line, with what to do."""


class RunFolderError(CheckpointError, DataError):
    """A run folder that cannot be used: missing, already taken, or its data changed.

    Before this class, run-folder problems raised :class:`DataError` or
    :class:`CheckpointError` case by case; it derives from both, so code that caught
    either still catches each of them.
    """


class TrainingDiverged(RnnlabError, RuntimeError):
    """The loss or the gradient norm became NaN or infinite, or a loss exploded (see
    :func:`rnnlab.training.loop.divergence_limit`)."""


class RanksDisagree(RnnlabError, RuntimeError):
    """The ranks of a data-parallel run hold different weights (a weight checksum)."""


__all__ = ["CheckpointError", "DataError", "RanksDisagree", "RnnlabError", "RunFolderError",
           "TrainingDiverged", "UsageError"]
