"""Run untrusted Python (a model's completion plus a task's tests) in a separate, fenced process.

Completions are code a model wrote: they may loop forever, eat memory, fork, write files or
try the network. They never run inside the engine service or a worker; each program gets

- its own process, ``python -I`` (isolated: no user site, no environment variables, no cwd
  on ``sys.path``), stdin closed, a minimal environment, and a fresh temporary working folder
  that is removed afterwards;
- a wall-clock timeout, after which its whole process group is killed (``start_new_session``
  + ``os.killpg``), so a program that forks cannot leave children behind;
- resource limits (CPU seconds, 2 GiB of address space, file size, processes), set by the
  sandboxed interpreter itself before the program runs: ``preexec_fn`` is unsafe in a process
  that runs several sandboxes from threads, and lowering one's own limits needs no privilege;
- no network: ``unshare --net`` (a network namespace with no interfaces; ``--pid --fork
  --kill-child`` too, so a daemonised grandchild dies with the program) when this machine
  allows it, checked once per process, and in any case a prelude that makes creating a socket
  raise.

This is a fence against accidents and sloppy code, not a security boundary against an
adversary: the program runs as the same user and can read what that user can read.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT_S = 10.0
MEMORY_BYTES = 2 * 1024**3
FILE_BYTES = 16 * 1024**2
OUTPUT_CHARS = 8192  # of each stream, kept in the result
ERROR_CHARS = 300
_EXTRA_TASKS = 64  # processes/threads a program may add (RLIMIT_NPROC counts the user's tasks)
_SIGNAL_ERRORS = {
    signal.SIGXCPU: "CPU time limit exceeded",
    signal.SIGXFSZ: "file size limit exceeded",
    signal.SIGKILL: "killed (SIGKILL)",
    signal.SIGSEGV: "crashed (SIGSEGV)",
}

# Runs inside the sandboxed interpreter: limits first, then no sockets, then the program, in a
# namespace of its own so none of these names leak into it.
_RUNNER = r"""
import json, resource, sys

def _tunedeck_limits(spec):
    for name, (soft, hard) in spec.items():
        kind = getattr(resource, name, None)
        if kind is None:
            continue
        _, current = resource.getrlimit(kind)
        if current != resource.RLIM_INFINITY:
            soft, hard = min(soft, current), min(hard, current)
        try:
            resource.setrlimit(kind, (soft, hard))
        except (ValueError, OSError):
            pass

def _tunedeck_no_network():
    import socket, _socket

    message = "network access is disabled in the tunedeck sandbox"

    def refuse(*args, **kwargs):
        raise PermissionError(message)

    original = _socket.socket

    class NoSocket(original):
        # socket.socket.__init__ calls _socket.socket.__init__ looked up at call time, so this
        # guards both; wrapping an existing fd (socketpair, asyncio's self-pipe) stays allowed.
        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
            if fileno is None:
                raise PermissionError(message)
            original.__init__(self, family, type, proto, fileno)

    _socket.socket = NoSocket
    for name in ("create_connection", "create_server", "getaddrinfo", "gethostbyname", "gethostbyname_ex",
                 "gethostbyaddr", "fromfd"):
        if hasattr(socket, name):
            setattr(socket, name, refuse)

_tunedeck_limits(json.loads(sys.argv[2]))
_tunedeck_no_network()
_path = sys.argv[1]
del sys.argv[1:]
with open(_path, encoding="utf-8") as _handle:
    _code = compile(_handle.read(), "program.py", "exec")
