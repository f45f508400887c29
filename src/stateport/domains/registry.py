"""Which partitions belong to which domain: the one registry that scoping uses.

Every domain store keeps its items in partitions whose keys start with
prefixes of its own; a copy, a snapshot or a content digest can be limited to
some domains (``stateport copy --only runs,work``, ``Scope.of(["knowledge"])``)
by these prefixes. A new domain store adds its line to :data:`DOMAINS` (and a
filler to :mod:`stateport.testing.snapshot`, whose test checks that every item
the store writes falls under its prefixes).

=========  ==========================================  ====================
domain     what                                        partition keys
=========  ==========================================  ====================
runs       ``sp.runs``: runs and their events           ``run#<id>``
releases   ``sp.releases``: release histories           ``release#<name>``
council    ``sp.council``: orchestrator runs            ``council#<id>``
work       ``sp.work``: features, packages, audit ...   ``work.<kind>...``
knowledge  ``sp.knowledge``: collections, artifacts ...  ``knowledge.<kind>...``
cas        ``sp.cas`` / ``sp.blobs``: every blob        (blobs, no items)
items      ``sp.items``, and every partition that no    the rest
           other domain claims
=========  ==========================================  ====================

Secondary-index keys (``gsi1pk`` ...) are attributes of the items above, not
partitions: they go where their items go. The knowledge repository's snapshot
is ``only=["knowledge", "cas"]``: its artifacts' contents are blobs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from ..errors import ValidationError

__all__ = ["DOMAINS", "Domain", "Scope", "domain_of"]


@dataclass(frozen=True, slots=True)
class Domain:
    """A domain: a name, the partition-key prefixes it owns, and whether it is the
    blob store (``blobs``) or the owner of every unclaimed partition (``rest``)."""

    name: str
    prefixes: tuple[str, ...] = ()
    description: str = ""
    blobs: bool = False
    rest: bool = False


DOMAINS: Final[tuple[Domain, ...]] = (
    Domain("runs", ("run#",), "runs and their events (sp.runs)"),
    Domain("releases", ("release#",), "release histories (sp.releases)"),
    Domain("council", ("council#",), "orchestrator runs and waves (sp.council)"),
    Domain("work", ("work.",), "features, work packages, audit trails (sp.work)"),
    Domain(
        "knowledge",
        ("knowledge.",),
        "collections, artifacts, revisions, relationships, runs (sp.knowledge; "
        "its contents are blobs: take cas along)",
    ),
    Domain("cas", (), "every blob (sp.cas, sp.blobs)", blobs=True),
    Domain("items", (), "sp.items and every partition no other domain claims", rest=True),
)
"""Every domain, in display order."""

_BY_NAME: Final = {d.name: d for d in DOMAINS}
_CLAIMED: Final = tuple(sorted((p, d.name) for d in DOMAINS for p in d.prefixes))
_REST: Final = next(d.name for d in DOMAINS if d.rest)


def _check_registry() -> None:
    prefixes = [p for p, _ in _CLAIMED]
    for a in prefixes:
        for b in prefixes:
            if a != b and b.startswith(a):
                raise AssertionError(f"domain prefixes {a!r} and {b!r} overlap")


_check_registry()


def domain_of(pk: str) -> str:
    """The name of the domain partition ``pk`` belongs to."""
    for prefix, name in _CLAIMED:
        if pk.startswith(prefix):
            return name
    return _REST


def _domain(name: str) -> Domain:
    found = _BY_NAME.get(name) if type(name) is str else None
    if found is None:
        raise ValidationError(
            f"unknown domain {name!r}: the domains are {', '.join(d.name for d in DOMAINS)}"
        )
    return found


@dataclass(frozen=True, slots=True)
class Scope:
    """What a copy, a snapshot or a content digest covers.

    ``domains`` names the registered domains covered (all of them by default);
    ``prefixes`` adds partitions by key prefix, for a caller whose partitions
    are not a registered domain. Build one with :meth:`of`.
    """

    domains: tuple[str, ...] = tuple(d.name for d in DOMAINS)
    prefixes: tuple[str, ...] = ()

    @classmethod
    def of(cls, only: Scope | str | Iterable[str] | None = None) -> Scope:
        """The scope of ``only``: None for everything, a :class:`Scope`, or domain
        names (a list, or one string of comma-separated names: ``"runs,work"``)."""
        if only is None:
            return cls()
        if isinstance(only, Scope):
            return cls.checked(only.domains, only.prefixes)
        names = only.split(",") if isinstance(only, str) else list(only)
        return cls.checked([n.strip() if type(n) is str else n for n in names], ())

    @classmethod
    def checked(cls, domains: Iterable[str], prefixes: Iterable[str] = ()) -> Scope:
        """A scope of these domains and prefixes, validated and in canonical form."""
        names = sorted({_domain(n).name for n in domains}, key=list(_BY_NAME).index)
        extra: list[str] = []
        for p in prefixes:
            if type(p) is not str or not p:
                raise ValidationError(f"a partition-key prefix is a non-empty str, got {p!r}")
            extra.append(p)
        if not names and not extra:
            raise ValidationError("the scope is empty: name at least one domain")
        return cls(tuple(names), tuple(sorted(set(extra))))

    @property
    def everything(self) -> bool:
        """Whether the scope covers every item and every blob."""
        return set(self.domains) == set(_BY_NAME)

    @property
    def blobs(self) -> bool:
        """Whether blobs are in the scope."""
        return any(_BY_NAME[n].blobs for n in self.domains)

    @property
    def rest(self) -> bool:
        """Whether partitions that no domain claims are in the scope."""
        return any(_BY_NAME[n].rest for n in self.domains)

    def contains(self, pk: str) -> bool:
        """Whether partition ``pk`` is in the scope."""
        return domain_of(pk) in self.domains or any(pk.startswith(p) for p in self.prefixes)

    def scan_prefixes(self) -> tuple[str, ...]:
        """The partition-key prefixes whose scans together cover the scope: disjoint,
        none a prefix of another, in order (``("",)``, all partitions, when the scope
        holds the unclaimed rest); their items may still need :meth:`contains`."""
        if self.rest:
            return ("",)
        wanted = sorted(
            {p for n in self.domains for p in _BY_NAME[n].prefixes} | set(self.prefixes)
        )
        kept: list[str] = []
        for p in wanted:
            if not any(p.startswith(k) for k in kept):
                kept.append(p)
        return tuple(kept)

    def describe(self) -> dict[str, list[str]]:
        """The scope as JSON, for manifests and summaries."""
        return {"domains": list(self.domains), "prefixes": list(self.prefixes)}

    def __str__(self) -> str:
        if self.everything and not self.prefixes:
            return "everything"
        return ", ".join([*self.domains, *(f"{p}*" for p in self.prefixes)])
