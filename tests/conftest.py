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
