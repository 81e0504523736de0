"""`clarion serve` and friends: parse flags, load settings once, hand them to bootstrap."""

from __future__ import annotations

import asyncio
import logging
import os
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
def serve(config_path: str | None, **flags: Any) -> None:
    """Run the server until SIGTERM or SIGINT."""
    try:
        settings = load(config_path, os.environ, flags)
    except ConfigError as error:
        raise click.ClickException(f"configuration error: {error}") from None
    logging.basicConfig(
        level=settings.server.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logger = logging.getLogger("clarion")
    _describe(settings)
    from clarion.bootstrap import serve_forever

    scheme = "wss" if settings.server.ssl_cert else "ws"
    ready = f"clarion: listening on {scheme}://{settings.server.host}:{{port}}"
    _run(serve_forever(settings, logger, ready))


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
