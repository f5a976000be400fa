"""Run untrusted Python (a model's completion plus a task's tests) in a separate, fenced process.

Completions are code a model wrote: they may loop forever, eat memory, fork, write files, try
the network or go looking for the campaign's secrets. They never run inside the engine service
or a worker; each program gets

- its own process, ``python -I`` (isolated: no user site, no environment variables, no cwd
  on ``sys.path``), stdin closed, a minimal environment, and a fresh temporary working folder
  that is removed afterwards;
- a wall-clock timeout, after which its whole process group is killed (``start_new_session``
  + ``os.killpg``), so a program that forks cannot leave children behind;
- resource limits (CPU seconds, 2 GiB of address space, file size, processes), set by the
  sandboxed interpreter itself before the program runs: ``preexec_fn`` is unsafe in a process
  that runs several sandboxes from threads, and lowering one's own limits needs no privilege;
- a prelude that makes creating a socket raise.

Where bubblewrap (``bwrap``) is installed and works, the program also runs in a container of its
own (:func:`bwrap_command`), also when tunedeck runs as root: a read-only root holding only
``/usr``, the interpreter's prefixes (read-only), a fresh ``/proc`` and a minimal ``/dev``, and
its working folder (read-write) -- no ``/etc``, no home, no campaign, so no engine socket or
token; new user (mapped to an unprivileged uid inside, no capabilities, no further user
namespaces), pid, network, ipc, uts and cgroup namespaces, so no host processes and no network
(not even loopback, nor abstract Unix sockets). The process count is capped by a pids cgroup
where one can be made (the only cap that holds for root: the kernel ignores RLIMIT_NPROC for a
process whose real uid is root, which a root-run bwrap's user namespace keeps) and otherwise by
RLIMIT_NPROC, which a non-root user's fresh user namespace counts for the sandbox alone.

Without bubblewrap the program falls back to ``unshare --net`` (``--pid --fork --kill-child``
too where allowed) and the prelude, with a warning (logged once, and part of
:func:`network_isolation`, which ``bench run`` prints). That fallback is a fence against
accidents and sloppy code, not a security boundary: the program runs as the same user and can
read what that user can read.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
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
SANDBOX_UID = 65534  # the program's uid and gid inside bubblewrap's user namespace ("nobody")
SHM_BYTES = 64 * 1024**2  # the sandbox's own /dev/shm (a tmpfs; multiprocessing's semaphores)
_BWRAP_TASKS = 3  # bwrap, its pid-1 reaper and the interpreter: the pids cgroup counts them too
_LOG = logging.getLogger(__name__)
_CGROUP_NAMES = itertools.count()
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
__import__("os").environ.pop("PWD", None)  # set by bwrap's --chdir and sh; not part of the environment
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


@dataclass(frozen=True)
class Fence:
    """How programs are fenced on this machine (:func:`sandbox_fence`, probed once per process).

    ``bwrap`` and ``bwrap_options``: the bubblewrap executable and the options every program
    gets (:func:`bwrap_command` adds its own files), or None and ``()`` where bubblewrap is
    missing or does not work here. ``cgroup``: the folder in which each program gets a pids
    cgroup of its own, or None. ``warnings``: what is weaker than it should be, in words.
    """

    bwrap: str | None
    bwrap_options: tuple[str, ...]
    cgroup: Path | None
    warnings: tuple[str, ...]
    description: str


@functools.lru_cache(maxsize=1)
def isolation_prefix() -> tuple[str, ...]:
    """The ``unshare`` prefix this machine allows (strongest first), or ``()``; checked once.

    This is the fallback where bubblewrap is missing. ``--map-root-user`` makes the namespaces
    available to an unprivileged user where the kernel allows user namespaces; containers and
    hardened kernels often do not, hence the check.
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
        if _probe_succeeds([*prefix, sys.executable, "-I", "-c", "pass"]):
            return prefix
    return ()


