"""HumSet: 5 multi-label tasks on humanitarian response excerpts, hub id nlp-thedeep/humset (docs/method.md §4.1).

Official train / validation / test splits; the text is the ``excerpt``; each task's column holds a list
of label names, turned into a 0/1 vector over the task's label set. Reported metric: macro-F1 of the
sigmoid outputs at threshold 0.5.
"""

from __future__ import annotations

from dataclasses import replace

from scalearn.tasks.base import TaskSpec, examples_from

HUMSET = "nlp-thedeep/humset"
HUMSET_CONFIG = "1.0.0"

# Label sets in the order and spelling of the dataset card (HumSet, Fekih et al., Findings of EMNLP 2022).
# The loader checks every label of the data against these and names any it does not know.
_SUB_1D = {
    "Casualties": ("Dead", "Injured", "Missing"),
    "Context": (
        "Demography",
        "Economy",
        "Environment",
        "Legal & Policy",
        "Politics",
        "Security & Stability",
        "Socio Cultural",
    ),
    "Covid-19": (
        "Cases",
        "Contact Tracing",
        "Deaths",
        "Hospitalization & Care",
        "Restriction Measures",
        "Testing",
        "Vaccination",
    ),
    "Displacement": ("Intentions", "Local Integration", "Pull Factors", "Push Factors", "Type/Numbers/Movements"),
    "Humanitarian Access": (
        "Number Of People Facing Humanitarian Access Constraints/Humanitarian Access Gaps",
        "Physical Constraints",
        "Population To Relief",
        "Relief To Population",
    ),
    "Information And Communication": (
        "Communication Means And Preferences",
        "Information Challenges And Barriers",
        "Knowledge And Info Gaps (Hum)",
        "Knowledge And Info Gaps (Pop)",
    ),
    "Shock/Event": ("Hazard & Threats", "Type And Characteristics", "Underlying/Aggravating Factors"),
}
_SUB_2D = {
    "At Risk": ("Number Of People At Risk", "Risk And Vulnerabilities"),
    "Capacities & Response": (
        "International Response",
        "Local Response",
        "National Response",
        "Number Of People Reached/Response Gaps",
    ),
    "Humanitarian Conditions": (
        "Coping Mechanisms",
        "Living Standards",
        "Number Of People In Need",
        "Physical And Mental Well Being",
    ),
    "Impact": (
        "Driver/Aggravating Factors",
        "Impact On People",
        "Impact On Systems, Services And Networks",
        "Number Of People Affected",
    ),
    "Priority Interventions": ("Expressed By Humanitarian Staff", "Expressed By Population"),
    "Priority Needs": ("Expressed By Humanitarian Staff", "Expressed By Population"),
}
LABELS: dict[str, tuple[str, ...]] = {
    "sectors": (
        "Agriculture",
        "Cross",
        "Education",
        "Food Security",
        "Health",
        "Livelihoods",
        "Logistics",
        "Nutrition",
        "Protection",
        "Shelter",
        "WASH",
    ),
    "pillars_1d": (
        "Casualties",
        "Context",
        "Covid-19",
        "Displacement",
        "Humanitarian Access",
        "Information And Communication",
        "Shock/Event",
    ),
    "pillars_2d": (
        "At Risk",
        "Capacities & Response",
        "Humanitarian Conditions",
        "Impact",
        "Priority Interventions",
        "Priority Needs",
    ),
    "subpillars_1d": tuple(f"{p}->{s}" for p, subs in _SUB_1D.items() for s in subs),
    "subpillars_2d": tuple(f"{p}->{s}" for p, subs in _SUB_2D.items() for s in subs),
}


def multi_hot(task: TaskSpec, batch: dict) -> dict:
    index = {name: i for i, name in enumerate(task.label_names)}
    labels = []
    for names in batch[task.label_field]:
        row = [0] * len(index)
        for name in names or []:
            if name not in index:
                raise ValueError(f"task {task.name}: label {name!r} is not in its label set")
            row[index[name]] = 1
        labels.append(row)
    return examples_from(len(labels), text=list(batch["excerpt"]), label=labels)


def _task(name: str, label_names: tuple[str, ...]) -> TaskSpec:
    spec = TaskSpec(
        name=name,
        benchmark="humset",
        kind="multi_label",
        metric="multilabel_macro_f1",
        metrics=("multilabel_macro_f1",),
        num_labels=len(label_names),
        label_names=label_names,
        dataset=HUMSET,
        config=HUMSET_CONFIG,
        label_field=name,
        protocol="official",
        splits={"train": "train", "dev": "validation", "test": "test"},
        select_by="metric",
        origin="HumSet, Fekih et al., Findings of EMNLP 2022",
        licence="Apache-2.0 (dataset card)",
    )
    from functools import partial

    return replace(spec, preprocess=partial(multi_hot, spec))


HUMSET_TASKS = [_task(name, labels) for name, labels in LABELS.items()]
