"""Models assembled from the layers in :mod:`rnnlab.nn`."""

from rnnlab.models.conditioned import ConditionedGenerator as ConditionedGenerator
from rnnlab.models.language_model import LanguageModel
from rnnlab.models.seq2seq import Seq2Seq as Seq2Seq

__all__ = ["LanguageModel"]
