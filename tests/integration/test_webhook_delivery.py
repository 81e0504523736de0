"""The webhook dispatcher against a real HTTP receiver on 127.0.0.1 (reference 6).

No server here: events are emitted straight into a `WebhookDispatcher`. The receiver is an
`aiohttp.web` app on port 0 that records every request and answers by a per-test plan (2xx, an
error status, or no answer). Nothing sleeps: tests wait, within multiples of `UNIT`, for the
receiver or the dispatcher's log to reach a state. A test that expects the dispatcher to log an
ERROR gives it its own logger, outside `clarion`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pusher
import pytest
from aiohttp import web
from it_support import HOST, TIMEOUT, UNIT

from clarion.core.apps import App, Webhook
from clarion.protocol.auth import webhook_signature
from clarion.protocol.webhooks import (
    CACHE_MISS,
    CHANNEL_OCCUPIED,
    CHANNEL_VACATED,
    CLIENT_EVENT,
    MEMBER_ADDED,
    MEMBER_REMOVED,
    WebhookEvent,
)
from clarion.types import AppId, AppKey
from clarion.webhooks import DispatcherSettings, WebhookDispatcher

APP_ID = "424242"  # digits: the pusher SDK insists
KEY = "hooks-key"
SECRET = "hooks-secret"
HANG = 0  # a plan's answer meaning "never answer"
FAST = {
    "batch_window_s": 0.02,
    "holdback_s": 0.1,
    "retry_initial_s": 0.05,
    "retry_max_s": 0.2,
    "timeout_s": 2 * TIMEOUT,
}


# ---- waiting without sleeping ------------------------------------------------------------


class Signal:
    """Poked whenever the receiver or the log records something; tests wait on a predicate."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def poke(self) -> None:
        self._event.set()

    async def until(self, predicate: Callable[[], bool], within: float = TIMEOUT) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._event.clear()
                await self._event.wait()


class LogWatch(logging.Handler):
    def __init__(self, signal: Signal) -> None:
        super().__init__(logging.DEBUG)
        self.signal = signal
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.signal.poke()

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


# ---- the receiver --------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes
    status: int  # what the receiver answered; HANG if it did not
    at: float  # loop time

    @property
    def events(self) -> list[dict[str, Any]]:
        return list(json.loads(self.raw)["events"])


Plan = Callable[[str, int], int]  # (path, how many requests that path had before) -> status


class Receiver:
    def __init__(self, signal: Signal) -> None:
        self.signal = signal
        self.requests: list[Received] = []
        self.plan: Plan = lambda path, n: 200
        self._unhang = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, port: int = 0) -> Receiver:
        app = web.Application()
        app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def close(self) -> None:
        self._unhang.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str = "hook") -> str:
        return f"http://{HOST}:{self.port}/{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        seen = sum(1 for r in self.requests if r.path == path)
        status = self.plan(path, seen)
        raw = await request.read()
        now = asyncio.get_running_loop().time()
        self.requests.append(Received(path, dict(request.headers), raw, status, now))
        self.signal.poke()
        if status == HANG:
            await self._unhang.wait()
            return web.Response(status=503)
        return web.Response(status=status, text="ok")

    def accepted(self, path: str = "hook") -> list[Received]:
        return [r for r in self.requests if r.path == path and 200 <= r.status < 300]

    def ids(self, path: str = "hook") -> list[str]:
        """Every accepted event, in arrival order, by the id in its data (or name:channel)."""
        return [ident(e) for r in self.accepted(path) for e in r.events]


def ident(event: dict[str, Any]) -> str:
    if "data" in event:
        return str(json.loads(event["data"])["id"])
    return f"{event['name']}:{event['channel']}" + (
        f":{event['user_id']}" if "user_id" in event else ""
    )


# ---- fixtures --------------------------------------------------------------------------------


