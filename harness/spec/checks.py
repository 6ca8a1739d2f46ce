"""What the schema cannot say alone: names that exist in the registries, values that fit a method's field,
search settings and sets of tasks, models and sources that agree. Each error is (key.path, message)."""

from __future__ import annotations

import difflib
import math
from pathlib import Path

from harness.spec.schema import ExperimentSpec, Range
from scalearn.catalog import canonical_name, known_model_names
from scalearn.methods import method_class, method_names, value_problems
from scalearn.tasks import BENCHMARKS, TASKS


def _having(methods: list[str], key: str) -> list[str]:
    """Those of ``methods`` that have the hyper-parameter ``key``."""
    return [m for m in methods if key in method_class(m).model_fields]


def _value_error(methods: list[str], key: str, value) -> str | None:
    """What is wrong with ``value`` for ``key`` in the first of ``methods`` it does not fit, or None."""

    for method in methods:
        problems = [problem for problem in value_problems(method, {key: value}) if problem[0]]  # the key's own
        if problems:
            return problems[0][1]
    return None


def _repeated(method: str, location: str, key: str, values: list) -> list[tuple[str, str]]:
    """A grid's value given twice (``1e-3`` and ``0.001`` are one value): one point, trained once, counted twice."""
    seen = {}
    for index, value in enumerate(values):
        parsed = getattr(method_class(method)(**{key: value}), key)
        if parsed in seen:
            return [(f"{location}.{index}", f"{value!r} is the value at position {seen[parsed]} again")]
        seen[parsed] = index
    return []


