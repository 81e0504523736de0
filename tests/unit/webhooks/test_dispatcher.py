"""The dispatcher's bookkeeping that needs no receiver: filtering, life cycle, hold-back count.
Delivery itself is tested against a real HTTP receiver in tests/integration."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from clarion.core.apps import App, Webhook
from clarion.protocol.webhooks import (
    CHANNEL_OCCUPIED,
    CHANNEL_VACATED,
    CLIENT_EVENT,
    WebhookEvent,
)
from clarion.types import AppId, AppKey
from clarion.webhooks import DispatcherSettings, DispatcherStats, WebhookDispatcher

# Nothing in this file may reach the network: this address is never connected to.
URL = "http://127.0.0.1:9/never"


def app(*types: str) -> App:
    hooks = (Webhook(URL, frozenset(types)),)
    return App(id=AppId("1"), key=AppKey("k"), secret="s", webhooks=hooks)


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def log(request: pytest.FixtureRequest) -> Iterator[tuple[logging.Logger, Records]]:
    logger = logging.getLogger(f"webhook-unit.{request.node.name}")
    logger.setLevel(logging.DEBUG)
    records = Records()
    logger.addHandler(records)
    yield logger, records
    logger.removeHandler(records)


def test_settings_defaults_and_validation() -> None:
    s = DispatcherSettings()
    assert (s.batch_window_s, s.batch_max, s.holdback_s) == (0.25, 50, 3.0)
    assert (s.retry_initial_s, s.retry_max_s, s.retry_period_s) == (1.0, 60.0, 300.0)
    assert (s.timeout_s, s.queue_max) == (10.0, 10000)
    with pytest.raises(ValueError, match="batch_max"):
        DispatcherSettings(batch_max=0)


async def test_an_event_no_endpoint_wants_is_ignored(log: tuple[logging.Logger, Records]) -> None:
    dispatcher = WebhookDispatcher(DispatcherSettings(), logger=log[0])
    no_hooks = App(id=AppId("1"), key=AppKey("k"), secret="s")
    dispatcher.emit(no_hooks, WebhookEvent(CLIENT_EVENT, "c"))
    dispatcher.emit(app(CHANNEL_OCCUPIED), WebhookEvent(CLIENT_EVENT, "c"))
    await dispatcher.start()
    dispatcher.emit(app(CHANNEL_OCCUPIED), WebhookEvent(CHANNEL_VACATED, "c"))
    assert dispatcher.stats == DispatcherStats()
    await dispatcher.close(1.0)
    assert log[1].at(logging.WARNING) == []


async def test_events_before_start_are_kept_and_abandoned_by_close_without_start(
    log: tuple[logging.Logger, Records],
) -> None:
    dispatcher = WebhookDispatcher(DispatcherSettings(queue_max=2), logger=log[0])
    for i in range(3):
        dispatcher.emit(app(), WebhookEvent(CLIENT_EVENT, f"c{i}"))
    assert dispatcher.stats.pending == 2
    assert dispatcher.stats.dropped_overflow == 1
    await dispatcher.close(1.0)
    assert dispatcher.stats.abandoned == 2
    assert dispatcher.stats.pending == 0
    warnings = log[1].at(logging.WARNING)
    assert any("queue full" in w for w in warnings)
    assert any("2 event(s) abandoned" in w for w in warnings)


async def test_emit_after_close_is_dropped_counted_and_logged_once_per_second(
    log: tuple[logging.Logger, Records],
) -> None:
    dispatcher = WebhookDispatcher(DispatcherSettings(), logger=log[0])
    await dispatcher.start()
    await dispatcher.close(1.0)
    for _ in range(100):
        dispatcher.emit(app(), WebhookEvent(CLIENT_EVENT, "c"))
    assert dispatcher.stats.dropped_closed == 100
    assert dispatcher.stats.queued == 0
    closed = [w for w in log[1].at(logging.WARNING) if "dropped" in w]
    assert len(closed) == 1
    assert "1 dropped so far" in closed[0]


async def test_held_events_are_counted_and_cancelled_without_sending(
    log: tuple[logging.Logger, Records],
) -> None:
    dispatcher = WebhookDispatcher(DispatcherSettings(queue_max=2), logger=log[0])
    await dispatcher.start()
    for channel in ("a", "b", "c"):
        dispatcher.emit(app(CHANNEL_VACATED), WebhookEvent(CHANNEL_VACATED, channel))
    assert dispatcher.stats.held == 2
    assert dispatcher.stats.dropped_overflow == 1
    for channel in ("a", "b"):
        dispatcher.emit(app(CHANNEL_VACATED), WebhookEvent(CHANNEL_OCCUPIED, channel))
    assert dispatcher.stats.held == 0
    assert dispatcher.stats.queued == 0
    await dispatcher.close(1.0)
    assert dispatcher.stats.abandoned == 0


async def test_close_is_idempotent(log: tuple[logging.Logger, Records]) -> None:
    dispatcher = WebhookDispatcher(DispatcherSettings(), logger=log[0])
    await dispatcher.start()
    await dispatcher.close(1.0)
    await dispatcher.close(1.0)
    # Nothing was ever queued (an app without webhooks): nothing worth an INFO line either.
    assert log[1].at(logging.INFO) == []
    assert dispatcher.stats.abandoned == 0


# ---- submit: told once when each event needs nothing more -----------------------------------


class Acks:
    def __init__(self) -> None:
        self.done: list[str] = []

    def __call__(self, label: str) -> Callable[[], None]:
        return lambda: self.done.append(label)


async def test_submit_of_an_event_no_endpoint_wants_is_done_at_once(
    log: tuple[logging.Logger, Records],
) -> None:
    dispatcher = WebhookDispatcher(DispatcherSettings(), logger=log[0])
    acks = Acks()
    dispatcher.submit(app(CHANNEL_OCCUPIED), WebhookEvent(CLIENT_EVENT, "c"), acks("before"))
    await dispatcher.start()
    dispatcher.submit(app(CHANNEL_OCCUPIED), WebhookEvent(CLIENT_EVENT, "c"), acks("after"))
    assert acks.done == ["before", "after"]
    await dispatcher.close(1.0)


async def test_submit_of_a_cancelled_pair_is_done_for_both_without_sending(
    log: tuple[logging.Logger, Records],
) -> None:
    dispatcher = WebhookDispatcher(DispatcherSettings(), logger=log[0])
    await dispatcher.start()
    acks = Acks()
    hooked = app(CHANNEL_VACATED)
    dispatcher.submit(hooked, WebhookEvent(CHANNEL_VACATED, "a"), acks("vacated"))
    assert acks.done == []
    # The endpoint wants no channel_occupied: it is offered only to cancel.
    dispatcher.submit(hooked, WebhookEvent(CHANNEL_OCCUPIED, "a"), acks("occupied"))
    assert acks.done == ["vacated", "occupied"]
    # With nothing held it passes, to no endpoint: done too.
    dispatcher.submit(hooked, WebhookEvent(CHANNEL_OCCUPIED, "b"), acks("alone"))
    assert acks.done == ["vacated", "occupied", "alone"]
    assert dispatcher.stats.queued == 0
    await dispatcher.close(1.0)


async def test_submit_of_one_object_twice_is_two_events(
    log: tuple[logging.Logger, Records],
) -> None:
    dispatcher = WebhookDispatcher(DispatcherSettings(), logger=log[0])
    await dispatcher.start()
    acks = Acks()
    hooked = app(CHANNEL_VACATED)
    vacated = WebhookEvent(CHANNEL_VACATED, "a")
    dispatcher.submit(hooked, vacated, acks("first"))
    dispatcher.submit(hooked, vacated, acks("second"))  # the rules keep the first held
    assert acks.done == ["second"]
    dispatcher.submit(hooked, WebhookEvent(CHANNEL_OCCUPIED, "a"), acks("occupied"))
    assert acks.done == ["second", "first", "occupied"]
    await dispatcher.close(1.0)


async def test_close_handing_back_keeps_held_events_unsent_and_not_done(
    log: tuple[logging.Logger, Records],
) -> None:
    dispatcher = WebhookDispatcher(DispatcherSettings(), logger=log[0])
    await dispatcher.start()
    acks = Acks()
    dispatcher.submit(app(CHANNEL_VACATED), WebhookEvent(CHANNEL_VACATED, "a"), acks("held"))
    assert dispatcher.stats.held == 1
    await dispatcher.close(1.0, hand_back=True)
    assert acks.done == []
    assert dispatcher.stats.queued == 0
    assert (dispatcher.stats.held, dispatcher.stats.abandoned) == (0, 0)
    assert log[1].at(logging.WARNING) == []
    assert "0 queued and 1 held event(s) left undelivered" in log[1].at(logging.INFO)[-1]
    # After close: dropped as with emit, and never done (the caller keeps it).
    dispatcher.submit(app(), WebhookEvent(CLIENT_EVENT, "c"), acks("late"))
    assert acks.done == []
    assert dispatcher.stats.dropped_closed == 1


async def test_submitted_events_abandoned_at_close_are_not_done(
    log: tuple[logging.Logger, Records],
) -> None:
    dispatcher = WebhookDispatcher(DispatcherSettings(queue_max=1), logger=log[0])
    acks = Acks()
    dispatcher.submit(app(), WebhookEvent(CLIENT_EVENT, "kept"), acks("kept"))
    # No room: dropped and counted, and done, since nothing more will come of it.
    dispatcher.submit(app(), WebhookEvent(CLIENT_EVENT, "full"), acks("full"))
    assert acks.done == ["full"]
    await dispatcher.close(1.0)
    assert acks.done == ["full"]
    assert dispatcher.stats.abandoned == 1


async def test_given_stats_are_shared_and_abandoned_adds_up(
    log: tuple[logging.Logger, Records],
) -> None:
    stats = DispatcherStats()
    for _ in range(2):
        dispatcher = WebhookDispatcher(DispatcherSettings(), logger=log[0], stats=stats)
        dispatcher.emit(app(), WebhookEvent(CLIENT_EVENT, "c"))
        await dispatcher.close(1.0)
    assert dispatcher.stats is stats
    assert stats.abandoned == 2
