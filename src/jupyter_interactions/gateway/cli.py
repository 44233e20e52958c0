"""`jupyter-interactions serve | status | stop`: the standalone gateway process.

`serve` prints exactly `Serving on http://HOST:PORT/` once it accepts connections, and
publishes its URL and token in its own runtime file, `jupyter-interactions-gateway-<pid>.json`
(mode 0600 from the moment it exists, removed on exit), so kernels find it. It owns its data
dir (see runtime.py): a second gateway on the same dir refuses to start. Started by a kernel
(`--auto`), it exits once idle (see http/idle.py). Logs go to stderr (a file is made 0600) and never
contain the token or a key (logs.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import select
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from ..config import GatewayConfig, Secret, gateway_data_dir
from ..errors import InteractionsError
from ..launch import is_loopback, running_gateways, same_dir
from ..protocol import now
from .http.app import make_app
from .http.idle import Activity, listen, stop_when_idle
from .logs import setup_logging
from .runtime import write_runtime_file

log = logging.getLogger("jupyter_interactions.gateway")


async def serve(config: GatewayConfig, idle_exit: float = 0.0) -> None:
    """Serve until SIGINT/SIGTERM, or until idle for `idle_exit` seconds (0: never)."""
    app = make_app(config)
    state = app.settings["interactions_state"]
    await state.start()  # takes the data dir, or refuses: before anything is published
    activity = Activity()
    # The app answers any body past the limit with a 400 that says so (http/base.LimitedBodies).
    server, port = listen(app, config.host, config.port, activity)
    host = config.host if ":" not in config.host else f"[{config.host}]"
    url = f"http://{host}:{port}/"
    if not is_loopback(config.host):
        print(
            f"WARNING: serving on {config.host}, which is not loopback: anyone who can reach "
            "this address and has the token can run models and code here",
            file=sys.stderr,
            flush=True,
        )
    runtime = write_runtime_file(
        {
            "url": url,
            "token": str(config.token),
            "pid": os.getpid(),
            "data_dir": str(config.data_dir),
            "started": now(),
            "idle_exit_seconds": idle_exit or None,
        }
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    watcher = None
    if idle_exit:

        def running() -> bool:
            return bool(state.engine.runs)

        watcher = asyncio.ensure_future(stop_when_idle(activity, idle_exit, running, stop))
    print(f"Serving on {url}", flush=True)
    log.info("data in %s; runtime file %s", config.data_dir, runtime)
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        if watcher is not None:
            watcher.cancel()
        runtime.unlink(missing_ok=True)  # no kernel should pick a gateway that is going
        server.stop()
        await state.stop()
        await server.close_all_connections()


def _answering() -> list[tuple[dict[str, Any], bool]]:
    """Every live gateway's runtime info, and whether it answers on its URL."""
    from ..launch import healthy

    return [(info, healthy(str(info.get("url", "")))) for info in running_gateways()]


def _status() -> int:
    gateways = _answering()
    if not gateways:
        print("no gateway is running (kernels start one when a cell needs it)")
        return 1
    for info, answers in gateways:
        notes = [f"pid {info['pid']}", f"data in {info.get('data_dir')}"]
        if info.get("idle_exit_seconds"):
            notes.append(f"exits after {info['idle_exit_seconds']:g} s idle")
        if not answers:
            notes.append("NOT ANSWERING")
        print(f"gateway running on {info.get('url')} ({', '.join(notes)})")
    return 0


def _stop(timeout: float, everything: bool) -> int:
    # Only processes that answer as a gateway are signalled: a pid may have been reused.
    found = _answering()
    gateways = [info for info, answers in found if answers]
    if not gateways:
        silent = [str(info["pid"]) for info, _ in found]
        if silent:
            print(f"no gateway answers; still running: pid {', '.join(silent)}", file=sys.stderr)
            return 1
        print("no gateway is running")
        return 0
    chosen = gateways
    if not everything and len(gateways) > 1:
        home = gateway_data_dir()
        chosen = [info for info in gateways if same_dir(str(info.get("data_dir")), home)]
        if not chosen:
            print(
                f"no gateway on {home} is running; {len(gateways)} others are "
                "(jupyter-interactions status); stop them with --all",
                file=sys.stderr,
            )
            return 1
    waiters = []
    for info in chosen:
        pid = int(info["pid"])
        waiters.append((info, _exit_waiter(pid)))
        os.kill(pid, signal.SIGTERM)  # it finishes its work, marks running ones, exits
    failed = 0
    for info, exited in waiters:
        if exited(timeout):
            print(f"stopped the gateway on {info['url']}")
        else:
            failed += 1
            print(
                f"error: the gateway (pid {info['pid']}) is still running after {timeout:g} s",
                file=sys.stderr,
            )
    return 1 if failed else 0


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
    run.add_argument(
        "--auto",
        action="store_true",
        help="started by a kernel: exit after idle_exit_seconds (setting) with nothing to do",
    )
    run.add_argument(
        "--idle-exit", type=float, default=None, help="exit after this many idle seconds"
    )
    commands.add_parser("status", help="list the running standalone gateways, and where")
    stop = commands.add_parser(
        "stop", help="stop the standalone gateway (the one on the default data dir if several)"
    )
    stop.add_argument("--all", action="store_true", help="stop every running gateway")
    stop.add_argument("--timeout", type=float, default=15.0, help="seconds to wait (default 15)")
    check = commands.add_parser("check", help="fail if notebooks (or their cassettes) hold a key")
    check.add_argument("notebooks", nargs="+", metavar="NOTEBOOK")
    args = parser.parse_args(argv)
    if args.command == "check":
        from ..notebook_check import check as check_notebooks

        return check_notebooks(args.notebooks)
    if args.command == "status":
        return _status()
    if args.command == "stop":
        return _stop(args.timeout, args.all)

    setup_logging(args.log_level)
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
    idle_exit = args.idle_exit
    if idle_exit is None:
        idle_exit = config.idle_exit_seconds if args.auto else 0.0
    try:
        asyncio.run(serve(config, idle_exit))
    except InteractionsError as exc:  # e.g. another gateway owns the data dir
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot serve on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
