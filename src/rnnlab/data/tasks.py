"""Sequence-task files: readers, input vocabularies and encoding, one example per entry.

Three formats, all UTF-8 text (checked as :func:`~rnnlab.data.corpus.read_text` checks)::

    classify  label<TAB>text                  one example per line (many-to-one)
    tag       token ... tag                   CoNLL: one token per line, first column the
                                              token, last the tag; a blank line between
                                              sentences; -DOCSTART- lines skipped
    seq2seq   source<TAB>target               one example per line

Blank lines between TSV examples are skipped. Every malformed line raises :class:`DataError`
naming the file and the line. Tokenization of the text is that of the language model
(:class:`~rnnlab.data.vocab.Vocab`, char/word/byte) with the task options: no ``<eos>``, and
an ``<unk>`` for tokens training never saw (:func:`task_vocab`). Tags and class names get
their own mapping, :class:`~rnnlab.data.labels.Labels` (importable from here too), which
instead rejects a name it never saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from rnnlab.data.corpus import DataError, StrPath, read_text
from rnnlab.data.labels import Labels
from rnnlab.data.vocab import Level, Vocab

DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class ClassifyExamples:
    """Texts and their class names; ``lines[i]`` is example i's line in ``path`` (1-based)."""

    path: str
    texts: list[str]
    labels: list[str]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class TagExamples:
    """Sentences of tokens and one tag per token; token j of sentence i is on line
    ``lines[i] + j`` of ``path``."""

    path: str
    tokens: list[list[str]]
    tags: list[list[str]]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass(frozen=True)
class Seq2SeqExamples:
    """Source and target texts; ``lines[i]`` is example i's line in ``path`` (1-based)."""

    path: str
    sources: list[str]
    targets: list[str]
    lines: list[int]

    def __len__(self) -> int:
        return len(self.sources)


# --- readers --------------------------------------------------------------------------------


def read_classify(path: StrPath) -> ClassifyExamples:
    """Read a ``label<TAB>text`` file.

    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "train.tsv"
    >>> _ = p.write_text("pos\\tgood film\\nneg\\tdull\\n", encoding="utf-8")
    >>> read_classify(p).labels
    ['pos', 'neg']
    """
    rows = list(_tsv_rows(path, "label", "text"))
    return ClassifyExamples(str(path), [r[2] for r in rows], [r[1] for r in rows],
                            [r[0] for r in rows])


def read_seq2seq(path: StrPath) -> Seq2SeqExamples:
    """Read a ``source<TAB>target`` file.

    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "pairs.tsv"
    >>> _ = p.write_text("abc\\tcba\\n", encoding="utf-8")
    >>> read_seq2seq(p).targets
    ['cba']
    """
    rows = list(_tsv_rows(path, "source", "target"))
    return Seq2SeqExamples(str(path), [r[1] for r in rows], [r[2] for r in rows],
                           [r[0] for r in rows])


def read_tagged(path: StrPath) -> TagExamples:
    """Read a CoNLL-style file: ``token [other columns ...] tag`` per line, sentences
    separated by blank lines (runs of them are fine), ``-DOCSTART-`` lines skipped.

    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "train.conll"
    >>> _ = p.write_text("-DOCSTART- -X- O O\\n\\nEU NNP B-NP B-ORG\\nrejects VBZ B-VP O\\n",
    ...                  encoding="utf-8")
    >>> ex = read_tagged(p)
    >>> ex.tokens, ex.tags, ex.lines
    ([['EU', 'rejects']], [['B-ORG', 'O']], [3])
    """
    name = str(path)
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    lines: list[int] = []
    sentence: list[tuple[int, str, str]] = []
    for n, line in enumerate(_lines(path), start=1):
        cols = line.split()
        if not cols or cols[0] == DOCSTART:  # a sentence boundary
            _close_sentence(sentence, tokens, tags, lines)
            continue
        if len(cols) < 2:
            raise DataError(f"{name!r} line {n}: expected a token and its tag separated by "
                            f"whitespace, found only {cols[0]!r}: add the tag as the last column")
        sentence.append((n, cols[0], cols[-1]))
    _close_sentence(sentence, tokens, tags, lines)
    if not tokens:
        raise DataError(f"{name!r} holds no tagged tokens: pass a CoNLL file, one "
                        "'token tag' per line, sentences separated by blank lines")
    return TagExamples(name, tokens, tags, lines)


def _close_sentence(sentence: list[tuple[int, str, str]], tokens: list[list[str]],
                    tags: list[list[str]], lines: list[int]) -> None:
    """Move a finished sentence of ``(line, token, tag)`` into the lists, and clear it."""
    if sentence:
        lines.append(sentence[0][0])
        tokens.append([t for _, t, _ in sentence])
        tags.append([g for _, _, g in sentence])
        sentence.clear()


