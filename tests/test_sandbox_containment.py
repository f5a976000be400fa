"""The sandbox contains untrusted test code, also as root: every attack here really runs.

A campaign-like folder outside the program's temp folder holds a listening Unix socket (the
engine socket's stand-in), a 0600 token and a campaign.toml; the test also listens on TCP
127.0.0.1 and on an abstract Unix socket. The programs try to reach all of it, to read
/etc/shadow, to write outside their folder, to fork 300 times and to see host processes. They
bypass the no-socket prelude with ctypes where they can, so what stops them is the sandbox.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.bench.sandbox import (
    Program,
    SandboxResult,
    choose_fence,
    run_program,
    run_programs,
    sandbox_fence,
)
from engine.bench.score import score_tests
from tests.helpers import processes_running

# Shared by the attack programs: ``attempt`` records what happened instead of failing, and
# ``raw`` makes a socket with libc's socket(2), which the no-socket prelude cannot refuse.
HEADER = """\
import ctypes, json, os, socket

_libc = ctypes.CDLL(None, use_errno=True)

def raw(family, kind=socket.SOCK_STREAM):
    fd = _libc.socket(family, kind, 0)
    if fd < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return socket.socket(fileno=fd)

def attempt(action):
    try:
        action()
    except BaseException as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"

def report(**outcomes):
    print(json.dumps(outcomes))
"""
ESCAPE = f"tunedeck-escape-{uuid.uuid4().hex}.txt"  # a file name the write attack tries in / and /tmp


@dataclass
class Campaign:
    """A campaign-like folder and the host's listeners that the programs try to reach."""

    root: Path
    engine_sock: Path
    token: Path
    toml: Path
    unix: socket.socket
    abstract_name: str
    abstract: socket.socket
    tcp: socket.socket
    tcp_port: int
    udp: socket.socket
    udp_port: int
    marker: str

    def accepted(self, listener: socket.socket) -> bool:
        listener.setblocking(False)
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return False
        connection.close()
        return True


def _marker() -> str:
    return f"{40 + uuid.uuid4().int % 1000 / 1000:.3f}"  # a sleep length no other process uses


@pytest.fixture(scope="module")
def as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("these checks are about containment when tunedeck runs as root, and this is not root")
    fence = sandbox_fence()
    assert fence.bwrap is not None, f"as root the sandbox must use bubblewrap: {fence.warnings}"
    assert fence.cgroup is not None, f"as root the process cap needs a pids cgroup: {fence.warnings}"
    assert fence.warnings == ()


@pytest.fixture(scope="module")
def campaign(as_root: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campaign]:
    root = tmp_path_factory.mktemp("campaign")
    state = root / ".tunedeck"
    state.mkdir()
    engine_sock = state / "engine.sock"
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(engine_sock))
    unix.listen(8)
    token = state / "token"
    token.write_text("secret-token\n")
    token.chmod(0o600)
    toml = root / "campaign.toml"
    toml.write_text('name = "contained"\n')
    abstract_name = f"tunedeck-test-{uuid.uuid4().hex}"
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind("\0" + abstract_name)
    abstract.listen(8)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    yield Campaign(
        root,
        engine_sock,
        token,
        toml,
        unix,
        abstract_name,
        abstract,
        tcp,
        tcp.getsockname()[1],
        udp,
        udp.getsockname()[1],
        _marker(),
    )
    for listener in (unix, abstract, tcp, udp):
        listener.close()


def _program(body: str, **values: object) -> str:
    constants = "".join(f"{name} = {value!r}\n" for name, value in values.items())
    return HEADER + constants + body


def _outcomes(result: SandboxResult) -> dict[str, object]:
    assert result.passed, (result.error, result.stderr)
    outcomes = json.loads(result.stdout)
    assert isinstance(outcomes, dict)
    return outcomes


