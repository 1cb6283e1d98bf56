"""Text columns for a terminal, measured in cells, not characters.

A CJK character or an emoji (East Asian Width ``W`` or ``F``) takes two cells; a combining
mark, a variation selector or a zero-width joiner takes none. ``f"{name:<20}"`` counts
characters, so a row holding ``订单`` or ``🚀`` came out wider than the others and its later
columns slid right. Every column-aligned text printer (``lineage ls``, ``runs``, ``find``,
``show``, the generations of ``lineage lineage``) pads with these.

>>> left("订单", 6) + "|"
'订单  |'
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

__all__ = ["cells", "counted", "left", "right", "widest"]

_NONE = frozenset({"Mn", "Me", "Cf"})  # combining marks, format characters (ZWJ, ...)


def cells(text: str) -> int:
    """How many terminal cells ``text`` takes."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.category(char) in _NONE:
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def left(text: str, width: int) -> str:
    """``text`` padded with spaces on the right to ``width`` cells (never cut)."""
    return text + " " * (width - cells(text))


def right(text: str, width: int) -> str:
    """``text`` padded with spaces on the left to ``width`` cells (never cut)."""
    return " " * (width - cells(text)) + text


def widest(texts: Iterable[str], cap: int = 60) -> int:
    """The cells of the widest of ``texts``, at most ``cap`` (a 4,000-character name does not
    push every row over), 0 for none."""
    return min(max((cells(text) for text in texts), default=0), cap)


def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless there is one: ``counted(1, "file")`` is "1 file"."""
    return f"{n} {noun}" if n == 1 else f"{n:,} {noun}s"
