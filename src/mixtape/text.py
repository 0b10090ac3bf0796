"""Small text helpers shared by every layer (bottom layer: imports nothing of mixtape)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def one_line(text: object) -> str:
    """Text as one line of single spaces (tabs, line breaks and runs of spaces collapsed), "" for None or
    empty: a name written into a tab-separated cell or a playlist line cannot break its row."""
    return " ".join(str(text).split()) if text else ""


def quoted(item: object) -> str:
    """``repr`` of the item's text: ``'t1'`` for a track id, whether a ``str`` or a numpy string."""
    return repr(str(item))


def and_more(items: Sequence[T], limit: int = 5, *, sep: str = ", ", show: Callable[[T], str] = str) -> str:
    """The first ``limit`` items, then how many were left out: ``a, b, c and 4 more``.

    ``show`` formats each item shown (e.g. :func:`quoted`). With a ``sep`` that breaks lines, the count
    stands on a line of its own: ``a\\n  b\\n  and 4 more``.
    """
    shown = sep.join(show(x) for x in items[:limit])
    if len(items) <= limit:
        return shown
    more = f"and {len(items) - limit} more"
    return f"{shown}{sep}{more}" if "\n" in sep else f"{shown} {more}"
