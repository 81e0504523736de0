"""Fixtures: a real Clarion server on 127.0.0.1, port 0, started in-process for each test.

`server` starts one with every test app (it_support.ALL_APPS) and default server settings;
`start_server(**server_settings)` starts others (TLS, short activity timeouts, small bodies).
Every server is shut down after the test, after its clients have closed. Errors the server logs
(its own `clarion` logger, or asyncio reporting an exception in a protocol callback) fail the
test at teardown: a crash must never pass silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pusher
import pytest
from it_support import (
    ALL_APPS,
    HOST,
    MAIN,
    TIMEOUT,
    WsClient,
    channel_auth,
    data_of,
    open_ws,
    sdk,
    subscribe_signed,
)

from clarion import bootstrap
from clarion.bootstrap import RunningServer
from clarion.config import ServerSettings, Settings
from clarion.core.apps import App


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


_WATCHED_LOGGERS = ("clarion", "asyncio")


class Harness:
    """One running server plus the clients a test opened on it."""

    def __init__(self, running: RunningServer, errors: list[logging.LogRecord]) -> None:
        self.running = running
        self.errors = errors
        self._clients: list[WsClient] = []
        self._sdks: dict[tuple[str, ...], pusher.Pusher] = {}

    @property
    def port(self) -> int:
        return self.running.port

    def server_errors(self) -> list[str]:
        return [
            f"{r.name}: {r.getMessage()}" + (f" ({r.exc_info[1]!r})" if r.exc_info else "")
            for r in self.errors
        ]

    # ---- WebSocket clients --------------------------------------------------------

    async def connect(self, app: App = MAIN, **kwargs: Any) -> WsClient:
        """Open a socket and read its `pusher:connection_established`."""
        ws = await open_ws(self.port, app.key, **kwargs)
        text = await asyncio.wait_for(ws.recv(), TIMEOUT)
        msg = json.loads(text)
        assert msg.get("event") == "pusher:connection_established", msg
        client = WsClient(ws, msg)
        self._clients.append(client)
        return client

    def track(self, client: WsClient) -> WsClient:
        self._clients.append(client)
        return client

    # ---- the pusher SDK -------------------------------------------------------------

    def sdk(self, app: App = MAIN, **kwargs: Any) -> pusher.Pusher:
        if kwargs:
            client = sdk(self.port, app, **kwargs)
            self._sdks[(app.id, app.key, repr(sorted(kwargs.items())))] = client
            return client
        cached = self._sdks.get((app.id, app.key))
        if cached is None:
            cached = self._sdks[(app.id, app.key)] = sdk(self.port, app)
        return cached

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """The SDK is synchronous: run it in a thread so the server keeps running."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    def auth(
        self,
        client: WsClient,
        channel: str,
        custom_data: dict[str, Any] | None = None,
        app: App = MAIN,
    ) -> dict[str, Any]:
        return channel_auth(client, channel, app, custom_data)

    async def subscribe(
        self,
        client: WsClient,
        channel: str,
        custom_data: dict[str, Any] | None = None,
        app: App = MAIN,
    ) -> None:
        """Send a subscribe, with an SDK-made auth for private/presence/encrypted channels."""
        await subscribe_signed(client, channel, app, custom_data)

    async def subscribe_ok(
        self,
        client: WsClient,
        channel: str,
        custom_data: dict[str, Any] | None = None,
        app: App = MAIN,
    ) -> Any:
        await self.subscribe(client, channel, custom_data, app)
        return await client.expect_succeeded(channel)

    async def trigger(self, channels: str | list[str], event: str, data: Any, **kw: Any) -> Any:
        return await self.call(self.sdk().trigger, channels, event, data, **kw)

    # ---- users (reference 3.2) ----------------------------------------------------------

    async def signin(self, client: WsClient, user_data: dict[str, Any], app: App = MAIN) -> str:
        """Send a `pusher:signin` signed by the SDK's `authenticate_user`; its user_data string."""
        signed = self.sdk(app).authenticate_user(client.socket_id, user_data)
        await client.send_event(
            "pusher:signin", {"auth": signed["auth"], "user_data": signed["user_data"]}
        )
        return str(signed["user_data"])

    async def signin_ok(
        self, client: WsClient, user_data: dict[str, Any], app: App = MAIN
    ) -> dict[str, Any]:
        """Sign in and read `pusher:signin_success` (only: watchlist events may follow)."""
        sent = await self.signin(client, user_data, app)
        msg = await client.expect("pusher:signin_success")
        assert "channel" not in msg, msg
        assert isinstance(msg["data"], str), msg
        assert data_of(msg) == {"user_data": sent}, msg
        return msg

    # ---- teardown ---------------------------------------------------------------------

    async def aclose(self) -> None:
        for client in self._clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), TIMEOUT)
        # Like an app server going away: drop the SDKs' keep-alive HTTP connections. (Whether
        # the server waits for idle ones at shutdown is tested on its own in test_lifecycle.)
        for api in self._sdks.values():
            api._pusher_client.http.session.close()
            api._authentication_client.http.session.close()
        await asyncio.wait_for(self.running.shutdown(), 3 * TIMEOUT)


StartServer = Callable[..., Awaitable[Harness]]
_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


@pytest.fixture
async def start_server(request: pytest.FixtureRequest) -> AsyncIterator[StartServer]:
    errors = _ErrorLog()
    for name in _WATCHED_LOGGERS:
        logging.getLogger(name).addHandler(errors)
    started: list[Harness] = []

    async def start(*, apps: tuple[App, ...] = ALL_APPS, **server: Any) -> Harness:
        server.setdefault("shutdown_timeout", TIMEOUT)
        settings = Settings(
            server=ServerSettings(host=HOST, port=0, **server),
            apps=apps,
        )
        running = await bootstrap.start(settings)
        harness = Harness(running, errors.records)
        started.append(harness)
        return harness

    try:
        yield start
        for harness in reversed(started):
            await harness.aclose()
    finally:
        for name in _WATCHED_LOGGERS:
            logging.getLogger(name).removeHandler(errors)
    # A test that already failed has said what went wrong; otherwise a logged error fails it.
    if errors.records and not request.node.stash.get(_CALL_FAILED, False):
        logged = "\n".join(started[0].server_errors()) if started else str(errors.records)
        pytest.fail(f"the server logged errors:\n{logged}")


@pytest.fixture
async def server(start_server: StartServer) -> Harness:
    return await start_server()
