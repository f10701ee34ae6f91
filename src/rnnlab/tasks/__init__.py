"""Sequence tasks from a user's own files: ``rnnlab train --task classify | tag | seq2seq``,
``rnnlab predict`` and ``rnnlab eval`` (``--task lm``, the default, is :mod:`rnnlab.commands`).

::

    flags       which train flag applies to which task (the README's table)
    base        encoded examples, the summed loss, prediction input lines
    classify    label<TAB>text  -> SequenceClassifier   accuracy, macro-F1, confusion matrix
    tag         CoNLL            -> SequenceTagger       token accuracy, entity P/R/F1 (BIO)
    seq2seq     source<TAB>target -> Seq2Seq             exact match, token accuracy
    checks      a task checkpoint and run folder checked before use (train --resume,
                predict, eval): one-line errors naming the file and field
    run         TaskRun: the run folder, checkpoints with the task and its vocabularies
    train       the training loop over padded, length-bucketed batches (exact resume)
    commands    cmd_train / cmd_predict / cmd_eval (the language model's are delegated)
"""
