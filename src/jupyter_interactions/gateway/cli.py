"""`jupyter-interactions serve`: the standalone gateway process.

Prints exactly `Serving on http://HOST:PORT/` once it accepts connections, and publishes its
URL and token in the runtime file (mode 0600 from the moment it exists) so kernels find it.
Logs go to stderr and never contain the token or a key.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from ..config import GatewayConfig, Secret, runtime_file
from ..errors import InteractionsError
from .app import make_app
from .command import is_loopback

log = logging.getLogger("jupyter_interactions.gateway")


def write_runtime_file(path: Path, info: dict[str, object]) -> None:
    """Write `info` readable by this user only, with no moment where others could read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # in case a stale file kept wider permissions
        os.write(fd, json.dumps(info).encode())
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _remove_runtime_file(path: Path) -> None:
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if info.get("pid") == os.getpid():  # never remove another gateway's file
        path.unlink(missing_ok=True)


async def serve(config: GatewayConfig) -> None:
    app = make_app(config)
    state = app.settings["interactions_state"]
    await state.start()
    # The HTTP layer refuses anything past the limit outright; handlers answer 400 for bodies
    # just past it with a message that says so.
    server = HTTPServer(app, max_body_size=config.max_body_bytes + 1024 * 1024, xheaders=False)
    sockets = bind_sockets(config.port, config.host)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    host = config.host if ":" not in config.host else f"[{config.host}]"
    url = f"http://{host}:{port}/"
    if not is_loopback(config.host):
        print(
            f"WARNING: serving on {config.host}, which is not loopback: anyone who can reach "
            "this address and has the token can run models and code here",
            file=sys.stderr,
            flush=True,
        )
    runtime = runtime_file()
    write_runtime_file(
        runtime,
        {
            "url": url,
            "token": str(config.token),
            "pid": os.getpid(),
            "data_dir": str(config.data_dir),
        },
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"Serving on {url}", flush=True)
    log.info("data in %s; runtime file %s", config.data_dir, runtime)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        server.stop()
        await state.stop()
        await server.close_all_connections()
        _remove_runtime_file(runtime)


def _running() -> tuple[dict[str, object], int] | None:
    """The runtime file's gateway and its pid, if that process answers on its URL."""
    from ..client import runtime_file_info

    info = runtime_file_info()
    try:
        return (info, int(info["pid"])) if info is not None else None
    except (KeyError, TypeError, ValueError):
        return None


def _status() -> int:
    running = _running()
    if running is None:
        print("no gateway is running (kernels start one when a cell needs it)")
        return 1
    info, pid = running
    print(f"gateway running on {info['url']} (pid {pid}, data in {info.get('data_dir')})")
    return 0


def _stop(timeout: float) -> int:
    running = _running()
    if running is None:
        print("no gateway is running")
        return 0
    info, pid = running
    exited = _exit_waiter(pid)
    os.kill(pid, signal.SIGTERM)  # it finishes its work, marks running interactions, exits
    if exited(timeout):
        print(f"stopped the gateway on {info['url']}")
        return 0
    print(f"error: the gateway (pid {pid}) is still running after {timeout:g} s", file=sys.stderr)
    return 1


def _exit_waiter(pid: int) -> Callable[[float], bool]:
    """A wait for another process's exit: its pidfd turns readable then (Linux); elsewhere,
    checks every 50 ms. Opened before signalling, so the pid cannot be reused meanwhile."""
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None

    def wait(timeout: float) -> bool:
        if pidfd is not None:
            try:
                return bool(select.select([pidfd], [], [], timeout)[0])
            finally:
                os.close(pidfd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.05)
        return False

    return wait


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="jupyter-interactions")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the gateway standalone")
    run.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=None, help="port; 0 picks a free one")
    run.add_argument("--token", default=None, help="token clients must send (default: generated)")
    run.add_argument("--data-dir", default=None, help="where state lives")
    run.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ...")
    commands.add_parser("status", help="say whether a standalone gateway is running, and where")
    stop = commands.add_parser("stop", help="stop the standalone gateway kernels started")
    stop.add_argument("--timeout", type=float, default=15.0, help="seconds to wait (default 15)")
    args = parser.parse_args(argv)
    if args.command == "status":
        return _status()
    if args.command == "stop":
        return _stop(args.timeout)

    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Per-request access lines would cost more than the requests themselves.
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    try:
        config = GatewayConfig.load(
            host=args.host,
            port=args.port,
            token=Secret(args.token) if args.token else None,
            data_dir=args.data_dir,
        )
        if config.token is None:
            config = GatewayConfig.load(
                host=args.host,
                port=args.port,
                token=Secret(secrets.token_urlsafe(32)),
                data_dir=args.data_dir,
            )
    except InteractionsError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        print(f"error: cannot serve on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
