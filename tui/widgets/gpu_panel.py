"""The GPU panel: one line per GPU from ``/gpu`` and live system samples, or why there are none."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from engine.api import GpuReading, GpuSample, GpuStatus

GIB = 1024**3


def describe_gpu(gpu: GpuReading) -> str:
    """``GPU0 NVIDIA H200  util 87%  mem 40.1/139.0 GiB  72°C  310/700 W`` (figures it lacks left out)."""
    parts = [f"GPU{gpu.index} {gpu.name or ''}".rstrip()]
    if gpu.util is not None:
        parts.append(f"util {gpu.util}%")
    if gpu.mem_used is not None and gpu.mem_total:
        parts.append(f"mem {gpu.mem_used / GIB:.1f}/{gpu.mem_total / GIB:.1f} GiB")
    if gpu.temp is not None:
        parts.append(f"{gpu.temp}°C")
    if gpu.power is not None:
        parts.append(f"{gpu.power:.0f}" + (f"/{gpu.power_limit:.0f} W" if gpu.power_limit else " W"))
    return "  ".join(parts)


class GpuPanel(Static):
    """What the engine's NVML sampler sees; "GPU stats unavailable: <reason>" without a GPU."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("GPU: asking the engine…", id=id)
        self.available: bool | None = None

    def show_status(self, status: GpuStatus) -> None:
        """The answer of ``/gpu``."""
        self.available = status.available
        if not status.available:
            self.update(f"GPU stats unavailable: {status.reason or 'no reason given'}")
        elif status.last is not None:
            self.show_sample(status.last)
        else:
            self.update(f"{status.gpus} GPU(s); no sample yet")

    def show_record(self, record: dict[str, Any]) -> None:
        """A system.jsonl record from the stream (ignored when it is not a GPU sample)."""
        try:
            sample = GpuSample.model_validate(record)
        except ValueError:
            return
        self.show_sample(sample)

    def show_sample(self, sample: GpuSample) -> None:
        """One line per GPU of a sample."""
        self.available = True
        self.update("\n".join(describe_gpu(gpu) for gpu in sample.gpus) or "no GPUs in the sample")

    def show_error(self, reason: str) -> None:
        """The engine could not be asked."""
        self.update(f"GPU stats unavailable: {reason}")
