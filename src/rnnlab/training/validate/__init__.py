"""The one place where a run folder's files are checked before anything uses them.

Every command that reads a run folder comes through here, so ``train --resume``,
``sample`` and ``eval`` accept and refuse the same files::

    check_config(d, where)           config.json's / a checkpoint's "config": every TrainConfig
                                     field's type and range (a missing field takes its default)
    check_size(kwargs, V, B, T)      parameters + optimizer buffers + one step's activations
                                     fit in this machine's memory, before anything is allocated
    read_checkpoint(dir, name, tasks)  checkpoint.load (format, integrity hash), then its
                                     "task", "config" and the task's own fields, the model the
                                     task builds from them and every model/ array: names,
                                     shapes, dtypes, finite values
    read_run_record(dir)             config.json: JSON, its config (check_config), data hashes
    check_resume_state(ckpt, ...)    what only training uses: optimizer state matching the
                                     parameters, RNG, progress (data position in range),
                                     schedule; before anything is changed (the task's feed
                                     checks its own part: the carried state, the order)

One module per job, each importing only those above it::

    rules              the field rules (CONFIG_RULES, MODEL_RULES, PROGRESS_RULES),
                       check_fields, check_config, the message helpers
    sizes              parameter_count, memory_bytes, check_size
    checkpoint_files   CheckpointFiles, Checkpoint, read_checkpoint, check_arrays,
                       check_model_meta
    state              check_resume_state, check_rng
    record             read_run_record (config.json)

Each problem is a :class:`CheckpointError` (or :class:`RunFolderError` for ``config.json``)
naming the file, the field or array, what was expected and what was found. Everything rnnlab
writes is accepted (e.g. a schedule's best loss is infinite before the first evaluation).
Parameters must be finite: a checkpoint holding NaN or infinity is refused, so a command
that exits 0 never reports a NaN model's loss.
"""

from rnnlab.training.validate.checkpoint_files import (
    Checkpoint,
    CheckpointFiles,
    check_arrays,
    check_model_meta,
    read_checkpoint,
)
from rnnlab.training.validate.record import read_run_record
from rnnlab.training.validate.rules import (
    ADVICE,
    CONFIG_RULES,
    DTYPES,
    MODEL_RULES,
    NONNEG,
    OPTIONAL_MODEL_RULES,
    OPTIONAL_PROGRESS_RULES,
    POS,
    PROGRESS_RULES,
    check_config,
    not_nan,
    number,
    show,
)
from rnnlab.training.validate.sizes import check_size, memory_bytes, parameter_count
from rnnlab.training.validate.state import check_resume_state, check_rng

__all__ = ["ADVICE", "CONFIG_RULES", "DTYPES", "MODEL_RULES", "NONNEG", "OPTIONAL_MODEL_RULES",
           "OPTIONAL_PROGRESS_RULES", "POS", "PROGRESS_RULES", "Checkpoint", "CheckpointFiles",
           "check_arrays", "check_config", "check_model_meta", "check_resume_state", "check_rng",
           "check_size", "memory_bytes", "not_nan", "number", "parameter_count",
           "read_checkpoint", "read_run_record", "show"]
