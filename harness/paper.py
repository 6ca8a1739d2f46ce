"""The paper's published numbers, as data, for `harness report --compare paper`.

Test scores ×100, means over seeds, copied verbatim from the main result tables as the official README
reproduces them (docs/method.md §5.1): GLUE and SuperGLUE on RoBERTa-base, HumSet on XLM-R-base. Rows are the
paper's method names; ``METHOD_NAMES`` maps them to the registry (every row of the tables has one).
Large-model results are in the paper's appendix only and not known here (docs/method.md §9).
"""

from __future__ import annotations

CITATION = (
    'Frohmann, Holtermann, Masoudian, Lauscher, Rekabsaz, "ScaLearn: Simple and Highly Parameter-Efficient '
    'Task Transfer by Learning to Scale", Findings of ACL 2024, pp. 11743-11776, arXiv:2310.01217'
)
_WHERE = (
    "as reproduced in the official README (github.com/CPJKU/ScaLearn @ 81d77ea); "
    "the table numbers of the ACL version are not confirmed (docs/method.md §9)"
)

METHOD_NAMES = {
    "Full FT": "full_ft",
    "Adapter": "adapter",
    "ProPETL": "propetl",
    "Compacter++": "compacter_pp",
    "Full FT-m": "full_ft_m",
    "Adapter-m": "adapter_m",
    "ProPETL-m": "propetl_m",
    "HyperFormer": "hyperformer",
    "HyperFormer++": "hyperformer_pp",
    "AdapterFusion": "adapterfusion",
    "AdapterSoup": "adapter_soup",
    "ScaLearn": "scalearn",
    "ScaLearnUniform": "scalearn_uniform",
    "ScaLearn++": "scalearn_pp",
    "ScaLearnUniform++": "scalearn_uniform_pp",
}
"""Paper row name → registry name (`harness ls methods`)."""

_STL_AND_MTL = (
    "Full FT",
    "Adapter",
    "ProPETL",
    "Compacter++",
    "Full FT-m",
    "Adapter-m",
    "ProPETL-m",
    "HyperFormer",
    "HyperFormer++",
)
_TWO_STAGE = ("AdapterFusion", "ScaLearn", "ScaLearnUniform", "ScaLearn++", "ScaLearnUniform++")


def _rows(names: tuple[str, ...], values: list[tuple[float, ...]]) -> dict[str, tuple[float, ...]]:
    return dict(zip(names, values, strict=True))


