"""GPU statistics through NVML, degrading to "not available" (with the reason) without a GPU.

Kept apart from the UI and the supervisor, as nvitop keeps its NVML layer: every query
can fail on a machine without a driver, and none of those failures may break anything else.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

log = logging.getLogger("tunedeck.engine")


def _nvml() -> Any:
    import pynvml

    return pynvml


class GpuMonitor:
    """Samples every GPU: utilisation, memory, temperature, power, and our workers' memory."""

    def __init__(self) -> None:
        self.available = False
        self.reason: str | None = None
        self._handles: list[Any] = []
        self._initialised = False
        try:
            nvml = _nvml()
        except ImportError:
            nvml = None
            self.reason = "nvidia-ml-py is not installed"
        if nvml is not None:
            try:
                nvml.nvmlInit()
                self._initialised = True
                count = nvml.nvmlDeviceGetCount()
                self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
                self.available = count > 0
                if not self.available:
                    self.reason = "NVML found no GPU"
            except nvml.NVMLError as exc:  # and its many subclasses, e.g. NVMLError_LibraryNotFound
                self.reason = f"NVML is not available here ({_describe(exc)})"
        if not self.available:
            log.warning("GPU stats unavailable: %s", self.reason)

    def describe(self) -> dict[str, Any]:
        """What the /gpu endpoint reports about the monitor itself."""
        return {"available": self.available, "reason": self.reason, "gpus": len(self._handles)}

    def sample(self, worker_pids: set[int]) -> dict[str, Any] | None:
        """One system.jsonl record, or None without a GPU (or once NVML stopped answering)."""
        if not self.available:
            return None
        nvml = _nvml()
        failures: list[Exception | None] = []  # one entry per query: its error, or None
        gpus = []
        for index, handle in enumerate(self._handles):
            gpus.append({"index": index, **_read_gpu(nvml, handle, worker_pids, failures)})
        if failures and all(failures):
            # Not one figure from any GPU: the driver or the GPU went away (e.g. NVMLError_GpuIsLost),
            # which is not one unsupported figure; say so once instead of writing empty samples.
            self.available = False
            self.reason = f"NVML is not available any more ({_describe(next(f for f in failures if f))})"
            log.warning("GPU stats unavailable: %s", self.reason)
            return None
        return {"ts": round(time.time(), 3), "gpus": gpus}

    def close(self) -> None:
        if self._initialised:
            nvml = _nvml()
            # Shutting down a driver that went away is not worth a failure.
            with contextlib.suppress(nvml.NVMLError):
                nvml.nvmlShutdown()


def _read_gpu(nvml: Any, handle: Any, worker_pids: set[int], failures: list[Exception | None]) -> dict[str, Any]:
    """One GPU's figures; a figure the GPU cannot report is None instead of an error."""

    def safe(read: Any) -> Any:
        try:
            value = read()
        # e.g. NVMLError_NotSupported for the power of some boards; NVMLLibraryMismatchError (not an
        # NVMLError) is what nvidia-ml-py raises for the processes call on a driver without its _v3.
        except (nvml.NVMLError, nvml.NVMLLibraryMismatchError) as exc:
            failures.append(exc)
            return None
        failures.append(None)
        return value

    memory = safe(lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
    util = safe(lambda: nvml.nvmlDeviceGetUtilizationRates(handle))
    power = safe(lambda: nvml.nvmlDeviceGetPowerUsage(handle))
    limit = safe(lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle))
    procs = safe(lambda: nvml.nvmlDeviceGetComputeRunningProcesses(handle)) or []
    return {
        "name": safe(lambda: _text(nvml.nvmlDeviceGetName(handle))),
        "util": util.gpu if util is not None else None,
        "mem_used": memory.used if memory is not None else None,
        "mem_total": memory.total if memory is not None else None,
        "temp": safe(lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)),
        "power": power / 1000.0 if power is not None else None,
        "power_limit": limit / 1000.0 if limit is not None else None,
        "workers": [
            {"pid": p.pid, "mem_used": p.usedGpuMemory} for p in procs if getattr(p, "pid", None) in worker_pids
        ],
    }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _describe(exc: Exception) -> str:
    name = type(exc).__name__
    return f"{name}: {exc}" if str(exc) else name
