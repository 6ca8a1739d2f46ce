"""The harness's own cost per trial: 10,000 trials (100 stage-1 + 9,900 stage-2, each consuming 8 sources)
through the real content keys, store and Ray Core scheduler, with a trial body that returns at once.

Also a no-op resubmit of the same plan (everything done: only store lookups). Figures into
benchmarks/results/scheduler_overhead.json. Targets (issue 5): ≤ 20 s for the 10,000, ≤ 3 s no-op resubmit.

    python benchmarks/scheduler_overhead.py [--stage1 100] [--stage2 9900] [--sources 8]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from harness.plan import Trial, trial_key
from harness.scheduler import noop_body, run_trials
from harness.store import Store
from scalearn.resolve import create_config

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its siblings, as a script or loaded by path
from record import write_record  # noqa: E402


def synthetic_plan(stage1: int, stage2: int, sources: int) -> list[Trial]:
    """Distinct trials (one real config each, the seed varied; the no-op body never trains them)."""
    adapter = create_config("adapter", "syn_a", model="tiny-bert")
    scalearn = create_config("scalearn", "syn_a", model="tiny-bert", sources=["syn_b", "syn_a"])
    firsts = []
    for i in range(stage1):
        config = adapter.model_copy(update={"seed": i})
        firsts.append(Trial(trial_key(config, ()), 1, "tiny-bert", config))
    seconds = []
    for j in range(stage2):
        picked = tuple(firsts[(j + s) % stage1].key for s in range(sources))
        config = scalearn.model_copy(update={"seed": j})
        seconds.append(Trial(trial_key(config, picked), 2, "tiny-bert", config, picked))
    return firsts + seconds


def main(argv=None) -> int:
    import ray

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage1", type=int, default=100)
    parser.add_argument("--stage2", type=int, default=9900)
    parser.add_argument("--sources", type=int, default=8)
    parser.add_argument("--out", default="benchmarks/results/scheduler_overhead.json")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    trials = synthetic_plan(args.stage1, args.stage2, args.sources)
    plan_seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as root:
        store = Store(Path(root) / "store")
        started = not ray.is_initialized()  # a Ray this process holds already (a test's) is used as it is
        if started:
            ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            start = time.perf_counter()
            outcome = run_trials(trials, store, resources={"cpus": 1}, retries=0, options={"body": noop_body})
            run_seconds = time.perf_counter() - start
            assert len(outcome.done) == len(trials) and not outcome.failed
            start = time.perf_counter()
            again = run_trials(trials, store, resources={"cpus": 1}, retries=0, options={"body": noop_body})
            resubmit_seconds = time.perf_counter() - start
            assert len(again.skipped) == len(trials)
        finally:
            if started:
                ray.shutdown()
    n = len(trials)
    result = {
        "benchmark": "scheduler_overhead",
        "trials": n,
        "plan_seconds": plan_seconds,
        "run_seconds": run_seconds,
        "per_trial_ms": 1000 * run_seconds / n,
        "noop_resubmit_seconds": resubmit_seconds,
        "targets": {"run_seconds_max": 20.0, "noop_resubmit_seconds_max": 3.0},
        "targets_met": {"run": run_seconds <= 20.0, "noop_resubmit": resubmit_seconds <= 3.0},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_record(out, result)
    print(
        f"{n} trials: {run_seconds:.1f} s ({result['per_trial_ms']:.2f} ms/trial); "
        f"no-op resubmit {resubmit_seconds:.2f} s; wrote {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
