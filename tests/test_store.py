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


def test_two_submits_taking_over_one_lapsed_lease_leave_it_with_one_owner(tmp_path, clock):
    """Both read the same lapsed lease; one takes it over first. The other must not remove the lease the first
    just created (both would train the trial, sharing its checkpoint folder)."""
    import types

    first, second = Store(tmp_path), Store(tmp_path)
    rel = "trials/k/lease.json"
    first.write_at(rel, {"owner": "another-host:1:0a5e6649", "expires": clock.now - 1})
    taken = {}
    read = Store._read_lease

    def read_then_the_other_takes_over(self, at):
        held = read(self, at)
        if not taken:  # between this read and its removal, the first submit takes the lapsed lease over
            taken["owner"] = first.acquire_at(rel)
        return held

    second._read_lease = types.MethodType(read_then_the_other_takes_over, second)
    assert second.acquire_at(rel) is None
    assert taken["owner"] and first.holds_at(rel, taken["owner"])
    assert sorted(p.name for p in (tmp_path / "trials" / "k").iterdir()) == ["lease.json"]  # nothing left aside


def test_a_worker_that_lost_its_lease_records_nothing(tmp_path, clock):
    """A worker suspended past its lease while another submit took the trial over: the holder records it, this
    worker neither a result nor a failure (Ray's retry of its task waits for the holder's record)."""
    from harness.plan import expand
    from harness.scheduler import LeaseLost, execute
    from harness.spec import ExperimentSpec

    spec = dict(version=1, models=["tiny-bert"], methods=["adapter"], benchmark="synthetic", targets=["syn_a"])
    trial = expand(ExperimentSpec.model_validate(spec))[0]
    store = Store(tmp_path)

    def suspended(trial, store, **_):
        clock.now += 120  # its lease lapsed meanwhile: another submit takes the trial over
        assert Store(store.location).acquire(trial.key)
        return {"trial": trial.summary(), "test": {"accuracy": 0.5}}

    with pytest.raises(LeaseLost, match="another submit"):
        execute(trial, store.location, {"body": suspended})
    assert not store.is_done(trial.key) and store.failure(trial.key) is None
    assert store.state(trial.key) == "running"  # the other submit's lease stands


def test_a_record_cut_short_is_named_and_a_cut_failure_hides_nothing(tmp_path):
    from harness.store import CorruptRecord

    store = Store(tmp_path)
    store.write_result("k", {"test": {"accuracy": 0.5}})
    (tmp_path / "trials" / "k" / "result.json").write_text("")  # renamed before its bytes reached the disk
    with pytest.raises(CorruptRecord, match=r"trials/k/result\.json: not a readable record"):
        store.result("k")
    (tmp_path / "trials" / "j").mkdir()
    (tmp_path / "trials" / "j" / "failed.json").write_text('{"attempts": 1, "trac')
    assert store.failure("j") is None  # the next failure's record is written whole, its real error kept
    store.write_failure("j", 1, "RuntimeError: the real one")
    assert store.failure("j")["traceback"] == "RuntimeError: the real one"
