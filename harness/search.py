"""Hyper-parameters chosen on dev, the same way for every method: the `search:` block of an experiment file.

A *group* is what one choice serves: one model × method × target (a joint method: × its task set; a source
adapter: × its task). A searched group trains every point of its grid at its first ``search_seeds`` seeds
(role "search"), then, once they are all done, the point with the best dev selection value (the value the
trial itself selected its checkpoint on: its dev loss, or its task's metric; mean over the search seeds) is
the group's choice, and the group's final trials train at that point with every seed. A search trial at the
chosen point and a final seed has the final trial's content key: it is that trial, trained once.

The choice is a pure function of finished results (ties: the first point in grid order; a NaN is the worst
value), so every resubmit makes the same one, and a point added to the grid trains only itself and may move
the choice. Test scores never choose anything.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

from harness.spec import ExperimentSpec


def space_for(spec: ExperimentSpec, method: str) -> dict[str, list]:
    """The grid of ``method``: `all`'s fields that the method has, then its own block's."""
    from scalearn.methods import method_class

    fields = method_class(method).model_fields
    space = {key: values for key, values in spec.search.get("all", {}).items() if key in fields}
    space.update(spec.search.get(method, {}))
    return space


def grid_points(space: dict[str, list]) -> list[dict]:
    """Every combination of the grid's values, in the order the file lists them."""
    keys = list(space)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(space[k] for k in keys))]


def search_seeds(final_seeds: list[int], count: int) -> list[int]:
    """The seeds a point trains: the group's first ``count`` final seeds (a group with fewer, such as a source
    adapter at its one seed, continues with the next integers)."""
    seeds = list(final_seeds[:count])
    while len(seeds) < count:
        seeds.append(max(seeds) + 1)
    return seeds


def selection_value(result: dict) -> tuple[float, bool]:
    """(the dev value the trial selected its checkpoint on, whether lower is better)."""
    best = result.get("best_dev", {})
    if result.get("selected_by", "loss") == "loss":
        return _number(best.get("loss")), True
    if "score" in best:  # a joint run: the mean main metric over its tasks
        return _number(best["score"]), False
    from scalearn.tasks import get_task

    return _number(best.get(get_task(result["task"]).metric)), False


def _number(value) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


def choose(keys_by_point: list[list[str]], result_of: Callable[[str], dict | None]) -> tuple[int, list] | None:
    """(index of the chosen point, each point's mean dev value), or None while a search trial is unfinished."""
    means, lower = [], True
    for keys in keys_by_point:
        results = [result_of(key) for key in keys]
        if any(result is None for result in results):
            return None
        values = [selection_value(result) for result in results]
        lower = values[0][1]
        numbers = [value for value, _ in values]
        means.append(math.nan if any(math.isnan(v) for v in numbers) else sum(numbers) / len(numbers))
    worst = math.inf if lower else -math.inf
    ranked = [worst if math.isnan(mean) else mean for mean in means]
    best = min(ranked) if lower else max(ranked)
    return ranked.index(best), means
