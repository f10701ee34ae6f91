"""The module boundaries: import-linter's contracts (pyproject.toml) hold, and catch what
they claim to, imports inside functions and under TYPE_CHECKING included; every user-fixable
error derives from RnnlabError and ends the CLI with one line and exit status 2; the flags,
TrainConfig and the model share one vocabulary."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnlab import cli, errors
from rnnlab.cli import parser as cli_parser
from rnnlab.data import LEVELS, DataError
from rnnlab.errors import TrainingDiverged
from rnnlab.models import LanguageModel
from rnnlab.models._cells import CELLS
from rnnlab.optim import OPTIMIZERS
from rnnlab.optim.schedule import SCHEDULES
from rnnlab.training.checkpoint import CheckpointError
from rnnlab.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(errors.__file__).resolve().parents[1]  # the rnnlab under test


def lint_imports(src: Path) -> subprocess.CompletedProcess:
    pytest.importorskip("importlinter")  # in the test and dev extras
    env = {**os.environ, "PYTHONPATH": str(src)}
    code = "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run([sys.executable, "-c", code, "--no-cache", str(ROOT / "pyproject.toml")],
                          capture_output=True, text=True, env=env, timeout=300)


def test_the_import_contracts_hold():
    r = lint_imports(SRC)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "6 kept, 0 broken" in r.stdout


VIOLATIONS = [  # (file, code appended to it, the contract that must break, the import named)
    ("nn/linear.py", "\n\ndef _late():\n    from rnnlab.training import train\n\n"
     "    return train\n", "nn/ knows nothing of data", "rnnlab.nn.linear -> rnnlab.training"),
    ("data/batching.py", "\n\nif TYPE_CHECKING:\n    from rnnlab.nn import Module\n",
     "data/ knows no network", "rnnlab.data.batching -> rnnlab.nn"),
    ("models/language_model.py", "\n\ndef _late():\n    from rnnlab.training import run\n\n"
     "    return run\n", "Models do not train themselves", "rnnlab.models.language_model"),
    ("training/run.py", "\n\ndef _late():\n    from rnnlab.training import loop\n\n"
     "    return loop\n", "No import cycles", ".run -> .loop (1 import)"),
    ("training/loop.py", "\n\ndef _late():\n    from rnnlab.tasks import lm\n\n    return lm\n",
     "The training loop knows no task", "rnnlab.training.loop -> rnnlab.tasks"),
]


@pytest.mark.parametrize(("path", "code", "contract", "named"), VIOLATIONS)
def test_the_contracts_catch_a_hidden_import(tmp_path, path, code, contract, named):
    shutil.copytree(SRC / "rnnlab", tmp_path / "rnnlab",
                    ignore=shutil.ignore_patterns("__pycache__", "corpora"))
    target = tmp_path / "rnnlab" / path
    text = target.read_text()
    if "TYPE_CHECKING" in code:
        code = "\nfrom typing import TYPE_CHECKING\n" + code
    target.write_text(text + code)
    r = lint_imports(tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    broken = r.stdout[r.stdout.index("Broken contracts"):]
    assert contract in broken and named in broken, broken


ERRORS = [errors.UsageError, DataError, CheckpointError, TrainingDiverged,
          errors.RunFolderError]


@pytest.mark.parametrize("cls", ERRORS)
def test_every_error_derives_from_rnnlab_error_and_keeps_its_old_bases(cls):
    assert issubclass(cls, errors.RnnlabError)
    old_bases = {DataError: ValueError, CheckpointError: ValueError,
                 TrainingDiverged: RuntimeError}
    assert issubclass(cls, old_bases.get(cls, Exception))
    assert cli.UsageError is errors.UsageError  # still importable from where it was


def test_a_run_folder_error_is_caught_as_either_old_class():
    assert issubclass(errors.RunFolderError, DataError)
    assert issubclass(errors.RunFolderError, CheckpointError)


@pytest.mark.parametrize("cls", ERRORS)
def test_the_cli_reports_each_error_in_one_line_with_status_2(cls, monkeypatch, capsys):
    def fail(args):
        raise cls("something is wrong: do this")

    monkeypatch.setattr(cli_parser, "cmd_gradcheck", fail)
    assert cli.main(["gradcheck"]) == 2
    err = capsys.readouterr().err
    assert err == "rnnlab gradcheck: error: something is wrong: do this\n"


def train_flags():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    return {a.dest: a for a in sub.choices["train"]._actions}


def test_every_train_flag_sets_the_config_field_of_its_name():
    flags = train_flags()
    assert set(TrainConfig.flags()) <= set(flags)
    assert set(flags) - set(TrainConfig.flags()) == {"help", "resume", "force", "no_progress",
                                                      "no_sample"}
    model = LanguageModel(7, **TrainConfig().model_kwargs(), rng=np.random.default_rng(0))
    assert model.config() == {"vocab_size": 7, **TrainConfig().model_kwargs(),
                              "dropout": TrainConfig().dropout}


@pytest.mark.parametrize(("flag", "registry"), [("cell", CELLS), ("optimizer", OPTIMIZERS),
                                                ("schedule", SCHEDULES), ("level", LEVELS)])
def test_the_cli_choices_are_the_code_registries(flag, registry):
    assert list(train_flags()[flag].choices) == list(registry)
