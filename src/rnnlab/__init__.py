"""rnnlab: recurrent neural networks from scratch in NumPy, backpropagation through time by hand."""

from rnnlab.nn import (
    GRU,
    LSTM,
    RNN,
    Dropout,
    Embedding,
    Linear,
    Module,
    Parameter,
    SoftmaxCrossEntropy,
)

__version__ = "0.1.0"

__all__ = ["GRU", "LSTM", "RNN", "Dropout", "Embedding", "Linear", "Module", "Parameter",
           "SoftmaxCrossEntropy", "__version__"]
