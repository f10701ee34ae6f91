"""Vocabularies: text to token ids and back, at char, word or byte level.

Tokens are strings at every level, so a vocabulary is a plain JSON list:

- ``"char"``: one token per Unicode code point (so Korean, Chinese or emoji are single
  tokens), ordered by code point as in char-rnn and nanoGPT, so ids match theirs.
- ``"word"``: the PTB convention: tokens are the whitespace-separated words and every
  newline is the token ``<eos>``. Ordered by descending frequency, ties by token.
- ``"byte"``: one token per byte value that occurs, stored as the one-character string
  ``chr(b)`` (the byte read as Latin-1, so ``ord(token) == b``), ordered by byte value.

Special tokens: ``<eos>`` is always in a word vocabulary. Words cut by ``max_size`` or
``min_freq`` become ``<unk>`` (at char level U+FFFD, the replacement character), added
only when a cut happens; if the text already contains it (PTB has ``<unk>``), it is an
ordinary token that also serves as the unknown token. Byte vocabularies have no specials.

Ids are stored in the smallest unsigned dtype that holds them (``vocab.dtype``)::

    len(vocab) <= 2**8 : uint8     <= 2**16 : uint16     else : uint32
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from itertools import repeat
from typing import Any, Literal, cast

import numpy as np

from rnnlab.data._tokens import (
    EOS,
    as_bytes,
    check_str,
    count_tokens,
    cut_rare,
    split_words,
)
from rnnlab.errors import DataError

Level = Literal["char", "word", "byte"]
LEVELS = ("char", "word", "byte")
UNK = {"char": "\ufffd", "word": "<unk>", "byte": None}
FORMAT, VERSION = "rnnlab.vocab", 1


class Vocab:
    """An ordered token list and its index; build with :meth:`build` or :meth:`from_json`.

    ``encode(text)`` gives ids ``(N,)`` in ``self.dtype``; ``decode(ids)`` gives the text
    back (word level normalises spacing: one space between words, ``<eos>`` a newline).
    Treat ``tokens`` as read-only: the index and ``fingerprint`` are computed once.

    >>> vocab = Vocab.build("the cat sat\\nthe end\\n", "word")
    >>> vocab.tokens
    ['<eos>', 'the', 'cat', 'end', 'sat']
    >>> ids = vocab.encode("the cat\\n")
    >>> ids, ids.dtype
    (array([1, 2, 0], dtype=uint8), dtype('uint8'))
    >>> vocab.decode(ids)
    'the cat\\n'
    >>> Vocab.from_json(vocab.to_json()) == vocab
    True
    """

    def __init__(self, level: Level, tokens: Iterable[str]) -> None:
        self.level: Level = level
        self.tokens: list[str] = list(tokens)
        _check_tokens(level, self.tokens)
        self._ids = {t: i for i, t in enumerate(self.tokens)}
        unk = UNK[level]
        self.unk_id: int | None = self._ids.get(unk) if unk is not None else None
        self.eos_id: int | None = self._ids.get(EOS) if level == "word" else None
        self.dtype = _id_dtype(len(self.tokens))
        if level == "word":
            # decode() joins words with spaces; <eos> is rendered as the newline it stands for.
            self._words = np.array(["\n" if t == EOS else t for t in self.tokens], dtype=object)
        else:
            # Code point (char) or byte value (byte) of each id, and the inverse as a dense
            # table with one extra -1 slot at the end, where every code past the largest
            # known one is clipped to: a vectorised "not in the vocabulary".
            self._codes = np.array([ord(t) for t in self.tokens], dtype=np.uint32)
            self._table = np.full(int(self._codes.max()) + 2, -1, dtype=np.int32)
            self._table[self._codes] = np.arange(len(self.tokens), dtype=np.int32)
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        self.fingerprint: str = hashlib.sha256(canonical.encode("ascii")).hexdigest()

    @classmethod
    def build(
        cls, text: str | bytes, level: Level, *, max_size: int | None = None, min_freq: int = 1,
        eos: bool = True, unk: bool = False,
    ) -> Vocab:
        """The vocabulary of ``text``: every token, or the frequent ones and an unknown token.

        ``min_freq``: tokens seen fewer times are cut. ``max_size``: at most this many tokens,
        specials included; the most frequent are kept. ``bytes`` are accepted at byte level
        (any file, UTF-8 or not); byte vocabularies take neither option (they hold <= 256).

        For sequence tasks (one example per line, not running text): ``eos=False`` (word
        level) splits on whitespace with no ``<eos>`` token; ``unk=True`` (char and word
        level) always adds the unknown token, so text seen later encodes its new tokens to it.

        >>> Vocab.build("a b a", "word", eos=False, unk=True).tokens
        ['a', 'b', '<unk>']
        """
        _check_level(level)
        if max_size is not None and (not isinstance(max_size, int) or max_size < 1):
            raise ValueError(f"max_size must be a positive integer or None, got {max_size!r}")
        if not isinstance(min_freq, int) or min_freq < 1:
            raise ValueError(f"min_freq must be a positive integer, got {min_freq!r}")
        if level != "word" and not eos:
            raise ValueError("eos=False applies to word vocabularies (only they have <eos>)")
        if level == "byte" and unk:
            raise ValueError("byte vocabularies have no unknown token: build from all 256 bytes")
        counts = count_tokens(text, level, eos)
        if not any(counts[t] for t in counts if t != EOS):
            raise DataError("cannot build a vocabulary from text with no tokens: pass some text")
        if level == "byte":
            if max_size is not None or min_freq != 1:
                raise ValueError("max_size and min_freq apply to char and word vocabularies")
            return cls(level, sorted(counts))
        specials = {EOS} if level == "word" and eos else set()
        unk_token = cast(str, UNK[level])  # not None: only byte level (returned above) lacks one
        kept = cut_rare(counts, unk_token, specials, max_size, min_freq, always_unk=unk)
        if level == "char":
            return cls(level, sorted(kept))
        return cls(level, sorted(kept, key=lambda t: (-kept[t], t)))

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return self.level == other.level and self.tokens == other.tokens

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return f"Vocab(level={self.level!r}, size={len(self)}, unk_id={self.unk_id})"

    def index(self, token: str) -> int:
        """The id of ``token``; a DataError (a ValueError, like ``list.index``) if absent."""
        try:
            return self._ids[token]
        except KeyError:
            raise DataError(
                f"token {token!r} is not in the {self.level} vocabulary of {len(self)} tokens: "
                "check the spelling, or rebuild the vocabulary from text that contains it"
            ) from None

    def tokenize(self, text: str | bytes) -> list[str]:
        """The tokens of ``text`` (e.g. to prime generation); unknown ones are kept as is."""
        if self.level == "byte":
            return list(as_bytes(text).decode("latin-1"))  # byte b -> token chr(b)
        text = check_str(text, self.level)
        return split_words(text) if self.level == "word" else list(text)

    def encode(self, text: str | bytes) -> np.ndarray:
        """Token ids ``(N,)`` in ``self.dtype``; unseen tokens become ``<unk>`` if there is one,
        else a DataError names the first and its line."""
        return self._encode(text, first_line=1)

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """Text of the ids (any shape, read in C order). Byte level decodes the bytes as UTF-8,
        replacing invalid sequences (e.g. a character cut in two by sampling) with U+FFFD."""
        ids = np.asarray(ids if isinstance(ids, np.ndarray) else list(ids)).reshape(-1)
        if ids.size and (ids.dtype.kind not in "iu" or ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must be integers in [0, {len(self)}), got {ids.dtype} array")
        ids = ids.astype(np.intp, copy=False)
        if self.level == "word":
            return re.sub(r" ?\n ?", "\n", " ".join(self._words[ids].tolist()))
        if self.level == "char":
            return self._codes[ids].astype("<u4").tobytes().decode("utf-32-le")
        return self._codes[ids].astype(np.uint8).tobytes().decode("utf-8", errors="replace")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; ``Vocab.from_json(v.to_json()) == v`` exactly."""
        return {"format": FORMAT, "version": VERSION, "level": self.level,
                "tokens": list(self.tokens)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Vocab:
        """The vocabulary that :meth:`to_json` wrote (e.g. ``json.load`` of a checkpoint's)."""
        if not isinstance(d, Mapping) or d.get("format") != FORMAT:
            raise DataError(
                "not an rnnlab vocabulary (no \"format\": \"rnnlab.vocab\"): "
                "pass the vocabulary JSON that training wrote"
            )
        if d.get("version") != VERSION:
            raise DataError(
                f"vocabulary format version {d.get('version')!r} is not supported "
                f"(this rnnlab reads version {VERSION}): rebuild it with this version"
            )
        if not isinstance(d.get("tokens"), list):
            raise DataError("vocabulary JSON has no \"tokens\" list: pass the one training wrote")
        _check_level(d.get("level"))  # missing or unknown: a DataError, not a KeyError
        return cls(d["level"], d["tokens"])

    def _encode(self, text: str | bytes, *, first_line: int) -> np.ndarray:
        """:meth:`encode` of a piece of a file whose first line is ``first_line``."""
        tokens: list[str] | None = None
        if self.level == "byte":
            ids = self._lookup(np.frombuffer(as_bytes(text), dtype=np.uint8))
        elif self.level == "char":
            # UTF-32 is one fixed-width code unit per code point: the str as an int array.
            ids = self._lookup(np.frombuffer(check_str(text, "char").encode("utf-32-le"), "<u4"))
        else:
            tokens = split_words(check_str(text, "word"))
            ids = np.fromiter(map(self._ids.get, tokens, repeat(-1)), np.int64, len(tokens))
        unknown = ids < 0
        if unknown.any():
            if self.unk_id is None:
                raise self._unknown(text, tokens, int(np.argmax(unknown)), first_line)
            ids[unknown] = self.unk_id
        return ids.astype(self.dtype)

    def _lookup(self, codes: np.ndarray) -> np.ndarray:
        """Ids of code points / byte values, -1 where unknown (codes past the table included)."""
        # uint32: a full byte table has 257 slots, and 256 does not fit the bytes' uint8
        return self._table[np.minimum(codes.astype(np.uint32, copy=False), len(self._table) - 1)]

    def _unknown(
        self, text: str | bytes, tokens: list[str] | None, at: int, first_line: int
    ) -> DataError:
        """The error for the unknown token at position ``at``, with its line number."""
        if tokens is not None:
            what, line = f"word {tokens[at]!r}", first_line + tokens[:at].count(EOS)
        elif self.level == "byte":
            data = as_bytes(text)
            what, line = f"byte 0x{data[at]:02x}", first_line + data.count(b"\n", 0, at)
        else:
            chars = check_str(text, "char")
            what = f"character {chars[at]!r} (U+{ord(chars[at]):04X})"
            line = first_line + chars.count("\n", 0, at)
        fix = "build the vocabulary from this text"
        if self.level != "byte":
            fix += f", or with max_size/min_freq so it has {UNK[self.level]!r} for unseen tokens"
        return DataError(f"{what} on line {line} is not in the {self.level} vocabulary: {fix}")


# --- helpers ------------------------------------------------------------------------------


def _id_dtype(size: int) -> np.dtype:
    for dtype in (np.uint8, np.uint16, np.uint32):
        if size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype)
    raise ValueError(f"a vocabulary of {size} tokens is too large")


def _check_level(level: object) -> None:
    if level not in LEVELS:
        raise DataError(f"vocabulary level {level!r} is unknown: use 'char', 'word' or 'byte'")


def _check_tokens(level: object, tokens: list[str]) -> None:
    """Reject a token list that could not have come from :meth:`Vocab.build`."""
    _check_level(level)
    fix = "pass a vocabulary written by Vocab.to_json, or rebuild it"
    if not tokens:
        raise DataError(f"the {level} vocabulary has no tokens: {fix}")
    for t in tokens:
        if level == "word":
            ok = isinstance(t, str) and t.split() == [t]
        else:
            ok = isinstance(t, str) and len(t) == 1 and (level == "char" or ord(t) < 256)
        if not ok:
            raise DataError(f"{t!r} cannot be a token of a {level} vocabulary: {fix}")
    if len(set(tokens)) != len(tokens):
        dup = next(t for t, n in Counter(tokens).items() if n > 1)
        raise DataError(f"token {dup!r} occurs twice in the {level} vocabulary: {fix}")
