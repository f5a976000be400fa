"""The engine service itself: health, GPU statistics, and what ``tunedeck engine ...`` prints."""

from __future__ import annotations

from pydantic import Field

from engine.api.base import ApiModel


class Health(ApiModel):
    """``GET /health``."""

    ok: bool
    pid: int
    campaign: str
    uptime_s: float


class Ok(ApiModel):
    """An acknowledgement (``POST /shutdown``)."""

    ok: bool


class GpuWorker(ApiModel):
    """GPU memory one of our workers holds."""

    pid: int
    mem_used: int | None


class GpuReading(ApiModel):
    """One GPU's figures; a figure the GPU cannot report is None."""

    index: int
    name: str | None
    util: int | None
    mem_used: int | None
    mem_total: int | None
    temp: int | None
    power: float | None
    power_limit: float | None
    workers: list[GpuWorker]


class GpuSample(ApiModel):
    """One system.jsonl record."""

    ts: float
    gpus: list[GpuReading]


class GpuStatus(ApiModel):
    """``GET /gpu``: whether NVML works here (and why not), and the newest sample."""

    available: bool
    reason: str | None
    gpus: int
    last: GpuSample | None


class EngineStatus(ApiModel):
    """``tunedeck engine start|stop|status --json``; ``gpu`` only when an engine answered a status."""

    running: bool
    pid: int | None
    socket: str
    gpu: GpuStatus | None = Field(default=None, exclude_if=lambda gpu: gpu is None)
