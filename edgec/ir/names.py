"""Unique names for values and nodes: tables that count removals, and a first-free-suffix
search that remembers where it stopped, so that naming n nodes from one hint costs O(n)."""

from __future__ import annotations

import itertools


class NameSet(set):
    """A set of names that counts removals, so that suffix memos know when to start over."""

    freed = 0

    def discard(self, name) -> None:
        """set.discard, counted."""
        self.freed += 1
        super().discard(name)

    def remove(self, name) -> None:
        """set.remove, counted."""
        self.freed += 1
        super().remove(name)

    def clear(self) -> None:
        """set.clear, counted."""
        self.freed += 1
        super().clear()


class ValueTable(dict):
    """The name -> Value table; counts removals like `NameSet`."""

    freed = 0

    def pop(self, *args):
        """dict.pop, counted."""
        self.freed += 1
        return super().pop(*args)

    def __delitem__(self, name) -> None:
        self.freed += 1
        super().__delitem__(name)

    def popitem(self):
        """dict.popitem, counted."""
        self.freed += 1
        return super().popitem()

    def clear(self) -> None:
        """dict.clear, counted."""
        self.freed += 1
        super().clear()


def first_free(hint: str, taken, memo: dict | None = None) -> str:
    """`hint` if it is not in `taken`, else the first of hint_1, hint_2, ... that is not.

    `memo` (hint -> (suffix, removal count of `taken`)) remembers where the last search for a
    hint ended, so that n requests for one hint cost O(n), not O(n^2); it is only trusted
    while nothing was removed from `taken` (a removal could free a lower suffix).
    """
    if hint not in taken:
        return hint
    freed = getattr(taken, "freed", None)
    start = 1
    if memo is not None and freed is not None:
        start, when = memo.get(hint, (1, freed))
        if when != freed:
            start = 1
    for i in itertools.count(start):
        cand = f"{hint}_{i}"
        if cand not in taken:
            if memo is not None and freed is not None:
                memo[hint] = (i, freed)
            return cand
    raise AssertionError("unreachable")
