"""Dependencies between the work packages of a feature, the ready set and the
execution order.

A package's dependencies are stored on its record (``deps``: ``[[id, seq, type],
...]``) and in its graph shard. Every change of a feature's dependencies moves
the version of its ``graph`` item, so a cycle check made on one version of the
graph cannot let a concurrent addition close a cycle (see
docs/decisions/0015-work-tracking.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ... import _time
from ..._cache import BoundedCache
from ..._retry import Retry, moved_on, retrying
from ...errors import Conflict, IntegrityError, NotFound, ValidationError
from ...ports.table import KeyRange, Op, TablePort, Update, VersionEquals
from .core import WorkCore, check_type
from .graph import Graph, find_cycle, layers, ready
from .layout import (
    GRAPH_SK,
    GRAPH_TAG,
    MAX_DEPENDENCIES,
    SHARD_PREFIX,
    SHARD_TAG,
    WP_PREFIX,
    WP_TAG,
    explained,
    feature_pk,
    missing_shard,
    node,
    shard_sk,
    wp_of,
    wp_sk,
)
from .models import DependencyType, WorkPackage, WpDependency, check_enum, check_id

__all__ = ["Dependencies", "DependencyCycle"]

_GRAPH_CACHE: Final = 16
_SHARDS: Final = KeyRange.prefix(SHARD_PREFIX)
_PACKAGES: Final = KeyRange.prefix(WP_PREFIX)


class DependencyCycle(ValidationError):
    """Adding the dependency would close a cycle; ``cycle`` lists the package ids."""

    def __init__(self, message: str, cycle: list[int]) -> None:
        super().__init__(message)
        self.cycle = cycle


class Dependencies(WorkCore):
    """Add and read dependencies; the ready set and the execution order."""

    def __init__(self, table: TablePort) -> None:
        super().__init__(table)
        # feature id -> (graph version, its graph); a cached graph is never changed:
        # a new version is a new Graph (see _graph_added)
        self._graphs: BoundedCache[int, tuple[int, Graph]] = BoundedCache(_GRAPH_CACHE)

    async def _graph(self, fid: int, version: int) -> Graph:
        """The feature's dependency graph as of graph version ``version`` (Retry if
        the graph moved on while it was read)."""
        hit = self._graphs.get(fid)
        if hit is not None and hit[0] == version:
            return hit[1]
        graph = Graph()
        async for item in self.table.query_all(feature_pk(fid), _PACKAGES):
            a = item.attrs
            for d in a["deps"]:
                graph.add(a["id"], d[0])
        after = await self.table.get(feature_pk(fid), GRAPH_SK)
        if after is None or after.version != version:
            raise Retry("the graph changed while it was read")
        self._graphs.put(fid, (version, graph))
        return graph

    def _graph_added(self, fid: int, version: int, a: int, b: int) -> None:
        """Keep the graph of version ``version + 1``: the one of ``version`` and ``a -> b``."""
        hit = self._graphs.get(fid)
        if hit is not None and hit[0] == version:
            self._graphs.replace(fid, hit, (version + 1, hit[1].with_edge(a, b)))

    async def add_wp_dependency(self, dep: WpDependency) -> None:
        """Record that ``dep.wp_id`` depends on ``dep.depends_on``.

        Adding a dependency that exists (with the same type) changes nothing, so
        a retried call is safe. Raises :class:`NotFound` if either package is
        unknown; :class:`ValidationError` if they belong to different features,
        if a package would depend on itself or on more than
        :data:`MAX_DEPENDENCIES` packages; :class:`DependencyCycle` (a
        ValidationError naming the cycle) if the edge would close a cycle; and
        :class:`Conflict` if the dependency exists with another type. Changes to
        a feature's dependencies are serialized by its graph version, so no
        cycle can slip in between concurrent additions.
        """
        check_type(dep, WpDependency, "dependency")
        wid = check_id(dep.wp_id, "wp_id")
        on = check_id(dep.depends_on, "depends_on")
        kind = check_enum(DependencyType, dep.dep_type, "dep_type")
        if wid == on:
            raise ValidationError(f"work package {wid} cannot depend on itself")
        fid, seq = await self._locate(wid)
        other_fid, on_seq = await self._locate(on)
        if other_fid != fid:
            raise ValidationError(
                f"work package {wid} (feature {fid}) cannot depend on work package {on} "
                f"of another feature ({other_fid})"
            )
        pk = feature_pk(fid)

        async def attempt() -> None:
            guard = await self.table.get(pk, GRAPH_SK)
            if guard is None:
                raise IntegrityError(f"the dependency graph record of feature {fid} is missing")
            item = await self._wp_item(wid)
            deps: list[list[Any]] = item.attrs["deps"]
            for d in deps:
                if d[0] == on:
                    if d[2] == kind.value:
                        return  # already there: nothing to do
                    raise Conflict(
                        f"work package {wid} already depends on {on} as {d[2]!r}, "
                        f"not {kind.value!r}"
                    )
            if len(deps) >= MAX_DEPENDENCIES:
                raise ValidationError(
                    f"work package {wid} has {len(deps)} dependencies; the limit is "
                    f"{MAX_DEPENDENCIES}"
                )
            graph = await self._graph(fid, guard.version)
            cycle = find_cycle(graph, wid, on)
            if cycle is not None:
                shown = " -> ".join(str(i) for i in cycle)
                raise DependencyCycle(
                    f"work package {wid} cannot depend on {on}: that would close the "
                    f"cycle {shown} (each depends on the next)",
                    cycle,
                )
            new_deps = [*deps, [on, on_seq, kind.value]]
            ops: list[Op] = [
                Update(
                    pk,
                    GRAPH_SK,
                    {"edges": int(guard.attrs.get("edges", 0)) + 1},
                    condition=VersionEquals(guard.version),
                    tag=GRAPH_TAG,
                ),
                Update(
                    pk,
                    wp_sk(seq),
                    {"deps": new_deps, "updated_at": _time.to_text(_time.now())},
                    condition=VersionEquals(item.version),
                    tag=WP_TAG,
                ),
                Update(
                    pk,
                    shard_sk(seq),
                    {str(seq): node(item.attrs["state"], new_deps)},
                    tag=SHARD_TAG,
                ),
            ]
            try:
                with moved_on(GRAPH_TAG, WP_TAG):  # another change came first: check again
                    await self.table.transact(ops)
            except Conflict as e:
                raise explained(e, missing_shard(seq)) from None
            self._graph_added(fid, guard.version, wid, on)

        await retrying(attempt, what=f"the dependencies of feature {fid}")

    async def get_wp_dependencies(self, wp_id: int) -> list[WpDependency]:
        """What ``wp_id`` depends on, in the order the dependencies were added (none
        for an unknown package). :class:`ValidationError` for a malformed id."""
        wid = check_id(wp_id, "wp_id")
        try:
            item = await self._wp_item(wid)
        except NotFound:
            return []
        return [
            WpDependency(wp_id=wid, depends_on=d[0], dep_type=DependencyType(d[2]))
            for d in item.attrs["deps"]
        ]

    async def _wps_by_seq(self, fid: int, seqs: Sequence[int]) -> list[WorkPackage]:
        pk = feature_pk(fid)
        out: list[WorkPackage] = []
        for it in await self.table.batch_get([(pk, wp_sk(s)) for s in seqs]):
            if it is None:
                raise IntegrityError(f"feature {fid}: a work package record is missing")
            out.append(wp_of(it.attrs))
        return out

    async def get_ready_wps(self, feature_id: int) -> list[WorkPackage]:
        """PLANNED packages of the feature whose dependencies are all DONE, by sequence
        (none for an unknown feature). :class:`ValidationError` for a malformed id."""
        fid = check_id(feature_id, "feature_id")
        nodes: dict[str, list[str] | str] = {}
        # a few large items: the whole graph in one or two round trips
        async for items in self.table.query_pages(feature_pk(fid), _SHARDS, page_size=64):
            for item in items:
                nodes.update(item.attrs)
        if not nodes:
            return []
        return await self._wps_by_seq(fid, ready(nodes))

    async def execution_order(self, feature_id: int) -> list[list[WorkPackage]]:
        """The packages in layers: layer 0 depends on nothing, each later layer only
        on earlier ones; within a layer by sequence. For planning parallel work.
        Empty for an unknown feature; :class:`ValidationError` for a malformed id."""
        fid = check_id(feature_id, "feature_id")
        wps = {}
        deps: dict[int, tuple[int, list[int]]] = {}
        async for i in self.table.query_all(feature_pk(fid), _PACKAGES):
            wp = wp_of(i.attrs)
            wps[wp.id] = wp
            deps[wp.id] = (wp.sequence, [d[0] for d in i.attrs["deps"]])
        return [[wps[i] for i in layer] for layer in layers(deps)]
