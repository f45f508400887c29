"""Governance: policy rules, metrics, and versioned immutable contracts."""

from __future__ import annotations

from typing import Any

from ... import _time
from ...errors import ValidationError
from ...ports.table import KeyRange, NotExists, Op, Put
from .core import WorkCore, check_type, check_when
from .layout import (
    ACTIVE_POLICIES,
    CONTRACT_TAG,
    conflict,
    contract_of,
    feature_exists,
    governance_pk,
    id20,
    metric_of,
    metrics_pk,
    policy_attrs,
    policy_of,
    version_sk,
)
from .models import (
    MAX_NAME,
    GovernanceContract,
    Metric,
    PolicyRule,
    check_id,
    check_name,
    check_number,
    check_text,
)

__all__ = ["Governance"]


def _check_version(version: Any) -> int:
    if type(version) is not int or not 1 <= version <= 2**31 - 1:
        raise ValidationError(f"version must be an int from 1 to 2**31 - 1, got {version!r}")
    return version


class Governance(WorkCore):
    """Policy rules, metrics and governance contracts."""

    # ---- policy rules

    async def create_policy_rule(self, rule: PolicyRule) -> int:
        """Store a policy rule; return its id. :class:`ValidationError` for a malformed rule."""
        check_type(rule, PolicyRule, "policy rule")
        rid = check_name(rule.rule_id, "rule_id")
        desc = check_text(rule.description, "description")
        if type(rule.is_active) is not bool:
            raise ValidationError(f"is_active must be a bool, got {rule.is_active!r}")

        def build(pid: int) -> list[Op]:
            attrs: dict[str, Any] = {
                "id": pid,
                "rule_id": rid,
                "description": desc,
                "is_active": rule.is_active,
            }
            if rule.is_active:
                attrs.update(gsi1pk=ACTIVE_POLICIES, gsi1sk=id20(pid))
            return [Put(f"work.policy#{pid}", "policy", attrs, NotExists())]

        return await self._create("policy", build, explain={})

    async def list_active_policies(self) -> list[PolicyRule]:
        """Active policy rules, by id."""
        return [
            policy_of(i.attrs) async for i in self.table.query_all(ACTIVE_POLICIES, index="gsi1")
        ]

    # ---- metrics

    async def record_metric(self, metric: Metric) -> int:
        """Store a metric of a feature (or one of its packages); return its id.

        Raises :class:`NotFound` for an unknown feature or package and
        :class:`ValidationError` for a malformed metric (a value that is not a
        finite number, a package of another feature, ...).
        """
        check_type(metric, Metric, "metric")
        fid = check_id(metric.feature_id, "feature_id")
        mtype = check_name(metric.metric_type, "metric_type")
        value = check_number(metric.value, "value")
        unit = check_text(metric.unit, "unit", limit=MAX_NAME, empty=True)
        when = check_when(metric.recorded_at, "recorded_at")
        wid = metric.wp_id
        if wid is not None:
            check_id(wid, "wp_id")
        await self._feature_item(fid)
        ops: list[Op] = [feature_exists(fid)]
        if wid is not None:
            _, check = await self._wp_check(wid, fid)
            ops.append(check)
        stamp = _time.to_text(when or _time.now())

        def build(mid: int) -> list[Op]:
            attrs = {
                "id": mid,
                "feature_id": fid,
                "wp_id": wid,
                "metric_type": mtype,
                "value": value,
                "unit": unit,
                "recorded_at": stamp,
            }
            return [Put(metrics_pk(fid), id20(mid), attrs, NotExists()), *ops]

        return await self._create(
            "metric", build, explain={**self._no_feature(fid), **self._no_wp(wid)}
        )

    async def get_metrics_by_feature(self, feature_id: int) -> list[Metric]:
        """The feature's metrics ordered by ``recorded_at``, those of the same instant
        in the order they were recorded (none for an unknown feature).
        :class:`ValidationError` for a malformed id."""
        fid = check_id(feature_id, "feature_id")
        # stored in recording order (by id); a caller may give earlier times
        items = [i.attrs async for i in self.table.query_all(metrics_pk(fid))]
        items.sort(key=lambda a: (a["recorded_at"], a["id"]))
        return [metric_of(a) for a in items]

    # ---- governance contracts

    async def create_governance_contract(self, contract: GovernanceContract) -> int:
        """Store version ``contract.version`` of a feature's contract; return its id.

        Versions are immutable: storing an existing version is a
        :class:`Conflict`. Raises :class:`NotFound` for an unknown feature and
        :class:`ValidationError` for a malformed contract.
        """
        check_type(contract, GovernanceContract, "governance contract")
        fid = check_id(contract.feature_id, "feature_id")
        version = _check_version(contract.version)
        if isinstance(contract.rules, (str, bytes)) or not isinstance(
            contract.rules, (list, tuple)
        ):
            raise ValidationError("rules must be a list of PolicyRule")
        rules = []
        for r in contract.rules:
            check_type(r, PolicyRule, "each rule")
            check_name(r.rule_id, "rule_id")
            check_text(r.description, "description")
            if type(r.is_active) is not bool or type(r.id) is not int:
                raise ValidationError("a rule's is_active is a bool and its id an int")
            rules.append(policy_attrs(r))
        await self._feature_item(fid)
        now = _time.to_text(_time.now())
        pk, sk = governance_pk(fid), version_sk(version)

        def build(cid: int) -> list[Op]:
            attrs = {
                "id": cid,
                "feature_id": fid,
                "version": version,
                "rules": rules,
                "created_at": now,
            }
            return [Put(pk, sk, attrs, NotExists(), tag=CONTRACT_TAG), feature_exists(fid)]

        exists = conflict(
            f"feature {fid} already has governance contract version {version}; "
            "versions are immutable: store a new version"
        )
        return await self._create(
            "governance", build, explain={CONTRACT_TAG: exists, **self._no_feature(fid)}
        )

    async def get_governance_contract(
        self, feature_id: int, version: int
    ) -> GovernanceContract | None:
        """Version ``version`` of the feature's contract, or None (also for an unknown
        feature). :class:`ValidationError` for a malformed id or version."""
        fid = check_id(feature_id, "feature_id")
        item = await self.table.get(governance_pk(fid), version_sk(_check_version(version)))
        return None if item is None else contract_of(item.attrs)

    async def get_latest_governance_contract(self, feature_id: int) -> GovernanceContract | None:
        """The feature's contract of the highest version, or None (also for an
        unknown feature). :class:`ValidationError` for a malformed id."""
        fid = check_id(feature_id, "feature_id")
        page = await self.table.query(
            governance_pk(fid), KeyRange.prefix("v#"), descending=True, limit=1
        )
        return contract_of(page.items[0].attrs) if page.items else None
