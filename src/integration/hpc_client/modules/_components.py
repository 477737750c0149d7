"""Connected components: the groups of items that a pairwise relation links, directly or through others."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["connected_components"]

Item = TypeVar("Item")


def connected_components(items: Sequence[Item], linked: Callable[[Item, Item], bool]) -> list[list[Item]]:
    """``items`` grouped so that two items linked by ``linked`` (checked for every pair) share a group; the
    groups and the items in each keep the order of ``items``. Union-find with path halving."""
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            if linked(items[i], items[j]):
                parent[root(i)] = root(j)
    groups: dict[int, list[Item]] = {}
    for i, item in enumerate(items):
        groups.setdefault(root(i), []).append(item)
    return list(groups.values())
