"""System metrics of a trial's process, sampled where it runs and logged to MLflow later by the driver.

Workers never talk to MLflow (harness/tracking/), so MLflow's own `SystemMetricsMonitor`, which logs as
it samples, cannot run there. Its metrics can: CPU and memory (MLflow's CPUMonitor's, read with psutil), and
its GPU monitors where NVML (or ROCm) sees a device (disk and network are left out: they say little of a
trial and cost rows in every run), sampled every
``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL`` seconds (10 by default, as MLflow) plus once at the start and
once at the end, with this process's resident memory beside them. The samples travel in the trial's result
as ``system_metrics``; the tracker logs them under MLflow's names (``system/cpu_utilization_percentage``,
``system/<node>/…`` on a cluster), one step per sample, so the run page's "System metrics" tab shows them.
"""

from __future__ import annotations

import os
import threading
import time

DEFAULT_INTERVAL_SECONDS = 10.0


class _CPUMonitor:
    """What MLflow's CPUMonitor records, under its names, without importing MLflow into every worker (~3 s
    for a fresh Ray worker on 2 cores)."""

    def __init__(self):
        self.values: dict[str, float] = {}

    def collect_metrics(self) -> None:
        import psutil

        memory = psutil.virtual_memory()
        self.values = {
            "cpu_utilization_percentage": psutil.cpu_percent(),
            "system_memory_usage_megabytes": round(memory.used / 1e6, 1),
            "system_memory_usage_percentage": round(memory.used / memory.total * 100, 1),
        }

    def aggregate_metrics(self) -> dict[str, float]:
        return self.values

    def clear_metrics(self) -> None:
        self.values = {}


def _monitors() -> list:
    monitors: list = [_CPUMonitor()]
    devices = {"gpu_monitor.GPUMonitor": "/dev/nvidiactl", "rocm_monitor.ROCMMonitor": "/dev/kfd"}
    for name, device in devices.items():  # MLflow's own GPU monitors, where such a device exists
        if not os.path.exists(device):
            continue
        module, cls = name.split(".")
        try:
            imported = __import__(f"mlflow.system_metrics.metrics.{module}", fromlist=[cls])
            monitors.append(getattr(imported, cls)())
            break
        except Exception:  # noqa: BLE001 — no such library here: no GPU metrics, as in MLflow
            continue
    return monitors


class Sampler:
    """``with Sampler(node) as sampler: …``; then ``sampler.record()``: {"node", "interval", "samples"}, each
    sample [Unix ms, {name: value}]. A monitor that fails is dropped; sampling never fails a trial."""

    def __init__(self, node: str = "", interval: float | None = None):
        configured = os.environ.get("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL")
        self.interval = float(interval or configured or DEFAULT_INTERVAL_SECONDS)
        self.node = node
        self.samples: list[list] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._monitors: list = []

    def sample(self) -> None:
        import psutil

        values: dict[str, float] = {}
        for monitor in list(self._monitors):
            try:
                monitor.collect_metrics()
                values.update(monitor.aggregate_metrics())
                monitor.clear_metrics()
            except Exception:  # noqa: BLE001
                self._monitors.remove(monitor)
        values["process_memory_rss_megabytes"] = round(psutil.Process().memory_info().rss / 1e6, 1)
        self.samples.append([int(time.time() * 1000), values])

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> Sampler:
        try:
            self._monitors = _monitors()
            self.sample()
            self._thread = threading.Thread(target=self._loop, daemon=True, name="harness-system-metrics")
            self._thread.start()
        except Exception:  # noqa: BLE001 — no psutil, no MLflow monitors: the trial runs unsampled
            self._thread = None
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self.sample()

    def record(self) -> dict:
        return {"node": self.node, "interval": self.interval, "samples": self.samples}


__all__ = ["Sampler"]