def _lines(path: StrPath) -> list[str]:
    """The file's lines (``\\n`` or ``\\r\\n``), checked as read_text checks the file."""
    try:
        text = read_text(path)
    except DataError as e:  # tasks read text, so "--level byte" is no way out here
        raise DataError(str(e).replace(", or --level byte", "")) from None
    return [line.removesuffix("\r") for line in text.split("\n")]


def _tsv_rows(path: StrPath, first: str, second: str) -> Iterator[tuple[int, str, str]]:
    """``(line number, first field, second field)`` of each non-blank ``a<TAB>b`` line."""
    name, fmt = str(path), f"'{first}<TAB>{second}'"
    for n, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        tabs = line.count("\t")
        if tabs != 1:
            found = "no tab" if tabs == 0 else f"{tabs} tabs"
            raise DataError(f"{name!r} line {n}: expected {fmt} (one tab), found {found}: "
                            "separate the two fields with exactly one tab")
        a, b = line.split("\t")
        for what, value in ((first, a), (second, b)):
            if not value.strip():
                raise DataError(f"{name!r} line {n}: the {what} is empty: expected {fmt} "
                                f"with a non-empty {what}")
        yield n, a.strip(), b.strip()


# --- vocabularies and encoding ----------------------------------------------------------------


def task_vocab(texts: Iterable[str], level: Level, *, max_size: int | None = None,
               min_freq: int = 1) -> Vocab:
    """The input vocabulary of a task's training texts (or CoNLL tokens at word level).

    char/word: the tokens of the texts plus the unknown token (``<unk>``, U+FFFD at char
    level), no ``<eos>``; byte: all 256 byte values, so any text encodes.

    >>> task_vocab(["the cat", "a cat"], "word").tokens
    ['cat', 'a', 'the', '<unk>']
    """
    if level == "byte":
        return Vocab.build(bytes(range(256)), "byte")
    if level == "word":
        return Vocab.build(" ".join(texts), "word", max_size=max_size, min_freq=min_freq,
                           eos=False, unk=True)
    return Vocab.build("".join(texts), level, max_size=max_size, min_freq=min_freq, unk=True)


def encode_texts(texts: Iterable[str], vocab: Vocab) -> list[np.ndarray]:
    """Each text's ids, ``(T_i,)`` int64 (unseen tokens are the unknown token's id).

    >>> v = task_vocab(["ab"], "char")
    >>> [ids.tolist() for ids in encode_texts(["ba", "bz"], v)]
    [[1, 0], [1, 2]]
    """
    return [vocab.encode(t).astype(np.int64) for t in texts]


def encode_tokens(sentences: Iterable[Sequence[str]], vocab: Vocab) -> list[np.ndarray]:
    """Each pre-tokenized sentence's ids, ``(T_i,)`` int64, one id per token (word level).

    >>> v = task_vocab(["EU rejects"], "word")
    >>> [ids.tolist() for ids in encode_tokens([["EU", "accepts"]], v)]
    [[0, 2]]
    """
    if vocab.level != "word":
        raise ValueError(f"pre-tokenized sentences need a word vocabulary, got {vocab.level!r}")
    return [vocab.encode(" ".join(tokens)).astype(np.int64) for tokens in sentences]


def encode_classify(ex: ClassifyExamples, vocab: Vocab,
                    labels: Labels) -> tuple[list[np.ndarray], np.ndarray]:
    """Inputs ``[(T_i,)]`` and class ids ``(N,)`` of a classify file.

    >>> ex = ClassifyExamples("x.tsv", ["ab", "b"], ["yes", "no"], [1, 2])
    >>> x, y = encode_classify(ex, task_vocab(ex.texts, "char"), Labels.build(ex.labels))
    >>> [s.tolist() for s in x], y.tolist()
    ([[0, 1], [1]], [1, 0])
    """
    return encode_texts(ex.texts, vocab), labels.encode(ex.labels, path=ex.path, lines=ex.lines)


def encode_tagged(ex: TagExamples, vocab: Vocab,
                  labels: Labels) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Inputs ``[(T_i,)]`` and tag ids ``[(T_i,)]`` of a CoNLL file.

    >>> ex = TagExamples("x.conll", [["EU", "says"]], [["B-ORG", "O"]], [1])
    >>> x, y = encode_tagged(ex, task_vocab(["EU says"], "word"), Labels.build(["B-ORG", "O"]))
    >>> x[0].tolist(), y[0].tolist()
    ([0, 1], [0, 1])
    """
    tag_ids = [labels.encode(tags, path=ex.path, lines=range(first, first + len(tags)))
               for tags, first in zip(ex.tags, ex.lines, strict=True)]
    return encode_tokens(ex.tokens, vocab), tag_ids
