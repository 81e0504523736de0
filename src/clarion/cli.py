"""`clarion serve` and friends: parse flags, load settings once, hand them to bootstrap."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import stat
import sys
from typing import Any

import click

from clarion import __version__
from clarion.config import ConfigError, Settings, load


@click.group()
@click.version_option(__version__, prog_name="clarion")
def main() -> None:
    """Clarion: a realtime WebSocket server speaking the Pusher Channels protocol v7."""


@main.command()
@click.option("--host", default=None, help="Interface to listen on [default: 0.0.0.0].")
@click.option("--port", type=int, default=None, help="Port for WebSocket and HTTP API [6001].")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML config file (also CLARION_CONFIG).",
)
@click.option("--ssl-cert", default=None, help="PEM certificate: serve wss:// and https://.")
@click.option("--ssl-key", default=None, help="PEM private key for --ssl-cert.")
@click.option("--log-level", default=None, help="debug, info, warning or error.")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Processes serving the one port, restarted if they die; more than 1 needs "
    "--redis-url [1].",
)
@click.option(
    "--redis-url",
    default=None,
    help="Share channels, presence and counts with other processes and hosts through this "
    "Redis (redis://, rediss:// or unix://).",
)
@click.option(
    "--redis-prefix",
    default=None,
    help="Start every Redis key with this, so deployments can share a Redis [clarion].",
)
# Internal: a worker of `--workers N` serves the listening socket its parent passed down.
@click.option("--listen-fd", type=int, default=None, hidden=True)
def serve(config_path: str | None, listen_fd: int | None, **flags: Any) -> None:
    """Run the server until SIGTERM or SIGINT."""
    try:
        settings = load(config_path, os.environ, flags)
    except ConfigError as error:
        raise click.ClickException(f"configuration error: {error}") from None
    several = listen_fd is not None or settings.server.workers > 1
    logging.basicConfig(
        level=settings.server.log_level.upper(),
        # With several processes on one stderr, each line says which one wrote it.
        format="%(asctime)s %(levelname)s "
        + ("[%(process)d] " if several else "")
        + "%(name)s: %(message)s",
    )
    logger = logging.getLogger("clarion")
    if listen_fd is not None:
        # The parent already described the apps: N workers saying it again is noise.
        _run(_serve_worker(settings, logger, listen_fd))
        return
    _describe(settings)
    if settings.server.workers > 1:
        _supervise(settings, config_path, flags, logger)
        return
    from clarion.bootstrap import serve_forever

    _run(serve_forever(settings, logger, _ready_template(settings)))


def _ready_template(settings: Settings) -> str:
    scheme = "wss" if settings.server.ssl_cert else "ws"
    return f"clarion: listening on {scheme}://{settings.server.host}:{{port}}"


def _supervise(
    settings: Settings, config_path: str | None, flags: dict[str, Any], logger: logging.Logger
) -> None:
    from clarion.supervisor import StartupFailed, serve_workers

    try:
        serve_workers(settings, config_path, flags, os.environ, logger)
    except StartupFailed as error:
        raise click.ClickException(str(error)) from None


async def _serve_worker(settings: Settings, logger: logging.Logger, listen_fd: int) -> None:
    from clarion.bootstrap import serve_forever

    _stop_when_parent_goes(logger)
    sock = socket.socket(fileno=listen_fd)
    await serve_forever(settings, logger, _ready_template(settings), sock)


def _stop_when_parent_goes(logger: logging.Logger) -> None:
    """The parent holds our stdin open and never writes to it: end-of-file means it died
    without stopping us (SIGKILL, OOM). Shut down gracefully rather than serve on, orphaned,
    holding its port."""
    fd = 0
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return  # not started by the supervisor (which always gives a pipe)
    except OSError:
        return
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)

    def readable() -> None:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            return
        loop.remove_reader(fd)
        logger.warning("the supervising process is gone: shutting down")
        os.kill(os.getpid(), signal.SIGTERM)

    loop.add_reader(fd, readable)


def _describe(settings: Settings) -> None:
    """Which apps are served; never a secret, except the generated development app's."""
    if settings.dev_app:
        app = settings.apps[0]
        click.echo(
            "clarion: WARNING no app is configured; generated a development app "
            "(for development only, set PUSHER_APP_ID/KEY/SECRET or a config file):",
            err=True,
        )
        click.echo(f"  app_id={app.id} key={app.key} secret={app.secret}")
        return
    for app in settings.apps:
        state = "enabled" if app.enabled else "disabled"
        click.echo(f"clarion: serving app {app.id} ({app.name}) key={app.key} [{state}]")


def _run(coro: Any) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        asyncio.run(coro)
        return
    uvloop.run(coro)
    sys.stdout.flush()