def make_app(*hooks: Webhook) -> App:
    return App(id=AppId(APP_ID), key=AppKey(KEY), secret=SECRET, webhooks=hooks)


def client_event(i: int, channel: str = "private-c") -> WebhookEvent:
    return WebhookEvent(
        CLIENT_EVENT, channel, event="client-x", data=json.dumps({"id": i}), socket_id="1.1"
    )


@pytest.fixture
def signal() -> Signal:
    return Signal()


@pytest.fixture
def log(
    request: pytest.FixtureRequest, signal: Signal
) -> Iterator[tuple[logging.Logger, LogWatch]]:
    # Not under "clarion": some tests expect an ERROR, which the server suite treats as a crash.
    logger = logging.getLogger(f"webhook-it.{request.node.name}")
    logger.setLevel(logging.DEBUG)
    watch = LogWatch(signal)
    logger.addHandler(watch)
    yield logger, watch
    logger.removeHandler(watch)


@pytest.fixture
async def receiver(signal: Signal) -> AsyncIterator[Receiver]:
    started = await Receiver(signal).start()
    yield started
    await started.close()


Start = Callable[..., Awaitable[WebhookDispatcher]]


@pytest.fixture
async def start(log: tuple[logging.Logger, LogWatch], receiver: Receiver) -> AsyncIterator[Start]:
    """Start dispatchers with FAST settings overridden by keyword; each is closed afterwards
    (before the receiver goes)."""
    started: list[WebhookDispatcher] = []

    async def start_one(
        wall_clock: Callable[[], float] = time.time, **overrides: Any
    ) -> WebhookDispatcher:
        settings = DispatcherSettings(**{**FAST, **overrides})
        dispatcher = WebhookDispatcher(settings, logger=log[0], wall_clock=wall_clock)
        await dispatcher.start()
        started.append(dispatcher)
        return dispatcher

    yield start_one
    for dispatcher in started:
        await dispatcher.close(0.2 * UNIT)


# ---- what is sent ----------------------------------------------------------------------------


async def test_body_and_headers_are_accepted_by_the_pusher_sdk(
    start: Start, receiver: Receiver, signal: Signal
) -> None:
    dispatcher = await start()
    dispatcher.emit(make_app(Webhook(receiver.url())), client_event(1))
    await signal.until(lambda: len(receiver.accepted()) == 1)
    got = receiver.accepted()[0]
    assert got.headers["Content-Type"] == "application/json"
    parsed = pusher.Pusher(APP_ID, KEY, SECRET).validate_webhook(
        got.headers["X-Pusher-Key"], got.headers["X-Pusher-Signature"], got.raw.decode()
    )
    assert parsed == json.loads(got.raw)
    assert parsed["events"] == [client_event(1).to_json()]
    assert abs(parsed["time_ms"] - time.time() * 1000) < 60_000


async def test_events_emitted_together_share_requests_in_order(
    start: Start, receiver: Receiver, signal: Signal
) -> None:
    dispatcher = await start(batch_max=5)
    app = make_app(Webhook(receiver.url()))
    for i in range(12):
        dispatcher.emit(app, client_event(i))
    await signal.until(lambda: dispatcher.stats.pending == 0)
    assert [len(r.events) for r in receiver.requests] == [5, 5, 2]
    assert receiver.ids() == [str(i) for i in range(12)]
    assert dispatcher.stats.delivered_requests == 3
    assert dispatcher.stats.delivered_events == 12
    assert dispatcher.stats.pending == 0


# ---- hold-back ---------------------------------------------------------------------------------


async def test_vacated_then_occupied_within_the_holdback_sends_nothing(
    start: Start, receiver: Receiver, signal: Signal
) -> None:
    dispatcher = await start()
    app = make_app(Webhook(receiver.url()))
    dispatcher.emit(app, WebhookEvent(CHANNEL_VACATED, "a"))
    dispatcher.emit(app, WebhookEvent(CHANNEL_OCCUPIED, "a"))
    # Held after the pair, so a leaked vacated would be due first and arrive first or with it.
    dispatcher.emit(app, WebhookEvent(CHANNEL_VACATED, "marker"))
    await signal.until(lambda: len(receiver.requests) >= 1)
    assert receiver.ids() == ["channel_vacated:marker"]
    assert len(receiver.requests) == 1


