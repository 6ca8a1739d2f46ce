"""Hyper-parameters chosen on dev, the same way for every method: the `search:` block of an experiment file.

A *group* is what one choice serves: one model × method × target (a joint method: × its task set; a source
adapter: × its task). A searched group trains each of its points at its first ``search_seeds`` seeds (role
"search"); once every point is planned and done, the point with the best dev selection value (the value the
trial itself selected its checkpoint on: its dev loss, or its task's metric; mean over the search seeds) is
the group's choice, and the group's final trials train at that point with every seed. A search trial at the
chosen point and a final seed has the final trial's content key: it is that trial, trained once.

The points (``sample``):

- ``grid``: every combination of the lists, in the order the file gives them;
- ``random``: ``trials`` points drawn one after another from a generator seeded with ``seed`` (a list is a
  choice among its values; a range is uniform, or log-uniform with ``log: true``; whole numbers when both
  ends are; other numbers rounded to 4 significant digits so a point reads well and keys stay stable); a
  point drawn twice is drawn again. The draw does not look at results, so raising ``trials`` keeps the
  earlier points and trains only the new ones;
- ``tpe``: the first ``startup`` points are the random sampler's; each later one is proposed by Optuna's
  tree-structured Parzen estimator from the points before it and their dev values, once they are all done
  (point i's proposal is seeded with ``seed`` and i, from a fresh in-memory study: no Optuna storage, the
  store's results are the only history). The same results propose the same points, so a resubmit replans
  exactly where the search stood.

The same space draws the same points in every group. The choice is a pure function of finished results
(ties: the first point; a NaN, or a trial that failed for good, is the worst value), so every resubmit
makes the same one unless it retried a failed point. Test scores never choose anything.
"""

from __future__ import annotations

import itertools
import math
import random
import warnings
from collections.abc import Callable

from harness.spec import ExperimentSpec, Range, SearchSpec
from scalearn.methods import method_class
from scalearn.tasks import get_task

FAILED = {"failed": True}
"""What a search trial that failed for good reads as: its dev value is NaN, the worst."""


def space_for(spec: ExperimentSpec, method: str, task: str | None = None) -> dict[str, list | Range]:
    """The space of ``method``: `all`'s fields that the method has, then its own block's; less the fields that
    ``task``'s own block (`task_hyperparameters`) sets, which that task's groups keep fixed (e.g. the source
    adapters of a study at a rate chosen before, while the targets are searched)."""

    fields = method_class(method).model_fields
    spaces = spec.search.spaces()
    space = {key: values for key, values in spaces.get("all", {}).items() if key in fields}
    space.update(spaces.get(method, {}))
    pinned = spec.task_hyperparameters.get(task, {}) if task is not None else {}
    return {key: values for key, values in space.items() if key not in pinned}


