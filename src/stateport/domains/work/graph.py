"""The dependency graph of a feature's work packages, in memory.

``deps[a]`` lists the packages ``a`` depends on (edges ``a -> b``: ``b`` must be
DONE before ``a`` is ready). These functions are pure; the store feeds them
what it read and turns their answers into errors or results.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from graphlib import CycleError, TopologicalSorter

__all__ = ["Graph", "find_cycle", "layers", "ready"]


class Graph:
    """Edges both ways, so a cycle check can search from both ends.

    Build one with :meth:`add` before sharing it; a shared graph is never
    changed again: :meth:`with_edge` makes the next version, sharing every
    list it does not change, so threads may read the old one meanwhile.
    """

    __slots__ = ("dependents", "deps")

    def __init__(self, edges: Iterable[tuple[int, Iterable[int]]] = ()) -> None:
        self.deps: dict[int, list[int]] = {}
        self.dependents: dict[int, list[int]] = {}
        for a, bs in edges:
            for b in bs:
                self.add(a, b)

    def add(self, a: int, b: int) -> None:
        """Add the edge ``a -> b`` in place (only while no one else holds the graph)."""
        self.deps.setdefault(a, []).append(b)
        self.dependents.setdefault(b, []).append(a)

    def with_edge(self, a: int, b: int) -> Graph:
        """A new graph: this one and the edge ``a -> b``. This one is unchanged."""
        new = Graph()
        new.deps = {**self.deps, a: [*self.deps.get(a, ()), b]}
        new.dependents = {**self.dependents, b: [*self.dependents.get(b, ()), a]}
        return new


def _path(parent: Mapping[int, int | None], node: int) -> list[int]:
    out = [node]
    nxt = parent[node]
    while nxt is not None:
        out.append(nxt)
        nxt = parent[nxt]
    return out


def find_cycle(graph: Graph, a: int, b: int) -> list[int] | None:
    """The cycle the edge ``a -> b`` would close, as ``[a, b, ..., a]``, or None.

    The edge closes a cycle when ``a`` is reachable from ``b``. The search runs
    from both ends at once (forward from ``b``, backward from ``a``), always
    widening the smaller frontier, so adding an edge from a package nothing
    depends on yet costs almost nothing however large the graph.
    """
    if a == b:
        return [a, a]
    fwd: dict[int, int | None] = {b: None}  # reached from b: node -> the node before it
    bwd: dict[int, int | None] = {a: None}  # reaching a: node -> the node after it
    f_front, b_front = [b], [a]
    deps, dependents = graph.deps, graph.dependents
    meet: int | None = None
    while f_front and b_front and meet is None:
        if len(f_front) <= len(b_front):
            nxt: list[int] = []
            for n in f_front:
                for m in deps.get(n, ()):
                    if m not in fwd:
                        fwd[m] = n
                        if m in bwd:
                            meet = m
                            break
                        nxt.append(m)
                if meet is not None:
                    break
            f_front = nxt
        else:
            nxt = []
            for n in b_front:
                for m in dependents.get(n, ()):
                    if m not in bwd:
                        bwd[m] = n
                        if m in fwd:
                            meet = m
                            break
                        nxt.append(m)
                if meet is not None:
                    break
            b_front = nxt
    if meet is None:
        return None
    head = list(reversed(_path(fwd, meet)))  # b ... meet
    tail = _path(bwd, meet)[1:]  # after meet ... a
    return [a, *head, *tail]


def ready(nodes: Mapping[str, Sequence[str] | str]) -> list[int]:
    """Sequences of PLANNED packages whose dependencies are all DONE, in order.

    ``nodes`` maps a package's sequence (as a string) to the sequences of its
    dependencies when it is PLANNED, or to a one-letter state code otherwise
    (``"D"`` for DONE): the form of the store's graph shards.
    """
    out: list[int] = []
    get = nodes.get
    for seq, node in nodes.items():
        if type(node) is not list:
            continue
        for d in node:
            if get(d) != "D":
                break
        else:
            out.append(int(seq))
    out.sort()
    return out


def layers(nodes: Mapping[int, tuple[int, Sequence[int]]]) -> list[list[int]]:
    """Topological layers: layer 0 depends on nothing, layer k only on earlier layers.

    ``nodes`` maps a package id to ``(sequence, dependency ids)``; each layer is
    ordered by sequence. Dependencies outside ``nodes`` are ignored. Packages on
    a cycle (which the store never lets in) and those after them are left out.
    """
    sorter: TopologicalSorter[int] = TopologicalSorter()
    for i, (_, deps) in nodes.items():
        sorter.add(i, *(d for d in deps if d in nodes))
    with contextlib.suppress(CycleError):  # the layers before the cycle still come out
        sorter.prepare()
    out: list[list[int]] = []
    while layer := sorted(sorter.get_ready(), key=lambda i: nodes[i][0]):
        out.append(layer)
        sorter.done(*layer)
    return out
