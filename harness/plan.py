"""An ExperimentSpec → the trials it needs, in stage order, each with its content key.

Stage 1 trains single-task models: the source adapters that transfer trials consume (seed
``source_seed``, as the paper uses the seed-0 adapters for every stage-2 seed) and the single-task
baselines (adapter, full_ft) on every target and seed. Stage 2 trains the transfer methods on every
target and seed, each naming the keys of its source adapters, the target's own last. A joint multi-task
method (FT-m, Adapter-m, ProPETL-m, HyperFormer) is one stage-1 trial per model and seed that trains every
task of the experiment at once (its config's ``tasks``; its ``task`` names the set, e.g. "glue") and yields
a result for each of them (``task_results``).

A trial's config is scalearn's typed ``TrialConfig``, built and checked here without torch; its key is the
hash of that config (the fields marked outside the key left out), the keys it consumes and the core's
version, so an identical trial asked for twice (the seed-0 adapter baseline and the source adapter of the
same task) is one trial, and any change to what it computes makes a new one.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace

import scalearn
from harness.search import (
    FAILED,
    best_index,
    planned_count,
    point_value,
    promoted,
    rung_fractions,
    sample,
    search_seeds,
    space_for,
)
from harness.spec import ExperimentSpec, SpecError
from scalearn.catalog import canonical_name
from scalearn.config import TrialConfig
from scalearn.methods import method_class
from scalearn.resolve import create_config, key_fields


@dataclass(frozen=True)
class Trial:
    key: str
    stage: int
    model: str
    """The model as the experiment file names it (the config holds its canonical name)."""
    config: TrialConfig = field(repr=False)
    depends_on: tuple[str, ...] = ()
    role: str = "final"
    """"final" (reported), or "search": a point of a group's search that is not (yet) a final trial."""
    point: dict | None = None
    """The searched hyper-parameters this trial trains at (a final trial: its group's chosen point)."""
    imported: dict | None = None
    """An external source adapter (`source_adapters`) this trial installs instead of training one (role
    "import"): its location, format and content hash, which is its key."""
    rung: int | None = None
    """Successive halving: the rung this search trial is to reach now (0 first; the last is its whole budget),
    from the checkpoint it paused at before. Not part of the key: at every rung it is the same trial."""
    budget: float = 1.0
    """The share of the trial's dev evaluations it trains to now (its rung's; 1: to its end)."""
    checkpoint_every: int = 1
    """Evaluations between its checkpoints (the file's `checkpoint_every`; 0: only a rung's pause writes one).
    Not part of the key: it changes where a stopped trial goes on from, never what it computes."""

    @property
    def method(self) -> str:
        return self.config.method

    @property
    def task(self) -> str:
        return self.config.task

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def tasks(self) -> tuple[str, ...]:
        """A joint trial's tasks, all trained at once; empty for a single-task or transfer trial."""
        return self.config.tasks

    @property
    def source_tasks(self) -> tuple[str, ...]:
        return self.config.sources

    @property
    def joint(self) -> bool:
        return self.config.joint

    def summary(self) -> dict:
        names = ("key", "stage", "method", "task", "seed", "model")
        summary = {name: getattr(self, name) for name in names}
        summary.update(depends_on=list(self.depends_on), sources=list(self.source_tasks))
        if self.tasks:
            summary["tasks"] = list(self.tasks)
        summary["role"] = self.role
        if self.imported is not None:
            summary["imported"] = dict(self.imported)
        if self.point is not None:
            summary["point"] = dict(self.point)
        if self.rung is not None:
            summary.update(rung=self.rung, budget=self.budget)
        return summary


def planned_steps(trial: Trial) -> int | None:
    """The optimizer steps of the whole trial, where its file says (a fixed `max_steps`, or epochs over a
    few-shot train split of k examples, k being the most it has); None where it depends on the data's size."""
    loop, shots = trial.config.loop, trial.config.data.few_shot
    total = None
    if shots is not None and not trial.joint:
        total = math.ceil(math.ceil(shots / loop.batch_size) / loop.gradient_accumulation) * loop.epochs
    if loop.max_steps is not None:
        total = loop.max_steps if total is None else min(total, loop.max_steps)
    return total


