"""Layers with hand-written forward and backward passes."""

from rnnlab.nn.attention import Attention as Attention
from rnnlab.nn.dropout import Dropout
from rnnlab.nn.embedding import Embedding
from rnnlab.nn.gru import GRU
from rnnlab.nn.linear import Linear
from rnnlab.nn.loss import SoftmaxCrossEntropy
from rnnlab.nn.lstm import LSTM
from rnnlab.nn.module import Module, Parameter
from rnnlab.nn.recurrent import Recurrent
from rnnlab.nn.rnn import RNN

__all__ = ["GRU", "LSTM", "RNN", "Dropout", "Embedding", "Linear", "Module", "Parameter",
           "Recurrent", "SoftmaxCrossEntropy"]
