"""Every value of an experiment file is checked at `harness validate`: for every field of every block (the spec's
own, data, resources, every method's hyper-parameters, `all`, a task's), a wrongly typed and an out-of-range
value, generated from the models themselves, give exit 2 and one line naming the file and the key. And
validate imports no torch."""

import subprocess
import sys
import typing
from pathlib import Path

import annotated_types
import pytest
import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from harness.cli import main
from harness.spec import DataOptions, ExperimentSpec, Resources
from scalearn.config import LoopConfig
from scalearn.methods import method_class, method_names

ROOT = Path(__file__).resolve().parent.parent
WRONG_TYPES = ("fast", [1.5], {"a": 1}, 3.5, True)


def _constraints(annotation, metadata) -> tuple[list, list]:
    """(numeric bounds, literal choices) anywhere in an annotation."""
    bounds, choices = [], []
    for item in metadata:
        if isinstance(item, FieldInfo):
            bounds += item.metadata
        else:
            bounds.append(item)
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        more_bounds, more_choices = _constraints(base, extra)
        bounds, choices = bounds + more_bounds, choices + more_choices
    elif origin is typing.Literal:
        choices += list(typing.get_args(annotation))
    elif origin is not None:
        for member in typing.get_args(annotation):
            if member is not type(None) and typing.get_origin(member) is not list:
                more_bounds, more_choices = _constraints(member, [])
                bounds, choices = bounds + more_bounds, choices + more_choices
    return bounds, choices


def invalid_values(info: FieldInfo) -> tuple[object, object | None]:
    """(a value of the wrong type, a value of the right type out of range — None when the field has no range)."""
    adapter = TypeAdapter(typing.Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation)

    def rejected(value) -> bool:
        try:
            adapter.validate_python(value)
        except ValidationError:
            return True
        return False

    wrong = next(value for value in WRONG_TYPES if rejected(value))
    bounds, choices = _constraints(info.annotation, info.metadata)
    candidates = []
    for bound in bounds:
        if isinstance(bound, annotated_types.Gt):
            candidates += [bound.gt, bound.gt - 1]
        elif isinstance(bound, annotated_types.Ge):
            candidates.append(bound.ge - 1)
        elif isinstance(bound, annotated_types.Lt):
            candidates.append(bound.lt)
        elif isinstance(bound, annotated_types.Le):
            candidates.append(bound.le + 1)
        elif isinstance(bound, annotated_types.MinLen):
            candidates.append([])
    numbers = [c for c in choices if isinstance(c, int) and not isinstance(c, bool)]
    candidates += ["no-such-choice"] if any(isinstance(c, str) for c in choices) else []
    candidates += [max(numbers) + 1] if numbers else []
    out_of_range = next((value for value in candidates if rejected(value)), None)
    return wrong, out_of_range


BASE = {"version": 1, "models": ["tiny-bert"], "tasks": ["syn_a", "syn_b"], "seeds": 1}


def cases() -> list[tuple[str, dict, str]]:
    """(the key path, the file's content, which invalid value) for every field of every block."""
    out = []

    def add(location: str, info: FieldInfo, build) -> None:
        wrong, out_of_range = invalid_values(info)
        out.append((location, build(wrong), "wrong type"))
        if out_of_range is not None:
            out.append((location, build(out_of_range), "out of range"))

    top = {"methods": ["adapter"], **BASE}
    for name, info in ExperimentSpec.model_fields.items():
        add(name, info, lambda value, name=name: {**top, name: value})
    for block, model in (("data", DataOptions), ("resources", Resources)):
        for name, info in model.model_fields.items():
            add(f"{block}.{name}", info, lambda value, block=block, name=name: {**top, block: {name: value}})
    for method in method_names():
        for name, info in method_class(method).model_fields.items():
            spec = {**BASE, "methods": [method]}

            def build(value, spec=spec, method=method, name=name):
                return {**spec, "hyperparameters": {method: {name: value}}}

            add(f"hyperparameters.{method}.{name}", info, build)
    for name, info in LoopConfig.model_fields.items():
        spec = {**BASE, "methods": ["adapter", "scalearn"]}
        add(f"hyperparameters.all.{name}", info, lambda v, s=spec, n=name: {**s, "hyperparameters": {"all": {n: v}}})
        add(
            f"task_hyperparameters.syn_a.{name}",
            info,
            lambda v, s=spec, n=name: {**s, "task_hyperparameters": {"syn_a": {n: v}}},
        )
    return out


