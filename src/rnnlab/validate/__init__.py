"""The one place where a run folder's files are checked before anything uses them.

Every command that reads a run folder comes through here, so ``train --resume``,
``sample`` and ``eval`` accept and refuse the same files::

    check_config(d, where)           config.json's / a checkpoint's "config": every TrainConfig
                                     field's type and range (a missing field takes its default)
    check_size(kwargs, V, B, T)      parameters + optimizer buffers + one step's activations
                                     fit in this machine's memory, before anything is allocated
    read_checkpoint(dir, name)       checkpoint.load (format, integrity hash), then its "model",
                                     "vocab" and "config" fields, the model built from them and
                                     every model/ array: names, shapes, dtypes, finite values
    read_run_record(dir)             config.json: JSON, its config (check_config), data hashes
    check_training_state(ckpt, ...)  what only training uses: optimizer state matching the
                                     parameters, RNG, progress (data position in range),
                                     schedule, the carried state; before anything is changed
                                     (check_resume_state: the part task runs share, see
                                     rnnlab.tasks.checks)

One module per job, each importing only those above it::

    rules              the field rules (CONFIG_RULES, MODEL_RULES, PROGRESS_RULES),
                       check_fields, check_config, the message helpers
    sizes              parameter_count, memory_bytes, check_size
    checkpoint_files   CheckpointFiles, Checkpoint, read_checkpoint, check_arrays
    state              check_training_state, check_resume_state, check_rng
    record             read_run_record (config.json)

Each problem is a :class:`CheckpointError` (or :class:`RunFolderError` for ``config.json``)
naming the file, the field or array, what was expected and what was found. Everything rnnlab
writes is accepted (e.g. a schedule's best loss is infinite before the first evaluation).
Parameters must be finite: a checkpoint holding NaN or infinity is refused, so a command
that exits 0 never reports a NaN model's loss.
"""

from rnnlab.validate.checkpoint_files import (
    PARTS,
    Checkpoint,
    CheckpointFiles,
    check_arrays,
    read_checkpoint,
)
from rnnlab.validate.record import read_run_record
from rnnlab.validate.rules import (
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
from rnnlab.validate.sizes import check_size, memory_bytes, parameter_count
from rnnlab.validate.state import check_resume_state, check_rng, check_training_state

__all__ = ["ADVICE", "CONFIG_RULES", "DTYPES", "MODEL_RULES", "NONNEG", "OPTIONAL_MODEL_RULES",
           "OPTIONAL_PROGRESS_RULES", "PARTS", "POS", "PROGRESS_RULES", "Checkpoint",
           "CheckpointFiles", "check_arrays", "check_config", "check_resume_state", "check_rng",
           "check_size", "check_training_state", "memory_bytes", "not_nan", "number",
           "parameter_count", "read_checkpoint", "read_run_record", "show"]
