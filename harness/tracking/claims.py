"""Which runs a destination holds, and who is writing which: markers and short claims in the store.

Several submits may run on one store at once (harness/submit.py), each logging what finishes. So each trial
and parent run is *claimed* before it is written: a short lease in the store
(``tracking/<destination>/<experiment id>/claims/``), then a marker with its run id (``…/logged/<key>.json``,
``…/parents/<hash>.json``) once written. A driver that finds a marker, or a claim held by another, skips the
trial; one that finds a run in the database but no marker (a driver killed between the two) writes the marker
instead of a twin. Nothing here talks to MLflow.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

from harness.store import Store, renewing

CLAIM_WAIT_SECONDS = 600.0
"""How long a driver waits for another to create a parent run it claimed. Claims live as long as leases
(renewed while their holder writes): a dead driver's claim lapses within a minute, at once on its own host."""


class Claims:
    """The markers and claims of one MLflow destination and experiment, under ``prefix`` in ``store``."""

    def __init__(self, store: Store, prefix: str):
        self.store, self.prefix = store, prefix

    def markers(self, kind: str, known=()) -> dict[str, str]:
        """Name → run id of the ``kind`` markers: one listing, and a read for each name not ``known``."""
        names = [name.removesuffix(".json") for name in self.store.names_at(f"{self.prefix}/{kind}")]
        return {name: record["run_id"] for name in names if name not in known and (record := self.marker(kind, name))}

    def marker(self, kind: str, name: str) -> dict | None:
        return self.store.read_at(f"{self.prefix}/{kind}/{name.removesuffix('.json')}.json")

    def mark(self, kind: str, name: str, run_id: str, **extra) -> None:
        self.store.write_at(f"{self.prefix}/{kind}/{name}.json", {"run_id": run_id, **extra})

    @contextlib.contextmanager
    def claimed(self, names: list[str]):
        """Claim each name for this driver; yields the names claimed (those another driver holds are left
        out), renewing the claims until the block ends, then releasing them."""
        owners = {}
        for name in names:
            owner = self.store.acquire_at(f"{self.prefix}/claims/{name}.json")
            if owner is not None:
                owners[name] = owner

        def renew():
            for name, owner in owners.items():
                with contextlib.suppress(OSError):
                    self.store.renew_at(f"{self.prefix}/claims/{name}.json", owner)

        try:
            with renewing(renew):
                yield list(owners)
        finally:
            for name, owner in owners.items():
                self.store.release_at(f"{self.prefix}/claims/{name}.json", owner)

    def once(self, kind: str, name: str, claim: str, create: Callable[[], str], **extra) -> str:
        """The run id of marker ``kind/name``, made by ``create()`` (which may find the run instead) by whichever
        driver claims ``claim`` first and marked with ``extra``; the others wait for the marker."""
        deadline = time.time() + CLAIM_WAIT_SECONDS
        while True:
            marker = self.marker(kind, name)
            if marker is not None:
                return marker["run_id"]
            with self.claimed([claim]) as claimed:
                if claimed:
                    marker = self.marker(kind, name)
                    run_id = marker["run_id"] if marker else create()
                    self.mark(kind, name, run_id, **extra)
                    return run_id
            if time.time() > deadline:
                raise RuntimeError(f"MLflow run {extra or name!r}: still claimed by another submit")
            time.sleep(0.2)