def search_cost(plan: Plan, search) -> dict:
    """What the searched groups will cost at most, from the plan on a fresh store: the final trials to follow their
    searches, and the optimizer steps of every search and final trial (successive halving: each rung trains its
    points from the previous rung's budget to its own, the best 1/eta of them going on); trials whose steps
    depend on their data are counted apart."""
    trials = {t.key: t for t in plan.trials}
    fractions = rung_fractions(search)
    steps = unknown = finals = 0
    for group in plan.groups.values():
        searched = len(group.keys_by_point[0])
        follow = len([seed for seed in group.seeds if seed not in group.searched_seeds])
        finals += follow
        total = planned_steps(trials[group.keys_by_point[0][0]])
        if total is None:
            unknown += searched * len(group.points) + follow
            continue
        count, share, previous = len(group.points), 0.0, 0.0
        for fraction in fractions:  # the points of each rung × the budget they train there
            share += count * (fraction - previous)
            previous, count = fraction, max(1, math.ceil(count / search.eta))
        steps += round(share * total) * searched + follow * total
    return {"final_trials_to_follow": finals, "max_steps": steps, "trials_of_unknown_steps": unknown}


def reached(trial: Trial, store) -> bool:
    """Whether ``trial`` has nothing to train now: it is done, or (successive halving) it paused at the rung it is
    planned to reach."""
    if store.is_done(trial.key):
        return True
    return trial.rung is not None and trial.budget < 1 and store.rung(trial.key, trial.budget) is not None


def trained_record(key: str, store) -> dict | None:
    """What a trial trained, as one record: its result, or (successive halving) the record of the last rung it
    paused at, with ``wall_seconds`` summed over every stretch it ran (each pause, then its end); None if it
    has trained nothing yet."""
    pauses = [store.rung(key, share) for share in store.paused_shares(key)]
    last = store.result(key) if store.is_done(key) else (pauses[-1] if pauses else None)
    if last is None or not pauses:
        return last
    stretches = [*pauses, last] if last is not pauses[-1] else pauses
    return {**last, "wall_seconds": sum(float(r.get("wall_seconds") or 0.0) for r in stretches)}


def reached_keys(trials: list[Trial], store, done: set[str] | None = None) -> set[str]:
    """The keys of ``trials`` with nothing to train now (`reached`), done ones found in one listing (or given)."""
    done = store.done_keys(t.key for t in trials) if done is None else done
    return done | {t.key for t in trials if t.rung is not None and t.key not in done and reached(t, store)}


def finals(trials: list[Trial], few_shot: int | None = None) -> list[Trial]:
    """The trials that are reported: search points that did not become final trials are left out; in a few-shot
    sweep (``few_shot``: its k), so are the full-data source adapters it trains on tasks that are also targets
    (the target's own adapter at that seed is its k-shot trial, docs/method.md §4.5)."""
    return [t for t in trials if t.role == "final" and (few_shot is None or t.config.data.few_shot == few_shot)]


def task_results(result: dict) -> list[tuple[str, dict]]:
    """(task, its scores: "metric", "best_dev", "test") for each task a finished trial trained: one for a
    single-task trial, every task of a joint one (scalearn.result: the same shape for both)."""
    return list(result.get("tasks", {}).items())


def trial_key(config: TrialConfig | dict, depends_on: tuple[str, ...]) -> str:

    fields = key_fields(config) if isinstance(config, TrialConfig) else config
    payload = {"config": fields, "consumes": list(depends_on), "core_version": scalearn.CORE_VERSION}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass
class SearchGroup:
    """What one choice serves, as planned now: its points, each point's search trials, and (once they are all
    done) the chosen point and the group's final trials."""

    stage: int
    model: str
    method: str
    task: str
    tasks: tuple[str, ...]
    points: list[dict]
    keys_by_point: list[list[str]]
    chosen: int | None = None
    lower_is_better: bool = True
    final_keys: list[str] | None = None
    seeds: list[int] = field(default_factory=list)
    """The final seeds; the first ``searched_seeds`` (or more) are trained at every point."""
    searched_seeds: list[int] = field(default_factory=list)
    rung_values: list[dict[int, tuple]] | None = None
    """Successive halving: per rung reached so far, each point there (its index) → its mean dev value (None while
    a trial of it has not reached the rung); the points of the last rung with a value are the candidates."""
    id: str = ""
    """A readable name that stays the same while the space changes: method, task, model and a hash of what
    else sets the group apart (stage, few-shot, its source adapters); the name of its record in the store."""


