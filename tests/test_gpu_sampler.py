"""The GPU sampler and the system.jsonl writer, run against a fake NVML (tests/fake_nvml/pynvml.py).

The fake replaces only the NVIDIA driver library, which does not exist here: the monitor, the
engine process, its socket and the training worker are the real ones.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pynvml as real_nvml
import pytest
from httpx_sse import connect_sse

from engine.api.engine import GpuSample, GpuStatus
from engine.demo.reverse_task import reverse_rows
from engine.service.gpu import GpuMonitor
from engine.store.campaign import Campaign, engine_paths
from engine.store.jsonl import read_jsonl
from tests.helpers import FAST_RUN, REPO, wait_for, write_jsonl

FAKE_DIR = REPO / "tests" / "fake_nvml"
CONFIG_ENV = "TUNEDECK_FAKE_NVML"
INTERVAL_S = 0.2
GIB = 1 << 30
QUERIES_PER_SAMPLE = 7  # what GpuMonitor.sample asks NVML per GPU


def h200(**extra: Any) -> dict[str, Any]:
    """One fake GPU's figures (as the config file gives them: power in milliwatts)."""
    return {
        "name": "NVIDIA H200",
        "util": 87,
        "mem_util": 41,
        "mem_used": 40 * GIB,
        "mem_total": 141 * GIB,
        "temp": 61,
        "power_mw": 312_500,
        "power_limit_mw": 700_000,
        "processes": [],
    } | extra


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """Replace the fake's config atomically (the fake re-reads it when it changes)."""
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(config), encoding="utf-8")
    os.replace(scratch, path)
    return path


