"""A stand-in for nvidia-ml-py's ``pynvml`` on machines without an NVIDIA driver (tests only).

It replaces only the driver library: put this folder first on ``PYTHONPATH`` (or put the module in
``sys.modules["pynvml"]``) and ``engine.service.gpu`` runs its real code against it. It implements
exactly the calls ``engine/service/gpu.py`` makes, with nvidia-ml-py 13's signatures and return
types: ctypes structures for memory (``.total/.free/.used``) and utilisation (``.gpu/.memory``),
plain ints for temperature (deg C) and power (milliwatts), friendly objects with ``.pid`` and
``.usedGpuMemory`` (bytes, or None) for processes, and ``NVMLError`` whose constructor maps a code
to its ``NVMLError_<Name>`` subclass. Calls before ``nvmlInit`` raise ``NVMLError_Uninitialized``.

The GPUs come from the JSON file named by ``TUNEDECK_FAKE_NVML`` (re-read whenever it changes, so a
test can add a worker's pid once it is known; replace it atomically)::

    {"gpus": [{"name": "NVIDIA H200", "util": 87, "mem_util": 41, "mem_used": 1073741824,
               "mem_total": 150754820096, "temp": 61, "power_mw": 312500, "power_limit_mw": 700000,
               "processes": [{"pid": 4242, "used_memory": 536870912}],
               "unsupported": ["power"]}],
     "init_error": null, "fail_after": null, "fail_with": 15}

- ``unsupported``: queries of that GPU that raise ``NVMLError_NotSupported`` (``name``, ``memory``,
  ``utilization``, ``temperature``, ``power``, ``power_limit``, ``processes``); ``errors``: query ->
  the NVML error code it raises instead (``{"processes": 13}``: a driver without the ``_v3`` call).
- ``init_error``: an NVML error code ``nvmlInit`` raises (12: the library is not found).
- ``fail_after``: how many calls (any call but init and shutdown) answer; every later one raises
  ``NVMLError(fail_with)`` (default 15, ``NVMLError_GpuIsLost``), as when a GPU falls off the bus.
  With ``fail_with`` 13 (function not found) ``nvmlDeviceGetComputeRunningProcesses`` raises
  ``NVMLLibraryMismatchError`` instead, as nvidia-ml-py does on a driver without the ``_v3`` call.
Without the variable the module behaves like a machine without a driver (``nvmlInit`` raises 12).
"""

from __future__ import annotations

import ctypes
import json
import os
import string
import sys
import threading
from typing import Any

CONFIG_ENV = "TUNEDECK_FAKE_NVML"

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_ALREADY_INITIALIZED = 5
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_INSUFFICIENT_SIZE = 7
NVML_ERROR_INSUFFICIENT_POWER = 8
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_IRQ_ISSUE = 11
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_CORRUPTED_INFOROM = 14
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_RESET_REQUIRED = 16
NVML_ERROR_OPERATING_SYSTEM = 17
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_IN_USE = 19
NVML_ERROR_MEMORY = 20
NVML_ERROR_NO_DATA = 21
NVML_ERROR_UNKNOWN = 999

NVML_TEMPERATURE_GPU = 0
NVML_TEMPERATURE_GPU_MAX = 1
NVML_VALUE_NOT_AVAILABLE_ulonglong = ctypes.c_ulonglong(-1)
nvmlMemory_v2 = 0x02000028
_NO_INSTANCE = 0xFFFFFFFF  # gpuInstanceId / computeInstanceId outside MIG


class NVMLLibraryMismatchError(Exception):
    """Raised, as by nvidia-ml-py, when an unversioned call is missing from the driver (not an NVMLError)."""


