"""What the submit preflight (harness/preflight.py) adds before the first trial, for sweeps whose models and data
are all here: the demo (real MiniLM, packaged corpora) and the tiny sweep. Timed in one process on one local
Ray, against the time that Ray took to start (what every submit pays already). Rounds alternate; medians, and the first
round (which pays the imports) apart.

    python benchmarks/preflight.py [--rounds 3] [--out benchmarks/results/preflight.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its siblings, as a script or loaded by path
from record import write_record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FILES = {"demo": ROOT / "experiments" / "demo.yaml", "tiny": ROOT / "experiments" / "tiny.yaml"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "preflight.json"))
    args = parser.parse_args(argv)

    import ray

    from harness.plan import expand
    from harness.spec import load_spec
    from harness.submit import _preflight

    start = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - start
    seconds = {name: [] for name in FILES}
    try:
        plans = {name: (spec := load_spec(path), expand(spec, None)) for name, path in FILES.items()}
        for _ in range(args.rounds):
            for name, (spec, trials) in plans.items():
                begin = time.perf_counter()
                _preflight(spec, trials, local=True, data_dir=None)  # raises if anything were missing
                seconds[name].append(time.perf_counter() - begin)
    finally:
        ray.shutdown()
    result = {
        "ray_start_seconds": ray_start,
        "preflight_seconds": {name: statistics.median(values) for name, values in seconds.items()},
        "first_preflight_seconds": {name: values[0] for name, values in seconds.items()},  # imports included
        "preflight_over_ray_start": {name: statistics.median(values) / ray_start for name, values in seconds.items()},
        "trials": {name: len(trials) for name, (_, trials) in plans.items()},
        "rounds": args.rounds,
    }
    for name in FILES:
        print(
            f"{name:5s} {result['trials'][name]:3d} trials: preflight {result['preflight_seconds'][name]:.3f} s "
            f"(first {result['first_preflight_seconds'][name]:.2f} s) "
            f"({100 * result['preflight_over_ray_start'][name]:.0f} % of Ray's start, {ray_start:.1f} s)"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_record(Path(args.out), result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