@pytest.fixture
def fake_nvml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, Any]], ModuleType]:
    """Install a fresh copy of the fake as ``pynvml`` for this process, configured by ``config``."""

    def install(config: dict[str, Any]) -> ModuleType:
        monkeypatch.setenv(CONFIG_ENV, str(write_config(tmp_path / "gpus.json", config)))
        spec = importlib.util.spec_from_file_location("pynvml", FAKE_DIR / "pynvml.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, "pynvml", module)
        spec.loader.exec_module(module)
        return module

    return install


# -- the fake itself: the real API's names, signatures and shapes ------------------------------
USED_CALLS = [
    "nvmlInit",
    "nvmlShutdown",
    "nvmlDeviceGetCount",
    "nvmlDeviceGetHandleByIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetComputeRunningProcesses",
]


def test_the_fake_mirrors_nvidia_ml_py(fake_nvml: Callable[[dict[str, Any]], ModuleType]) -> None:
    fake = fake_nvml({"gpus": [h200()]})
    for name in USED_CALLS:
        assert inspect.signature(getattr(fake, name)).parameters.keys() == (
            inspect.signature(getattr(real_nvml, name)).parameters.keys()
        ), name
    for struct in ("c_nvmlMemory_t", "c_nvmlMemory_v2_t", "c_nvmlUtilization_t"):
        assert getattr(fake, struct)._fields_ == getattr(real_nvml, struct)._fields_, struct
    assert fake.NVML_TEMPERATURE_GPU == real_nvml.NVML_TEMPERATURE_GPU
    for code in (1, 3, 12, 13, 15):
        fake_error, real_error = fake.NVMLError(code), real_nvml.NVMLError(code)
        assert type(fake_error).__name__ == type(real_error).__name__
        assert isinstance(fake_error, fake.NVMLError)
        assert fake_error.value == code
        assert str(fake_error) == str(real_error)
    with pytest.raises(fake.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()  # before init, as the real library


def test_the_fake_answers_like_a_driver(fake_nvml: Callable[[dict[str, Any]], ModuleType]) -> None:
    fake = fake_nvml({"gpus": [h200(processes=[{"pid": 4242, "used_memory": GIB}, {"pid": 7, "used_memory": None}])]})
    fake.nvmlInit()
    try:
        handle = fake.nvmlDeviceGetHandleByIndex(0)
        memory = fake.nvmlDeviceGetMemoryInfo(handle)
        assert (memory.total, memory.used, memory.free) == (141 * GIB, 40 * GIB, 101 * GIB)
        assert fake.nvmlDeviceGetMemoryInfo(handle, version=fake.nvmlMemory_v2).reserved == 0
        util = fake.nvmlDeviceGetUtilizationRates(handle)
        assert (util.gpu, util.memory) == (87, 41)
        assert fake.nvmlDeviceGetPowerUsage(handle) == 312_500  # milliwatts, as NVML reports
        procs = fake.nvmlDeviceGetComputeRunningProcesses(handle)
        assert [(p.pid, p.usedGpuMemory) for p in procs] == [(4242, GIB), (7, None)]
        with pytest.raises(fake.NVMLError_InvalidArgument):
            fake.nvmlDeviceGetHandleByIndex(1)
    finally:
        fake.nvmlShutdown()


# -- GpuMonitor against the fake, in this process ----------------------------------------------
def test_the_monitor_reads_every_gpu_in_the_documented_shape(
    fake_nvml: Callable[[dict[str, Any]], ModuleType],
) -> None:
    me, stranger = os.getpid(), 1
    procs = [{"pid": me, "used_memory": 3 * GIB}, {"pid": stranger, "used_memory": GIB}]
    fake_nvml({"gpus": [h200(processes=procs), h200(name="NVIDIA L4", util=3, unsupported=["power"])]})
    monitor = GpuMonitor()
    try:
        assert monitor.describe() == {"available": True, "reason": None, "gpus": 2}
        sample = monitor.sample({me})
        assert sample is not None
        GpuSample.model_validate(sample)  # the /gpu route's model accepts it as it is
        assert set(sample) == {"ts", "gpus"}
        assert abs(sample["ts"] - time.time()) < 5
        first, second = sample["gpus"]
        assert {"index", "util", "mem_used", "mem_total", "temp", "power"} <= set(first)  # DESIGN.md's keys
        assert first == {
            "index": 0,
            "name": "NVIDIA H200",
            "util": 87,
            "mem_used": 40 * GIB,
            "mem_total": 141 * GIB,
            "temp": 61,
            "power": 312.5,  # watts
            "power_limit": 700.0,
            "workers": [{"pid": me, "mem_used": 3 * GIB}],  # ours only: the stranger is not listed
        }
        assert (second["index"], second["name"], second["util"]) == (1, "NVIDIA L4", 3)
        assert second["power"] is None  # NVMLError_NotSupported is one missing figure, not a failure
        assert second["power_limit"] == 700.0
        assert second["workers"] == []
        assert monitor.available
    finally:
        monitor.close()


def test_a_gpu_lost_mid_run_degrades_to_not_available(fake_nvml: Callable[[dict[str, Any]], ModuleType]) -> None:
    # init asks for the count and one handle; then one whole sample answers, and nothing after.
    fake = fake_nvml({"gpus": [h200()], "fail_after": 2 + QUERIES_PER_SAMPLE})
    monitor = GpuMonitor()
    try:
        assert monitor.sample(set()) is not None
        assert monitor.sample(set()) is None  # no exception: the monitor says why instead
        assert not monitor.available
        assert monitor.reason == "NVML is not available any more (NVMLError_GpuIsLost: GPU is lost)"
        assert monitor.describe() == {"available": False, "reason": monitor.reason, "gpus": 1}
        assert monitor.sample(set()) is None
    finally:
        monitor.close()  # shutting down a lost driver does not raise either
    with pytest.raises(fake.NVMLError_Uninitialized):
        fake.nvmlShutdown()  # close() did shut NVML down: the refcount is back to zero


def test_a_driver_without_the_v3_processes_call_keeps_the_other_figures(
    fake_nvml: Callable[[dict[str, Any]], ModuleType],
) -> None:
    """nvidia-ml-py raises NVMLLibraryMismatchError there, which is not an NVMLError."""
    fake_nvml({"gpus": [h200(errors={"processes": 13})]})
    monitor = GpuMonitor()
    try:
        sample = monitor.sample({os.getpid()})
        assert sample is not None
        assert sample["gpus"][0]["workers"] == []
        assert sample["gpus"][0]["util"] == 87
    finally:
        monitor.close()


def test_without_a_driver_the_fake_fails_init_as_nvml_does(fake_nvml: Callable[[dict[str, Any]], ModuleType]) -> None:
    fake_nvml({"gpus": [h200()], "init_error": 12})
    monitor = GpuMonitor()
    assert not monitor.available
    assert monitor.reason == "NVML is not available here (NVMLError_LibraryNotFound: NVML Shared Library Not Found)"
    assert monitor.sample(set()) is None
    monitor.close()


# -- end to end: the real engine on a real socket, a real worker, the fake driver ---------------
@pytest.fixture
def gpu_campaign(tiny_model: Path) -> Iterator[tuple[Campaign, Path]]:
    """A campaign in a short path (Unix sockets), sampling every 0.2 s, with the fake's config."""
    root = Path(tempfile.mkdtemp(prefix="td-gpu-", dir="/tmp"))
    camp = Campaign.create(root / "c", "gpu sampler tests", base=str(tiny_model))
    with open(camp.root / "campaign.toml", "a", encoding="utf-8") as toml:
        toml.write(f"\n[engine]\nsample_interval_s = {INTERVAL_S}\n")
    write_jsonl(camp.root / "datasets" / "train.jsonl", reverse_rows(400, seed=1))
    config = write_config(root / "gpus.json", {"gpus": [h200()]})
    yield Campaign.open(camp.root), config
    engine_cli(camp, config, "engine", "stop", "--campaign", str(camp.root), check=False)
    pid_file = camp.run("r1").root / "worker.pid"
    if pid_file.exists():  # never leave a worker behind
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(json.loads(pid_file.read_text())["pid"], signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)


def engine_cli(campaign: Campaign, config: Path, *args: str, check: bool = True) -> Any:
    """The real CLI, with the fake driver first on the path of every process it starts."""
    env = {**os.environ, "PYTHONPATH": f"{FAKE_DIR}{os.pathsep}{REPO}", CONFIG_ENV: str(config)}
    done = subprocess.run(
        [sys.executable, "-c", "from engine.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if check else None


def lists_pid(sample: dict[str, Any], pid: int) -> bool:
    return any(w["pid"] == pid for gpu in sample["gpus"] for w in gpu["workers"])


@pytest.mark.slow
def test_the_engine_samples_the_gpu_into_system_jsonl(gpu_campaign: tuple[Campaign, Path]) -> None:
    campaign, config = gpu_campaign

    def cli(*args: str) -> Any:
        return engine_cli(campaign, config, *args, "--campaign", str(campaign.root), "--json")

    assert cli("engine", "start")["running"] is True
    status = GpuStatus.model_validate(cli("engine", "status")["gpu"])
    assert (status.available, status.reason, status.gpus) == (True, None, 1)

    toml = campaign.root / "r1.toml"
    toml.write_text(FAST_RUN.format(max_steps=80, logging_steps=10, save_steps=1000))
    cli("run", str(toml))
    pid = wait_for(lambda: cli("status", "r1")["pid"], what="the worker's pid")
    write_config(config, {"gpus": [h200(processes=[{"pid": pid, "used_memory": 2 * GIB}, {"pid": 1}])]})

    # The live stream carries system events, and soon one that lists the worker on the GPU.
    socket_path = str(engine_paths(campaign.root).socket)
    with (
        httpx.Client(transport=httpx.HTTPTransport(uds=socket_path), base_url="http://engine", timeout=60) as http,
        connect_sse(http, "GET", "/runs/r1/stream") as source,
    ):
        for event in source.iter_sse():
            if event.event == "system" and lists_pid(json.loads(event.data), pid):
                break
        gpu = GpuStatus.model_validate(http.get("/gpu").json())
    assert gpu.available
    assert gpu.last is not None
    assert [(w.pid, w.mem_used) for w in gpu.last.gpus[0].workers] == [(pid, 2 * GIB)]

    wait_for(lambda: cli("status", "r1")["state"] == "finished", what="the run to finish")
    run = campaign.run("r1")
    finished = [e for e in read_jsonl(run.events) if e["event"] == "finished"][-1]
    exit_file = run.root / "worker.exit"  # the reaper's record, written once the worker has gone
    ended = wait_for(lambda: exit_file.exists() and json.loads(exit_file.read_text())["ended"], what="worker.exit")
    time.sleep(5 * INTERVAL_S)  # time enough for any sample after the end to land
    samples = read_jsonl(run.system)

    # One line per interval, each in the documented shape with the fake's figures.
    for sample in samples:
        GpuSample.model_validate(sample)
        assert set(sample) == {"ts", "gpus"}
        (reading,) = sample["gpus"]
        assert (reading["index"], reading["util"], reading["temp"], reading["power"]) == (0, 87, 61, 312.5)
        assert (reading["mem_used"], reading["mem_total"]) == (40 * GIB, 141 * GIB)
        assert all(w["pid"] == pid for w in reading["workers"])  # pid 1 is not ours
    assert sum(lists_pid(s, pid) for s in samples) >= 5
    stamps = [s["ts"] for s in samples]
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert len(samples) >= 10, len(samples)
    # Drift-free, loosely: the median gap is the interval, and the k-th sample stays near
    # first + k * interval (tight figures belong in tests/perf, not here).
    assert abs(statistics.median(gaps) - INTERVAL_S) <= 0.2 * INTERVAL_S, gaps
    late = max(abs(ts - stamps[0] - k * INTERVAL_S) for k, ts in enumerate(stamps))
    assert late < 5 * INTERVAL_S, late
    # Sampling stops with the run: nothing after the worker's exit + one interval + the supervisor's
    # poll that notices it. Not "finished" + one interval: the worker writes "finished" and then
    # tears down (2-3 s here) still holding its GPU memory, and the sampler keeps watching it.
    assert stamps[-1] <= ended + INTERVAL_S + 0.2 + 0.3, (stamps[-1], ended)
    assert stamps[-1] > finished["ts"]
    assert len(read_jsonl(run.system)) == len(samples)  # and nothing more since

    status = GpuStatus.model_validate(cli("engine", "status")["gpu"])
    assert status.available
    assert status.last is not None
    assert status.last.ts >= stamps[-1]