async def test_vacated_alone_arrives_after_the_holdback(
    start: Start, receiver: Receiver, signal: Signal
) -> None:
    dispatcher = await start(holdback_s=0.1)
    emitted = asyncio.get_running_loop().time()
    dispatcher.emit(make_app(Webhook(receiver.url())), WebhookEvent(CHANNEL_VACATED, "a"))
    assert dispatcher.stats.held == 1
    await signal.until(lambda: len(receiver.requests) == 1)
    assert receiver.ids() == ["channel_vacated:a"]
    assert receiver.requests[0].at - emitted >= 0.1
    assert dispatcher.stats.held == 0


async def test_member_removed_then_added_sends_nothing_and_removed_alone_arrives(
    start: Start, receiver: Receiver, signal: Signal
) -> None:
    dispatcher = await start()
    app = make_app(Webhook(receiver.url(), frozenset({MEMBER_REMOVED, MEMBER_ADDED})))
    dispatcher.emit(app, WebhookEvent(MEMBER_REMOVED, "presence-r", user_id="u1"))
    dispatcher.emit(app, WebhookEvent(MEMBER_ADDED, "presence-r", user_id="u1"))
    dispatcher.emit(app, WebhookEvent(MEMBER_REMOVED, "presence-r", user_id="u2"))
    await signal.until(lambda: len(receiver.requests) >= 1)
    assert receiver.ids() == ["member_removed:presence-r:u2"]
    assert len(receiver.requests) == 1


async def test_an_endpoint_of_vacated_only_still_gets_the_cancellation(
    start: Start, receiver: Receiver, signal: Signal
) -> None:
    dispatcher = await start()
    app = make_app(Webhook(receiver.url(), frozenset({CHANNEL_VACATED})))
    dispatcher.emit(app, WebhookEvent(CHANNEL_VACATED, "a"))
    dispatcher.emit(app, WebhookEvent(CHANNEL_OCCUPIED, "a"))
    dispatcher.emit(app, WebhookEvent(CHANNEL_VACATED, "marker"))
    await signal.until(lambda: len(receiver.requests) >= 1)
    assert receiver.ids() == ["channel_vacated:marker"]


async def test_simultaneous_cache_misses_make_one_webhook_per_channel(
    start: Start, receiver: Receiver, signal: Signal
) -> None:
    dispatcher = await start()
    app = make_app(Webhook(receiver.url()))
    for channel in ("cache-a", "cache-a", "cache-b", "cache-a", "cache-b"):
        dispatcher.emit(app, WebhookEvent(CACHE_MISS, channel))
    dispatcher.emit(app, client_event(99))
    await signal.until(lambda: "99" in receiver.ids())
    assert receiver.ids() == ["cache_miss:cache-a", "cache_miss:cache-b", "99"]


# ---- endpoints ---------------------------------------------------------------------------------


async def test_each_endpoint_gets_its_own_copy_of_what_it_wants(
    start: Start, receiver: Receiver, signal: Signal
) -> None:
    dispatcher = await start()
    app = make_app(
        Webhook(receiver.url("a"), frozenset({CLIENT_EVENT})),
        Webhook(receiver.url("b")),
        Webhook(receiver.url("c"), frozenset({CHANNEL_OCCUPIED})),
    )
    dispatcher.emit(app, WebhookEvent(CHANNEL_OCCUPIED, "x"))
    dispatcher.emit(app, client_event(1))
    dispatcher.emit(app, WebhookEvent(CHANNEL_OCCUPIED, "y"))
    await signal.until(lambda: len(receiver.requests) == 3)
    assert receiver.ids("a") == ["1"]
    assert receiver.ids("b") == ["channel_occupied:x", "1", "channel_occupied:y"]
    assert receiver.ids("c") == ["channel_occupied:x", "channel_occupied:y"]
    assert dispatcher.stats.queued == 6


