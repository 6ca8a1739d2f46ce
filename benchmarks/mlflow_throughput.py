"""MLflow logging throughput: N finished trials' child runs logged the way `harness submit` logs them, into
the store's SQLite database. Each run is what `Tracker.run_record` makes of a trial's result (the same
functions: `result_metrics`, `result_inputs`): 40 params, 20 tags, 3 dataset inputs, and its metric
points: 4 evaluations × 2 dev metrics, best dev and test scores, 5 cost metrics, 2 samples × 4 system
metrics, and the training loss of ``--steps`` optimizer steps, of which at most `LOSS_POINTS` (200) reach
MLflow (window means beyond that) — so a run's cost does not grow with its length past 200 steps; the
``long`` row measures runs at that cap.

- ``submit``: what submit does on a SQL backend when every trial finishes alone (its worst case): the
  trials Ray reports are held and written together at most once per second (`harness.tracking.tracker.Coalescer`),
  each write one transaction of `write_runs_sql`;
- ``bulk``: `write_runs_sql` at fixed batch sizes, 100 and 1 (one transaction per run: a commit's fsync,
  ~10 ms on this disk, then costs more than the run's rows);
- ``api``: `harness.tracking.write_runs_api`, MLflow's client (create_run + log_batch + log_inputs +
  set_terminated), the path for HTTP tracking servers; ``--via-server`` sends it through an embedded
  `mlflow server`.

Target (issue 17): 10,000 runs in ≤ 60 s on 2 cores on submit's path when every trial finishes alone.

    python benchmarks/mlflow_throughput.py [--runs 10000] [--api-runs 1000] [--long-runs 2000] [--via-server]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from harness.store import Store
from harness.tracking import (
    LOSS_POINTS,
    EmbeddedServer,
    RunRecord,
    result_metrics,
    seed_database,
    sql_store_of,
    store_tracking_uri,
    write_runs_api,
    write_runs_sql,
)
from harness.tracking.records import result_inputs
from harness.tracking.tracker import Coalescer

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its siblings, as a script or loaded by path
from record import write_record  # noqa: E402

os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # no line per run over HTTP


def result(index: int, steps: int) -> dict:
    """A finished trial's result.json as the trainer and the worker write it."""
    now = time.time()
    evaluations = [round((i + 1) * steps / 4) for i in range(4)]
    system = {"cpu_utilization_percentage": 90.0, "system_memory_usage_megabytes": 2000.0}
    system.update(system_memory_usage_percentage=8.0, process_memory_rss_megabytes=600.0)
    return {
        "history": [
            {"epoch": i, "step": step, "dev_loss": 1.0 / (i + 1), "dev_accuracy": 0.5 + i / 10}
            for i, step in enumerate(evaluations)
        ],
        "evaluation_times": [now - 4 + i for i in range(4)],
        "losses": [1.0 / (step + 1) for step in range(steps)],
        "step_times": [now - 5 + step / steps for step in range(steps)],
        "best_step": evaluations[-1],
        "best_epoch": 3,
        "best_dev": {"loss": 0.25, "accuracy": 0.8},
        "test": {"loss": 0.3, "accuracy": 0.75},
        "steps": steps,
        "wall_seconds": 5.0,
        "peak_memory_mb": 600.0,
        "datasets": {
            f"task{index % 10}": {"fingerprint": f"f{index % 10}", "rows": {"train": 100, "dev": 50, "test": 50}}
        },
        "system_metrics": {"node": "", "samples": [[int(now * 1000) - 5000, system], [int(now * 1000), system]]},
    }


def record(index: int, parent: str, steps: int) -> RunRecord:
    now = int(time.time() * 1000)
    tags = {
        "mlflow.parentRunId": parent,
        "harness.trial_key": f"k{index}",
        "stage": "2",
        "method": "scalearn",
        "seed": str(index % 10),
    }
    tags.update({f"tag{i}": str(i) for i in range(15)})
    trial_result = result(index, steps)
    return RunRecord(
        name=f"scalearn/task/seed{index % 10}",
        tags=tags,
        params={f"p{i}": str(i * index) for i in range(40)},
        metrics=result_metrics(trial_result, now - 6000, now, joint=False),
        start_ms=now - 6000,
        end_ms=now,
        inputs=result_inputs(trial_result),
    )


