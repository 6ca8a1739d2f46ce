import os

# Nothing may reach a model or dataset hub in tests.
for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(key, "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# tokenised data of the tests goes to a throw-away folder, not the user's cache
import tempfile  # noqa: E402

os.environ.setdefault("SCALEARN_CACHE_DIR", tempfile.mkdtemp(prefix="scalearn-test-cache-"))

import pytest  # noqa: E402
import torch  # noqa: E402

from scalearn.adapters import BottleneckAdapters  # noqa: E402
from scalearn.methods.base import adapter_config_for  # noqa: E402


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

_RAY_SHAPE: dict | None = None


def local_ray(num_cpus: int = 2, num_gpus: int = 0):
    """This process connected to a local Ray of ``num_cpus`` CPUs (and ``num_gpus`` declared GPUs): the one
    already running when it has that shape, else a new one. Starting Ray costs 5–9 s here, so the tests share
    one; `harness.submit` reuses a Ray that is already running, as a user's notebook would."""
    global _RAY_SHAPE
    import ray

    shape = {"num_cpus": num_cpus, "num_gpus": num_gpus}
    if ray.is_initialized() and shape == _RAY_SHAPE:
        return ray
    ray.shutdown()
    ray.init(**shape, include_dashboard=False, log_to_driver=False)
    _RAY_SHAPE = shape
    return ray


def no_ray() -> None:
    """No Ray in this process: the code under test starts its own (e.g. to give its workers this test's
    environment, which a running Ray's workers do not see)."""
    global _RAY_SHAPE
    import ray

    ray.shutdown()
    _RAY_SHAPE = None


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
    if _RAY_SHAPE is not None:
        no_ray()


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


def pytest_collection_modifyitems(config, items):
    """The rule for `slow`: a test is slow when its module runs whole sweeps or servers (END_TO_END_MODULES),
    when it asks for a Ray (SLOW_FIXTURES), or when it says so itself (`@pytest.mark.slow`: a real model trained
    to a score, a paper-sized plan)."""
    for item in items:
        module = item.module.__name__.rpartition(".")[2] if item.module else ""
        if module in END_TO_END_MODULES or SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
