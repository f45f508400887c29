"""The domain stores: the source systems' ports, built on the primitives.

* :mod:`.items` — the generic ``get / put / delete / query`` item API (``sp.items``);
* :mod:`.cas`, :mod:`.runs`, :mod:`.releases` — ``CasStore``, ``RunLedger``,
  ``ReleaseRegistry`` (``sp.cas``, ``sp.runs``, ``sp.releases``);
* :mod:`.council` — ``CouncilRepository`` (``sp.council``);
* :mod:`.work` — the work-tracking ``StoragePort`` (``sp.work``);
* :mod:`.knowledge` — the ``KnowledgeRepository`` (``sp.knowledge``).

They import the ports and primitives only, never a backend.
"""
