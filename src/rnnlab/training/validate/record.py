"""A run folder's record, config.json: its checked config and its data files' hashes."""

from __future__ import annotations

import json
from pathlib import Path

from rnnlab.errors import RunFolderError
from rnnlab.training.config import TrainConfig
from rnnlab.training.validate.rules import check_config, one_line, show


def read_run_record(directory: Path) -> tuple[TrainConfig, dict[str, str]]:
    """config.json of a run folder: its checked :class:`TrainConfig` and data file hashes."""
    path = directory / "config.json"
    if not path.is_file():
        raise RunFolderError(f"{directory} is not a run folder (no config.json): "
                             "check the path, or start a run with rnnlab train --out")
    fix = "restore it from a backup, or start a new run with --out"
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise RunFolderError(f"{path} is not UTF-8 text (byte offset {e.start}): {fix}") from None
    except json.JSONDecodeError as e:
        raise RunFolderError(f"{path} is not valid JSON ({e.msg} at line {e.lineno} column "
                             f"{e.colno}): {fix}") from None
    except (ValueError, OSError, RecursionError) as e:  # e.g. an integer of 5000 digits
        raise RunFolderError(f"{path} cannot be read ({one_line(e)}): {fix}") from None
    if not isinstance(record, dict) or "config" not in record:
        raise RunFolderError(f"{path}: expected a JSON object with a \"config\" field: {fix}")
    config = check_config(record["config"], f"{path} field config", RunFolderError)
    hashes = record.get("data_sha256")
    if not isinstance(hashes, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in hashes.items()):
        raise RunFolderError(f"{path} field data_sha256: expected an object mapping each data "
                             f"file to its sha256, got {show(hashes)}: {fix}")
    return config, hashes
