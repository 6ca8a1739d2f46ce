import os

# Nothing may reach a model or dataset hub in tests.
for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(key, "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# tokenised data of the tests goes to a throw-away folder, not the user's cache
import secrets  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("SCALEARN_CACHE_DIR", tempfile.mkdtemp(prefix="scalearn-test-cache-"))

import pytest  # noqa: E402
import torch  # noqa: E402

from scalearn.adapters import BottleneckAdapters  # noqa: E402
from scalearn.methods.base import adapter_config_for  # noqa: E402
from scalearn.ports import free_port  # noqa: E402


def random_sources(encoder, num_sources: int, seed: int = 0) -> BottleneckAdapters:
    """A frozen bank of source adapters with non-trivial weights and biases (as if trained)."""
    bank = BottleneckAdapters(adapter_config_for(encoder), num_sources, names=[f"task{i}" for i in range(num_sources)])
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in bank.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    return bank.requires_grad_(False)


@pytest.fixture
def make_sources():
    return random_sources


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A tokenisation cache shared by the tests of one module."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Three stage-1 adapter artifacts for tiny-bert (random but fixed weights), the target's (syn_a) last."""
    from scalearn import load_encoder, save_adapter

    root = tmp_path_factory.mktemp("sources")
    bank = random_sources(load_encoder("tiny-bert"), 3)
    folders = []
    for index, name in enumerate(["syn_b", "syn_c", "syn_a"]):
        bank.names[index] = name
        save_adapter(root / name, bank, index=index)
        folders.append(root / name)
    return folders


# -- Ray: one local cluster for the tests that run trials on it ------------------------------------------------

# Every Ray of the tests (the shared one, a test's own, a driver's) authenticates with this token.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(16))
# A Ray that is not named is a new local one, never the Ray this machine started last (`ray.init()`'s default):
# the tests' own, or a study's running beside them. Measured: Ray Train's two-rank runs take 21 and 12 s with it,
# 35 and 25 s without while another Ray runs on the machine.
os.environ.setdefault("RAY_ADDRESS", "local")

_RAY: dict = {}
"""The shared embedded Ray while this process holds it: its shape."""
_HEAD: dict = {}
"""The tests' `ray start` head for drivers in their own processes, while it runs: its address and process."""


def local_ray(num_cpus: int = 2, num_gpus: int = 0):
    """This process connected to a local Ray of ``num_cpus`` CPUs (and ``num_gpus`` declared GPUs): the one
    already running when it has that shape, else a new one. Starting Ray costs 5–9 s here, so the tests share
    one; `harness.submit` reuses a Ray that is already running, as a user's notebook would. (``address="local"``:
    a bare `ray.init()` would join whatever Ray this machine started last, a study's for instance.)"""
    import ray

    shape = {"num_cpus": num_cpus, "num_gpus": num_gpus}
    if ray.is_initialized() and _RAY.get("shape") == shape:
        return ray
    no_ray()
    ray.init(address="local", **shape, include_dashboard=False, log_to_driver=False)
    _RAY["shape"] = shape
    return ray


def no_ray() -> None:
    """No shared Ray in this process: the code under test starts its own (e.g. to give its workers this test's
    environment, which a running Ray's workers do not see)."""
    import ray

    ray.shutdown()
    _RAY.clear()


def shared_ray_address() -> str:
    """The address of a Ray for drivers in their own processes (`--address`), started once for the session: a
    driver joins it in 0.02 s and leaves in 0.3 s, where a local Ray of its own takes 6.5 s to start and 1.3 s to
    stop. A `ray start` head with its dashboard agent on a free port: a Ray started by `ray.init` always asks
    for 52365, and while one holds it every other Ray on the machine waits 3.4 s for it first. (Ray Train runs
    2–3 times slower on such a head than on an embedded Ray: the tests in this process keep `local_ray`.)"""
    if _HEAD.get("process") is not None and _HEAD["process"].poll() is None:
        return _HEAD["address"]
    port, temp = free_port(), tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: socket paths ≤ 107 bytes
    command = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--disable-usage-stats"]
    command += [f"--port={port}", f"--temp-dir={temp}", "--include-dashboard=false", "--num-cpus=2"]
    command.append(f"--dashboard-agent-listen-port={free_port()}")
    log = Path(temp) / "head.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)
    _HEAD.update(address=f"127.0.0.1:{port}", process=process, temp=temp)
    deadline = time.time() + 120
    while "Ray runtime started" not in log.read_text(errors="replace"):  # it says so once it takes drivers
        if process.poll() is not None or time.time() > deadline:
            raise RuntimeError(f"the tests' Ray head did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    return _HEAD["address"]


def stop_group(process: subprocess.Popen | None, grace: float = 10) -> None:
    """SIGTERM to a process started in a session of its own (a `ray start --block` node, a server) and its
    group, SIGKILL after ``grace`` seconds (`ray start --block` can take 30 s to go)."""
    if process is not None and process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _stop_head() -> None:
    """SIGKILL of the head's group: its SIGTERM shutdown ran out the 10 s grace at every session's end; its
    workers exit with their raylet, and its temp dir is removed here."""
    stop_group(_HEAD.pop("process", None), grace=0)
    if "temp" in _HEAD:
        shutil.rmtree(_HEAD.pop("temp"), ignore_errors=True)


@pytest.fixture
def ray_local():
    """The shared local Ray (2 CPUs), started by the first test that asks for it."""
    return local_ray()


@pytest.fixture
def own_ray():
    """No shared Ray while this test runs: what it submits starts a Ray of its own."""
    no_ray()
    yield
    no_ray()


def pytest_sessionfinish(session, exitstatus):
    no_ray()
    _stop_head()


# -- which tests are slow: `make test-fast` runs the others ----------------------------------------------------

END_TO_END_MODULES = {
    "test_benchmarks_run",  # each benchmark's own main, on tiny settings
    "test_concurrent",  # several driver processes on one store
    "test_deepspeed",  # DeepSpeed engines, ZeRO stages, Ray Train ranks
    "test_multinode",  # a two-node Ray cluster, a node killed
    "test_postgres",  # an MLflow server over PostgreSQL
    "test_remote_store",  # a sweep through an S3 server
    "test_scheduler",  # trials on a real Ray
    "test_submit",  # whole sweeps, a SIGKILLed driver
    "test_synthetic_transfer",  # stage 1 then stage 2 trained to convergence
}
SLOW_FIXTURES = {"ray_local", "own_ray", "ray_cluster", "ray_one_gpu"}
RESTARTING_FIXTURES = {"own_ray", "ray_one_gpu"}


def pytest_collection_modifyitems(config, items):
    """The rule for `slow`: a test is slow when its module runs whole sweeps or servers (END_TO_END_MODULES),
    when it asks for a Ray (SLOW_FIXTURES), or when it says so itself (`@pytest.mark.slow`: a real model trained
    to a score, a paper-sized plan)."""
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if item.module else ""
        if module in END_TO_END_MODULES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    # Modules with a test that stops the shared Ray (`own_ray`, or a Ray of another shape) run last, whole and in
    # their order: the shared Ray then starts once for every other test, and its workers stay warm (each restart
    # cost 5–7 s to start Ray, ~1.3 s to stop it, and ~6 s for its workers' first trial: 7 starts became 4).
    restarting = {item.module for item in items if RESTARTING_FIXTURES & set(getattr(item, "fixturenames", ()))}
    items.sort(key=lambda item: item.module in restarting)
