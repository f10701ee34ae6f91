"""Text to tokens, and counting them: the helpers behind :class:`rnnlab.data.Vocab`.

>>> split_words("the cat\\nsat")
['the', 'cat', '<eos>', 'sat']
>>> cut_rare(count_tokens("aaabbc", "char"), "?", set(), max_size=2, min_freq=1)
{'a': 3, '?': 3}
"""

from __future__ import annotations

from collections import Counter

import numpy as np

EOS = "<eos>"


def split_words(text: str) -> list[str]:
    """Whitespace-separated words, each newline the token ``<eos>`` (so ``\\r\\n`` works too).

    A last line without a newline gets no ``<eos>``: a prompt "the cat" stays open.
    """
    return text.replace("\n", f" {EOS} ").split()


def count_tokens(text: str | bytes, level: str, eos: bool = True) -> Counter[str]:
    """Token -> number of occurrences, counted in C (np.bincount or Counter).

    Word level with ``eos=False``: plain whitespace-separated words, newlines included."""
    if level == "byte":
        counts = np.bincount(np.frombuffer(as_bytes(text), dtype=np.uint8), minlength=256)
        return Counter({chr(b): int(counts[b]) for b in np.flatnonzero(counts)})
    text = check_str(text, level)
    if level == "word" and not eos:
        return Counter(text.split())
    if level == "word":
        words = Counter(split_words(text))
        words.setdefault(EOS, 0)  # always present, so any later text's newlines encode
        return words
    # A histogram over code points (at most 0x110000 bins) beats sorting for np.unique.
    counts = np.bincount(np.frombuffer(text.encode("utf-32-le"), dtype="<u4"))
    return Counter({chr(c): int(counts[c]) for c in np.flatnonzero(counts)})


def cut_rare(
    counts: Counter[str], unk: str, protected: set[str], max_size: int | None, min_freq: int,
    always_unk: bool = False,
) -> dict[str, int]:
    """Keep the most frequent tokens; the rest become ``unk``, whose count absorbs theirs.

    Protected tokens and an ``unk`` already in the text are always kept. Ranking by
    descending count makes "count >= min_freq" a prefix, so both cuts keep a prefix.
    ``always_unk``: ``unk`` is added even when nothing is cut.
    """
    fixed = [t for t in sorted(protected | {unk}) if t in counts]
    ranked = sorted((t for t in counts if t not in fixed), key=lambda t: (-counts[t], t))
    keep = sum(1 for t in ranked if counts[t] >= min_freq)
    added = int(always_unk and unk not in counts)
    if max_size is not None and (keep < len(ranked) or len(fixed) + keep + added > max_size):
        room = max_size - len(fixed) - (unk not in counts)  # a cut will add unk
        if room < 1:
            raise ValueError(f"max_size={max_size} leaves no room beside {fixed + [unk]}")
        keep = min(keep, room)
    kept = {t: counts[t] for t in fixed + ranked[:keep]}
    if keep < len(ranked) or always_unk:
        kept[unk] = kept.get(unk, 0) + sum(counts[t] for t in ranked[keep:])
    return kept


def check_str(text: object, level: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{level} level takes str, got {type(text).__name__}: decode it first")
    return text


def as_bytes(text: str | bytes) -> bytes:
    return text.encode("utf-8") if isinstance(text, str) else bytes(text)
