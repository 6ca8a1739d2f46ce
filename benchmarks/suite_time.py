"""How long the test suite takes run in one process and run as `make test` runs it (pytest-xdist: two processes,
a module each at a time, one thread each), one after the other in one call, so the machine's noise touches both.

Each variant runs the whole suite (`tests/`, what CI runs) and records pytest's wall time, the CPU seconds of
everything it started (this process's children, `resource.getrusage`), and whether it passed. A variant is a name
from VARIANTS; run them in the order given. About 10 minutes a variant on 2 cores: this is a benchmark, not a test.

    python benchmarks/suite_time.py [serial workers2-1thread ...] [--out benchmarks/results/suite.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its siblings, as a script or loaded by path
from record import write_record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GOAL_SECONDS = 480  # the suite's budget: 8 minutes of pytest on 2 cores

VARIANTS = {
    "serial": ({}, []),  # one process, torch's default threads (2 here)
    "workers2-2threads": ({}, ["-n", "2", "--dist", "loadfile"]),
    "workers2-1thread": ({"OMP_NUM_THREADS": "1"}, ["-n", "2", "--dist", "loadfile"]),  # `make test`
    "worksteal2-2threads": ({}, ["-n", "2", "--dist", "worksteal"]),  # tests spread one by one
}


def run(name: str) -> dict:
    env, flags = VARIANTS[name]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *flags, "tests"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    reported = re.search(r" in ([0-9.]+)s", last)
    return {
        "variant": name,
        "env": env,
        "flags": flags,
        "passed": done.returncode == 0,
        "summary": last,
        "pytest_seconds": float(reported.group(1)) if reported else None,
        "wall_seconds": wall,
        "cpu_seconds": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", default=["serial", "workers2-1thread"], choices=sorted(VARIANTS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/suite.json")
    args = parser.parse_args(argv)
    runs = []
    for name in args.variants:
        runs.append(run(name))
        print(json.dumps(runs[-1]), flush=True)
    base = next((r for r in runs if r["variant"] == "serial"), runs[0])
    report = {
        "benchmark": "suite_time",
        "setup": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "date": time.strftime("%Y-%m-%d")},
        "runs": runs,
        "pytest_seconds_over_serial": {
            r["variant"]: r["pytest_seconds"] / base["pytest_seconds"]
            for r in runs
            if r["pytest_seconds"] and base["pytest_seconds"]
        },
        "goal_seconds": GOAL_SECONDS,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_record(args.out, report)
    return 0 if all(r["passed"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
