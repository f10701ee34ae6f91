"""Class and tag names <-> ids: the output vocabulary of a sequence task.

A task's inputs are tokens of a :class:`~rnnlab.data.vocab.Vocab`, which maps a token it
never saw to ``<unk>``; its outputs (a class per example, a tag per token) are
:class:`Labels`, which rejects a name it never saw instead, since it cannot be scored.
A checkpoint's meta holds them as ``{"format": "rnnlab.labels", "names": [...]}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from rnnlab.errors import DataError

LABELS_FORMAT = "rnnlab.labels"


class Labels:
    """Class or tag names <-> ids ``0 .. C-1`` (sorted names): the output vocabulary.

    Unlike :class:`Vocab` there is no unknown label: a name training never saw cannot be
    scored, so :meth:`encode` raises a :class:`DataError` naming the file and line.

    >>> labels = Labels.build(["pos", "neg", "pos"])
    >>> labels.names, labels.encode(["pos"], path="dev.tsv", lines=[1]).tolist()
    (['neg', 'pos'], [1])
    """

    def __init__(self, names: Iterable[str]) -> None:
        self.names: list[str] = list(names)
        if not self.names or len(set(self.names)) != len(self.names):
            raise DataError("a label set must hold distinct names: pass the labels of the "
                            "training file")
        self._ids = {name: i for i, name in enumerate(self.names)}

    @classmethod
    def build(cls, names: Iterable[str]) -> Labels:
        """Every distinct name, sorted."""
        return cls(sorted(set(names)))

    def __len__(self) -> int:
        return len(self.names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Labels) and self.names == other.names

    def __hash__(self) -> int:
        return hash(tuple(self.names))

    def __repr__(self) -> str:
        return f"Labels({self.names!r})"

    def encode(self, names: Sequence[str], *, path: str, lines: Sequence[int]) -> np.ndarray:
        """Ids ``(len(names),)`` int64; ``lines[i]``: where ``names[i]`` is in ``path``."""
        ids = np.fromiter((self._ids.get(n, -1) for n in names), np.int64, len(names))
        if (ids < 0).any():
            i = int(np.argmax(ids < 0))
            known = ", ".join(map(repr, self.names[:10])) + (", ..." if len(self) > 10 else "")
            raise DataError(f"{path!r} line {lines[i]}: label {names[i]!r} never occurs in "
                            f"the training data (known: {known}): fix it or add training "
                            "examples of it")
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The names of the ids."""
        return [self.names[int(i)] for i in ids]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; ``Labels.from_json(l.to_json()) == l``."""
        return {"format": LABELS_FORMAT, "names": list(self.names)}

    @classmethod
    def from_json(cls, d: Any) -> Labels:
        """The labels :meth:`to_json` wrote."""
        if not isinstance(d, dict) or d.get("format") != LABELS_FORMAT or not isinstance(
                d.get("names"), list) or not all(isinstance(n, str) for n in d["names"]):
            raise DataError("not an rnnlab label set (no \"format\": \"rnnlab.labels\" with "
                            "\"names\", a list of strings): pass the labels JSON that "
                            "training wrote")
        return cls(d["names"])
