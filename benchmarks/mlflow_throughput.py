"""MLflow logging throughput: N child runs (10 params, 5 tags, 20 metric points each), the way the driver logs a
finished trial (create the run with its tags, one batch of params and metrics, end it), from ``--threads``
client threads, either straight into the store's SQLite database (what `harness submit` does by default) or
through `mlflow server` (``--via-server``). Target (issue 5): 10,000 runs in ≤ 2 minutes.

    python benchmarks/mlflow_throughput.py [--runs 10000] [--threads 4] [--server-workers 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness.store import Store
from harness.tracking import EmbeddedServer, store_tracking_uri


def log_run(client, experiment_id: str, parent: str, index: int) -> None:
    from mlflow.entities import Metric, Param

    tags = {"mlflow.parentRunId": parent, "harness.trial_key": f"k{index}", "stage": "2", "method": "scalearn",
            "seed": str(index % 10)}  # fmt: skip
    run = client.create_run(experiment_id, tags=tags)
    now = int(time.time() * 1000)
    params = [Param(f"p{i}", str(i * index)) for i in range(10)]
    metrics = [Metric("dev_loss", 1.0 / (step + 1), now, step) for step in range(20)]
    client.log_batch(run.info.run_id, metrics=metrics, params=params)
    client.set_terminated(run.info.run_id)


def main(argv=None) -> int:
    from mlflow.tracking import MlflowClient

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--via-server", action="store_true", help="log over HTTP to an embedded mlflow server")
    parser.add_argument("--server-workers", type=int, default=1)
    parser.add_argument("--out", default="benchmarks/results/mlflow_throughput.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        store = Store(root)
        server = EmbeddedServer(store, workers=args.server_workers) if args.via_server else contextlib.nullcontext()
        with server:
            client = MlflowClient(tracking_uri=server.uri if args.via_server else store_tracking_uri(store))
            experiment_id = client.create_experiment("throughput", (store.root / "mlartifacts").as_uri())
            parent = client.create_run(experiment_id).info.run_id
            start = time.perf_counter()
            with ThreadPoolExecutor(args.threads) as pool:
                list(pool.map(lambda i: log_run(client, experiment_id, parent, i), range(args.runs)))
            seconds = time.perf_counter() - start
            logged = len(client.search_runs([experiment_id], filter_string="tags.stage = '2'", max_results=50000))
    rate = args.runs / seconds
    result = {"benchmark": "mlflow_throughput", "path": "server" if args.via_server else "direct sqlite",
              "runs": args.runs, "threads": args.threads,
              "server_workers": args.server_workers, "seconds": seconds, "runs_per_second": rate,
              "all_logged": logged == args.runs, "projected_seconds_for_10000": 10000 / rate,
              "target_seconds_for_10000": 120.0}  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{args.runs} runs in {seconds:.1f} s ({rate:.1f} runs/s, {args.threads} threads); "
        f"all logged: {result['all_logged']}; 10,000 would take {10000 / rate:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
