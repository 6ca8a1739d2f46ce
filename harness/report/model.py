"""The report as data: tables per model of rows (methods) and cells (seed scores, their statistics,
significance marks, the paper's numbers beside ours), built from a store's finished trials."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness import paper, stats
from harness.plan import Trial, finals, task_results
from harness.selection import selection_rows
from harness.spec import ExperimentSpec
from harness.store import Store
from scalearn.catalog import canonical_name
from scalearn.methods import get_method, method_names
from scalearn.result import learned_nothing, swamping_sources
from scalearn.tasks import get_task

ALPHA = 0.05
DEFAULT_BASELINE = "adapterfusion"
FORMATS = {"md": "report.md", "latex": "report.tex", "csv": "report.csv", "json": "report.json"}
METHOD_ORDER = (
    "full_ft",
    "adapter",
    "propetl",
    "compacter_pp",
    "ia3",
    "lora",
    "full_ft_m",
    "adapter_m",
    "propetl_m",
    "hyperformer",
    "hyperformer_pp",
    "adapterfusion",
    "scalearn",
    "scalearn_uniform",
    "scalearn_pp",
    "scalearn_uniform_pp",
    "adapter_soup",
    "probe",
)
"""The paper's row order (docs/method.md §3, §5.1; LoRA, not in the paper, after its single-task rows); methods not
listed follow in the experiment file's order."""
GROUP_ORDER = ("single-task", "joint", "two-stage")
WELCH_MARK, BOOTSTRAP_MARK, MISSING = "†", "‡", "–"


@dataclass
class Cell:
    """One (model, method, task): the seeds' scores ×100, the tests against the baseline, the paper's value."""

    scores: dict[int, float] = field(default_factory=dict)
    other: dict[str, dict[int, float]] = field(default_factory=dict)
    """The other test metrics ×100 by seed (e.g. STS-B spearman, MNLI accuracy_mm); CSV/JSON only."""
    p_welch: float | None = None
    p_bootstrap: float | None = None
    paper: float | None = None

    @property
    def summary(self) -> stats.Summary | None:
        return stats.summarize(list(self.scores.values())) if self.scores else None

    @property
    def diff(self) -> float | None:
        return None if self.paper is None or not self.scores else self.summary.mean - self.paper


@dataclass
class Row:
    method: str
    group: str
    cells: dict[str, Cell]
    transfer_parameters: int | None = None
    parameters_from: str = "unknown"
    """"results" (what the trials recorded), "formula" (from the model config) or "unknown"."""
    paper_avg: float | None = None

    @property
    def avg(self) -> float | None:
        """Unweighted mean over the tasks, only when every task has a score (a partial mean would mislead)."""
        means = [c.summary.mean for c in self.cells.values() if c.scores]
        return sum(means) / len(means) if means and len(means) == len(self.cells) else None

    @property
    def avg_diff(self) -> float | None:
        return None if self.avg is None or self.paper_avg is None else self.avg - self.paper_avg


@dataclass
class Table:
    model: str
    canonical_model: str
    tasks: list[str]
    metrics: dict[str, str]
    planned_seeds: dict[str, int]
    rows: list[Row]
    baseline: str | None
    """The baseline the marks test against; None when it is not in the sweep."""
    paper_table: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def uniform_seeds(self) -> bool:
        return len(set(self.planned_seeds.values())) <= 1


@dataclass
class Report:
    experiment: str
    tables: list[Table]
    baseline: str
    alpha: float
    compare_paper: bool
    selection: list[dict] = field(default_factory=list)
    """The searched groups (harness/selection.py); empty without a `search:` block."""
    few_shot: int | None = None
    """The sweep's k in a few-shot sweep (`harness.plan.finals`)."""


def _number(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _ordered_methods(methods: list[str]) -> list[tuple[str, str]]:

    groups = {m: get_method(m).group for m in methods}

    def rank(method: str) -> tuple[int, int, int]:
        group = groups[method]
        known = METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)
        return GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER), known, methods.index(method)

    return [(m, groups[m]) for m in sorted(dict.fromkeys(methods), key=rank)]


def _formula_parameters(model: str, method: str, num_sources: int) -> int | None:
    """Trainable transfer parameters per target from the config alone (as `harness params`)."""
    from scalearn.params import count_parameters  # builds the model: torch, only when a count is missing

    try:
        return int(count_parameters(model, method, num_sources)["transfer"])
    except (OSError, ValueError):
        return None


