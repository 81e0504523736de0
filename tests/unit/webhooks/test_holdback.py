"""The pure hold-back rules (reference 6): time is a float moved by hand."""

from __future__ import annotations

from clarion.core.apps import App, Webhook
from clarion.protocol.webhooks import (
    CACHE_MISS,
    CHANNEL_OCCUPIED,
    CHANNEL_VACATED,
    CLIENT_EVENT,
    MEMBER_ADDED,
    MEMBER_REMOVED,
    SUBSCRIPTION_COUNT,
    WebhookEvent,
)
from clarion.types import AppId, AppKey
from clarion.webhooks.holdback import Holdback, wanted

HOLD = 3.0
APP = App(id=AppId("1"), key=AppKey("k1"), secret="s1", webhooks=(Webhook("http://x/"),))
OTHER = App(id=AppId("2"), key=AppKey("k2"), secret="s2", webhooks=(Webhook("http://y/"),))


def ev(name: str, channel: str = "c", user_id: str | None = None) -> WebhookEvent:
    return WebhookEvent(name=name, channel=channel, user_id=user_id)


def names(released: list[tuple[App, WebhookEvent]]) -> list[tuple[str, str, str | None]]:
    return [(app.id, e.name, e.user_id or e.channel) for app, e in released]


def test_other_events_pass_straight_through() -> None:
    hb = Holdback(HOLD)
    for name in (CLIENT_EVENT, SUBSCRIPTION_COUNT, CHANNEL_OCCUPIED, MEMBER_ADDED):
        event = ev(name, user_id="u")
        assert hb.offer(APP, event, 0.0) == [(APP, event)]
    assert len(hb) == 0
    assert hb.next_deadline() is None


def test_vacated_is_held_until_its_deadline() -> None:
    hb = Holdback(HOLD)
    vacated = ev(CHANNEL_VACATED)
    assert hb.offer(APP, vacated, 10.0) == []
    assert len(hb) == 1
    assert hb.next_deadline() == 10.0 + HOLD
    assert hb.due(12.9) == []
    assert hb.due(13.0) == [(APP, vacated)]
    assert len(hb) == 0
    assert hb.next_deadline() is None


def test_occupied_within_the_window_cancels_both() -> None:
    hb = Holdback(HOLD)
    assert hb.offer(APP, ev(CHANNEL_VACATED), 0.0) == []
    assert hb.offer(APP, ev(CHANNEL_OCCUPIED), 2.9) == []
    assert len(hb) == 0
    assert hb.due(100.0) == []


def test_occupied_after_the_deadline_follows_the_vacated_even_without_a_timer() -> None:
    hb = Holdback(HOLD)
    hb.offer(APP, ev(CHANNEL_VACATED), 0.0)
    assert names(hb.offer(APP, ev(CHANNEL_OCCUPIED), 3.0)) == [
        ("1", CHANNEL_VACATED, "c"),
        ("1", CHANNEL_OCCUPIED, "c"),
    ]


def test_cancellation_is_per_app_and_channel() -> None:
    hb = Holdback(HOLD)
    hb.offer(APP, ev(CHANNEL_VACATED, "a"), 0.0)
    assert names(hb.offer(APP, ev(CHANNEL_OCCUPIED, "b"), 1.0)) == [("1", CHANNEL_OCCUPIED, "b")]
    assert names(hb.offer(OTHER, ev(CHANNEL_OCCUPIED, "a"), 1.0)) == [("2", CHANNEL_OCCUPIED, "a")]
    assert names(hb.due(3.0)) == [("1", CHANNEL_VACATED, "a")]


def test_member_removed_then_added_cancels_per_user() -> None:
    hb = Holdback(HOLD)
    hb.offer(APP, ev(MEMBER_REMOVED, "p", "u1"), 0.0)
    hb.offer(APP, ev(MEMBER_REMOVED, "p", "u2"), 0.5)
    assert hb.offer(APP, ev(MEMBER_ADDED, "p", "u1"), 1.0) == []
    assert names(hb.offer(APP, ev(MEMBER_ADDED, "q", "u2"), 1.0)) == [("1", MEMBER_ADDED, "u2")]
    assert names(hb.due(10.0)) == [("1", MEMBER_REMOVED, "u2")]


def test_member_and_channel_keys_do_not_cancel_each_other() -> None:
    hb = Holdback(HOLD)
    hb.offer(APP, ev(CHANNEL_VACATED, "p"), 0.0)
    assert names(hb.offer(APP, ev(MEMBER_ADDED, "p", "u"), 1.0)) == [("1", MEMBER_ADDED, "u")]
    assert len(hb) == 1


def test_held_events_are_released_in_emission_order() -> None:
    hb = Holdback(HOLD)
    hb.offer(APP, ev(MEMBER_REMOVED, "p", "u1"), 0.0)
    hb.offer(OTHER, ev(CHANNEL_VACATED, "x"), 0.1)
    hb.offer(APP, ev(CHANNEL_VACATED, "p"), 0.2)
    assert names(hb.due(3.1)) == [("1", MEMBER_REMOVED, "u1"), ("2", CHANNEL_VACATED, "x")]
    assert hb.next_deadline() == 3.2
    assert names(hb.due(3.2)) == [("1", CHANNEL_VACATED, "p")]


