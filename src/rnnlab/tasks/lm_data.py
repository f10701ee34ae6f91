"""A language model's text: its vocabulary, training and validation token ids.

::

    load_data(config, data)    vocabulary from the training text (or the checkpoint's),
                               ids of the training text, and of --val-data or the tail
                               of the training text (--split)
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rnnlab.data import Vocab, encode_file, read_bytes, read_text, split_ids
from rnnlab.errors import DataError
from rnnlab.training.config import TrainConfig


def load_data(config: TrainConfig, data: Path, vocab: Vocab | None = None
              ) -> tuple[Vocab, np.ndarray, np.ndarray]:
    """Vocabulary (from the training text unless given), training and validation ids."""
    with naming(data):  # e.g. a byte file holding only a BOM: no tokens
        if vocab is None and config.level == "byte":  # any bytes: no UTF-8 needed
            vocab = Vocab.build(read_bytes(data).removeprefix(codecs.BOM_UTF8), "byte")
        elif vocab is None:
            vocab = Vocab.build(read_text(data), config.level, max_size=config.max_vocab,
                                min_freq=config.min_freq)
    ids = encode_file(data, vocab, cache_dir=config.cache_dir)
    if config.val_data:
        return vocab, ids, encode_file(Path(config.val_data), vocab, cache_dir=config.cache_dir)
    with naming(data):
        parts = split_ids(ids, config.split)
    return vocab, parts[0], parts[1]


@contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """Put ``data file <path>:`` before a DataError that does not name the file yet."""
    try:
        yield
    except DataError as e:
        if str(path) in str(e):
            raise
        raise DataError(f"data file {str(path)!r}: {e}") from None