async def test_a_failing_endpoint_does_not_hold_up_another(
    start: Start, receiver: Receiver, signal: Signal
) -> None:
    receiver.plan = lambda path, n: 500 if path == "bad" else 200
    dispatcher = await start()
    app = make_app(Webhook(receiver.url("bad")), Webhook(receiver.url("good")))
    dispatcher.emit(app, client_event(1))
    await signal.until(
        lambda: receiver.ids("good") == ["1"] and dispatcher.stats.failed_attempts >= 2
    )
    assert dispatcher.stats.failed_attempts >= 2
    assert receiver.ids("bad") == []


# ---- failures and retries ----------------------------------------------------------------------


async def test_error_answers_are_retried_and_every_event_arrives_once_in_order(
    start: Start, receiver: Receiver, signal: Signal, log: tuple[logging.Logger, LogWatch]
) -> None:
    receiver.plan = lambda path, n: 500 if n < 3 else 200
    dispatcher = await start(batch_max=4)
    app = make_app(Webhook(receiver.url()))
    for i in range(10):
        dispatcher.emit(app, client_event(i))
    await signal.until(lambda: len(log[1].at(logging.WARNING)) >= 1)
    for i in range(10, 15):
        dispatcher.emit(app, client_event(i))
    await signal.until(lambda: dispatcher.stats.delivered_events == 15)
    assert receiver.ids() == [str(i) for i in range(15)]
    assert [r.status for r in receiver.requests[:3]] == [500, 500, 500]
    assert dispatcher.stats.failed_attempts == 3
    assert dispatcher.stats.delivered_events == 15
    assert "HTTP 500" in log[1].at(logging.WARNING)[0]


async def test_each_try_is_stamped_and_signed_anew(
    start: Start, receiver: Receiver, signal: Signal
) -> None:
    receiver.plan = lambda path, n: 500 if n == 0 else 200
    calls: list[float] = []

    def clock() -> float:
        # The first try reads a clock 1000 s behind: a body that old fails the SDK's check.
        calls.append(time.time())
        return calls[-1] - (1000 if len(calls) == 1 else 0)

    dispatcher = await start(wall_clock=clock)
    dispatcher.emit(make_app(Webhook(receiver.url())), client_event(1))
    await signal.until(lambda: dispatcher.stats.delivered_events == 1)
    first, retry = receiver.requests
    assert first.raw != retry.raw
    assert first.headers["X-Pusher-Signature"] == webhook_signature(SECRET, first.raw)
    sdk = pusher.Pusher(APP_ID, KEY, SECRET)
    assert (
        sdk.validate_webhook(KEY, first.headers["X-Pusher-Signature"], first.raw.decode()) is None
    )
    assert sdk.validate_webhook(KEY, retry.headers["X-Pusher-Signature"], retry.raw.decode())
    assert dispatcher.stats.delivered_events == 1


async def test_a_receiver_that_does_not_answer_times_out_and_is_retried(
    start: Start, receiver: Receiver, signal: Signal, log: tuple[logging.Logger, LogWatch]
) -> None:
    receiver.plan = lambda path, n: HANG if n == 0 else 200
    dispatcher = await start(timeout_s=0.3 * UNIT)
    app = make_app(Webhook(receiver.url()))
    dispatcher.emit(app, client_event(1))
    dispatcher.emit(app, client_event(2))
    await signal.until(lambda: dispatcher.stats.pending == 0)
    assert receiver.ids() == ["1", "2"]
    assert receiver.requests[0].status == HANG
    assert dispatcher.stats.failed_attempts == 1
    assert "timeout" in log[1].at(logging.WARNING)[0]