@pytest.fixture(scope="module")
def attacks(campaign: Campaign) -> dict[str, SandboxResult]:
    """Every attack, run together through ``run_programs`` as a suite's tests would be."""
    c = campaign
    sources = {
        "unix": _program(
            """
def control():  # a socket of its own, in its own folder: the raw path does work
    server = raw(socket.AF_UNIX)
    server.bind("own.sock")
    server.listen(1)
    raw(socket.AF_UNIX).connect("own.sock")
report(
    exists=os.path.exists(SOCK),
    prelude=attempt(lambda: socket.socket(socket.AF_UNIX).connect(SOCK)),
    raw=attempt(lambda: raw(socket.AF_UNIX).connect(SOCK)),
    abstract=attempt(lambda: raw(socket.AF_UNIX).connect("\\0" + ABSTRACT)),
    control=attempt(control),
)
""",
            SOCK=str(c.engine_sock),
            ABSTRACT=c.abstract_name,
        ),
        "read": _program(
            """
def read(path):
    with open(path, "rb") as handle:
        handle.read()
with open("mine.txt", "w") as handle:
    handle.write("x")
report(
    token=attempt(lambda: read(TOKEN)),
    toml=attempt(lambda: read(TOML)),
    shadow=attempt(lambda: read("/etc/shadow")),
    listing=attempt(lambda: os.listdir(ROOT)),
    own=attempt(lambda: read("mine.txt")),
)
""",
            TOKEN=str(c.token),
            TOML=str(c.toml),
            ROOT=str(c.root),
        ),
        "write": _program(
            """
def write(path):
    with open(path, "w") as handle:
        handle.write("escaped")
def own():
    import tempfile
    write("out.txt")
    os.mkdir("sub")
    write("sub/deeper.txt")
    with tempfile.NamedTemporaryFile(dir=None) as handle:  # TMPDIR is the working folder
        handle.write(b"x")
    assert open("sub/deeper.txt").read() == "escaped"
report(
    campaign=attempt(lambda: write(os.path.join(ROOT, "escape.txt"))),
    state=attempt(lambda: write(os.path.join(ROOT, ".tunedeck", "escape.txt"))),
    tmp=attempt(lambda: write("/tmp/" + ESCAPE)),
    slash=attempt(lambda: write("/" + ESCAPE)),
    parent=attempt(lambda: write("../escape.txt")),
    python=attempt(lambda: write(os.path.join(os.path.dirname(os.__file__), "escape.py"))),
    own=attempt(own),
)
""",
            ROOT=str(c.root),
            ESCAPE=ESCAPE,
        ),
        "forks": _program(
            """
import time
forked, error = 0, None
try:
    for _ in range(300):
        pid = os.fork()
        if pid == 0:
            try:
                os.execv("/bin/sleep", ["sleep", MARKER])
            finally:
                os._exit(0)
        forked += 1
except OSError as exc:
    error = f"{type(exc).__name__}: {exc}"
report(forked=forked, error=error)
""",
            MARKER=c.marker,
        ),
        "tcp": _program(
            """
def connect_raw():
    connection = raw(socket.AF_INET)
    connection.settimeout(2)
    connection.connect(("127.0.0.1", PORT))
with open("/proc/net/dev") as handle:
    interfaces = sorted(line.split(":")[0].strip() for line in handle.read().splitlines()[2:] if ":" in line)
report(
    socket=attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
    connection=attempt(lambda: socket.create_connection(("127.0.0.1", PORT), timeout=2)),
    raw=attempt(connect_raw),
    udp=attempt(lambda: raw(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", UDP_PORT))),
    interfaces=interfaces,
)
""",
            PORT=c.tcp_port,
            UDP_PORT=c.udp_port,
        ),
        "processes": _program(
            """
pids = sorted(int(entry) for entry in os.listdir("/proc") if entry.isdigit())
commands = []
for pid in pids:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            commands.append(handle.read().replace(b"\\0", b" ").decode(errors="replace"))
    except OSError:
        pass
report(
    pids=pids,
    commands=commands,
    me=os.getpid(),
    signal=attempt(lambda: os.kill(HOST_PID, 0)),
    uid=os.getuid(),
)
""",
            HOST_PID=os.getpid(),
        ),
    }
    names = list(sources)
    results = run_programs([Program(sources[name], timeout_s=20.0) for name in names])
    return dict(zip(names, results, strict=True))


def test_the_engine_socket_is_out_of_reach(campaign: Campaign, attacks: dict[str, SandboxResult]) -> None:
    seen = _outcomes(attacks["unix"])
    assert seen["control"] == "ok"  # the raw socket path works: what stops the rest is the sandbox
    assert seen["exists"] is False
    assert str(seen["prelude"]).startswith("PermissionError: network access is disabled")
    assert str(seen["raw"]).startswith("FileNotFoundError"), seen["raw"]
    assert str(seen["abstract"]).startswith("ConnectionRefusedError"), seen["abstract"]  # another network ns
    assert not campaign.accepted(campaign.unix)
    assert not campaign.accepted(campaign.abstract)


def test_the_token_campaign_files_and_shadow_cannot_be_read(attacks: dict[str, SandboxResult]) -> None:
    seen = _outcomes(attacks["read"])
    assert seen["own"] == "ok"
    for what in ("token", "toml", "shadow", "listing"):
        assert str(seen[what]).startswith("FileNotFoundError"), (what, seen[what])


def test_nothing_is_written_outside_the_temp_folder(campaign: Campaign, attacks: dict[str, SandboxResult]) -> None:
    seen = _outcomes(attacks["write"])
    assert seen["own"] == "ok"
    for what in ("campaign", "state", "tmp", "slash", "parent", "python"):
        assert seen[what] != "ok", what
        assert str(seen[what]).split(":")[0] in {"FileNotFoundError", "OSError", "PermissionError"}, seen[what]
    assert sorted(p.name for p in campaign.root.rglob("*")) == [".tunedeck", "campaign.toml", "engine.sock", "token"]
    assert not Path("/tmp", ESCAPE).exists()
    assert not Path("/", ESCAPE).exists()