@dataclass(frozen=True)
class Plan:
    """An experiment's plan as the store stood when it was made: one value a submit, a report or a command
    reads, instead of planning again."""

    trials: list[Trial]
    """Every trial that can be planned now, stage 1 first, without duplicates."""
    groups: dict[tuple, SearchGroup]
    """The searched groups: their points, and the chosen one once their search is done."""
    waiting: list[dict]
    """Transfer trials that cannot be keyed yet (plan rows without keys): their sources' search is open."""

    def still_to_plan(self) -> int | None:
        """How many trials the open searches will add, at least: each open group's final seeds beyond those its
        search trains, and the transfer trials waiting for their sources' search (their first points). None when
        no search is open: the plan is the whole experiment."""
        open_groups = [group for group in self.groups.values() if group.chosen is None]
        if not open_groups and not self.waiting:
            return None
        return len(self.waiting) + sum(max(0, len(g.seeds) - len(g.searched_seeds)) for g in open_groups)


class _Planner:
    """Collects the trials of an experiment; a group with a search adds its final trials only once its search
    trials are all done (``result_of`` reads the store), so the plan grows as results come in."""

    def __init__(self, spec: ExperimentSpec, result_of, rung_of=lambda key, rung: None):
        self.spec, self.result_of, self.rung_of = spec, result_of, rung_of
        self.trials: dict[str, Trial] = {}
        self.groups: dict[tuple, SearchGroup] = {}
        self.waiting: list[dict] = []
        """Transfer trials that cannot be keyed yet: their source adapters' search is still open."""
        self.added: dict[str, str] = {}
        """What `add` was asked for → the key it gave: each trial's config is built (and its method model
        with it) once per plan."""
        self.described: dict[tuple[str, str], dict] = {}
        """External sources, read once per plan: (model, location, kind) → format, folder, content hash."""

    def plan(self) -> Plan:
        return Plan(sorted(self.trials.values(), key=lambda t: t.stage), self.groups, self.waiting)

    def add(self, stage: int, model: str, method: str, depends_on=(), role="final", point=None, **where) -> str:
        asked = json.dumps([model, method, depends_on, point, where], sort_keys=True, default=str)
        key = self.added.get(asked)  # a source adapter is asked for by every target and method that uses it
        if key is None:
            overrides = {**self.spec.overrides_for(method, where.get("task"), model), **(point or {})}
            data = {"max_length": self.spec.data.max_length, "max_dev_examples": self.spec.data.max_dev_examples}
            if where.get("few_shot") or self.spec.data.max_dev_examples:  # else it keeps every row: no other key
                data["sample"] = self.spec.data.sample
            config = create_config(method, model=model, overrides=overrides, **data, **where)
            key = self.added[asked] = trial_key(config, depends_on)
        else:
            config = self.trials[key].config
        known = self.trials.get(key)
        if known is None or (known.role == "search" and role == "final"):  # a search point that is a final trial
            every = self.spec.checkpoint_every
            self.trials[key] = Trial(key, stage, model, config, depends_on, role, point, checkpoint_every=every)
        return key

    def imported(self, model: str, task: str, location: str, kind: str = "adapter") -> str:
        """The import trial of an external source adapter: keyed by the model, the task and the hash of what
        the files hold (the same files, the same key; a changed file, a new key and so new dependents)."""
        from scalearn.interop import InteropError  # torch: only when a sweep names external sources
        from scalearn.interop.sources import describe_source  # torch: only when a sweep names external sources

        cache = self.described.setdefault((model, location, kind), {})
        if not cache:
            try:
                cache.update(describe_source(location, model, kind))
            except InteropError as error:
                raise SpecError(f"{self.spec.where(f'source_adapters.{task}')}: {error}") from None
        fields = {"imported": cache["content_hash"], "model": canonical_name(model), "task": task}
        if kind != "adapter":  # (an adapter's key as it was before LoRA sources existed)
            fields["kind"] = kind
        key = trial_key(fields, ())
        if key not in self.trials:
            config = create_config(kind, task, model=model, max_length=self.spec.data.max_length)
            self.trials[key] = Trial(key, 1, model, config, (), "import", None, dict(cache))
        return key

    def wait(self, model: str, method: str, target: str, seeds: list[int], open_sources: list[str]) -> None:
        """Rows for the transfer trials still waiting for their sources: their points and seeds, without keys
        (a tpe search: its first points, the ones known before any result)."""

        space = space_for(self.spec, method, target)
        points = sample(self.spec.search, space, lambda point: None)[0] if space else [None]
        searched = search_seeds(seeds, self.spec.search_seeds) if space else seeds
        for point in points:
            for seed in searched:
                row = {"key": None, "stage": 2, "method": method, "task": target, "seed": seed, "model": model}
                row.update(role="search" if point else "final", waits_for=open_sources)
                self.waiting.append({**row, **({"point": point} if point else {})})

    def group(self, stage: int, model: str, method: str, seeds: list[int], depends_on=(), **where) -> list | None:
        """Plan one group; its final trials' keys in seed order, or None while its search is open."""

        space = space_for(self.spec, method, where.get("task"))
        if not space:
            return [self.add(stage, model, method, depends_on, seed=seed, **where) for seed in seeds]
        if self.spec.search.pruner == "sha":
            return self.halving(stage, model, method, seeds, depends_on, space, where)
        searched = search_seeds(seeds, self.spec.search_seeds)
        keys = []

        def value_of(point: dict):
            keys.append(
                [self.add(stage, model, method, depends_on, "search", point, seed=s, **where) for s in searched]
            )
            return point_value(keys[-1], self.result_of)

        points, values = sample(self.spec.search, space, value_of)
        group = self._group(stage, model, method, depends_on, where, points, keys, seeds, searched)
        group.lower_is_better = direction(values, group.lower_is_better)  # shown while it searches
        if None in values or len(points) < planned_count(self.spec.search, space):
            return None
        return self._choose(group, values, list(range(len(points))), seeds, depends_on, where)

    def _group(self, stage, model, method, depends_on, where, points, keys, seeds, searched) -> SearchGroup:
        task = where.get("label") or where.get("task")
        group = SearchGroup(stage, model, method, task, tuple(where.get("tasks", ())), points, keys)
        group.seeds, group.searched_seeds = list(seeds), list(searched)
        apart = [stage, model, method, where, list(depends_on)]
        if list(searched) != list(range(len(searched))):  # a group searched at other seeds than the source's 0…
            apart.append(list(searched))  # …is another group (ids of the usual ones unchanged)
        apart = json.dumps(apart, sort_keys=True, default=str)
        name = "-".join((method, task, model.rsplit("/", 1)[-1]))
        group.id = f"{''.join(c if c.isalnum() or c in '._-' else '_' for c in name)}-{_short_hash(apart)}"
        # a source adapter's group and the adapter baseline on that task share their search trials: one group
        shared = self.groups.setdefault((model, method, task, *(k for point_keys in keys for k in point_keys)), group)
        if len(group.seeds) > len(shared.seeds):  # the adapter baseline's seeds, beside its source adapter's one
            shared.seeds = group.seeds
        return shared

    def _choose(self, group: SearchGroup, values: list, candidates: list[int], seeds, depends_on, where) -> list:
        """The group's choice among ``candidates`` (point indices; ``values`` theirs, in that order), and its final
        trials at the chosen point."""
        group.chosen = candidates[best_index(values)]
        group.lower_is_better = direction(values, True)
        point = group.points[group.chosen]
        stage, model, method = group.stage, group.model, group.method
        finals = [self.add(stage, model, method, depends_on, "final", point, seed=seed, **where) for seed in seeds]
        if group.final_keys is None or len(finals) > len(group.final_keys):  # the one with every final seed
            group.final_keys = finals
        return finals

    def halving(self, stage, model, method, seeds, depends_on, space, where) -> list | None:
        """Successive halving over the group's points (harness/search.py): every point's search trials are its
        full trials, planned to pause at the first rung; a rung decides once all its points' trials have reached
        it, from their dev values there alone, and promotes the best 1/eta, which go on from their checkpoints.
        The trials of the last rung are whole; the group chooses among them. None while a rung is open."""
        search = self.spec.search
        searched = search_seeds(seeds, self.spec.search_seeds)
        points = sample(search, space, lambda point: None)[0]
        keys = [
            [self.add(stage, model, method, depends_on, "search", p, seed=s, **where) for s in searched] for p in points
        ]
        group = self._group(stage, model, method, depends_on, where, points, keys, seeds, searched)
        group.rung_values = []
        fractions = rung_fractions(search)
        alive = list(range(len(points)))
        for rung, fraction in enumerate(fractions):
            for key in (key for i in alive for key in keys[i]):  # planned to this rung (a stopped point stays)
                if self.trials[key].role == "search":  # another group's final trial (same key) runs whole
                    self.trials[key] = replace(self.trials[key], rung=rung, budget=fraction)
            values = {i: self._value_at(keys[i], rung) for i in alive}
            group.rung_values.append(values)
            group.lower_is_better = direction(values.values(), group.lower_is_better)
            if None in values.values():
                return None
            if rung < len(fractions) - 1:
                alive = [alive[i] for i in promoted([values[i] for i in alive], search.eta)]
        return self._choose(group, [values[i] for i in alive], alive, seeds, depends_on, where)

    def _value_at(self, keys: list[str], rung: int) -> tuple | None:
        """The point's mean dev value at ``rung`` over its search trials: each one's as it paused there, or, for a
        trial that ended (or failed for good) before pausing there, its final one; None while one has not
        reached it."""

        def result_at(key: str) -> dict | None:
            return self.rung_of(key, rung) or self.result_of(key)

        return point_value(keys, result_at)


