"""Models assembled from the layers in :mod:`rnnlab.nn`."""

from rnnlab.models.language_model import LanguageModel

__all__ = ["LanguageModel"]