def grid_points(space: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, in the order the file lists them."""
    keys = list(space)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(space[k] for k in keys))]


GRID_LIMIT = 100_000
"""The most points a grid group may have: past it, a sampler (random or tpe) with `trials` is the way."""


def grid_size(space: dict[str, list]) -> int:
    """How many points the grid has (without listing them)."""
    return math.prod(len(values) for values in space.values())


def startup_count(search: SearchSpec) -> int:
    """tpe: how many random points come before the model proposes (default a third of `trials`, at most 10)."""
    trials = search.trials or 1
    return min(search.startup or min(10, math.ceil(trials / 3)), trials)


def planned_count(search: SearchSpec, space: dict) -> int:
    """How many points the group will have once its search is complete."""
    if search.sampler == "grid":
        return grid_size(space)
    return len(random_points(space, search.trials, search.seed)) if search.sampler == "random" else search.trials


def random_points(space: dict[str, list | Range], count: int, seed: int) -> list[dict]:
    """``count`` distinct points drawn in order (fewer if the space has fewer)."""
    rng = random.Random(seed)
    points: list[dict] = []
    misses = 0
    while len(points) < count and misses < 100:  # a small space of lists runs out of new points
        point = {key: _draw(rng, values) for key, values in space.items()}
        if point in points:
            misses += 1
            continue
        points.append(point)
        misses = 0
    return points


def _draw(rng: random.Random, values: list | Range):
    if not isinstance(values, Range):
        return values[rng.randrange(len(values))]
    low, high = values.low, values.high
    drawn = math.exp(rng.uniform(math.log(low), math.log(high))) if values.log else rng.uniform(low, high)
    if values.integer:
        return min(max(round(drawn), low), high)
    return min(max(float(f"{drawn:.4g}"), low), high)


def sample(
    search: SearchSpec, space: dict, value_of: Callable[[dict], tuple[float, bool] | None]
) -> tuple[list[dict], list]:
    """(the points planned so far, their dev values: (mean, lower is better), or None while unfinished).

    ``value_of`` is asked about every point as it is planned (the planner plans its trials then). The search
    is complete when there are ``planned_count`` points and every value is known."""
    if search.sampler == "grid":
        points = grid_points(space)
    else:
        first = search.trials if search.sampler == "random" else startup_count(search)
        points = random_points(space, first, search.seed)
    values = [value_of(point) for point in points]
    while search.sampler == "tpe" and len(points) < search.trials and None not in values:
        points.append(_tpe_point(search, space, points, values))
        values.append(value_of(points[-1]))
    return points, values


def _tpe_point(search: SearchSpec, space: dict, points: list[dict], values: list[tuple[float, bool]]) -> dict:
    """Optuna's TPE proposal for point ``len(points)``, from the points before it and their dev values."""

    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {}
    for key, choices in space.items():
        if not isinstance(choices, Range):
            distributions[key] = CategoricalDistribution(choices)
        elif choices.integer:
            distributions[key] = IntDistribution(choices.low, choices.high, log=choices.log)
        else:
            distributions[key] = FloatDistribution(choices.low, choices.high, log=choices.log)
    lower = next((lower for value, lower in values if not math.isnan(value)), True)
    index = len(points)
    for attempt in range(10):  # a proposal equal to an earlier point would waste the slot: ask again
        sampler = optuna.samplers.TPESampler(seed=search.seed * 100_003 + index * 101 + attempt, n_startup_trials=0)
        study = optuna.create_study(direction="minimize" if lower else "maximize", sampler=sampler)
        for point, (value, _) in zip(points, values, strict=True):
            state = optuna.trial.TrialState.FAIL if math.isnan(value) else optuna.trial.TrialState.COMPLETE
            trial = optuna.trial.create_trial(
                params=point, distributions=distributions, value=None if math.isnan(value) else value, state=state
            )
            study.add_trial(trial)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            proposed = study.ask(distributions).params
        point = {key: _tidy(proposed[key], space[key]) for key in space}
        if point not in points:
            return point
    return point


def _tidy(value, choices):
    if isinstance(choices, Range) and not choices.integer:
        return min(max(float(f"{value:.4g}"), choices.low), choices.high)
    return value


def search_seeds(final_seeds: list[int], count: int) -> list[int]:
    """The seeds a point trains: the group's first ``count`` final seeds (a group with fewer, such as a source
    adapter at its one seed, continues with the next integers)."""
    seeds = list(final_seeds[:count])
    while len(seeds) < count:
        seeds.append(max(seeds) + 1)
    return seeds


def selection_value(result: dict) -> tuple[float, bool | None]:
    """(the dev value the trial selected its checkpoint on, whether lower is better; None: not known, as for a
    trial that failed for good)."""
    if result.get("failed"):
        return math.nan, None
    best = result.get("best_dev", {})
    if result.get("selected_by", "loss") == "loss":
        return _number(best.get("loss")), True
    if "score" in best:  # a joint run: the mean main metric over its tasks
        return _number(best["score"]), False

    return _number(best.get(get_task(result["task"]).metric)), False


def _number(value) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def point_value(keys: list[str], result_of: Callable[[str], dict | None]) -> tuple[float, bool | None] | None:
    """(mean dev value over the point's search trials, lower is better), or None while one is unfinished."""
    results = [result_of(key) for key in keys]
    if any(result is None for result in results):
        return None
    values = [selection_value(result) for result in results]
    lower = next((lower for _, lower in values if lower is not None), None)
    numbers = [value for value, _ in values]
    mean = math.nan if any(math.isnan(v) for v in numbers) else sum(numbers) / len(numbers)
    return mean, lower


def rung_fractions(search: SearchSpec) -> list[float]:
    """Successive halving: each rung's share of a trial's budget (its dev evaluations), first to last:
    1/eta^(rungs-1), …, 1/eta, 1. Without a pruner: one rung, the whole budget."""
    if search.pruner != "sha":
        return [1.0]
    return [1 / search.eta ** (search.rungs - 1 - rung) for rung in range(search.rungs)]


def promoted(values: list[tuple[float, bool | None]], eta: int) -> list[int]:
    """The indices of the points a rung promotes: the best ceil(n/eta) (at least one) by mean dev value, in the
    points' order (ties: the earlier point; NaN, or failed for good: the worst)."""
    lower = next((lower for _, lower in values if lower is not None), True)
    worst = math.inf if lower else -math.inf
    ranked = [worst if math.isnan(mean) else mean for mean, _ in values]
    order = sorted(range(len(values)), key=lambda i: (ranked[i] if lower else -ranked[i], i))
    return sorted(order[: max(1, math.ceil(len(values) / eta))])


def best_index(values: list[tuple[float, bool | None]]) -> int:
    """The chosen point: the best mean (ties: the first point; NaN: the worst)."""
    lower = next((lower for _, lower in values if lower is not None), True)
    worst = math.inf if lower else -math.inf
    ranked = [worst if math.isnan(mean) else mean for mean, _ in values]
    return ranked.index(min(ranked) if lower else max(ranked))
