"""A real two-node Ray cluster on one machine: a head and a worker started as separate `ray start` processes
on 127.0.0.1 (token-authenticated, as Ray's default asks), a tiny two-stage sweep submitted with --address.

1. Trials run on both nodes, and every MLflow run carries the node it ran on.
2. The worker node is killed (SIGKILL of its process group and of its Ray workers) while one of its trials runs: Ray
   retries the trial on the head, its lease lapses in seconds (HARNESS_LEASE_SECONDS), the sweep
   completes, and every trial has exactly one result and one MLflow run.
Everything the test starts is stopped by it (process groups, not `ray stop`, which would kill any Ray
on the machine)."""

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import stop_group

from harness.plan import expand
from harness.spec import load_spec
from harness.store import Store

ROOT = Path(__file__).resolve().parent.parent
RAY = str(Path(sys.executable).parent / "ray")


def ray_env(tmp_path) -> dict:
    return {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(16),
        "RAY_USAGE_STATS_ENABLED": "0",
        "HARNESS_LEASE_SECONDS": "6",
        "SCALEARN_CACHE_DIR": os.environ.get("SCALEARN_CACHE_DIR", str(tmp_path / "cache")),
    }


def start_node(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    """A node of its own (`ray start --block`); its dashboard agent on a free port, not the 52365 that every
    node would otherwise ask for (the second on a machine then waits 3.4 s for it)."""
    from scalearn.ports import free_port

    command = [RAY, "start", "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    command.append(f"--dashboard-agent-listen-port={free_port()}")
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*command, *args],
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )


def alive_nodes(address: str, env: dict) -> list[dict]:
    code = (
        f"import json, ray; ray.init(address={address!r}, log_to_driver=False); "
        "print(json.dumps([{'id': n['NodeID'], **n['Resources']} for n in ray.nodes() if n['Alive']]))"
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return []
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else []


def listening(address: str) -> bool:
    host, port = address.split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def started(log: Path) -> bool:
    """`ray start --block` has said its node is up (it says so once the node has joined its cluster)."""
    return log.exists() and "Ray runtime started" in log.read_text(errors="replace")


def stop(process: subprocess.Popen | None) -> None:
    """SIGKILL of the node's group at once: a node's SIGTERM shutdown took 5 s or more of every run here, and
    the test owns everything the node holds (its temp dir is removed after)."""
    stop_group(process, grace=0)


@pytest.fixture
def cluster(tmp_path):
    from scalearn.ports import free_port

    env = ray_env(tmp_path)
    address = f"127.0.0.1:{free_port()}"
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    nodes = {}
    try:
        nodes["head"] = start_node(
            [
                "--head",
                f"--port={address.split(':')[1]}",
                "--num-cpus=1",
                '--resources={"head": 1}',
                "--include-dashboard=false",
                f"--temp-dir={temp}",
            ],
            env,
            tmp_path / "head.log",
        )
        deadline = time.time() + 180
        while not (started(tmp_path / "head.log") and listening(address)):  # its log, not a client per poll
            assert time.time() < deadline and nodes["head"].poll() is None, (tmp_path / "head.log").read_text()[-2000:]
            time.sleep(0.2)
        nodes["worker"] = start_node(
            [f"--address={address}", "--num-cpus=1", '--resources={"worker": 1}'], env, tmp_path / "worker.log"
        )
        while not started(tmp_path / "worker.log"):
            ok = time.time() < deadline and nodes["worker"].poll() is None
            assert ok, (tmp_path / "worker.log").read_text()[-2000:]
            time.sleep(0.2)
        while len(alive := alive_nodes(address, env)) < 2:  # once, as a rule: the worker said it has joined
            assert time.time() < deadline, (tmp_path / "worker.log").read_text()[-2000:]
            time.sleep(0.5)
        head_id = next(n["id"] for n in alive if "head" in n)
        yield address, env, nodes, head_id
    finally:
        for process in nodes.values():
            stop(process)
        shutil.rmtree(temp, ignore_errors=True)


def ancestors(pid: int) -> list[int]:
    """The process's parent chain, from /proc (a Ray worker descends from its node's `ray start`); [] for a
    process that is gone."""
    chain = []
    try:
        while pid > 1:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
            chain.append(pid)
    except (OSError, ValueError, IndexError):
        return chain
    return chain


def submit(spec: Path, store: Store, address: str, env: dict) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "harness.cli",
        "submit",
        str(spec),
        "--store",
        str(store.root),
        "--address",
        address,
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def mlflow_runs(store: Store, experiment: str) -> list:
    from mlflow.tracking import MlflowClient

    from harness.tracking import KEY_TAG, store_tracking_uri

    client = MlflowClient(tracking_uri=store_tracking_uri(store))
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    return client.search_runs([experiment_id], filter_string=f"tags.`{KEY_TAG}` != ''", max_results=5000)


def test_trials_run_on_both_nodes_then_a_killed_node_loses_nothing(cluster, tmp_path):
    """One sweep (40 steps a trial, so that one is caught running): once a trial has finished on the worker
    node, the node is killed while another trial runs there. The sweep completes, that trial on the head."""
    address, env, nodes, head_id = cluster
    sweep = tmp_path / "sweep.yaml"
    tiny = (ROOT / "experiments" / "tiny.yaml").read_text()
    sweep.write_text(tiny.replace("seeds: 2", "seeds: 3").replace("max_steps: 3", "max_steps: 40"))
    every = expand(load_spec(sweep))
    store = Store(tmp_path / "store")
    process = submit(sweep, store, address, env)
    worker_group = nodes["worker"].pid

    def finished_on_the_worker() -> bool:
        return any(store.is_done(t.key) and store.result(t.key)["node"] != head_id for t in every)

    victim, deadline = None, time.time() + 300
    while victim is None:  # a trial running on the worker node (its lease holder is a process of that node)
        assert time.time() < deadline and process.poll() is None, "no trial ran on the worker node"
        for trial in every if finished_on_the_worker() else ():
            lease = store.trial_dir(trial.key) / "lease.json"
            try:
                pid = int(json.loads(lease.read_text())["owner"].split(":")[1])
                if worker_group in ancestors(pid) and not store.is_done(trial.key):
                    victim = trial
                    break
            except (OSError, ValueError, KeyError):
                continue
        else:
            time.sleep(0.05)
    # the node dies whole: its `ray start` group, and its Ray workers, which run in groups of their own (killed
    # with the group alone, a worker could still finish its trial and write its result)
    doomed = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if worker_group in ancestors(pid)]
    os.killpg(worker_group, signal.SIGKILL)
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert not store.is_done(victim.key)  # killed before it ended (or the test proves nothing)
    nodes["worker"].wait()
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out[-3000:]
    assert all(store.is_done(t.key) for t in every)
    assert store.result(victim.key)["node"] == head_id  # finished after all, on the surviving node
    runs = mlflow_runs(store, "tiny")
    assert sorted(r.data.tags["harness.trial_key"] for r in runs) == sorted(t.key for t in every)  # none twice
    assert len({r.data.tags["node"] for r in runs}) == 2  # trials ran on both nodes, each run says where
