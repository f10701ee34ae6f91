"""The parser of the ``rnnlab`` command line: every verb, its flags and their checks.

Each ``rnnlab train`` flag sets the :class:`rnnlab.training.config.TrainConfig` field of the
same name, and ``rnnlab train --help`` lists them in groups (data, model, task-specific,
optimisation, evaluation and output, run control), as the README's flag table does. The
choices of ``--cell``, ``--optimizer``, ``--schedule`` and ``--level`` are the code's own
registries.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from rnnlab import __version__
from rnnlab.cli.evaluate import cmd_eval
from rnnlab.cli.export import cmd_export
from rnnlab.cli.flag_types import (
    DEVICE_HELP,
    NONNEG_FLOAT,
    NONNEG_INT,
    POS_FLOAT,
    POS_INT,
    device,
    finite,
    probability,
    sample_length,
    split,
    top_p,
)
from rnnlab.cli.gradcheck import cmd_gradcheck
from rnnlab.cli.inspect import cmd_activations, cmd_gates, cmd_gradients
from rnnlab.cli.predict import cmd_predict
from rnnlab.cli.report import cmd_report
from rnnlab.cli.sample import cmd_sample
from rnnlab.cli.train import cmd_train
from rnnlab.data import LEVELS
from rnnlab.models._cells import CELLS
from rnnlab.models.classifier import POOLINGS
from rnnlab.optim import OPTIMIZERS
from rnnlab.optim.schedule import SCHEDULES
from rnnlab.tasks.flags import ATTENTIONS, TASKS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + traceback
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _fraction(text: str) -> float:
    value = probability(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def _add_data_flags(a: Callable[..., Any]) -> None:
    a("--task", choices=TASKS, help="lm (default): a language model; classify: "
      "label<TAB>text lines; tag: CoNLL tokens and tags; seq2seq: source<TAB>target lines")
    a("--data", help="UTF-8 training text (default: bundled tiny-shakespeare)")
    a("--val-data", help="validation text (default: the tail of --data, see --split)")
    a("--split", type=split, help="train,val[,test] fractions of a single file (0.9,0.05,0.05)")
    a("--val-fraction", type=_fraction, help="tasks without --val-data: the seeded shuffled "
      "share of --data held out for validation (0.1)")
    a("--level", choices=LEVELS)
    a("--max-vocab", type=POS_INT, help="word level: keep the most frequent, rest -> <unk>")
    a("--min-freq", type=POS_INT, help="word level: rarer words -> <unk>")


def _add_model_flags(a: Callable[..., Any]) -> None:
    a("--cell", choices=tuple(CELLS))
    a("--nonlinearity", choices=("tanh", "relu"), help="--cell rnn: h_t = tanh(a_t) or relu(a_t)")
    a("--forget-bias", type=finite, metavar="B",
      help="--cell lstm: initial forget-gate bias (Jozefowicz et al. 2015: 1)")
    a("--peephole", action="store_true", default=None,
      help="--cell lstm: peephole connections from the cell to the gates (Gers et al. 2002)")
    a("--layers", type=POS_INT, help="num_layers: stacked recurrent layers")
    a("--hidden", type=POS_INT, help="hidden_size: units per layer")
    a("--embed", type=POS_INT, help="embed_size: embedding width")
    a("--dropout", type=probability)
    a("--tie-weights", action="store_true", default=None)
    a("--init-range", type=POS_FLOAT, help="init every weight U(-r, r) (Zaremba: 0.1)")
    a("--dtype", choices=("float32", "float64"))


def _add_task_flags(a: Callable[..., Any]) -> None:
    a("--bidirectional", action="store_true", default=None,
      help="classify, tag, seq2seq encoder: read both ways")
    a("--pooling", choices=POOLINGS, help="classify: the sequence's vector (last)")
    a("--attention", choices=ATTENTIONS, help="seq2seq: attention over the source (none)")
    a("--reverse-source", action="store_true", default=None, help="seq2seq: read it reversed")
    a("--peeky", action="store_true", default=None,
      help="seq2seq: the source's summary at every decoder step")


def _add_optimisation_flags(a: Callable[..., Any]) -> None:
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
    a("--seed", type=NONNEG_INT)


def _add_output_flags(a: Callable[..., Any]) -> None:
    a("--eval-every", type=NONNEG_INT, help="steps between evaluations (0: epoch ends)")
    a("--eval-batch-size", type=POS_INT, help="parallel streams when validating (32)")
    a("--log-every", type=NONNEG_INT, help="steps between rows of RUN/steps.jsonl, the "
      "training-loss curve (10; 0: none)")
    a("--out", help="run folder (default runs/shakespeare)")
    a("--sample-length", type=sample_length,
      help="tokens sampled at each evaluation into metrics.jsonl (200; 0: none)")
    a("--no-progress", action="store_true", help="no progress bar")
    a("--no-sample", action="store_true", help="don't print a sample at the end")


def _add_control_flags(a: Callable[..., Any]) -> None:
    a("--resume", metavar="RUN", help="continue the run in this folder from its last checkpoint")
    a("--force", action="store_true", help="start anew in an existing run folder")
    a("--threads", type=POS_INT, help="BLAS threads (may change on --resume)")
    a("--check-weights-every", type=NONNEG_INT, help="under MPI: steps between checks that "
      "every rank holds the same weights (100; 0: none)")
    a("--device", type=device, help=DEVICE_HELP + " (may change on --resume)")


TRAIN_GROUPS = (("data", _add_data_flags), ("model", _add_model_flags),
                ("task-specific (classify, tag, seq2seq)", _add_task_flags),
                ("optimisation", _add_optimisation_flags),
                ("evaluation and output", _add_output_flags), ("run control", _add_control_flags))


def _add_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train a language model (no arguments: a character "
                       "LSTM on the bundled tiny-shakespeare, about 5 minutes) or, with "
                       "--task, a classifier, tagger or seq2seq model on your files")
    for title, add in TRAIN_GROUPS:
        add(p.add_argument_group(title).add_argument)
    p.set_defaults(func=cmd_train)


def _add_sample_eval(sub: Any) -> None:
    p = sub.add_parser("sample", help="generate text from a trained run")
    a = p.add_argument
    a("--checkpoint", default="runs/shakespeare", metavar="RUN", help="run folder")
    a("--prime", help="text to start from")
    a("--length", type=NONNEG_INT, default=500, help="tokens to generate")
    a("--temperature", type=POS_FLOAT, default=1.0)
    a("--top-k", type=POS_INT)
    a("--top-p", type=top_p)
    a("--greedy", action="store_true")
    a("--skip", action="append", default=[], metavar="TOKEN", help="never emit TOKEN")
    a("--stop", metavar="TOKEN", help="stop when TOKEN is drawn")
    a("--seed", type=NONNEG_INT, default=0)
    a("--device", type=device, default="cpu", help=DEVICE_HELP)
    p.set_defaults(func=cmd_sample)
    p = sub.add_parser("eval", help="loss, perplexity and bits per character on a file; "
                       "a task run's metrics")
    p.add_argument("--checkpoint", default="runs/shakespeare", metavar="RUN")
    p.add_argument("--data", required=True, help="UTF-8 text (or the task's file) to evaluate on")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--max-length", type=POS_INT, help="seq2seq: most tokens decoded")
    p.add_argument("--device", type=device, default="cpu", help=DEVICE_HELP)
    p.set_defaults(func=cmd_eval)
    p = sub.add_parser("predict", help="a task run's prediction for each input line")
    p.add_argument("--checkpoint", required=True, metavar="RUN", help="run folder")
    p.add_argument("--input", metavar="FILE", help="one input per line (default: standard "
                   "input): classify a text, tag space-separated tokens, seq2seq a source")
    p.add_argument("--beam", type=POS_INT, metavar="K", help="seq2seq: beam search, K wide")
    p.add_argument("--max-length", type=POS_INT, help="seq2seq: most tokens decoded")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--device", type=device, default="cpu", help=DEVICE_HELP)
    p.set_defaults(func=cmd_predict)


def _add_inspect(sub: Any) -> None:
    p = sub.add_parser("inspect", help="see inside a model: gradient flow, gates, activations")
    what = p.add_subparsers(dest="what", required=True, parser_class=_Parser)
    g = what.add_parser("gradients", help="||dL/dh_t|| by distance back in time, log-scale PNG")
    g.add_argument("--checkpoint", metavar="RUN", help="a run folder (default: freshly "
                   "initialised models of each cell on the bundled corpus)")
    g.add_argument("--cells", help="without --checkpoint: rnn (tanh and relu), rnn-tanh, "
                   "rnn-relu, lstm, gru, comma-separated (default rnn,lstm,gru)")
    g.add_argument("--steps", type=POS_INT, default=50, help="window length T (50)")
    g.add_argument("--windows", type=POS_INT, default=16, help="text windows averaged (16)")
    g.add_argument("--text", help="UTF-8 text to cut windows from (default: the run's "
                   "training text, or the bundled corpus)")
    g.add_argument("--hidden", type=POS_INT, default=128, help="fresh models' hidden size")
    g.add_argument("--forget-bias", type=finite, metavar="B", help="fresh LSTM's forget bias")
    g.add_argument("--seed", type=NONNEG_INT, default=0, help="fresh models' initialisation")
    g.add_argument("--layer", type=NONNEG_INT, help="only this layer of the checkpoint")
    g.add_argument("--out", required=True, help="the PNG to write")
    g.add_argument("--json", action="store_true", help="print the numbers as one JSON object")
    g.set_defaults(func=cmd_gradients)
    for name, func, about in (("gates", cmd_gates, "gate saturation and histograms "
                               "of an LSTM or GRU run over a text, PNG"),
                              ("activations", cmd_activations, "an HTML page of the "
                               "text coloured by each cell, with the model's predictions")):
        q = what.add_parser(name, help=about)
        q.add_argument("--checkpoint", required=True, metavar="RUN", help="a run folder")
        q.add_argument("--text", required=True, help="UTF-8 text to read")
        q.add_argument("--layer", type=NONNEG_INT, help="only this layer")
        q.add_argument("--max-tokens", type=POS_INT, default=20_000, help="read at most "
                       "this many tokens (20000)")
        q.add_argument("--out", required=True, help="the file to write")
        if name == "gates":
            q.add_argument("--json", action="store_true", help="print the statistics as JSON")
        else:
            q.add_argument("--units", help="only these cells, e.g. 0-15 or 3,7")
        q.set_defaults(func=func)
    r = sub.add_parser("report", help="write RUN/report.html: curves, gradients, samples, "
                       "gradient flow, configuration (self-contained)")
    r.add_argument("run", metavar="RUN", help="a run folder")
    r.add_argument("--steps", type=POS_INT, default=50, help="gradient-flow window length")
    r.add_argument("--windows", type=POS_INT, default=8, help="gradient-flow windows")
    r.set_defaults(func=cmd_report)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rnnlab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train(sub)
    _add_sample_eval(sub)
    _add_inspect(sub)
    p = sub.add_parser("gradcheck", help="check every layer's backward pass against "
                       "central differences in float64")
    p.add_argument("--only", default="", help="run only the cases whose name contains this")
    p.add_argument("--tol", type=float, default=1e-6, help="largest relative error accepted")
    p.set_defaults(func=cmd_gradcheck)
    p = sub.add_parser("export", help="a trained run's model as ONNX, for onnxruntime "
                       "(needs the onnx extra)")
    p.add_argument("--checkpoint", required=True, metavar="RUN", help="run folder")
    p.add_argument("--out", required=True, help="the .onnx file to write (seq2seq: "
                   "OUT's name with .encoder and .decoder before the suffix)")
    p.set_defaults(func=cmd_export)
    return parser


