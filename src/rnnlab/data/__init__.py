"""The data layer of the language-model pipeline: files to ids to training batches.

::

    text = read_text("ptb.train.txt")                       # checked UTF-8 str
    vocab = Vocab.build(text, "word")                       # tokens <-> ids
    ids = encode_file("ptb.train.txt", vocab, cache_dir=c)  # (N,) uint16, memory-mapped
    for x, y in BPTTBatches(ids, batch_size=20, bptt=35):   # (T, B) int64 each
        ...

Sequence tasks (one example per line or per CoNLL sentence) have their readers in
:mod:`rnnlab.data.tasks`, their output labels in :mod:`rnnlab.data.labels` and padded,
length-bucketed batches in :mod:`rnnlab.data.padded`.

Every problem a user can fix raises :class:`DataError` (a ValueError, defined in
:mod:`rnnlab.errors`) with a one-line message: what is wrong, then what to do. This package
knows no network: it imports nothing from :mod:`rnnlab.nn` (import-linter checks it).
"""

from rnnlab.data.batching import BPTTBatches, split_ids
from rnnlab.data.corpus import bundled_corpus, encode_file, read_bytes, read_text, sha256_file
from rnnlab.data.labels import Labels
from rnnlab.data.padded import PaddedBatches, pad, shuffled_split
from rnnlab.data.tasks import read_classify, read_seq2seq, read_tagged, task_vocab
from rnnlab.data.vocab import LEVELS, Vocab
from rnnlab.errors import DataError

__all__ = ["LEVELS", "BPTTBatches", "DataError", "Labels", "PaddedBatches", "Vocab",
           "bundled_corpus", "encode_file", "pad", "read_bytes", "read_classify", "read_seq2seq",
           "read_tagged", "read_text", "sha256_file", "shuffled_split", "split_ids", "task_vocab"]