CASES = cases()


def test_the_cases_cover_every_field_of_every_block():
    locations = {location for location, _, _ in CASES}
    for method in method_names():
        assert {f"hyperparameters.{method}.{name}" for name in method_class(method).model_fields} <= locations
    assert {f"resources.{name}" for name in Resources.model_fields} <= locations
    ranged = [loc for loc, _, kind in CASES if kind == "out of range"]
    assert "hyperparameters.adapter.learning_rate" in ranged and "hyperparameters.scalearn.shape" in ranged
    assert "hyperparameters.adapter.zero_stage" in ranged and "resources.packing_margin" in ranged
    assert len(CASES) > 700


def test_every_wrong_value_is_one_line_naming_file_and_key(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    failures = []
    for location, content, kind in CASES:
        path.write_text(yaml.safe_dump(content))
        code = main(["validate", str(path)])
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        prefix = f"{path}:{location}"
        good = code == 2 and len(lines) == 1 and "Traceback" not in captured.err and lines[0].startswith(prefix)
        if not good:
            failures.append(f"{location} ({kind}, {content}): exit {code}, {captured.err.strip()!r}")
    assert not failures, "\n".join(failures[:20])


def test_hyper_parameter_messages_say_what_the_value_must_be(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    for overrides, expected in (
        ({"learning_rate": "fast"}, "hyperparameters.adapter.learning_rate: must be a number > 0 (got 'fast')"),
        ({"learning_rate": -0.001}, "must be a number > 0 (got -0.001)"),
        ({"epochs": -3}, "hyperparameters.adapter.epochs: must be a whole number ≥ 1 (got -3)"),
        ({"batch_size": 0}, "must be a whole number ≥ 1 (got 0)"),
        ({"max_steps": "seven"}, "max_steps: must be a whole number ≥ 1 or null (got 'seven')"),
        ({"precision": "fp64"}, "precision: must be one of 'fp32', 'bf16', 'fp16' (got 'fp64')"),
        ({"warmup_ratio": 1.5}, "warmup_ratio: must be a number in [0, 1) (got 1.5)"),
        ({"zero_stage": 4}, "zero_stage: must be a whole number in [0, 3] (got 4)"),
        ({"epochs": True}, "epochs: must be a whole number ≥ 1 (got True)"),
    ):
        path.write_text(yaml.safe_dump({**BASE, "methods": ["adapter"], "hyperparameters": {"adapter": overrides}}))
        assert main(["validate", str(path)]) == 2
        assert capsys.readouterr().err.strip().endswith(expected)


def test_yaml_spellings_of_numbers_are_numbers(tmp_path, capsys):
    """PyYAML reads `1e-4` as a string; it is the number 0.0001, and the trial's config holds the number."""
    from harness.plan import expand
    from harness.spec import load_spec

    path = tmp_path / "ok.yaml"
    path.write_text(
        yaml.safe_dump({**BASE, "methods": ["adapter"]}) + "hyperparameters:\n  adapter: {learning_rate: 1e-4}\n"
    )
    assert main(["validate", str(path)]) == 0
    (trial,) = [t for t in expand(load_spec(path)) if t.task == "syn_a"]
    assert trial.config.loop.learning_rate == 0.0001


def test_validate_imports_no_torch():
    """Run with torch made unimportable: validate answers, on the paper's largest files too."""
    script = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers', 'deepspeed', 'ray', 'mlflow', 'datasets'):\n"
        "            raise ImportError(f'{name} is not importable in this test')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from harness.cli import main\n"
        "codes = [main(['validate', f]) for f in sys.argv[1:]]\n"
        "sys.exit(max(codes))\n"
    )
    files = [str(ROOT / "experiments" / name) for name in ("glue.yaml", "superglue.yaml", "gsg.yaml", "tiny.yaml")]
    done = subprocess.run([sys.executable, "-c", script, *files], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("ok:") == 4 and "587 trials" in done.stdout


@pytest.mark.parametrize("model", [LoopConfig, Resources, DataOptions])
def test_models_are_strict_about_names(model: type[BaseModel]):
    with pytest.raises(ValidationError, match="Extra inputs"):
        model(no_such_key=1)