def _combination_errors(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """Each method's merged hyper-parameters (`all`, its own, a task's, a backbone's) agree with each other
    (e.g. a bf16 backbone needs bf16 precision): values each fine alone, wrong together."""
    tasks = [None, *dict.fromkeys(spec.target_list() + [s for t in spec.target_list() for s in spec.source_list(t)])]
    for method in spec.trained_methods():
        if method not in method_names():
            continue
        for model in spec.models:
            gpus = spec.resources_for(model)["gpus"]
            for task in tasks:
                overrides = spec.overrides_for(method, task, model)
                problems = value_problems(method, overrides)
                rule = next((message for key, message in problems if not key), None)
                where = f" on {task}" if task is not None else ""
                if rule is not None:
                    return [("hyperparameters", f"method {method}{where} with {model}: {rule}")]
                if overrides.get("precision") == "fp16" and not gpus:  # every such trial would fail as it starts
                    rule = "precision fp16 needs a GPU, and its trials ask for none (resources.gpus)"
                    return [("hyperparameters", f"method {method}{where} with {model}: {rule}; use bf16 or fp32")]
    return []


def _hyperparameter_errors(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """Every key of ``hyperparameters`` and ``task_hyperparameters`` names a field of a method, and its value
    is what that field takes (type and range, from the method's own model): `all` and a task's block are
    checked against every method of the experiment that has the key (any registered one if none has it)."""

    errors = []
    blocks = [(f"hyperparameters.{m}", m, o) for m, o in spec.hyperparameters.items()]
    blocks += [(f"task_hyperparameters.{t}", "all", o) for t, o in spec.task_hyperparameters.items()]
    blocks += [(f"model_hyperparameters.{m}", "all", o) for m, o in spec.model_hyperparameters.items()]
    for location, owner, overrides in blocks:
        if owner != "all" and owner not in method_names():
            known = ["all", *method_names()]
            errors.append((location, _unknown("method", owner, known, "a method name or `all`")))
            continue
        if not isinstance(overrides, dict):
            errors.append((location, f"must be a mapping of hyper-parameters (got {overrides!r})"))
            continue
        for key, value in overrides.items():
            having = _having([owner] if owner != "all" else spec.trained_methods(), key)
            if owner == "all" and not having:
                having = _having(method_names(), key)
            if not having:
                whose = f"method {owner}" if owner != "all" else "any method"
                expected = "one of its fields, e.g. learning_rate, epochs, precision; `harness ls methods`"
                errors.append((f"{location}.{key}", f"unknown hyper-parameter for {whose} (expected {expected})"))
                continue
            problem = _value_error(having, key, value)
            if problem is not None:
                errors.append((f"{location}.{key}", problem))
    return errors


def _search_errors(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """A searched method trains in the experiment and has the field; every value (a range's ends) is in the
    field's range; ranges and `trials` fit the sampler; no more search seeds than a searched group has seeds."""
    from harness.search import GRID_LIMIT, grid_size, space_for  # search reads this package's schema: an import cycle

    errors = []
    search = spec.search
    trained = spec.trained_methods()
    sampled = search.sampler != "grid"
    if sampled and search.trials is None:
        errors.append(("search.trials", f"missing: sampler {search.sampler} needs `trials`, the points per group"))
    if not sampled and search.trials is not None:
        errors.append(("search.trials", "a grid trains every combination (expected sampler: random or tpe)"))
    if search.startup is not None and search.sampler != "tpe":
        errors.append(("search.startup", f"only sampler tpe has random start-up points (sampler is {search.sampler})"))
    elif search.startup is not None and search.trials is not None and search.startup > search.trials:
        problem = f"{search.startup} start-up points is more than the {search.trials} trials (expected fewer)"
        errors.append(("search.startup", problem))
    if spec.search_seeds > 1 and not search:
        errors.append(("search_seeds", "searches at several seeds, but nothing is searched (no space under `search:`)"))
    for owner, space in search.spaces().items():
        if owner != "all" and owner not in method_names():
            errors.append((f"search.{owner}", _unknown("method", owner, ["all", *method_names()], "a method or `all`")))
            continue
        if owner != "all" and owner not in trained:
            errors.append(
                (f"search.{owner}", f"method {owner!r} does not train in this experiment (it trains {trained})")
            )
            continue
        owners = [owner] if owner != "all" else trained
        for key, values in space.items():
            having = _having(owners, key)
            if not having:
                whose = f"method {owner}" if owner != "all" else f"any method of the experiment ({', '.join(trained)})"
                errors.append((f"search.{owner}.{key}", f"unknown hyper-parameter for {whose}"))
                continue
            if isinstance(values, Range):
                if not sampled:
                    where = f"search.{owner}.{key}"
                    errors.append((where, "a range needs sampler: random or tpe (a grid takes a list of values)"))
                    continue
                named = {"low": values.low, "high": values.high}
            else:
                named = dict(enumerate(values))
            for index, value in named.items():
                problem = _value_error(having, key, value)
                if problem is not None:
                    errors.append((f"search.{owner}.{key}.{index}", problem))
                    break
            else:
                if not isinstance(values, Range):
                    errors.extend(_repeated(having[0], f"search.{owner}.{key}", key, values))
    if not sampled and not errors:
        for method in trained:
            size = grid_size({k: v for k, v in space_for(spec, method).items() if not isinstance(v, Range)})
            if size > GRID_LIMIT:
                problem = f"{method}'s grid has {size:,} points, more than {GRID_LIMIT:,} (expected sampler: tpe)"
                errors.append(("search", problem))
                break
    if sampled and search.trials is not None and not errors:
        for method in trained:
            space = space_for(spec, method)
            if space and not any(isinstance(v, Range) for v in space.values()):
                size = grid_size(space)
                if search.trials > size:
                    problem = f"{search.trials} is more than the {size} points of {method}'s space (expected ≤ {size})"
                    errors.append(("search.trials", problem))
                    break
    errors.extend(_pruner_errors(spec, trained))
    if search and spec.search_seeds > 1:
        fewest = min(len(spec.seeds_for(task)) for task in spec.target_list())
        if spec.search_seeds > fewest:
            errors.append(("search_seeds", f"{spec.search_seeds} is more than the seeds of a target ({fewest})"))
    return errors


def _pruner_errors(spec: ExperimentSpec, trained: list[str]) -> list[tuple[str, str]]:
    """Successive halving: eta ≥ 2, at least 2 rungs, a first rung of at least one evaluation where the budget is
    known from the file (a budget that depends on the data is checked by the trial itself), and more than one
    point in every searched group."""
    from harness.search import planned_count, rung_fractions, space_for

    search = spec.search
    if search.pruner == "none":
        for name in ("eta", "rungs"):
            if name in search.model_fields_set:
                errors = [(f"search.{name}", "only the successive-halving pruner has rungs (add `pruner: sha`)")]
                return errors
        return []
    if search.eta < 2:
        return [("search.eta", f"{search.eta}: a rung keeps 1/eta of its points (expected an integer ≥ 2)")]
    if search.rungs < 2:
        return [("search.rungs", f"{search.rungs}: halving needs a first rung and a last (expected ≥ 2)")]
    if search.sampler == "tpe":
        return [("search.pruner", "sha runs over a grid or a random sample (sampler tpe proposes from full results)")]
    errors = []
    first = rung_fractions(search)[0]
    for method in trained:
        space = space_for(spec, method)
        if space and planned_count(search, space) < 2:
            errors.append((f"search.{method}", "one point: successive halving needs at least 2 to choose between"))
            continue
        evaluations = _planned_evaluations(spec, method)
        if space and evaluations is not None and math.floor(evaluations * first + 1e-9) < 1:  # as the trainer counts
            problem = (
                f"the first rung, 1/{search.eta ** (search.rungs - 1)} of the budget, is shorter than one of "
                f"{method}'s {evaluations} evaluations (fewer rungs, a smaller eta, or more evaluations)"
            )
            errors.append(("search.rungs", problem))
    return errors[:1] if any(key == "search.rungs" for key, _ in errors) else errors


def _planned_evaluations(spec: ExperimentSpec, method: str) -> int | None:
    """How many times a full trial of ``method`` evaluates on dev, where the file alone says (evaluated by epoch,
    or every N of a fixed number of steps); None where it depends on the data's size."""
    settings = {**spec.hyperparameters.get("all", {}), **spec.hyperparameters.get(method, {})}
    fields = method_class(method).model_fields

    def setting(name: str):
        return settings.get(name, fields[name].default if name in fields else None)

    every, steps, epochs = setting("eval_every_steps"), setting("max_steps"), setting("epochs")
    if every is None:
        return epochs if isinstance(epochs, int) and steps is None else None
    return -(-steps // every) if isinstance(steps, int) and isinstance(every, int) else None


def semantic_errors(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """(key.path, message) for names that do not exist and sets that do not fit together."""

    errors = []
    models = known_model_names()
    for i, model in enumerate(spec.models):
        if model not in models and not Path(model).is_dir():
            errors.append((f"models.{i}", _unknown("model", model, models, "`harness ls models`, or a local folder")))
    for i, method in enumerate(spec.methods):
        if method not in method_names():
            errors.append((f"methods.{i}", _unknown("method", method, method_names(), "`harness ls methods`")))
    if spec.benchmark is None and spec.tasks is None:
        errors.append(("benchmark", "missing: needs `benchmark` or `tasks` (expected one of them)"))
    if spec.benchmark is not None and spec.benchmark not in BENCHMARKS:
        errors.append(("benchmark", _unknown("benchmark", spec.benchmark, list(BENCHMARKS), ", ".join(BENCHMARKS))))
    for field_name in ("tasks", "targets", "sources"):
        for i, task in enumerate(getattr(spec, field_name) or []):
            if task not in TASKS:
                errors.append((f"{field_name}.{i}", _unknown("task", task, list(TASKS), "`harness ls tasks`")))
    for field_name in ("seeds_per_task", "task_hyperparameters"):
        for task in getattr(spec, field_name):
            if task not in TASKS:
                errors.append((f"{field_name}.{task}", _unknown("task", task, list(TASKS), "`harness ls tasks`")))
    errors.extend(_model_block_errors(spec))
    if errors:
        return errors  # the checks below need valid names
    universe = spec.task_list()
    for field_name in ("targets", "sources"):
        for i, task in enumerate(getattr(spec, field_name) or []):
            if task not in universe:
                errors.append((f"{field_name}.{i}", f"task {task!r} is not among the experiment's tasks {universe}"))
    errors.extend(_hyperparameter_errors(spec))
    if not errors:  # each value fits its key: do they fit together
        errors.extend(_combination_errors(spec))
    errors.extend(_search_errors(spec))
    errors.extend(_source_adapter_errors(spec))
    return errors


def _source_adapter_errors(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """`source_adapters` names sources of the transfer trials (and, per model, models of `models`)."""

    errors = []
    sources = sorted({s for target in spec.target_list() for s in spec.source_list(target)})
    ours = {canonical_name(m) for m in spec.models}
    for task, given in spec.source_adapters.items():
        if task not in sources:
            errors.append((f"source_adapters.{task}", _unknown("source task", task, sources, "a source of a target")))
        for name in given if isinstance(given, dict) else ():
            if canonical_name(name) not in ours:
                location = f"source_adapters.{task}.{name}"
                errors.append((location, _unknown("model", name, spec.models, "a name of `models`")))
    if spec.source_adapters and not any(method_class(m).uses_sources for m in spec.methods):
        errors.append(("source_adapters", "no method of this experiment uses source adapters"))
    return errors


def _model_block_errors(spec: ExperimentSpec) -> list[tuple[str, str]]:
    """`model_hyperparameters` and `model_resources` name models of `models`; per-model GPUs and gpus: auto
    (packing by measured memory) do not mix yet."""

    errors = []
    ours = {canonical_name(m) for m in spec.models}
    for field_name in ("model_hyperparameters", "model_resources"):
        for name in getattr(spec, field_name):
            if canonical_name(name) not in ours:
                errors.append((f"{field_name}.{name}", _unknown("model", name, spec.models, "a name of `models`")))
    if spec.model_resources and spec.resources.gpus == "auto":
        errors.append(("model_resources", "per-model resources do not combine with resources.gpus: auto yet"))
    return errors


def _unknown(kind: str, value: str, known: list[str], expected: str) -> str:
    close = difflib.get_close_matches(value, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {value!r}{hint} (expected {expected})"