# --- bubblewrap -----------------------------------------------------------------------------


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def python_paths() -> list[str]:
    """The folders outside ``/usr`` that this interpreter needs, to bind read-only.

    Its prefixes (a venv's and its base interpreter's) and the folder of the executable, each
    as named and as resolved (a venv's ``bin/python`` is a symlink to the base's); none inside
    another, none under ``/usr`` (bound whole). Raises ValueError for a prefix of ``/``.
    """
    named = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix, os.path.dirname(sys.executable)]
    found = {os.path.abspath(p) for p in named if p} | {os.path.realpath(p) for p in named if p}
    found.add(os.path.dirname(os.path.realpath(sys.executable)))
    if "/" in found:
        raise ValueError("the interpreter's prefix is /: binding it would show the sandbox the whole machine")
    kept: list[str] = []
    for path in sorted(found, key=lambda p: (p.count("/"), p)):
        if not any(_inside(path, folder) for folder in ["/usr", *kept]):
            kept.append(path)
    return kept


def _root_links() -> list[str]:
    """``/bin``, ``/lib`` and the like as the host has them: merged-/usr symlinks, else read-only."""
    args: list[str] = []
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = "/" + name
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def _bwrap_options(*, disable_userns: bool) -> tuple[str, ...]:
    options = ["--unshare-all", "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]
    if disable_userns:
        options.append("--disable-userns")
    options += ["--die-with-parent", "--cap-drop", "ALL", "--ro-bind", "/usr", "/usr", *_root_links()]
    options += ["--proc", "/proc", "--dev", "/dev", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm"]
    for path in python_paths():
        options += ["--ro-bind", path, path]
    return tuple(options)


def bwrap_command(fence: Fence, program: Path, work: Path) -> list[str]:
    """The bubblewrap prefix for one program: ``fence``'s options, then its file and folder.

    The program file is bound read-only and the working folder read-write, both at their own
    paths (so ``os.getcwd()`` names the real folder); ``/dev`` and ``/`` are then remounted
    read-only, which leaves the working folder and ``/dev/shm`` the only writable places.
    """
    assert fence.bwrap is not None
    return [
        fence.bwrap,
        *fence.bwrap_options,
        "--ro-bind",
        str(program),
        str(program),
        "--bind",
        str(work),
        str(work),
        "--remount-ro",
        "/dev",
        "--remount-ro",
        "/",
        "--chdir",
        str(work),
        "--",
    ]


def _probe_bwrap(bwrap: str | None) -> tuple[str | None, tuple[str, ...], str | None]:
    """``(bwrap, options, None)`` where bubblewrap runs this interpreter, else ``(None, (), why)``."""
    if bwrap is None:
        return None, (), "bubblewrap (bwrap) is not installed"
    try:
        variants = [_bwrap_options(disable_userns=True), _bwrap_options(disable_userns=False)]
    except ValueError as exc:
        return None, (), f"bubblewrap is not used: {exc}"
    why = "bubblewrap does not start here"
    for options in variants:
        fence = Fence(bwrap, options, None, (), "")
        with tempfile.TemporaryDirectory(prefix="tunedeck-sandbox-") as tmp:
            work = Path(tmp) / "work"
            work.mkdir()
            program = Path(tmp) / "program.py"
            program.write_text("print('ok')\n", encoding="utf-8")
            try:
                done = subprocess.run(
                    [*bwrap_command(fence, program, work), sys.executable, "-I", str(program)],
                    cwd=work,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=30,
                    check=False,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                why = f"bubblewrap does not start here ({exc})"
                continue
        if done.returncode == 0 and done.stdout.strip() == b"ok":
            return bwrap, options, None
        lines = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        why = f"bubblewrap does not start here ({lines[-1] if lines else f'exit status {done.returncode}'})"
    return None, (), why


# --- a pids cgroup per program --------------------------------------------------------------

# A shell moves itself into the program's cgroup and then becomes bwrap (or the interpreter):
# nothing the program starts can run outside the cgroup, not even for a moment.
_INTO_CGROUP = 'echo $$ > "$0" && exec "$@"'


def _cgroup_candidates() -> list[Path]:
    """Folders where a pids cgroup might be made: v1 ``pids`` hierarchies, then cgroup v2."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    v1_path = v2_path = None
    for line in own:
        parts = line.split(":", 2)
        if len(parts) == 3 and "pids" in parts[1].split(","):
            v1_path = parts[2]
        elif len(parts) == 3 and parts[0] == "0" and parts[1] == "":
            v2_path = parts[2]
    v1: list[Path] = []
    v2: list[Path] = []
    for line in mounts:
        fields, _, rest = line.partition(" - ")
        left, right = fields.split(), rest.split()
        if len(left) < 5 or len(right) < 3:
            continue
        point = Path(left[4])
        if right[0] == "cgroup" and "pids" in right[2].split(","):
            v1 += [point / (v1_path or "/").lstrip("/"), point]
        elif right[0] == "cgroup2":
            v2 += [point / (v2_path or "/").lstrip("/"), point]
    seen: list[Path] = []
    for path in v1 + v2:
        if path not in seen and path.is_dir():
            seen.append(path)
    return seen


def _remove_cgroup(path: Path) -> None:
    """Kill whatever is still in the cgroup (even a program that left its process group) and remove it."""
    deadline = time.monotonic() + 5.0
    while True:
        kill = path / "cgroup.kill"
        if kill.exists():
            with contextlib.suppress(OSError):
                kill.write_text("1")
        else:
            try:
                pids = (path / "cgroup.procs").read_text().split()
            except OSError:
                pids = []
            for pid in pids:
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                _LOG.warning("could not remove the sandbox's cgroup %s", path)
                return
            time.sleep(0.002)


def _make_cgroup(base: Path, max_tasks: int) -> Path:
    path = base / f"tunedeck-sandbox-{os.getpid()}-{next(_CGROUP_NAMES)}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        (path / "pids.max").write_text(str(max_tasks))
    except OSError:
        _remove_cgroup(path)
        raise
    return path


def _probe_cgroup(sh: str | None) -> Path | None:
    """A folder where this process can make a pids cgroup and move a process into it, or None."""
    if sh is None:
        return None
    for base in _cgroup_candidates():
        try:
            probe = _make_cgroup(base, 8)
        except OSError:
            continue
        try:
            moved = _probe_succeeds([sh, "-c", _INTO_CGROUP, str(probe / "cgroup.procs"), "true"])
        finally:
            _remove_cgroup(probe)
        if moved:
            _remove_stale_cgroups(base)
            return base
    return None


def _probe_succeeds(command: list[str]) -> bool:
    """Whether a probe command runs and exits 0 within 10 s (a fence is checked once, by trying it)."""
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _remove_stale_cgroups(base: Path) -> None:
    """Remove the cgroups (and kill the programs) that a tunedeck process which died left behind."""
    for path in base.glob("tunedeck-*-*"):
        try:
            owner = int(path.name.split("-")[2])
        except (IndexError, ValueError):
            continue
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            _remove_cgroup(path)
        except OSError:
            continue  # alive, someone else's


# --- the fence, chosen once -----------------------------------------------------------------


def choose_fence(bwrap: str | None, sh: str | None) -> Fence:
    """The fence that ``bwrap`` and ``sh`` (executables, or None where missing) give here, probed now."""
    bwrap, options, missing = _probe_bwrap(bwrap)
    cgroup = _probe_cgroup(sh)
    root = os.geteuid() == 0
    warnings: list[str] = []
    if bwrap is not None:
        cap = (
            f"processes capped at {_EXTRA_TASKS} by a pids cgroup"
            if cgroup is not None
            else f"processes capped at {_EXTRA_TASKS} by RLIMIT_NPROC in its user namespace"
        )
        description = (
            f"bubblewrap: only its folder and a read-only Python, no network, no host processes, {cap}"
            " + no-socket prelude"
        )
    else:
        prefix = isolation_prefix()
        description = (" ".join(prefix) if prefix else "no namespaces") + " + no-socket prelude"
        warnings.append(
            f"{missing}: bench tests run without it ({description} only) and can read and write whatever"
            " this user can (install bubblewrap: apt-get install bubblewrap)"
        )
    if cgroup is None and root:
        warnings.append(
            "no pids cgroup can be made here: running as root, the sandbox's process cap (RLIMIT_NPROC) does not hold"
        )
    if warnings:
        description = "WARNING: " + "; ".join(warnings) + f" -- {description}"
    return Fence(bwrap, options, cgroup, tuple(warnings), description)


@functools.lru_cache(maxsize=1)
def sandbox_fence() -> Fence:
    """How this machine fences programs, probed once per process; its warnings are logged once."""
    fence = choose_fence(shutil.which("bwrap"), shutil.which("sh"))
    for warning in fence.warnings:
        _LOG.warning("sandbox: %s", warning)
    return fence


def network_isolation() -> str:
    """How programs are fenced (network, files, processes), in words, warnings first (for logs)."""
    return sandbox_fence().description


def sandbox_warnings() -> tuple[str, ...]:
    """What is weaker than it should be about the sandbox on this machine (empty when nothing)."""
    return sandbox_fence().warnings


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


def _from_bwrap(returncode: int) -> int:
    """bwrap reports a child killed by signal N as exit status 128 + N: back to Popen's -N."""
    if returncode > 128:
        with contextlib.suppress(ValueError):
            return -signal.Signals(returncode - 128)
    return returncode


def run_program(source: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, nproc: int | None = None) -> SandboxResult:
    """Run ``source`` in a fenced ``python -I`` process (see the module docstring) and wait for it.

    ``nproc`` is the RLIMIT_NPROC of the fallback, which counts all of this user's tasks; under
    bubblewrap each program counts alone (its own user namespace, its own pids cgroup) and may
    add :data:`_EXTRA_TASKS`.
    """
    fence = sandbox_fence()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tunedeck-sandbox-") as tmp:
        root = Path(tmp)
        work = root / "work"
        work.mkdir()
        program = root / "program.py"
        program.write_text(source, encoding="utf-8")
        out_path, err_path = root / "stdout.txt", root / "stderr.txt"
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": str(work), "TMPDIR": str(work)}
        if fence.bwrap is not None:
            # Inside its own user namespace RLIMIT_NPROC counts the sandbox's tasks (the reaper,
            # the interpreter, what it starts) -- for a non-root user; root is exempt from it.
            prefix = bwrap_command(fence, program, work)
            limits = _limits(timeout_s, _EXTRA_TASKS + 2)
        else:
            prefix = list(isolation_prefix())
            limits = _limits(timeout_s, nproc)
        cgroup: Path | None = None
        if fence.cgroup is not None:
            try:
                cgroup = _make_cgroup(fence.cgroup, _EXTRA_TASKS + _BWRAP_TASKS)
            except OSError as exc:
                _LOG.warning("sandbox: no pids cgroup for this program (%s): its process cap may not hold", exc)
            else:
                prefix = [shutil.which("sh") or "/bin/sh", "-c", _INTO_CGROUP, str(cgroup / "cgroup.procs"), *prefix]
        command = [*prefix, sys.executable, "-I", "-c", _RUNNER, str(program), json.dumps(limits)]
        timed_out = False
        try:
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
        finally:
            if cgroup is not None:
                _remove_cgroup(cgroup)
        if fence.bwrap is not None:
            returncode = _from_bwrap(returncode)
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
    fence = sandbox_fence()  # probe once here rather than in several threads at once
    nproc = None
    if fence.bwrap is None:
        tasks = _user_tasks()
        nproc = tasks + _EXTRA_TASKS * workers if tasks is not None else None
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda p: run_program(p.source, timeout_s=p.timeout_s, nproc=nproc), programs))