def test_a_second_vacated_while_one_is_held_keeps_the_first() -> None:
    hb = Holdback(HOLD)
    hb.offer(APP, ev(CHANNEL_VACATED), 0.0)
    hb.offer(APP, ev(CHANNEL_VACATED), 1.0)
    assert len(hb) == 1
    assert hb.next_deadline() == HOLD


def test_vacated_occupied_vacated_holds_the_last_vacated_afresh() -> None:
    hb = Holdback(HOLD)
    hb.offer(APP, ev(CHANNEL_VACATED), 0.0)
    hb.offer(APP, ev(CHANNEL_OCCUPIED), 1.0)
    hb.offer(APP, ev(CHANNEL_VACATED), 2.0)
    assert hb.next_deadline() == 2.0 + HOLD
    assert hb.due(3.5) == []
    assert names(hb.due(5.0)) == [("1", CHANNEL_VACATED, "c")]


def test_flush_all_releases_everything_in_order() -> None:
    hb = Holdback(HOLD)
    hb.offer(APP, ev(CHANNEL_VACATED, "a"), 0.0)
    hb.offer(APP, ev(MEMBER_REMOVED, "a", "u"), 0.1)
    assert names(hb.flush_all()) == [("1", CHANNEL_VACATED, "a"), ("1", MEMBER_REMOVED, "u")]
    assert len(hb) == 0
    assert hb.next_deadline() is None


def test_cache_miss_is_deduplicated_per_channel_within_the_window() -> None:
    hb = Holdback(HOLD)
    assert len(hb.offer(APP, ev(CACHE_MISS, "a"), 0.0)) == 1
    assert hb.offer(APP, ev(CACHE_MISS, "a"), 2.9) == []
    assert len(hb.offer(APP, ev(CACHE_MISS, "b"), 2.9)) == 1
    assert len(hb.offer(OTHER, ev(CACHE_MISS, "a"), 2.9)) == 1
    # The window counts from the last accepted one, not from the last offered.
    assert len(hb.offer(APP, ev(CACHE_MISS, "a"), 3.0)) == 1
    assert hb.offer(APP, ev(CACHE_MISS, "a"), 5.9) == []
    assert len(hb) == 0


def test_cache_miss_memory_is_forgotten_after_the_window() -> None:
    hb = Holdback(HOLD)
    for i in range(100):
        hb.offer(APP, ev(CACHE_MISS, f"c{i}"), float(i) / 100)
    hb.due(10.0)
    assert hb._misses == {}


def test_wanted_includes_the_cancelling_event_of_a_wanted_held_one() -> None:
    def app(*types: str) -> App:
        return App(
            id=AppId("1"), key=AppKey("k"), secret="s", webhooks=(Webhook("u", frozenset(types)),)
        )

    assert not wanted(App(id=AppId("1"), key=AppKey("k"), secret="s"), CLIENT_EVENT)
    assert wanted(app(), CLIENT_EVENT)
    assert wanted(app(CHANNEL_VACATED), CHANNEL_OCCUPIED)
    assert wanted(app(MEMBER_REMOVED), MEMBER_ADDED)
    assert not wanted(app(CLIENT_EVENT), CHANNEL_OCCUPIED)
    assert not wanted(app(CHANNEL_OCCUPIED), CHANNEL_VACATED)
    assert not wanted(app(CHANNEL_VACATED), MEMBER_ADDED)


# ---- what the rules discard is reported --------------------------------------------------------


def dropping() -> tuple[Holdback, list[WebhookEvent]]:
    dropped: list[WebhookEvent] = []
    return Holdback(HOLD, on_drop=dropped.append), dropped


def test_a_cancelled_pair_is_reported_both() -> None:
    hb, dropped = dropping()
    vacated, occupied = ev(CHANNEL_VACATED), ev(CHANNEL_OCCUPIED)
    hb.offer(APP, vacated, 0.0)
    assert dropped == []
    hb.offer(APP, occupied, 1.0)
    assert dropped == [vacated, occupied]
    assert dropped[0] is vacated


def test_a_second_held_event_is_reported_and_the_first_kept() -> None:
    hb, dropped = dropping()
    first, second = ev(MEMBER_REMOVED, "p", "u"), ev(MEMBER_REMOVED, "p", "u")
    hb.offer(APP, first, 0.0)
    hb.offer(APP, second, 1.0)
    assert len(dropped) == 1
    assert dropped[0] is second
    assert hb.due(HOLD)[0][1] is first


def test_a_duplicate_cache_miss_is_reported() -> None:
    hb, dropped = dropping()
    first, again = ev(CACHE_MISS, "a"), ev(CACHE_MISS, "a")
    hb.offer(APP, first, 0.0)
    hb.offer(APP, again, 1.0)
    assert len(dropped) == 1
    assert dropped[0] is again


def test_what_is_released_or_passes_is_not_reported() -> None:
    hb, dropped = dropping()
    hb.offer(APP, ev(CLIENT_EVENT), 0.0)
    hb.offer(APP, ev(CHANNEL_OCCUPIED), 0.0)
    hb.offer(APP, ev(CHANNEL_VACATED), 0.0)
    hb.due(HOLD)
    hb.offer(APP, ev(CHANNEL_VACATED, "b"), 5.0)
    hb.flush_all()
    assert dropped == []