def direction(values, default: bool) -> bool:
    """Whether lower is better, from the first point value that says ((value, lower_is_better) or None)."""
    return next((lower for value in values if value is not None and (lower := value[1]) is not None), default)


def expand(spec: ExperimentSpec, store=None, given_up=None) -> list[Trial]:
    """Every trial of the experiment that can be planned now, stage 1 first, without duplicates.

    Without a search that is all of them. With one, a group's final trials (and the transfer trials that
    consume a searched source adapter) appear once the search trials they wait for are done in ``store``."""
    return make_plan(spec, store, given_up).trials


def make_plan(spec: ExperimentSpec, store=None, given_up=None) -> Plan:
    """The whole plan as the store stands: its trials (``trials``), its searched groups (``groups``) and
    the transfer trials that wait for a search of their sources (``waiting``, plan rows without keys).

    A search trial that failed counts as failed for good (the worst dev value: its group still chooses) when
    its key is in ``given_up``; by default (None) every failure recorded in the store does. A submit passes
    the keys that failed during it, so it retries earlier failures before a group chooses without them."""

    def result_of(key: str) -> dict | None:
        if store is None:
            return None
        if store.is_done(key):
            return store.result(key)
        failed = key in given_up if given_up is not None else store.state(key) == "failed"
        return FAILED if failed else None

    shares = rung_fractions(spec.search)

    def rung_of(key: str, rung: int) -> dict | None:
        return store.rung(key, shares[rung]) if store is not None and shares[rung] < 1 else None

    planner = _Planner(spec, result_of, rung_of)
    few_shot = spec.data.few_shot
    for model in spec.models:
        for method in spec.methods:
            if method_class(method).joint:
                tasks, label = spec.task_list(), spec.joint_label()
                planner.group(1, model, method, spec.joint_seed_list(), tasks=tasks, label=label, few_shot=few_shot)
                continue
            two_stage = method_class(method).uses_sources
            source_method = method_class(method).source_method  # "adapter", or "lora" for ScaLearn over LoRA
            for target in spec.target_list():
                seeds = spec.seeds_for(target)
                if not two_stage:
                    planner.group(1, model, method, seeds, task=target, few_shot=few_shot)
                    continue
                sources = spec.source_list(target)
                keys = []
                for source in sources:
                    external = spec.source_adapter(source, model)
                    if external is not None:  # trained elsewhere: installed, not trained
                        keys.append(planner.imported(model, source, external, source_method))
                        continue
                    # in few-shot runs the target's own source adapter is the k-shot one (docs/method.md §4.5)
                    shots = few_shot if source == target else None
                    chosen = planner.group(1, model, source_method, [spec.source_seed], task=source, few_shot=shots)
                    keys.append(chosen[0] if chosen else None)
                if None not in keys:  # every source adapter is known: the transfer trials can be planned
                    planner.group(2, model, method, seeds, tuple(keys), task=target, few_shot=few_shot, sources=sources)
                else:
                    planner.wait(
                        model, method, target, seeds, [s for s, k in zip(sources, keys, strict=True) if k is None]
                    )
    return planner.plan()
