"""This node's index of sockets by app and channel."""

from __future__ import annotations

from clarion.core.hub import Hub
from clarion.core.session import Session
from clarion.types import AppId, SocketId

from ..fakes import FakeConnection, make_app

APP = make_app()
OTHER = make_app(id=AppId("other"), key="other-key")


def session(socket_id: str, app=APP) -> Session:  # type: ignore[no-untyped-def]
    return Session(app, SocketId(socket_id), FakeConnection(), 0.0)


def test_add_and_remove_count_connections_per_app() -> None:
    hub = Hub()
    a, b, c = session("1.1"), session("2.2"), session("3.3", OTHER)
    for s in (a, b, c):
        hub.add(s)
    assert hub.connection_count(APP.id) == 2
    assert hub.connection_count(OTHER.id) == 1
    hub.remove(a)
    hub.remove(a)  # idempotent
    assert hub.connection_count(APP.id) == 1
    assert set(hub.sessions) == {"2.2", "3.3"}
    hub.remove(b)
    assert hub.connection_count(APP.id) == 0


def test_subscribe_and_unsubscribe() -> None:
    hub = Hub()
    a, b = session("1.1"), session("2.2")
    hub.subscribe(a, "presence-x", "42")
    hub.subscribe(b, "presence-x", "7")
    assert set(hub.subscribers(APP.id, "presence-x")) == {"1.1", "2.2"}
    assert a.channels == {"presence-x": "42"}
    hub.unsubscribe(a, "presence-x")
    assert set(hub.subscribers(APP.id, "presence-x")) == {"2.2"}
    assert a.channels == {}
    hub.unsubscribe(b, "presence-x")
    assert hub.subscribers(APP.id, "presence-x") == {}


def test_unsubscribe_from_unknown_channel_is_harmless() -> None:
    hub = Hub()
    a = session("1.1")
    hub.unsubscribe(a, "nope")
    hub.subscribe(a, "x", None)
    hub.unsubscribe(a, "y")
    assert set(hub.subscribers(APP.id, "x")) == {"1.1"}


def test_channels_are_per_app() -> None:
    hub = Hub()
    hub.subscribe(session("1.1"), "shared", None)
    hub.subscribe(session("2.2", OTHER), "shared", None)
    assert set(hub.subscribers(APP.id, "shared")) == {"1.1"}
    assert set(hub.subscribers(OTHER.id, "shared")) == {"2.2"}
    assert hub.subscribers(AppId("none"), "shared") == {}


# ---- users and watchlists (reference 2.10, 3.3, 3.4) -------------------------------------


def test_sign_in_indexes_the_user_and_sets_the_session() -> None:
    hub = Hub()
    a, b = session("1.1"), session("2.2")
    for s in (a, b):
        hub.add(s)
    hub.sign_in(a, "42", ("7",))
    hub.sign_in(b, "42", ())
    assert set(hub.user_sessions(APP.id, "42")) == {"1.1", "2.2"}
    assert (a.user_id, a.watchlist) == ("42", ("7",))
    assert hub.user_sessions(APP.id, "7") == {}
    assert hub.user_sessions(OTHER.id, "42") == {}


def test_watchers_by_watched_id() -> None:
    hub = Hub()
    a, b = session("1.1"), session("2.2")
    hub.sign_in(a, "1", ("7", "8"))
    hub.sign_in(b, "2", ("8",))
    assert set(hub.watchers(APP.id, "7")) == {"1.1"}
    assert set(hub.watchers(APP.id, "8")) == {"1.1", "2.2"}
    assert hub.watchers(APP.id, "1") == {}
    assert hub.watchers(OTHER.id, "8") == {}


def test_signing_in_again_replaces_the_watchlist() -> None:
    hub = Hub()
    a = session("1.1")
    hub.sign_in(a, "1", ("7", "8"))
    hub.sign_in(a, "1", ("9",))
    assert hub.watchers(APP.id, "7") == {}
    assert hub.watchers(APP.id, "8") == {}
    assert set(hub.watchers(APP.id, "9")) == {"1.1"}
    assert set(hub.user_sessions(APP.id, "1")) == {"1.1"}


def test_remove_forgets_the_user_and_watchlist_entries_at_once() -> None:
    hub = Hub()
    a, b = session("1.1"), session("2.2")
    for s in (a, b):
        hub.add(s)
    hub.sign_in(a, "42", ("7",))
    hub.sign_in(b, "42", ("7",))
    hub.subscribe(a, "c", None)
    hub.remove(a)
    assert set(hub.user_sessions(APP.id, "42")) == {"2.2"}
    assert set(hub.watchers(APP.id, "7")) == {"2.2"}
    # Channels stay until the node has left them through the stores.
    assert set(hub.subscribers(APP.id, "c")) == {"1.1"}
    hub.remove(b)
    assert hub.user_sessions(APP.id, "42") == {}
    assert hub.watchers(APP.id, "7") == {}


def test_users_are_per_app() -> None:
    hub = Hub()
    a, b = session("1.1"), session("2.2", OTHER)
    hub.sign_in(a, "42", ("7",))
    hub.sign_in(b, "42", ("7",))
    assert set(hub.user_sessions(APP.id, "42")) == {"1.1"}
    assert set(hub.user_sessions(OTHER.id, "42")) == {"2.2"}
    assert set(hub.watchers(OTHER.id, "7")) == {"2.2"}


def test_lookups_for_unknown_ids_share_no_mutable_state() -> None:
    hub = Hub()
    empty = hub.user_sessions(APP.id, "nobody")
    assert empty == {}
    hub.sign_in(session("1.1"), "nobody", ())
    assert empty == {}  # the earlier answer did not become the live index
    assert hub.watchers(APP.id, "x") == {}