exec(_code, {"__name__": "__main__", "__builtins__": __builtins__})
"""


@dataclass(frozen=True)
class SandboxResult:
    """What happened to one program: ``passed`` means it exited with status 0 in time."""

    passed: bool
    timed_out: bool
    error: str | None
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float


@dataclass(frozen=True)
class Program:
    """A program to run and its wall-clock limit."""

    source: str
    timeout_s: float = DEFAULT_TIMEOUT_S


@functools.lru_cache(maxsize=1)
def isolation_prefix() -> tuple[str, ...]:
    """The ``unshare`` prefix this machine allows (strongest first), or ``()``; checked once.

    ``--map-root-user`` makes the namespaces available to an unprivileged user where the kernel
    allows user namespaces; containers and hardened kernels often do not, hence the check.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    candidates = (
        (unshare, "--net", "--map-root-user", "--pid", "--fork", "--kill-child"),
        (unshare, "--net", "--map-root-user"),
        (unshare, "--net"),
    )
    for prefix in candidates:
        try:
            done = subprocess.run(
                [*prefix, sys.executable, "-I", "-c", "pass"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            continue
        if done.returncode == 0:
            return prefix
    return ()


def network_isolation() -> str:
    """How the network is kept away from programs, in words (for logs and summaries)."""
    prefix = isolation_prefix()
    return " ".join(prefix) + " + no-socket prelude" if prefix else "no-socket prelude only"


def _user_tasks() -> int | None:
    """Processes and threads this user runs now (what RLIMIT_NPROC counts), or None if unknown."""
    uid = os.getuid()
    count = 0
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid == uid:
                count += len(os.listdir(f"/proc/{entry}/task"))
        except OSError:
            continue  # the process ended while we looked
    return count or None


def _limits(timeout_s: float, nproc: int | None) -> dict[str, tuple[int, int]]:
    cpu = int(timeout_s) + 1
    # SIGXCPU at the soft limit; the hard limit's SIGKILL also stops a program that ignores it
    # (a pid namespace's init ignores signals it has no handler for).
    limits = {
        "RLIMIT_CPU": (cpu, cpu + 1),
        "RLIMIT_AS": (MEMORY_BYTES, MEMORY_BYTES),
        "RLIMIT_FSIZE": (FILE_BYTES, FILE_BYTES),
        "RLIMIT_CORE": (0, 0),
    }
    if nproc is not None:
        limits["RLIMIT_NPROC"] = (nproc, nproc)
    return limits


def _read_capped(path: Path, *, tail: bool) -> str:
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - OUTPUT_CHARS) if tail else 0)
            data = handle.read(OUTPUT_CHARS)
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")


def error_line(returncode: int, stderr: str) -> str:
    """One line that says why a program failed: the traceback's last line, or the signal."""
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode)
        except ValueError:
            return f"killed by signal {-returncode}"
        return _SIGNAL_ERRORS.get(sig, f"killed by {sig.name}")
    lines = [line.rstrip() for line in stderr.splitlines() if line.strip()]
    # The traceback that ended the program is the last one not reported as "Exception ignored"
    # (shutdown noise); its exception is the first unindented line after its header.
    starts = [
        i
        for i, line in enumerate(lines)
        if line.startswith("Traceback (most recent call last)")
        and not (i > 0 and lines[i - 1].startswith("Exception ignored"))
    ]
    if starts:
        after = [line for line in lines[starts[-1] + 1 :] if not line[:1].isspace()]
        if after:
            return after[0][:ERROR_CHARS]
    return (lines[-1].strip() if lines else f"exit status {returncode}")[:ERROR_CHARS]


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def run_program(source: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, nproc: int | None = None) -> SandboxResult:
    """Run ``source`` in a fenced ``python -I`` process (see the module docstring) and wait for it."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tunedeck-sandbox-") as tmp:
        root = Path(tmp)
        work = root / "work"
        work.mkdir()
        program = root / "program.py"
        program.write_text(source, encoding="utf-8")
        out_path, err_path = root / "stdout.txt", root / "stderr.txt"
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": str(work), "TMPDIR": str(work)}
        command = [
            *isolation_prefix(),
            sys.executable,
            "-I",
            "-c",
            _RUNNER,
            str(program),
            json.dumps(_limits(timeout_s, nproc)),
        ]
        timed_out = False
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            # Output goes to files, not pipes: nothing to drain, and RLIMIT_FSIZE bounds it.
            proc = subprocess.Popen(
                command,
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
                close_fds=True,
            )
            try:
                returncode = proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc.pid)
                returncode = proc.wait()
            # Children it left running (same process group) go too.
            _kill_group(proc.pid)
        stdout = _read_capped(out_path, tail=False)
        stderr = _read_capped(err_path, tail=True)
    seconds = time.monotonic() - started
    if timed_out:
        error: str | None = f"timeout after {timeout_s:.1f} s"
    elif returncode != 0:
        error = error_line(returncode, stderr)
    else:
        error = None
    return SandboxResult(
        passed=not timed_out and returncode == 0,
        timed_out=timed_out,
        error=error,
        returncode=None if timed_out else returncode,
        stdout=stdout,
        stderr=stderr,
        seconds=seconds,
    )


def run_programs(programs: Sequence[Program], *, max_workers: int | None = None) -> list[SandboxResult]:
    """Run many programs, a few at a time (one thread waits on each process); results in order.

    At most ``os.cpu_count()`` run at once: tests are usually CPU-bound, and more would only
    make each one slower and closer to its timeout.
    """
    if not programs:
        return []
    workers = max(1, min(len(programs), max_workers or os.cpu_count() or 1, os.cpu_count() or 1))
    isolation_prefix()  # probe once here rather than in several threads at once
    tasks = _user_tasks()
    nproc = tasks + _EXTRA_TASKS * workers if tasks is not None else None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda p: run_program(p.source, timeout_s=p.timeout_s, nproc=nproc), programs))