async def test_a_refused_port_is_retried_until_a_listener_appears(
    start: Start, signal: Signal, log: tuple[logging.Logger, LogWatch]
) -> None:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    dispatcher = await start()
    late = Receiver(signal)
    late.port = port
    app = make_app(Webhook(late.url()))
    for i in range(3):
        dispatcher.emit(app, client_event(i))
    await signal.until(lambda: len(log[1].at(logging.WARNING)) >= 1)
    await late.start(port)
    try:
        await signal.until(lambda: dispatcher.stats.pending == 0)
    finally:
        await late.close()
    assert late.ids() == ["0", "1", "2"]
    assert dispatcher.stats.failed_attempts >= 1


async def test_after_the_retry_period_a_batch_is_dropped_counted_and_logged(
    start: Start, receiver: Receiver, signal: Signal, log: tuple[logging.Logger, LogWatch]
) -> None:
    receiver.plan = lambda path, n: 500
    dispatcher = await start(retry_period_s=0.3)
    app = make_app(Webhook(receiver.url()))
    dispatcher.emit(app, client_event(1))
    dispatcher.emit(app, client_event(2))
    await signal.until(lambda: bool(log[1].at(logging.ERROR)))
    [error] = log[1].at(logging.ERROR)
    assert APP_ID in error
    assert receiver.url() in error
    assert "2 event(s)" in error
    assert "HTTP 500" in error
    assert dispatcher.stats.dropped_expired == 2
    assert dispatcher.stats.pending == 0
    # The endpoint carries on with what comes next.
    receiver.plan = lambda path, n: 200
    dispatcher.emit(app, client_event(3))
    await signal.until(lambda: receiver.ids() == ["3"])


# ---- bounds and shutdown -----------------------------------------------------------------------


async def test_events_past_queue_max_are_dropped_counted_and_logged(
    start: Start, receiver: Receiver, signal: Signal, log: tuple[logging.Logger, LogWatch]
) -> None:
    dispatcher = await start(queue_max=3)
    app = make_app(Webhook(receiver.url()))
    for i in range(105):
        dispatcher.emit(app, client_event(i))
    assert dispatcher.stats.dropped_overflow == 102
    [warning] = log[1].at(logging.WARNING)
    assert "queue full" in warning
    assert "1 dropped so far" in warning
    await signal.until(lambda: dispatcher.stats.pending == 0)
    assert receiver.ids() == ["0", "1", "2"]
    assert dispatcher.stats.delivered_events == 3


async def test_close_releases_the_holdback_and_delivers_it(
    start: Start, receiver: Receiver, log: tuple[logging.Logger, LogWatch]
) -> None:
    dispatcher = await start(holdback_s=60.0)
    dispatcher.emit(make_app(Webhook(receiver.url())), WebhookEvent(CHANNEL_VACATED, "a"))
    assert dispatcher.stats.held == 1
    await dispatcher.close(TIMEOUT)
    assert receiver.ids() == ["channel_vacated:a"]
    assert dispatcher.stats.abandoned == 0
    assert "nothing left undelivered" in log[1].at(logging.INFO)[-1]


async def test_close_gives_up_after_its_timeout_and_logs_what_it_abandoned(
    start: Start, receiver: Receiver, log: tuple[logging.Logger, LogWatch]
) -> None:
    receiver.plan = lambda path, n: 500
    dispatcher = await start(batch_max=2)
    app = make_app(Webhook(receiver.url()))
    for i in range(3):
        dispatcher.emit(app, client_event(i))
    await dispatcher.close(0.2 * UNIT)
    assert dispatcher.stats.abandoned == 3
    assert dispatcher.stats.pending == 0
    assert "3 event(s) abandoned" in log[1].at(logging.WARNING)[-1]
    assert receiver.ids() == []
