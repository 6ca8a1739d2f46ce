"""What a trial gives back, as one typed and versioned record: a single-task run is a joint run of one task.

Every result holds ``tasks``: per task trained, its main ``metric``, the dev scores of the evaluation that
chose the checkpoint (``best_dev``) and its ``test`` scores. Readers that want a task's numbers read them
there, whatever the method. Beside it, what the run as a whole selected on and reported:

    version      RESULT_VERSION
    task         the task (a joint run: its label, e.g. "joint")
    tasks        {task: {"metric", "best_dev", "test"}}; empty for an imported source adapter (nothing trained)
    best_dev     what selection compared: a single task's dev scores; a joint run's mean "loss" and "score"
    test         the test scores in one flat mapping: "<metric>" for a single task, "<task>/<metric>" joint
    history      one row per evaluation (epoch, step, dev_… values); losses and step_times per optimizer step
    …            steps, best_step, best_epoch, costs, parameter counts, provenance, the config

Scores are fractions as the metrics compute them (accuracy 0.7087); the harness's MLflow runs and reports
show them ×100 (70.87), losses as they are.

The harness adds where and when the trial ran (``trial``, ``node``, ``started_at``, ``system_metrics``,
``finished_at``) to the same record when it stores it; those keys pass through.

**Old results migrate on read.** Version 1 (no ``version`` key; written until 2026-12) filled ``tasks`` only for
joint runs. ``upgrade`` fills it for a single-task result from its top-level ``best_dev`` and ``test``, so a
store written then reads the same as one written now; nothing is rewritten on disk, and keys do not depend
on the result, so such a store still resubmits with nothing to train.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

from scalearn.tasks import get_task

RESULT_VERSION = 2

SWAMPING_RATIO = 5.0
"""A source whose output exceeds this multiple of its layer's own, in some layer, swamps a transfer method's
mixture from its start (``scalearn.source_scale``). Trained adapters sit well below it: the converged sources of
the MPNet study measured 0.1-0.3 of their layer's own, the one that diverged 23."""


def swamping_adapter(record: dict) -> dict | None:
    """A trained adapter's recorded scale when above ``SWAMPING_RATIO`` (as a source it would swamp), else None."""
    scale = record.get("adapter_scale") or {}
    ratio = scale.get("ratio")
    return scale if isinstance(ratio, int | float) and ratio > SWAMPING_RATIO else None


def swamping_sources(record: dict) -> dict[str, dict]:
    """The sources of a result whose recorded output scale is above ``SWAMPING_RATIO``: name → {"ratio", "layer"}."""
    scales = record.get("source_scales") or {}
    return {name: scale for name, scale in scales.items() if name != "mixed" and scale["ratio"] > SWAMPING_RATIO}


class TaskScores(TypedDict):
    metric: str
    best_dev: dict
    test: dict


class TrialResult(BaseModel):
    """One trial's result (see the module's docstring). The training loop fills it as it goes."""

    model_config = ConfigDict(extra="allow")

    version: int = RESULT_VERSION
    task: str = ""
    tasks: dict[str, TaskScores] = Field(default_factory=dict)
    history: list[dict] = Field(default_factory=list)
    best_epoch: int = -1
    """The best evaluation's epoch (a joint run: the evaluation's number)."""
    best_step: int = -1
    best_dev: dict = Field(default_factory=dict)
    test: dict = Field(default_factory=dict)
    selected_by: str = "loss"
    selects_on_test: bool = False
    parameters: dict = Field(default_factory=dict)
    steps: int = 0
    wall_seconds: float = 0.0
    peak_memory_mb: float = 0.0
    data_key: str = ""
    losses: list[float] = Field(default_factory=list)
    """Training loss of every optimizer step."""
    step_times: list[float] = Field(default_factory=list)
    """When each optimizer step ended (Unix seconds); ``history`` rows' times are in ``evaluation_times``.
    Kept apart from the losses and the history so that a resumed run's numbers equal an uninterrupted one's."""
    evaluation_times: list[float] = Field(default_factory=list)
    paused_at: int | None = None
    """Successive halving: the dev evaluations done when the run paused at a rung (``fit``'s ``pause_at``); None
    for a run that ended (its test scores are set)."""
    test_seconds_per_example: float | None = None
    """Wall time of the test evaluation per example (batches of ``eval_batch_size``): the model's inference cost."""
    constant_dev_loss: dict = Field(default_factory=dict)
    """Per task: the dev loss of the best constant prediction (``metrics.constant_loss``), the floor that a trial
    whose ``best_dev`` loss does not go below learned nothing beyond (``learned_nothing``)."""
    adapter_scale: dict = Field(default_factory=dict)
    """A trial that trained one adapter (a future source): its output against its layer's own, measured after the
    best checkpoint is restored, as ``{"ratio", "layer"}`` (``scalearn.source_scale``); empty otherwise."""
    source_scales: dict = Field(default_factory=dict)
    """A transfer trial over source adapters: each source's largest output against its layer's own, and the
    mixture's at the start, as ``{name: {"ratio", "layer"}}`` (``scalearn.source_scale``); empty otherwise."""
    datasets: dict = Field(default_factory=dict)
    """Per task: its data's fingerprint (the tokenised cache key) and the rows of each split used."""
    provenance: dict = Field(default_factory=dict)
    config: dict = Field(default_factory=dict)

    def to_dict(self) -> dict:
        return self.model_dump()


def upgrade(record: dict) -> dict:
    """A stored result in the current shape: a version-1 single-task result gains its ``tasks`` entry (the
    task's metric from the registry). The record itself is not changed; a current one comes back as it is."""
    if record.get("version", 1) >= RESULT_VERSION:
        return record
    upgraded = {**record, "version": RESULT_VERSION}
    task = record.get("task") or (record.get("trial") or {}).get("task")  # the harness's record names its trial
    if not record.get("tasks") and task and "test" in record and "imported" not in record:
        scores = {"metric": get_task(task).metric, "best_dev": record.get("best_dev", {}), "test": record["test"]}
        upgraded["tasks"] = {task: scores}
    return upgraded


def read(record: dict) -> dict:
    """A stored result, upgraded and checked against ``TrialResult``; the harness's keys pass through."""
    return TrialResult.model_validate(upgrade(record)).model_dump()


def ended_improving(record: dict) -> bool:
    """Whether the evaluation that chose the checkpoint was the run's last, after at least one other: dev was
    still improving when training stopped, so the trial may be under-trained (more steps could help)."""
    history = record.get("history") or []
    return len(history) >= 2 and record.get("best_step", -1) == history[-1].get("step")


def learned_nothing(record: dict) -> list[str]:
    """The tasks of a result whose chosen dev loss is not below the best constant prediction's on the same dev
    split: the trial learned nothing a constant could not (a diverged run, or one swamped by a broken source)."""
    constants = record.get("constant_dev_loss") or {}
    tasks = record.get("tasks") or {}
    found = []
    for task, constant in constants.items():
        # a single-task result keeps its chosen dev scores at the top as well
        best = (tasks.get(task) or {}).get("best_dev") or (record.get("best_dev") if len(constants) == 1 else None)
        best = best or {}
        loss = best.get("loss")
        if isinstance(loss, int | float) and isinstance(constant, int | float) and loss >= constant:
            found.append(task)
    return found
