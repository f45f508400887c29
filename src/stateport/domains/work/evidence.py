"""Evidence: what shows that a work package satisfies a requirement.

Each piece is indexed by package (gsi1) and by requirement (gsi2); its artifact
URL is also recorded beside its feature (``work.evidref#<F>``), where audit
entries' ``evidence_refs`` are checked (see
:meth:`~stateport.domains.work.writer.AuditWriter.require_evidence`).
"""

from __future__ import annotations

from ... import _json, _time
from ...errors import ValidationError
from ...ports.table import NotExists, Op, Put
from .core import WorkCore, check_type
from .layout import (
    evidence_by_fr,
    evidence_by_wp,
    evidence_of,
    evidence_pk,
    evidence_ref_key,
    id20,
)
from .models import MAX_NAME, Evidence, check_id, check_name, check_number, check_text

__all__ = ["EvidenceLog"]


class EvidenceLog(WorkCore):
    """Store and list evidence."""

    async def create_evidence(self, evidence: Evidence) -> int:
        """Store evidence for a work package; return its id.

        Its ``artifact_url`` may then be cited in the ``evidence_refs`` of its
        feature's audit entries. Raises :class:`NotFound` for an unknown
        package and :class:`ValidationError` for malformed evidence (confidence
        outside 0..1, metadata that is not a JSON object, ...).
        """
        check_type(evidence, Evidence, "evidence")
        wid = check_id(evidence.wp_id, "wp_id")
        fr = check_name(evidence.fr_id, "fr_id")
        url = check_text(evidence.artifact_url, "artifact_url")
        confidence = check_number(evidence.confidence, "confidence")
        if not 0.0 <= confidence <= 1.0:
            raise ValidationError(f"confidence must be from 0.0 to 1.0, got {confidence!r}")
        etype = check_text(evidence.evidence_type, "evidence_type", limit=MAX_NAME, empty=True)
        meta = evidence.metadata
        if meta is not None:
            _json.as_mapping(meta, "metadata")
            _json.check_json(meta, portable=self.table.capabilities.portable, where="metadata")
        fid, check = await self._wp_check(wid)
        ref_pk, ref_sk = evidence_ref_key(fid, url)
        now = _time.to_text(_time.now())

        def build(eid: int) -> list[Op]:
            attrs = {
                "id": eid,
                "wp_id": wid,
                "fr_id": fr,
                "artifact_url": url,
                "confidence": confidence,
                "evidence_type": etype,
                "metadata": meta,
                "created_at": now,
                "gsi1pk": evidence_by_wp(wid),
                "gsi1sk": id20(eid),
                "gsi2pk": evidence_by_fr(fr),
                "gsi2sk": id20(eid),
            }
            return [
                Put(evidence_pk(eid), "evidence", attrs, NotExists()),
                check,
                Put(ref_pk, ref_sk, {"artifact_url": url}),
            ]

        return await self._create("evidence", build, explain=self._no_wp(wid))

    async def get_evidence_by_wp(self, wp_id: int) -> list[Evidence]:
        """The package's evidence, by id (none for an unknown package).
        :class:`ValidationError` for a malformed id."""
        wid = check_id(wp_id, "wp_id")
        return [
            evidence_of(i.attrs)
            async for i in self.table.query_all(evidence_by_wp(wid), index="gsi1")
        ]

    async def get_evidence_by_fr(self, fr_id: str) -> list[Evidence]:
        """The evidence for requirement ``fr_id``, by id. :class:`ValidationError` for
        a malformed requirement id."""
        fr = check_name(fr_id, "fr_id")
        return [
            evidence_of(i.attrs)
            async for i in self.table.query_all(evidence_by_fr(fr), index="gsi2")
        ]
