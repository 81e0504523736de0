"""Client messages are small frozen value objects."""

from __future__ import annotations

import dataclasses

import pytest

from clarion.protocol.messages import ClientEvent, Ping, Pong, Signin, Subscribe, Unsubscribe


def test_messages_are_frozen_values() -> None:
    msg = Subscribe(channel="c", auth="k:s", channel_data=None)
    assert msg == Subscribe("c", "k:s", None)
    assert hash(msg) == hash(Subscribe("c", "k:s", None))
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.channel = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "msg",
    [
        Ping(),
        Pong(),
        Subscribe("c", None, None),
        Unsubscribe("c"),
        Signin(None, None),
        ClientEvent("client-x", "private-c", "{}"),
    ],
)
def test_every_message_is_a_frozen_slotted_dataclass(msg: object) -> None:
    assert dataclasses.is_dataclass(msg)
    assert type(msg).__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert not hasattr(msg, "__dict__")  # slotted (or a compiled native class)


def test_ping_and_pong_are_distinct() -> None:
    assert Ping() == Ping()
    assert Ping() != Pong()
