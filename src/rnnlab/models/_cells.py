"""The recurrent cells a model can be built of, by name, and the options only some take."""

from __future__ import annotations

from typing import Any

import numpy as np

from rnnlab.nn import GRU, LSTM, RNN
from rnnlab.nn.recurrent import Recurrent

CELLS: dict[str, type[Recurrent]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def cell_options(cell: str, *, nonlinearity: str = "tanh", peephole: bool = False
                 ) -> dict[str, Any]:
    """The keyword arguments of ``CELLS[cell]`` that only some cells take (after a check)."""
    if peephole and cell != "lstm":
        raise ValueError(f"peephole=True is for cell='lstm' only, not {cell!r}")
    if cell == "rnn":
        return {"nonlinearity": nonlinearity}
    return {"peephole": True} if peephole else {}


def check_cell_options(cell: str, nonlinearity: str, forget_bias: float | None,
                        peephole: bool) -> None:
    """nonlinearity belongs to the RNN, forget_bias and peephole to the LSTM (one line each,
    what to do)."""
    if not isinstance(peephole, (bool, np.bool_)):
        raise ValueError(f"peephole must be True or False, got {peephole!r}")
    cell_options(cell, peephole=peephole)
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    if nonlinearity != "tanh" and cell != "rnn":
        raise ValueError(f"nonlinearity={nonlinearity!r} is for cell='rnn' only, not {cell!r}")
    if forget_bias is not None and cell != "lstm":
        raise ValueError(f"forget_bias is for cell='lstm' only, not {cell!r}")