# fmt: off
PAPER: dict[str, dict] = {
    "glue": {
        "model": "FacebookAI/roberta-base",
        "source": f"GLUE results table, RoBERTa-base, {_WHERE}",
        "tasks": ("mnli", "qqp", "qnli", "sst2", "stsb", "mrpc", "rte", "cola"),  # then Avg
        "rows": _rows(_STL_AND_MTL + _TWO_STAGE, [
            (86.61, 90.32, 91.78, 93.33, 90.53, 86.94, 73.47, 58.46, 83.93),
            (86.50, 90.18, 92.25, 93.65, 90.23, 86.64, 72.89, 58.28, 83.83),
            (86.19, 88.88, 92.05, 93.81, 90.03, 85.93, 74.19, 59.29, 83.80),
            (85.62, 88.84, 91.79, 93.58, 89.67, 87.21, 72.02, 58.49, 83.40),
            (84.95, 89.76, 90.91, 92.58, 86.14, 83.42, 80.99, 49.12, 82.23),
            (86.03, 89.69, 91.58, 93.35, 88.71, 86.76, 80.26, 51.79, 83.52),
            (85.23, 87.82, 91.37, 93.88, 90.27, 86.36, 78.58, 54.71, 83.53),
            (86.08, 89.13, 91.81, 93.16, 90.63, 87.01, 82.79, 57.30, 84.74),
            (86.38, 88.81, 91.99, 93.27, 90.80, 87.83, 83.75, 54.05, 84.61),
            (86.82, 90.23, 92.48, 93.23, 90.37, 88.41, 79.49, 59.04, 85.01),
            (86.97, 90.32, 92.51, 93.88, 90.96, 87.75, 82.06, 58.47, 85.36),
            (86.93, 90.38, 92.53, 93.58, 90.08, 87.57, 80.07, 59.04, 85.02),
            (87.06, 90.04, 92.03, 94.15, 90.62, 88.21, 80.87, 59.82, 85.35),
            (86.98, 90.38, 92.53, 94.11, 90.18, 87.43, 80.04, 59.45, 85.14),
        ]),
        "averages_only": {"AdapterSoup": 71.52},  # (paper, quoted; docs/method.md §3, §5.2)
    },
    "superglue": {
        "model": "FacebookAI/roberta-base",
        "source": f"SuperGLUE results table, RoBERTa-base, {_WHERE}",
        "tasks": ("record", "multirc", "boolq", "wic", "wsc", "copa", "cb", "rte"),
        "rows": _rows(_STL_AND_MTL + _TWO_STAGE, [
            (71.61, 71.64, 76.80, 66.38, 63.46, 68.60, 81.96, 73.47, 71.74),
            (79.02, 72.84, 76.71, 65.58, 63.46, 70.20, 84.82, 72.89, 73.19),
            (80.29, 73.07, 76.58, 66.60, 63.46, 70.60, 84.46, 74.19, 73.69),
            (77.69, 70.44, 75.88, 66.46, 63.46, 68.30, 87.68, 72.02, 72.74),
            (72.21, 72.11, 76.39, 52.19, 63.46, 74.33, 84.52, 74.85, 71.26),
            (72.43, 72.46, 75.32, 51.99, 59.94, 71.67, 86.31, 76.53, 70.83),
            (73.14, 72.07, 73.91, 50.73, 59.62, 74.00, 82.14, 73.65, 69.91),
            (65.93, 33.54, 74.01, 55.49, 52.88, 55.50, 71.43, 61.73, 58.81),
            (24.50, 19.47, 62.17, 50.00, 63.46, 54.33, 49.40, 49.09, 46.55),
            (78.82, 71.79, 76.72, 66.57, 63.46, 73.10, 82.32, 76.03, 73.60),
            (79.52, 73.22, 77.27, 66.35, 63.46, 74.80, 90.89, 78.88, 75.55),
            (80.13, 71.91, 76.06, 67.37, 62.50, 71.20, 89.11, 75.31, 74.20),
            (80.13, 72.71, 76.44, 67.13, 62.26, 75.20, 93.04, 79.03, 75.74),
            (79.79, 71.75, 76.13, 67.87, 63.46, 74.00, 91.61, 74.84, 74.93),
        ]),
        "averages_only": {"AdapterSoup": 58.73},
    },
    "humset": {
        "model": "FacebookAI/xlm-roberta-base",
        "source": f"HumSet results table (macro-F1), XLM-R-base, {_WHERE}",
        "tasks": ("sectors", "pillars_1d", "subpillars_1d", "pillars_2d", "subpillars_2d"),
        "rows": _rows(_STL_AND_MTL + _TWO_STAGE, [
            (71.99, 50.40, 43.76, 61.04, 41.68, 53.77),
            (71.38, 51.02, 43.26, 61.43, 42.46, 53.91),
            (71.69, 49.69, 41.63, 60.58, 39.85, 52.69),
            (69.97, 37.37, 37.76, 58.13, 33.10, 47.26),
            (51.75, 22.65, 13.54, 33.27, 12.42, 26.73),
            (56.20, 28.53, 16.53, 35.90, 18.89, 31.21),
            (59.80, 26.10, 29.57, 37.53, 30.35, 36.67),
            (71.08, 40.65, 34.16, 46.22, 32.47, 44.92),
            (60.42, 22.07, 20.35, 30.55, 18.90, 30.46),
            (72.05, 49.63, 43.15, 60.68, 42.14, 53.53),
            (72.36, 51.63, 44.06, 61.52, 42.81, 54.48),
            (72.20, 50.08, 42.97, 60.62, 41.95, 53.56),
            (72.38, 51.66, 44.23, 61.66, 42.21, 54.43),
            (72.02, 50.78, 42.60, 60.82, 42.14, 53.67),
        ]),
        "averages_only": {},
    },
}
# fmt: on


def find_table(model: str, benchmark: str | None, tasks: list[str]) -> str | None:
    """The paper table for a model (canonical name) and an experiment's tasks, or None when the paper has none.

    The experiment's benchmark decides when it names one; else the table whose tasks hold all of the
    experiment's (sources included: RTE's two-stage numbers differ between GLUE and SuperGLUE sources).
    """
    for name, table in PAPER.items():
        if table["model"] != model:
            continue
        if benchmark == name or (benchmark is None and set(tasks) <= set(table["tasks"])):
            return name
    return None


def paper_scores(table: str, method: str) -> dict[str, float]:
    """Task → published score of a registry method in a paper table (empty when the paper has no such row);
    the key "avg" holds the published average over all the table's tasks."""
    entry = PAPER[table]
    names = [paper for paper, ours in METHOD_NAMES.items() if ours == method]
    if not names:
        return {}
    if names[0] in entry["averages_only"]:
        return {"avg": entry["averages_only"][names[0]]}
    values = entry["rows"].get(names[0])
    if values is None:
        return {}
    return {**dict(zip(entry["tasks"], values[:-1], strict=True)), "avg": values[-1]}


__all__ = ["CITATION", "METHOD_NAMES", "PAPER", "find_table", "paper_scores"]
