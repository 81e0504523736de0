"""The value classes on the hot path write their `__init__` out (`init=False`; see
protocol/messages.py): each must still take every field, by position and by name, with the
field's default, and the frozen ones must stay frozen."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from clarion.core.envelope import Envelope, Target
from clarion.core.session import Authorized, Member, SignedIn
from clarion.protocol.api import Trigger
from clarion.protocol.channels import ChannelKind
from clarion.protocol.messages import ClientEvent, Ping, Pong, Signin, Subscribe, Unsubscribe
from clarion.transport.http import Request, Response
from clarion.types import AppId, SocketId

# One value per field, none equal to its default (a compiled class checks the types);
# hashable, so that the frozen ones can be hashed.
_MEMBER = Member("u1", "Ann")
SAMPLES: dict[type[Any], dict[str, Any]] = {
    Ping: {},
    Pong: {},
    Subscribe: {"channel": "presence-c", "auth": "k:s", "channel_data": '{"user_id":"u1"}'},
    Unsubscribe: {"channel": "c"},
    Signin: {"auth": "k:s", "user_data": '{"id":"u1"}'},
    ClientEvent: {"event": "client-x", "channel": "private-c", "data": "{}"},
    Member: {"user_id": "u1", "user_info": "Ann"},
    Authorized: {"channel": "presence-c", "kind": ChannelKind.PRESENCE, "member": _MEMBER},
    SignedIn: {
        "user_id": "u1",
        "user_info": None,
        "user_data": '{"id":"u1"}',
        "watchlist": ("u2",),
        "watchlist_truncated": True,
    },
    Trigger: {
        "event": "e",
        "channels": ("a", "b"),
        "data": "{}",
        "socket_id": SocketId("1.2"),
        "info": frozenset({"user_count"}),
    },
    Envelope: {
        "app_id": AppId("1"),
        "channel": "c",
        "event": "e",
        "data": "{}",
        "exclude_socket_id": SocketId("1.2"),
        "user_id": "u1",
        "target": Target.WATCHERS,
    },
    Request: {
        "method": "POST",
        "path": "/apps/1/events",
        "query_string": "a=1",
        "headers": {"origin": "https://a.example"},
        "body": b"{}",
    },
    Response: {
        "status": 404,
        "body": b"{}",
        "content_type": "text/plain",
        "headers": (("X-A", "1"),),
    },
}
WRITTEN_OUT = list(SAMPLES)


def _init_fields(cls: type[Any]) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if f.init]


def _required(cls: type[Any]) -> list[dataclasses.Field[Any]]:
    return [
        f
        for f in _init_fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda cls: cls.__name__)
def test_every_field_is_taken_by_name(cls: type[Any]) -> None:
    values = SAMPLES[cls]
    assert set(values) == {f.name for f in _init_fields(cls)}
    obj = cls(**values)
    for name, value in values.items():
        assert getattr(obj, name) == value, name


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda cls: cls.__name__)
def test_fields_are_taken_by_position_in_declaration_order(cls: type[Any]) -> None:
    values = [SAMPLES[cls][f.name] for f in _init_fields(cls)]
    obj = cls(*values)
    assert [getattr(obj, f.name) for f in _init_fields(cls)] == values


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda cls: cls.__name__)
def test_omitted_fields_get_the_declared_defaults(cls: type[Any]) -> None:
    obj = cls(**{f.name: SAMPLES[cls][f.name] for f in _required(cls)})
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            assert getattr(obj, f.name) == f.default, f.name
        elif f.default_factory is not dataclasses.MISSING:
            assert getattr(obj, f.name) == f.default_factory(), f.name


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda cls: cls.__name__)
def test_an_unknown_field_is_refused(cls: type[Any]) -> None:
    with pytest.raises(TypeError):
        cls(**{f.name: SAMPLES[cls][f.name] for f in _required(cls)}, not_a_field=1)


@pytest.mark.parametrize(
    "cls", [c for c in WRITTEN_OUT if c.__dataclass_params__.frozen], ids=lambda c: c.__name__
)
def test_frozen_ones_stay_frozen_and_hashable(cls: type[Any]) -> None:
    args = SAMPLES[cls]
    obj = cls(**args)
    assert obj == cls(**args)
    assert hash(obj) == hash(cls(**args))
    for f in dataclasses.fields(cls):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, f.name, getattr(obj, f.name))


def test_each_request_gets_its_own_headers() -> None:
    first, second = Request("GET", "/", ""), Request("GET", "/", "")
    first.headers["origin"] = "https://a.example"
    assert second.headers == {}
    assert first.query() == {}