def build_report(
    spec: ExperimentSpec,
    trials: list[Trial],
    store: Store,
    baseline: str = DEFAULT_BASELINE,
    compare_paper: bool = False,
    alpha: float = ALPHA,
    groups=None,
) -> Report:
    """Every finished result of the experiment's methods on its targets, aggregated into one table per model;
    with a search, the selection table too (``groups``: the plan's searched groups, when planned already)."""

    trials = finals(trials, spec.data.few_shot)  # a search point that did not become a final trial is not a result
    if baseline not in method_names():
        raise ValueError(f"unknown --baseline {baseline!r} (expected a registered method, see `harness ls methods`)")
    targets = spec.target_list()
    metrics = {task: get_task(task).metric for task in targets}
    planned = {task: len(spec.seeds_for(task)) for task in targets}
    methods = _ordered_methods(spec.methods)
    tables = []
    for model in spec.models:
        rows = {m: Row(m, group, {task: Cell() for task in targets}) for m, group in methods}
        recorded: dict[str, set[int]] = {m: set() for m, _ in methods}
        swamping: dict[str, dict] = {}  # source → its largest recorded scale and the methods that mixed it
        flat: dict[tuple[str, str], list[int]] = {}  # (method, task) → seeds no better on dev than a constant
        owners: dict[tuple[str, str, int], str] = {}  # (method, task, seed) → the trial its cell's score is from
        clashes: set[tuple[str, str, int]] = set()
        unscored: set[tuple[str, str, int]] = set()  # a finished trial whose test score is not a number
        for trial in trials:
            if trial.model != model or trial.method not in rows:
                continue
            if not set(trial.tasks or [trial.task]) & set(metrics) or not store.is_done(trial.key):
                continue
            result = store.result(trial.key)
            for task, scores in task_results(result):
                test = scores["test"]
                if task not in metrics or test.get(metrics[task]) is None:
                    continue
                if not math.isfinite(test[metrics[task]]):  # diverged (NaN outputs): no score, said under the table
                    unscored.add((trial.method, task, trial.seed))
                    continue
                cell = rows[trial.method].cells[task]
                if owners.setdefault((trial.method, task, trial.seed), trial.key) != trial.key:
                    clashes.add((trial.method, task, trial.seed))
                cell.scores[trial.seed] = stats.scaled(metrics[task], test[metrics[task]])
                for name, value in test.items():
                    if name != metrics[task] and not stats.is_loss(name) and _number(value):
                        cell.other.setdefault(name, {})[trial.seed] = stats.scaled(name, value)
                if "transfer" in result.get("parameters", {}):
                    recorded[trial.method].add(int(result["parameters"]["transfer"]))
            for task in learned_nothing(result):
                flat.setdefault((trial.method, task), []).append(trial.seed)
            for source, scale in swamping_sources(result).items():
                seen = swamping.setdefault(source, {"ratio": 0.0, "layer": 0, "methods": set()})
                seen["methods"].add(trial.method)
                if scale["ratio"] > seen["ratio"]:
                    seen.update(ratio=scale["ratio"], layer=scale["layer"])
        table = Table(model, canonical_name(model), targets, metrics, planned, list(rows.values()), None)
        for method, task, seed in sorted(clashes):
            table.notes.append(f"{method} on {task}, seed {seed}: two different trials scored it; the last is shown")
        for method, task, seed in sorted(unscored):
            table.notes.append(f"{method} on {task}, seed {seed}: its test score is not a number (diverged); left out")
        for row in table.rows:
            if recorded[row.method]:
                row.transfer_parameters, row.parameters_from = max(recorded[row.method]), "results"
                if len(recorded[row.method]) > 1:
                    counts = ", ".join(f"{n:,}" for n in sorted(recorded[row.method]))
                    table.notes.append(
                        f"{row.method}: transfer parameters differ across targets ({counts}); the largest shown"
                    )
            else:
                # a joint method's count depends on how many tasks share the model
                sharing = spec.task_list() if row.group == "joint" else spec.source_list(targets[0])
                count = _formula_parameters(model, row.method, len(sharing))
                row.transfer_parameters, row.parameters_from = count, "formula" if count is not None else "unknown"
        if flat:
            cells = "; ".join(
                f"{method} on {task} (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, sorted(seeds)))})"
                for (method, task), seeds in sorted(flat.items())
            )
            table.notes.append(
                f"no better on dev than a constant prediction (dev loss not below the best constant's): {cells}"
            )
        for source, seen in sorted(swamping.items()):
            table.notes.append(
                f"source {source}: its output reached {seen['ratio']:.1f}x its layer's own (layer {seen['layer']}) in "
                f"the trials of {', '.join(sorted(seen['methods']))}; mixed in from the start, it swamps the "
                f"representation, so those rows measure a broken source: check its own trial's dev score"
            )
        _mark_significance(table, rows.get(baseline), baseline)
        if compare_paper:
            _attach_paper(table, spec)
        tables.append(table)

    selection = selection_rows(spec, store, groups) if spec.search else []
    return Report(spec.name or "experiment", tables, baseline, alpha, compare_paper, selection, spec.data.few_shot)


def _mark_significance(table: Table, base: Row | None, baseline: str) -> None:
    if base is None or not any(c.scores for c in base.cells.values()):
        table.notes.append(f"no significance marks: the baseline {baseline} has no results in this sweep")
        return
    table.baseline = baseline
    for row in table.rows:
        if row is base:
            continue
        for task, cell in row.cells.items():
            other = base.cells[task].scores
            cell.p_welch = stats.welch_p(list(cell.scores.values()), list(other.values()))
            shared = sorted(set(cell.scores) & set(other))
            cell.p_bootstrap = stats.paired_bootstrap_p([cell.scores[s] for s in shared], [other[s] for s in shared])


def _attach_paper(table: Table, spec: ExperimentSpec) -> None:

    name = paper.find_table(table.canonical_model, spec.benchmark, spec.task_list())
    if name is None:
        table.notes.append(
            f"no published numbers for {table.model} on these tasks (the paper's README tables: "
            "RoBERTa-base GLUE and SuperGLUE, XLM-R-base HumSet)"
        )
        return
    table.paper_table = name
    full = set(table.tasks) == set(paper.PAPER[name]["tasks"])
    for row in table.rows:
        published = paper.paper_scores(name, row.method)
        for task, cell in row.cells.items():
            cell.paper = published.get(task)
        values = [published.get(task) for task in table.tasks]
        row.paper_avg = published.get("avg") if full else (None if None in values else sum(values) / len(values))
    table.notes.append(f"paper: {paper.CITATION}; {paper.PAPER[name]['source']}. Δ = ours − paper.")
