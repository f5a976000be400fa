"""``tunedeck engine serve``: run the service on the campaign's Unix socket (and optionally TCP).

The socket lives in ``<campaign>/.tunedeck/`` (mode 0700), so other local users cannot
connect to it. TCP listens on 127.0.0.1 only, for an SSH tunnel, and every request there
must carry the bearer token kept in ``.tunedeck/token`` (mode 0600).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from pathlib import Path

import uvicorn

from engine.errors import TunedeckError
from engine.service.app import create_app
from engine.service.core import EngineCore
from engine.service.ownership import EngineAlreadyRunning, EngineLock
from engine.store.campaign import Campaign, EnginePaths, engine_paths, ensure_private_dir

log = logging.getLogger("tunedeck.engine")

SHUTDOWN_GRACE_S = 2  # open streams get this long to end before a stopping engine cancels them


def socket_answers(path: Path) -> bool:
    """Whether something accepts connections on the Unix socket at ``path``."""
    if not path.exists():
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def claim_socket(paths: EnginePaths) -> None:
    """Refuse if a live service owns the socket; remove a stale socket file left by a dead one.

    Called only while holding the engine lock: otherwise a starting engine could remove the
    socket another had just bound. A campaign whose own socket path would be too long gets a
    short one in a private folder (``EnginePaths.socket``), made 0700 here.
    """
    if paths.socket.parent != paths.root:
        ensure_private_dir(paths.socket.parent)
    if socket_answers(paths.socket):
        pid = paths.pid.read_text().strip() if paths.pid.exists() else "?"
        raise EngineAlreadyRunning(f"an engine is already running here (pid {pid})", path=paths.socket)
    paths.socket.unlink(missing_ok=True)


def read_or_create_token(paths: EnginePaths) -> str:
    """The bearer token for TCP clients, created once with mode 0600."""
    if paths.token.exists():
        return paths.token.read_text(encoding="utf-8").strip()
    token = secrets.token_urlsafe(32)
    fd = os.open(paths.token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token


def check_port(port: int) -> int:
    """A TCP port a user may ask for (1-65535); anything else is one clear line."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise TunedeckError(f"not a TCP port: {port!r} (give 1-65535)", field="--tcp")
    return port


def listen_unix(path: Path) -> socket.socket:
    """The engine's Unix socket, bound and listening (the folder's 0700 mode keeps others out)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise TunedeckError(f"cannot listen on the engine socket: {exc.strerror}", path=path) from None
    return sock


def listen_tcp(port: int) -> socket.socket:
    """127.0.0.1:port, bound and listening; a busy or forbidden port is one clear line."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise TunedeckError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}", field="--tcp") from None
    return sock


async def serve(campaign: Campaign, *, tcp_port: int | None = None) -> None:
    """Serve until SIGTERM/SIGINT or POST /shutdown; workers keep running afterwards."""
    if tcp_port is not None:
        check_port(tcp_port)
    paths = engine_paths(campaign.root)
    ensure_private_dir(paths.root)
    lock = EngineLock(paths.lock)
    lock.acquire()  # before anything else: a second engine of this campaign stops here
    # Bind both sockets before anything is adopted or launched: a busy port changes nothing.
    sockets: list[socket.socket] = []
    try:
        claim_socket(paths)
        sockets.append(listen_unix(paths.socket))
        if tcp_port is not None:
            sockets.append(listen_tcp(tcp_port))
    except TunedeckError:
        for sock in sockets:
            sock.close()
        if sockets:
            paths.socket.unlink(missing_ok=True)
        lock.release()
        raise
    core = EngineCore(campaign, lock=lock)
    await core.start()
    apps = [create_app(campaign, core=core)]
    if tcp_port is not None:
        apps.append(create_app(campaign, core=core, token=read_or_create_token(paths)))
    # Streams are long-lived: without a bound, a graceful shutdown would wait for every TUI to hang up.
    servers = [
        uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=SHUTDOWN_GRACE_S)
        )
        for app in apps
    ]
    paths.pid.write_text(f"{os.getpid()}\n", encoding="utf-8")
    log.info("engine for %s on %s (pid %d)", campaign.root, paths.socket, os.getpid())

    async def shutdown_on_request() -> None:
        await asyncio.wait(
            [asyncio.create_task(app.state.shutdown.wait()) for app in apps], return_when=asyncio.FIRST_COMPLETED
        )
        for server in servers:
            server.should_exit = True

    watcher = asyncio.create_task(shutdown_on_request())
    try:
        await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in zip(servers, sockets, strict=True)))
    finally:
        watcher.cancel()
        await core.close(keep_lock=True)
        with contextlib.suppress(OSError):
            if paths.pid.read_text().strip() == str(os.getpid()):
                paths.pid.unlink()
        paths.socket.unlink(missing_ok=True)
        # Last: once the lock goes, the next engine may bind a socket that must not be removed here.
        core.lock.release()


def run_forever(campaign_root: Path, *, tcp_port: int | None = None) -> None:
    """Blocking entry point for ``tunedeck engine serve`` and ``python -m engine.service``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    campaign = Campaign.open(campaign_root)
    asyncio.run(serve(campaign, tcp_port=tcp_port))
