"""The shapes the engine answers with: one pydantic model per API object, used by the service, the CLI and the TUI.

The bottom layer of the engine: only pydantic and the standard library, so any layer (and the
TUI) can import it. Each model lists its keys in the order the JSON has them.
"""

from engine.api.base import ApiModel, JsonFloat
from engine.api.bench import (
    BenchDiff,
    BenchImportSummary,
    BenchRunSummary,
    BenchShow,
    BenchShowWithWarnings,
    BenchTotals,
    DiffBenchTotals,
    FlakyRow,
    GateAnchors,
    GatePassRate,
    GateResult,
    HarvestSummary,
    JudgedBench,
    JudgedStats,
    PassRate,
)
from engine.api.engine import EngineStatus, GpuReading, GpuSample, GpuStatus, GpuWorker, Health, Ok
from engine.api.jobs import JobKind, JobRequest, JobState, JobStatus
from engine.api.runs import (
    Alert,
    MergeProbe,
    MergeSummary,
    RunStatus,
    StartRequest,
    StopRequest,
    TrainerStateImport,
    WatchReport,
)

__all__ = [
    "Alert",
    "ApiModel",
    "BenchDiff",
    "BenchImportSummary",
    "BenchRunSummary",
    "BenchShow",
    "BenchShowWithWarnings",
    "BenchTotals",
    "DiffBenchTotals",
    "EngineStatus",
    "FlakyRow",
    "GateAnchors",
    "GatePassRate",
    "GateResult",
    "GpuReading",
    "GpuSample",
    "GpuStatus",
    "GpuWorker",
    "HarvestSummary",
    "Health",
    "JobKind",
    "JobRequest",
    "JobState",
    "JobStatus",
    "JsonFloat",
    "JudgedBench",
    "JudgedStats",
    "MergeProbe",
    "MergeSummary",
    "Ok",
    "PassRate",
    "RunStatus",
    "StartRequest",
    "StopRequest",
    "TrainerStateImport",
    "WatchReport",
]
