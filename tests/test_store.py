"""Leases: exclusive, renewed by their holder, lapsing when the holder stops renewing (a dead node). The lease
clock is moved by the test (`harness.store.lease_clock`), never slept on, so the outcome does not depend on how
busy the machine is."""

import pytest

import harness.store
from harness.store import Store


@pytest.fixture
def clock(monkeypatch):
    """A lease clock that stands still until the test moves it (``clock.now += seconds``)."""

    class Clock:
        now = 1_000_000.0

    monkeypatch.setattr(harness.store, "lease_clock", lambda: Clock.now)
    return Clock


def test_a_renewed_lease_holds_and_a_lapsed_one_is_taken_over(tmp_path, clock):
    store = Store(tmp_path)
    owner = store.acquire("k", ttl_seconds=0.5)
    assert owner and store.acquire("k") is None
    clock.now += 0.3
    assert store.renew("k", owner, ttl_seconds=0.5)
    clock.now += 0.3  # past the first expiry, within the renewed one
    assert store.acquire("k") is None and store.state("k") == "running"
    clock.now += 0.4  # the holder stopped renewing: the lease lapses
    assert store.state("k") == "pending"
    successor = store.acquire("k")
    assert successor and successor != owner
    assert not store.renew("k", owner)  # the old holder learns it lost the lease
    store.release("k", owner)  # and cannot release the successor's
    assert store.state("k") == "running"
    store.release("k", successor)
    assert store.state("k") == "pending"


def test_the_default_lease_life_comes_from_the_environment(tmp_path, monkeypatch, clock):
    monkeypatch.setenv("HARNESS_LEASE_SECONDS", "0.2")
    store = Store(tmp_path)
    assert store.acquire("k")
    clock.now += 0.1
    assert store.acquire("k") is None  # still held within its 0.2 s
    clock.now += 0.2
    assert store.acquire("k")


def test_the_lease_of_a_process_of_this_host_that_died_holds_nothing(tmp_path, clock):
    """A worker killed with its driver (Ctrl-C, SIGKILL) leaves its lease unexpired: on this host its owner is known
    dead at once, so the trial is not shown running and the next submit takes it without waiting a lease's life."""
    import socket
    import subprocess
    import sys

    store = Store(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    owner = f"{socket.gethostname()}:{dead.stdout.strip()}:0a5e6649"
    store.write_at("trials/k/lease.json", {"owner": owner, "expires": clock.now + 60})
    assert store.state("k") == "pending" and not store.leased_elsewhere("k")
    assert store.acquire("k")  # taken at once, well within the dead owner's 60 s
    store.write_at(
        "trials/j/lease.json", {"owner": f"another-host:{dead.stdout.strip()}:0a5e6649", "expires": clock.now + 60}
    )
    assert store.state("j") == "running"  # another host's owner is only known dead when its lease lapses
