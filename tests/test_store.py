"""Leases: exclusive, renewed by their holder, lapsing when the holder stops renewing (a dead node)."""

import time

from harness.store import Store


def test_a_renewed_lease_holds_and_a_lapsed_one_is_taken_over(tmp_path):
    store = Store(tmp_path)
    owner = store.acquire("k", ttl_seconds=0.5)
    assert owner and store.acquire("k") is None
    time.sleep(0.3)
    assert store.renew("k", owner, ttl_seconds=0.5)
    time.sleep(0.3)  # past the first expiry, within the renewed one
    assert store.acquire("k") is None and store.state("k") == "running"
    time.sleep(0.4)  # the holder stopped renewing: the lease lapses
    assert store.state("k") == "pending"
    successor = store.acquire("k")
    assert successor and successor != owner
    assert not store.renew("k", owner)  # the old holder learns it lost the lease
    store.release("k", owner)  # and cannot release the successor's
    assert store.state("k") == "running"
    store.release("k", successor)
    assert store.state("k") == "pending"


def test_the_default_lease_life_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_LEASE_SECONDS", "0.2")
    store = Store(tmp_path)
    assert store.acquire("k")
    time.sleep(0.3)
    assert store.acquire("k")