class NVMLError(Exception):
    """An NVML return code; ``NVMLError(code)`` builds the matching ``NVMLError_<Name>`` subclass."""

    _valClassMapping: dict[int, type[NVMLError]] = {}
    _errcode_to_string = {
        NVML_ERROR_UNINITIALIZED: "Uninitialized",
        NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
        NVML_ERROR_ALREADY_INITIALIZED: "Already Initialized",
        NVML_ERROR_NOT_FOUND: "Not Found",
        NVML_ERROR_INSUFFICIENT_SIZE: "Insufficient Size",
        NVML_ERROR_INSUFFICIENT_POWER: "Insufficient External Power",
        NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
        NVML_ERROR_TIMEOUT: "Timeout",
        NVML_ERROR_IRQ_ISSUE: "Interrupt Request Issue",
        NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
        NVML_ERROR_CORRUPTED_INFOROM: "Corrupted infoROM",
        NVML_ERROR_GPU_IS_LOST: "GPU is lost",
        NVML_ERROR_RESET_REQUIRED: "GPU requires restart",
        NVML_ERROR_OPERATING_SYSTEM: "The operating system has blocked the request.",
        NVML_ERROR_LIB_RM_VERSION_MISMATCH: "RM has detected an NVML/RM version mismatch.",
        NVML_ERROR_MEMORY: "Insufficient Memory",
        NVML_ERROR_UNKNOWN: "Unknown Error",
    }
    value: int

    def __new__(cls, value: int) -> NVMLError:
        typ = NVMLError._valClassMapping.get(value, cls) if cls is NVMLError else cls
        obj = Exception.__new__(typ)
        obj.value = value
        return obj

    def __str__(self) -> str:
        return self._errcode_to_string.get(self.value, f"NVML Error with code {self.value}")


def _error_classes() -> None:
    """NVML_ERROR_GPU_IS_LOST -> NVMLError_GpuIsLost, and so on, as nvidia-ml-py names them."""
    module = sys.modules[__name__]
    for name in [n for n in dir(module) if n.startswith("NVML_ERROR_")]:
        value = getattr(module, name)
        class_name = "NVMLError_" + string.capwords(name.replace("NVML_ERROR_", ""), "_").replace("_", "")

        def new(typ: type[NVMLError], *args: Any, _value: int = value) -> NVMLError:
            return NVMLError.__new__(typ, _value)

        cls = type(class_name, (NVMLError,), {"__new__": new})
        cls.__module__ = __name__
        setattr(module, class_name, cls)
        NVMLError._valClassMapping[value] = cls


_error_classes()


class c_nvmlMemory_t(ctypes.Structure):
    """What ``nvmlDeviceGetMemoryInfo(handle)`` returns: bytes."""

    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]
    total: int
    free: int
    used: int


class c_nvmlMemory_v2_t(ctypes.Structure):
    """What ``nvmlDeviceGetMemoryInfo(handle, version=nvmlMemory_v2)`` returns."""

    _fields_ = [
        ("version", ctypes.c_uint),
        ("total", ctypes.c_ulonglong),
        ("reserved", ctypes.c_ulonglong),
        ("free", ctypes.c_ulonglong),
        ("used", ctypes.c_ulonglong),
    ]
    version: int
    total: int
    reserved: int
    free: int
    used: int


class c_nvmlUtilization_t(ctypes.Structure):
    """What ``nvmlDeviceGetUtilizationRates`` returns: percent of the last sample period."""

    _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]
    gpu: int
    memory: int


class nvmlFriendlyObject:
    """A process record, as nvidia-ml-py turns ``c_nvmlProcessInfo_t`` into one."""

    def __init__(self, dictionary: dict[str, Any]) -> None:
        for key, value in dictionary.items():
            setattr(self, key, value)

    def __str__(self) -> str:
        return str(self.__dict__)


class struct_c_nvmlDevice_t:
    """An opaque device handle (a ctypes pointer in nvidia-ml-py); only its index matters here."""

    def __init__(self, index: int) -> None:
        self._index = index


