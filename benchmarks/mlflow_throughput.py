"""MLflow logging throughput: N finished trials' child runs (10 params, 5 tags, 20 metric points each) logged
the way `harness submit` logs them, into the store's SQLite database:

- ``bulk``: `harness.tracking.write_runs_sql`, what submit does on a SQL backend: each batch of trials that
  Ray reports finished together goes in one transaction (measured at batch sizes 1 — one trial per
  transaction, the worst case — and 100);
- ``api``: `harness.tracking.write_runs_api`, MLflow's client (create_run + log_batch + set_terminated),
  the path for HTTP tracking servers; ``--via-server`` sends it through an embedded `mlflow server`.

Target (issue 5): 10,000 runs in ≤ 2 minutes.

    python benchmarks/mlflow_throughput.py [--runs 10000] [--api-runs 1000] [--via-server]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from harness.store import Store
from harness.tracking import EmbeddedServer, RunRecord, _sql_store, store_tracking_uri, write_runs_api, write_runs_sql

os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # no line per run over HTTP


def record(index: int, parent: str) -> RunRecord:
    now = int(time.time() * 1000)
    return RunRecord(
        name=f"scalearn/task/seed{index % 10}",
        tags={
            "mlflow.parentRunId": parent,
            "harness.trial_key": f"k{index}",
            "stage": "2",
            "method": "scalearn",
            "seed": str(index % 10),
        },
        params={f"p{i}": str(i * index) for i in range(10)},
        metrics=[("dev_loss", 1.0 / (step + 1), now, step) for step in range(20)],
        start_ms=now - 1000,
        end_ms=now,
    )


def measure(path: str, runs: int, batch: int, via_server: bool = False, server_workers: int = 1) -> dict:
    from mlflow.tracking import MlflowClient

    with tempfile.TemporaryDirectory() as root:
        store = Store(root)
        server = EmbeddedServer(store, workers=server_workers) if via_server else contextlib.nullcontext()
        with server:
            client = MlflowClient(tracking_uri=server.uri if via_server else store_tracking_uri(store))
            experiment_id = client.create_experiment("throughput", (store.root / "mlartifacts").as_uri())
            parent = client.create_run(experiment_id).info.run_id
            records = [record(i, parent) for i in range(runs)]
            location = client.get_experiment(experiment_id).artifact_location
            start = time.perf_counter()
            for first in range(0, runs, batch):
                chunk = records[first : first + batch]
                if path == "bulk":
                    write_runs_sql(_sql_store(client), experiment_id, chunk, location)
                else:
                    write_runs_api(client, experiment_id, chunk)
            seconds = time.perf_counter() - start
            found = client.search_runs([experiment_id], filter_string="tags.stage = '2'", max_results=50000)
            history = client.get_metric_history(found[0].info.run_id, "dev_loss") if found else []
    rate = runs / seconds
    name = f"{path}{' via server' if via_server else ''}, batch {batch}"
    print(
        f"{name:28s} {runs:6d} runs in {seconds:6.1f} s = {rate:7.1f} runs/s; 10,000 would take {10000 / rate:6.1f} s"
    )
    return {
        "path": path,
        "via_server": via_server,
        "batch": batch,
        "runs": runs,
        "seconds": seconds,
        "runs_per_second": rate,
        "projected_seconds_for_10000": 10000 / rate,
        "all_logged": len(found) == runs and len(history) == 20,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10000, help="runs through the bulk path")
    parser.add_argument("--api-runs", type=int, default=1000, help="runs through the client API (slower)")
    parser.add_argument("--via-server", action="store_true", help="also the API path through an mlflow server")
    parser.add_argument("--out", default="benchmarks/results/mlflow_throughput.json")
    args = parser.parse_args(argv)
    rows = [measure("bulk", args.runs, 100), measure("bulk", args.runs, 1), measure("api", args.api_runs, 1)]
    if args.via_server:
        rows.append(measure("api", args.api_runs, 1, via_server=True))
    submit_path = rows[1]  # the worst case of what submit does: every trial finishing alone
    result = {
        "benchmark": "mlflow_throughput",
        "rows": rows,
        "target_seconds_for_10000": 120.0,
        "submit_worst_case_seconds_for_10000": submit_path["projected_seconds_for_10000"],
        "bulk_speedup_over_api": rows[1]["runs_per_second"] / rows[2]["runs_per_second"],
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(row["all_logged"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
