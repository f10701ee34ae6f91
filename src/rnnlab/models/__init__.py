"""Models assembled from the layers in :mod:`rnnlab.nn`."""

from rnnlab.models.classifier import SequenceClassifier
from rnnlab.models.conditioned import ConditionedGenerator
from rnnlab.models.language_model import LanguageModel
from rnnlab.models.seq2seq import Seq2Seq
from rnnlab.models.tagger import SequenceTagger

__all__ = ["ConditionedGenerator", "LanguageModel", "Seq2Seq", "SequenceClassifier",
           "SequenceTagger"]
