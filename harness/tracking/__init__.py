"""MLflow, written by the driver only: workers never talk to MLflow, so there is no experiment-creation
race (MLflow #979, #10334) and the server sees one client that batches its requests.

What the UI shows (one experiment per experiment file, marked a model-training experiment):

- a top-level run per (model, method): the competitors, so the default table and chart view compare the
  methods; it holds each task's seed mean and sd (``<task>/test_<metric>_mean``) and the average over the
  targets (``avg_test_score_mean``);
- under it a run per (method, task) group (``stage<s>/<method>/<task>/<model>``; a group's search points
  and imported sources under groups of their own), with the group's mean and sd and, in its description,
  the checkpoint each seed selected;
- under that a child run per trial: params, MLflow's own tags (source, git commit, user), the training
  loss per optimizer step, each evaluation at its step and time, ``best_dev_<metric>`` at the selected
  step, test scores, system metrics sampled where it ran, its datasets (``log_input``), links to the
  runs of its source adapters;
- the report on a run of its own, sorted last.

One scale: scores ×100 as in the report (docs/method.md §4.2), losses as they are (`harness.stats.scaled`).
Parents are RUNNING while a submit may still run their trials, span their children's times and end
FINISHED, FAILED when one of their trials failed for good or never ran, or KILLED when Ctrl-C stopped the
submit first.

A child run is found again by its `harness.trial_key` tag, so a resubmit never creates a twin; several submits
on one store claim what they write (`claims`). Creating or upgrading the database, and the experiment, happens
under a lock in the store (``tracking/setup.lock``), one driver at a time.

With no tracking URI the driver writes the store's own SQLite database (``store/mlflow.db``, artifacts in
``store/mlartifacts``): it is MLflow's only writer, so no server sits in between. `harness ui` serves
that database on 127.0.0.1; `EmbeddedServer` starts `mlflow server` over it where a URL is needed.

The package, one idea a module, none of them importing torch:

- `records`: a finished trial → a backend-neutral run record (pure);
- `backend`: where records go, SQL or MLflow's API, chosen once per tracker;
- `claims`: markers and short claims in the store, so concurrent submits never write twins;
- `summaries`: what parent runs say (seed statistics from `harness.stats`, descriptions);
- `tracker`: the run hierarchy, begin / log / finish;
- `server`: the store's database, the embedded server, the UI's addresses and shared view.
"""

from harness.tracking.backend import ApiBackend, SqlBackend, backend_for, sql_store_of, write_runs_api, write_runs_sql
from harness.tracking.claims import Claims
from harness.tracking.records import (
    GROUP_TAG,
    KEY_TAG,
    LEVEL_TAG,
    LOSS_POINTS,
    DatasetRecord,
    RunRecord,
    loss_points,
    metric_name,
    result_metrics,
    trial_record,
)
from harness.tracking.server import EmbeddedServer, seed_database, store_tracking_uri, ui_command, ui_urls
from harness.tracking.tracker import Tracker, open_tracker, store_tracker

__all__ = [
    "GROUP_TAG",
    "KEY_TAG",
    "LEVEL_TAG",
    "LOSS_POINTS",
    "ApiBackend",
    "Claims",
    "DatasetRecord",
    "EmbeddedServer",
    "RunRecord",
    "SqlBackend",
    "Tracker",
    "backend_for",
    "loss_points",
    "metric_name",
    "open_tracker",
    "result_metrics",
    "seed_database",
    "sql_store_of",
    "store_tracker",
    "store_tracking_uri",
    "trial_record",
    "ui_command",
    "ui_urls",
    "write_runs_api",
    "write_runs_sql",
]
