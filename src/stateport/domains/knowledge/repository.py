"""``sp.knowledge``: the one class callers use, assembled from the parts."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ...errors import ValidationError
from .collections import CollectionOps
from .context import ContextOps
from .models import ChangeRecord, check_id, check_limit
from .queries import QueryOps
from .workflow import WorkflowOps

__all__ = ["KnowledgeRepository"]


class KnowledgeRepository(CollectionOps, QueryOps, WorkflowOps, ContextOps):
    """The knowledge repository (the source's ``KnowledgeRepository``), on the table
    and blob ports of one store: the same behaviour on every engine.

    * collections — :meth:`create_collection`, :meth:`get_collection`,
      :meth:`find_collection`, :meth:`list_collections`, :meth:`rename_collection`,
      :meth:`delete_collection`;
    * artifacts and revisions — :meth:`create_artifact`, :meth:`get_artifact`,
      :meth:`find_artifact`, :meth:`list_artifacts`, :meth:`update_artifact`,
      :meth:`delete_artifact`, :meth:`list_revisions`, :meth:`get_revision`,
      :meth:`read_content`, :meth:`open_content`;
    * relationships — :meth:`create_relationship`, :meth:`get_relationship`,
      :meth:`delete_relationship`, :meth:`list_relationships`, :meth:`traverse`;
    * queries — :meth:`query_artifacts` (type, digest, metadata, relationship);
    * change records — :meth:`list_changes`, :meth:`last_change`,
      :meth:`entity_changes`, :meth:`watch_changes`;
    * workflow state — :meth:`create_run`, :meth:`get_run`, :meth:`list_runs`,
      :meth:`set_run_status`, :meth:`add_step`, :meth:`set_step_status`,
      :meth:`list_steps`, :meth:`save_manifest`, :meth:`get_manifest`,
      :meth:`list_run_outputs`;
    * context references — :meth:`create_context_package`,
      :meth:`get_context_package`, :meth:`list_context_packages`,
      :meth:`delete_context_package`.

    Every mutation of a collection, artifact, revision or relationship is one
    transaction that writes its change record too. See
    docs/decisions/0030-knowledge-repository.md and
    docs/decisions/0031-knowledge-change-feed-and-queries.md.
    """

    async def list_changes(self, *, after: int = 0, limit: int = 100) -> list[ChangeRecord]:
        """Change records numbered above ``after``, in commit order, at most ``limit``.

        Numbers run 1, 2, 3, ... without gaps, and a record becomes visible only
        after every record before it: resume from the last ``seq`` seen and
        nothing is ever skipped.
        """
        return await self._feed.after(after, check_limit(limit))

    async def last_change(self) -> int:
        """The number of the last change record (0 when nothing has changed yet)."""
        return await self._feed.last_seq()

    async def entity_changes(self, entity_id: str) -> list[ChangeRecord]:
        """The change history of one collection, artifact or relationship, in order
        (an artifact's includes the relationships from and to it; kept after deletion)."""
        return await self._feed.of(check_id(entity_id, "entity_id"))

    async def watch_changes(
        self, *, after: int = 0, poll_interval: float = 0.5
    ) -> AsyncIterator[ChangeRecord]:
        """Every change record after ``after``, then each new one as it commits; runs
        until the caller stops iterating. Changes made through this store wake it at
        once, others are seen within ``poll_interval`` seconds."""
        if type(after) is not int or after < 0:
            raise ValidationError(f"after must be an int >= 0, got {after!r}")
        async for record in self._feed.watch(after, poll_interval):
            yield record