class _State:
    """The fake driver: whether it is initialised, its configuration, and the calls answered so far."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.refcount = 0
        self.calls = 0
        self.config: dict[str, Any] = {}
        self.config_key: tuple[int, int] | None = None

    def load(self) -> dict[str, Any]:
        path = os.environ.get(CONFIG_ENV)
        if not path:
            raise NVMLError(NVML_ERROR_LIBRARY_NOT_FOUND)
        try:
            stat = os.stat(path)
            key = (stat.st_mtime_ns, stat.st_size)
            if key != self.config_key:
                with open(path, encoding="utf-8") as handle:
                    self.config = json.load(handle)
                self.config_key = key
        except (OSError, ValueError):
            raise NVMLError(NVML_ERROR_LIBRARY_NOT_FOUND) from None
        return self.config

    def call(self) -> dict[str, Any]:
        """The configuration for one call; raises as the driver would once it is gone."""
        with self.lock:
            if self.refcount == 0:
                raise NVMLError(NVML_ERROR_UNINITIALIZED)
            config = self.load()
            fail_after = config.get("fail_after")
            self.calls += 1
            if fail_after is not None and self.calls > int(fail_after):
                raise NVMLError(int(config.get("fail_with", NVML_ERROR_GPU_IS_LOST)))
            return config


_state = _State()


def _gpu(handle: object, query: str) -> dict[str, Any]:
    config = _state.call()
    if not isinstance(handle, struct_c_nvmlDevice_t):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    gpus = config.get("gpus", [])
    if handle._index >= len(gpus):
        raise NVMLError(NVML_ERROR_GPU_IS_LOST)
    gpu: dict[str, Any] = gpus[handle._index]
    if query in gpu.get("unsupported", []):
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    if query in gpu.get("errors", {}):
        raise NVMLError(int(gpu["errors"][query]))
    return gpu


def nvmlInit() -> None:
    """Initialise (reference-counted, as the real library is)."""
    with _state.lock:
        config = _state.load()
        if config.get("init_error") is not None:
            raise NVMLError(int(config["init_error"]))
        _state.refcount += 1


def nvmlShutdown() -> None:
    with _state.lock:
        if _state.refcount == 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        _state.refcount -= 1


def nvmlDeviceGetCount() -> int:
    return len(_state.call().get("gpus", []))


def nvmlDeviceGetHandleByIndex(index: int) -> struct_c_nvmlDevice_t:
    if not 0 <= index < len(_state.call().get("gpus", [])):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return struct_c_nvmlDevice_t(index)


def nvmlDeviceGetName(handle: struct_c_nvmlDevice_t) -> str:
    return str(_gpu(handle, "name").get("name", "NVIDIA Fake GPU"))


def nvmlDeviceGetMemoryInfo(
    handle: struct_c_nvmlDevice_t, version: int | None = None
) -> c_nvmlMemory_t | c_nvmlMemory_v2_t:
    gpu = _gpu(handle, "memory")
    total, used = int(gpu.get("mem_total", 0)), int(gpu.get("mem_used", 0))
    if not version:
        return c_nvmlMemory_t(total=total, free=total - used, used=used)
    return c_nvmlMemory_v2_t(version=version, total=total, reserved=0, free=total - used, used=used)


def nvmlDeviceGetUtilizationRates(handle: struct_c_nvmlDevice_t) -> c_nvmlUtilization_t:
    gpu = _gpu(handle, "utilization")
    return c_nvmlUtilization_t(gpu=int(gpu.get("util", 0)), memory=int(gpu.get("mem_util", 0)))


def nvmlDeviceGetTemperature(handle: struct_c_nvmlDevice_t, sensor: int) -> int:
    gpu = _gpu(handle, "temperature")
    if sensor != NVML_TEMPERATURE_GPU:
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return int(gpu.get("temp", 0))


def nvmlDeviceGetPowerUsage(handle: struct_c_nvmlDevice_t) -> int:
    """Milliwatts."""
    return int(_gpu(handle, "power").get("power_mw", 0))


def nvmlDeviceGetEnforcedPowerLimit(handle: struct_c_nvmlDevice_t) -> int:
    """Milliwatts."""
    return int(_gpu(handle, "power_limit").get("power_limit_mw", 0))


def nvmlDeviceGetComputeRunningProcesses(handle: struct_c_nvmlDevice_t) -> list[nvmlFriendlyObject]:
    try:
        gpu = _gpu(handle, "processes")
    except NVMLError as exc:
        if exc.value == NVML_ERROR_FUNCTION_NOT_FOUND:  # nvidia-ml-py's @throwOnVersionMismatch
            raise NVMLLibraryMismatchError("Unversioned function called and the pyNVML version does not match") from exc
        raise
    return [
        nvmlFriendlyObject(
            {
                "pid": int(proc["pid"]),
                "usedGpuMemory": proc.get("used_memory"),
                "gpuInstanceId": _NO_INSTANCE,
                "computeInstanceId": _NO_INSTANCE,
            }
        )
        for proc in gpu.get("processes", [])
    ]
