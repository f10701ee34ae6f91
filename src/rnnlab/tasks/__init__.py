"""The tasks: what a run reads, its batches, loss, evaluation and prediction, each one an
implementation of the task contract (:mod:`rnnlab.training.task`) that the one training
loop runs.

::

    lm          a text stream -> LanguageModel   loss, perplexity, bits/char; sample
    classify    label<TAB>text  -> SequenceClassifier   accuracy, macro-F1, confusion matrix
    tag         CoNLL            -> SequenceTagger       token accuracy, entity P/R/F1 (BIO)
    seq2seq     source<TAB>target -> Seq2Seq             exact match, token accuracy
    sequence    what classify, tag and seq2seq share: padded length-bucketed batches
    base        encoded examples, the summed loss, prediction input lines
    lm_data     a language model's text to ids;  order  a saved epoch order, checked
    flags       which train flag applies to which task (the README's table)

:data:`TASK_TYPES` maps each ``--task`` value to its type.
"""

from rnnlab.tasks.classify import ClassifyTask
from rnnlab.tasks.lm import LanguageModelTask
from rnnlab.tasks.seq2seq import Seq2SeqTask
from rnnlab.tasks.tag import TagTask
from rnnlab.training.task import Task

TASK_TYPES: dict[str, type[Task]] = {"lm": LanguageModelTask, "classify": ClassifyTask,
                                     "tag": TagTask, "seq2seq": Seq2SeqTask}

__all__ = ["TASK_TYPES", "ClassifyTask", "LanguageModelTask", "Seq2SeqTask", "TagTask", "Task"]