def test_300_forks_are_capped_and_their_children_die(campaign: Campaign, attacks: dict[str, SandboxResult]) -> None:
    seen = _outcomes(attacks["forks"])
    forked = seen["forked"]
    assert isinstance(forked, int)
    assert 0 < forked < 100, seen
    assert "Resource temporarily unavailable" in str(seen["error"]), seen
    time.sleep(0.2)
    assert processes_running(campaign.marker) == []


def test_no_network_at_all(campaign: Campaign, attacks: dict[str, SandboxResult]) -> None:
    seen = _outcomes(attacks["tcp"])
    assert str(seen["socket"]).startswith("PermissionError: network access is disabled")
    assert str(seen["connection"]).startswith("PermissionError: network access is disabled")
    # Its own network namespace: a loopback of its own where nothing listens, and nothing else.
    assert str(seen["raw"]).startswith(("ConnectionRefusedError", "OSError: [Errno 101]")), seen["raw"]
    assert seen["interfaces"] == ["lo"]
    assert not campaign.accepted(campaign.tcp)
    with pytest.raises(BlockingIOError):
        campaign.udp.recv(16)  # whatever the program sent went to its own loopback


def test_host_processes_are_invisible(attacks: dict[str, SandboxResult]) -> None:
    seen = _outcomes(attacks["processes"])
    pids = seen["pids"]
    assert isinstance(pids, list)
    assert os.getpid() not in pids
    assert len(pids) <= 3, seen  # bwrap's reaper, the program (and its /proc reader at most)
    commands = seen["commands"]
    assert isinstance(commands, list)
    assert not any("pytest" in str(command) for command in commands), commands
    assert str(seen["signal"]).startswith("ProcessLookupError"), seen["signal"]
    assert seen["uid"] != 0


# --- what must keep working -----------------------------------------------------------------


def test_ordinary_test_code_still_passes(as_root: None) -> None:
    check = (
        "import collections, dataclasses, decimal, fractions, functools, hashlib, heapq, itertools\n"
        "import math, random, re, statistics, string, typing, datetime, json, threading, asyncio\n"
        "def check(candidate):\n"
        "    assert candidate([3, 1, 2]) == [1, 2, 3]\n"
        "    assert candidate([]) == []\n"
        "    assert math.isclose(statistics.mean([1, 2, 3]), 2)\n"
        "    assert hashlib.sha256(b'x').hexdigest().startswith('2d71')\n"
        "    assert collections.Counter('aab')['a'] == 2\n"
        "    assert str(fractions.Fraction(1, 3) + fractions.Fraction(1, 6)) == '1/2'\n"
        "    worker = threading.Thread(target=lambda: None)\n"
        "    worker.start()\n"
        "    worker.join()\n"
        "    assert asyncio.run(asyncio.sleep(0, result=5)) == 5\n"
    )
    prompt = "def sort_list(xs):\n"
    assert score_tests(prompt, "    return sorted(xs)\n", check, entry_point="sort_list") == (True, None)
    passed, error = score_tests(prompt, "    return xs\n", check, entry_point="sort_list")
    assert not passed
    assert error == "AssertionError"
    assert score_tests("p", "x", 'assert completion == "x", completion') == (True, None)
    multiprocessing = run_program(
        "import multiprocessing\n"
        "if __name__ == '__main__':\n"
        "    with multiprocessing.get_context('fork').Pool(2) as pool:\n"
        "        assert pool.map(abs, [-1, -2]) == [1, 2]\n",
        timeout_s=20.0,
    )
    assert multiprocessing.passed, multiprocessing.error


def test_timeouts_still_kill_even_a_child_that_left_the_group(as_root: None) -> None:
    marker = _marker()
    source = (
        "import os\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"  # out of the program's process group: killpg alone would miss it
        f"    os.execv('/bin/sleep', ['sleep', {marker!r}])\n"
        "while True:\n"
        "    pass\n"
    )
    began = time.monotonic()
    result = run_program(source, timeout_s=1.0)
    assert result.timed_out
    assert result.error == "timeout after 1.0 s"
    assert time.monotonic() - began < 4.0
    time.sleep(0.2)
    assert processes_running(marker) == []


def test_a_killed_program_is_reported_by_its_signal(as_root: None) -> None:
    result = run_program("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", timeout_s=5.0)
    assert result.returncode == -9
    assert result.error == "killed (SIGKILL)"
    assert run_program("raise SystemExit(3)", timeout_s=5.0).error == "exit status 3"


# --- without bubblewrap ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bwrap", "why"),
    [(None, "bubblewrap (bwrap) is not installed"), ("/nonexistent/bwrap", "bubblewrap does not start here")],
)
def test_without_bubblewrap_the_fallback_says_so(bwrap: str | None, why: str) -> None:
    fence = choose_fence(bwrap, "/bin/sh")
    assert fence.bwrap is None
    assert fence.warnings
    assert fence.warnings[0].startswith(why)
    assert "install bubblewrap" in fence.warnings[0]
    assert fence.description.startswith("WARNING: " + why)
    assert "no-socket prelude" in fence.description
