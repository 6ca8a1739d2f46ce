"""The ScaLearn harness: experiment files → trials on Ray → results in a store, logged to MLflow.

    import harness
    outcome = harness.submit("experiments/tiny.yaml", store="runs/tiny")

The command line (`harness validate | plan | submit | status | report | ui | ls | params | data`) wraps the
same functions. Importing the package costs no torch, Ray or MLflow: they load when a submit runs.
"""

from __future__ import annotations

from harness.submit import SubmitOutcome, submit

__all__ = ["SubmitOutcome", "submit"]