def measure(
    path: str, runs: int, batch: int, via_server: bool = False, server_workers: int = 1, steps: int = 20
) -> dict:
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as root:
        store = Store(root)
        server = EmbeddedServer(store, workers=server_workers) if via_server else contextlib.nullcontext()
        seed_database(store.root / "mlflow.db")  # as a submit's database starts: the template's copy
        with server:
            client = MlflowClient(tracking_uri=server.uri if via_server else store_tracking_uri(store))
            experiment_id = client.create_experiment("throughput", (store.root / "mlartifacts").as_uri())
            parent = client.create_run(experiment_id).info.run_id
            records = [record(i, parent, steps) for i in range(runs)]
            location = client.get_experiment(experiment_id).artifact_location
            start = time.perf_counter()
            if path == "submit":  # one trial reported at a time, as submit logs them: coalesced (≤ 1 write/s)
                coalescer = Coalescer(lambda held: write_runs_sql(sql_store_of(client), experiment_id, held, location))
                for one in records:
                    coalescer.add([one])
                coalescer.flush()
            for first in range(0, runs, batch) if path != "submit" else ():
                chunk = records[first : first + batch]
                if path == "bulk":
                    write_runs_sql(sql_store_of(client), experiment_id, chunk, location)
                else:
                    write_runs_api(client, experiment_id, chunk)
            seconds = time.perf_counter() - start
            found = client.search_runs([experiment_id], filter_string="tags.stage = '2'", max_results=50000)
            history = client.get_metric_history(found[0].info.run_id, "train_loss") if found else []
            inputs = found[0].inputs.dataset_inputs if found else []
    rate = runs / seconds
    name = f"{path}{' via server' if via_server else ''}, batch {batch}, {steps} steps"
    print(
        f"{name:28s} {runs:6d} runs in {seconds:6.1f} s = {rate:7.1f} runs/s; 10,000 would take {10000 / rate:6.1f} s"
    )
    return {
        "path": path,
        "via_server": via_server,
        "batch": batch,
        "steps": steps,
        "metric_points_per_run": len(records[0].metrics) if records else 0,
        "runs": runs,
        "seconds": seconds,
        "runs_per_second": rate,
        "projected_seconds_for_10000": 10000 / rate,
        "all_logged": len(found) == runs and len(history) == min(steps, LOSS_POINTS) and len(inputs) == 3,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10000, help="runs through the bulk path")
    parser.add_argument("--api-runs", type=int, default=1000, help="runs through the client API (slower)")
    parser.add_argument("--long-runs", type=int, default=2000, help="runs of 1,000 steps (at the loss cap), batch 1")
    parser.add_argument("--via-server", action="store_true", help="also the API path through an mlflow server")
    parser.add_argument("--out", default="benchmarks/results/mlflow_throughput.json")
    args = parser.parse_args(argv)
    rows = [measure("bulk", args.runs, 100), measure("bulk", args.runs, 1), measure("api", args.api_runs, 1)]
    rows.append(measure("bulk", args.long_runs, 1, steps=1000))
    rows.append(measure("submit", args.runs, 1))
    if args.via_server:
        rows.append(measure("api", args.api_runs, 1, via_server=True))
    submit_path = rows[4]  # what submit does when every trial finishes alone: coalesced to ≤ 1 write per second
    result = {
        "benchmark": "mlflow_throughput",
        "rows": rows,
        "target_seconds_for_10000": 60.0,
        "loss_points_cap": LOSS_POINTS,
        "submit_worst_case_seconds_for_10000": submit_path["projected_seconds_for_10000"],
        "bulk_speedup_over_api": rows[1]["runs_per_second"] / rows[2]["runs_per_second"],
        "long_run_seconds_for_10000": rows[3]["projected_seconds_for_10000"],
        "one_transaction_per_run_seconds_for_10000": rows[1]["projected_seconds_for_10000"],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_record(out, result)
    return 0 if all(row["all_logged"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
