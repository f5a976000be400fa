"""A real terminal for the TUI benchmarks: tmux on a private server, polled with capture-pane.

Shared by tests/perf/bench_tui_*.py (imported as a sibling). Every session lives on its own tmux
server (``tmux -L <name>``), so a benchmark never touches a person's tmux; ``close()`` kills that
server only. Also: the bare Textual app the benchmarks use as their baseline, and a process's
resident memory from /proc.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 200, 50
POLL_S = 0.005
BARE_MARK = "bare-textual-app-painted"
BARE_APP = f"""\
from textual.app import App
from textual.widgets import Static


class Bare(App[None]):
    def compose(self):
        yield Static("{BARE_MARK}")


Bare().run()
"""


def bare_app_script() -> Path:
    """A file holding the minimal Textual app that paints one line (the baseline)."""
    path = Path(tempfile.mkdtemp(prefix="td-bare-")) / "bare_app.py"
    path.write_text(BARE_APP, encoding="utf-8")
    return path


class Terminal:
    """tmux sessions of WIDTH x HEIGHT on a private server."""

    def __init__(self, name: str = f"tunedeck-perf-{os.getpid()}") -> None:
        self.server = name
        self.count = 0

    def _tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["tmux", "-L", self.server, *args], capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def launch(self, argv: list[str], *, env: dict[str, str] | None = None) -> str:
        """Start ``argv`` in a new detached session; returns the session's name."""
        self.count += 1
        session = f"s{self.count}"
        command = " ".join(shlex.quote(a) for a in argv)
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        # exec: the pane's process is the program itself, so its pid is the TUI's (for RSS).
        shell = f"cd {shlex.quote(str(REPO))} && {exports + ' ' if exports else ''}exec {command}"
        self._tmux("new-session", "-d", "-s", session, "-x", str(WIDTH), "-y", str(HEIGHT), shell)
        return session

    def capture(self, session: str) -> str:
        """The pane's text now."""
        return self._tmux("capture-pane", "-p", "-t", session, check=False)

    def pid(self, session: str) -> int:
        """The pid of the pane's process."""
        return int(self._tmux("display-message", "-p", "-t", session, "#{pane_pid}").strip())

    def wait_for(self, session: str, marks: tuple[str, ...], timeout: float = 30.0) -> float | None:
        """Seconds (perf_counter) at which every mark was on screen, or None on timeout."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            text = self.capture(session)
            if all(mark in text for mark in marks):
                return time.perf_counter()
            time.sleep(POLL_S)
        return None

    def kill(self, session: str) -> None:
        """End a session (and the program in it)."""
        self._tmux("kill-session", "-t", session, check=False)

    def close(self) -> None:
        """Kill this benchmark's tmux server (and only it)."""
        self._tmux("kill-server", check=False)


def rss_kib(pid: int) -> int | None:
    """Resident memory of ``pid`` in KiB (psutil when installed, else /proc/<pid>/status VmRSS)."""
    try:
        import psutil

        return int(psutil.Process(pid).memory_info().rss // 1024)
    except ImportError:
        pass
    except Exception:  # the process is gone
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def python() -> str:
    """The interpreter running this script (the project's venv)."""
    return sys.executable
