"""Acknowledgement by reference count (tracker.py): `done` once, when the last copy settles."""

from __future__ import annotations

from clarion.protocol.webhooks import CHANNEL_VACATED, CLIENT_EVENT, WebhookEvent
from clarion.webhooks.tracker import Tracker


class Done:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def test_done_is_called_once_when_the_last_copy_settles() -> None:
    tracker, done = Tracker(), Done()
    event = tracker.track(WebhookEvent(CLIENT_EVENT, "c"), done)
    tracker.add_copy(event)
    tracker.add_copy(event)
    tracker.settle(event)  # the caller's own reference
    tracker.settle(event)
    assert (done.calls, len(tracker)) == (0, 1)
    tracker.settle(event)
    assert (done.calls, len(tracker)) == (1, 0)
    tracker.settle(event)
    assert done.calls == 1


def test_settle_all_counts_each_event_of_a_batch() -> None:
    tracker = Tracker()
    dones = [Done() for _ in range(3)]
    events = [tracker.track(WebhookEvent(CLIENT_EVENT, f"c{i}"), d) for i, d in enumerate(dones)]
    tracker.settle_all(events[:2])
    assert [d.calls for d in dones] == [1, 1, 0]


def test_events_are_tracked_by_identity_not_by_value() -> None:
    tracker, first, second = Tracker(), Done(), Done()
    vacated = WebhookEvent(CHANNEL_VACATED, "c")
    a = tracker.track(vacated, first)
    # The same object again: tracked as a fresh copy, so each is acknowledged on its own.
    b = tracker.track(vacated, second)
    assert a is vacated
    assert b == vacated
    assert b is not vacated
    tracker.settle(WebhookEvent(CHANNEL_VACATED, "c"))  # equal, but neither of them
    assert (first.calls, second.calls) == (0, 0)
    tracker.settle(b)
    assert (first.calls, second.calls) == (0, 1)
    tracker.settle(a)
    assert (first.calls, second.calls) == (1, 1)


def test_untracked_events_are_ignored() -> None:
    tracker = Tracker()
    event = WebhookEvent(CLIENT_EVENT, "c")
    tracker.add_copy(event)
    tracker.settle(event)
    tracker.settle_all([event])
    assert len(tracker) == 0


def test_forget_drops_everything_without_calling_done() -> None:
    tracker, done = Tracker(), Done()
    event = tracker.track(WebhookEvent(CLIENT_EVENT, "c"), done)
    tracker.track(WebhookEvent(CLIENT_EVENT, "d"), done)
    assert tracker.forget() == 2
    tracker.settle(event)
    assert done.calls == 0
    assert len(tracker) == 0
