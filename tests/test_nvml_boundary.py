"""NVML failures are caught as NVMLError and become "not available (reason)"."""

from __future__ import annotations

import pynvml
import pytest

from engine.service.gpu import GpuMonitor


def test_without_a_gpu_the_monitor_says_why() -> None:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        reason = type(exc).__name__
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this machine has NVML")
    monitor = GpuMonitor()
    try:
        assert not monitor.available
        assert monitor.sample(set()) is None
        assert monitor.describe() == {"available": False, "reason": monitor.reason, "gpus": 0}
        assert monitor.reason is not None
        assert reason in monitor.reason
    finally:
        monitor.close()
