"""Broker contract (ports.Broker): every published envelope reaches the bound `deliver` exactly
once, in the order it was published; `publish` never blocks the caller; nothing is delivered
after `close()`."""

from __future__ import annotations

from clarion.core.envelope import Envelope, Target
from clarion.types import AppId, SocketId

from .conftest import BrokerUnderTest

A, B = AppId("app-a"), AppId("app-b")


def envelope(n: int, app_id: AppId = A, channel: str = "private-chat") -> Envelope:
    return Envelope(app_id, channel, f"event-{n}", f'{{"n":{n}}}')


async def test_every_envelope_reaches_deliver_exactly_once_in_publish_order(
    broker: BrokerUnderTest,
) -> None:
    seen: list[Envelope] = []
    broker.broker.bind(seen.append)
    # Several apps and channels interleaved: order is per publisher, not per channel.
    sent = [envelope(n, A if n % 3 else B, f"channel-{n % 4}") for n in range(50)]
    for item in sent:
        broker.broker.publish(item)
    await broker.settle()
    assert seen == sent


async def test_publishing_the_same_envelope_twice_delivers_it_twice(
    broker: BrokerUnderTest,
) -> None:
    seen: list[Envelope] = []
    broker.broker.bind(seen.append)
    item = envelope(1)
    broker.broker.publish(item)
    broker.broker.publish(item)
    await broker.settle()
    assert seen == [item, item]


async def test_envelopes_arrive_equal_field_for_field(broker: BrokerUnderTest) -> None:
    seen: list[Envelope] = []
    broker.broker.bind(seen.append)
    sent = [
        Envelope(A, "presence-room", "client-typing", '{"who":"ünïcödé ✓"}', SocketId("1.2"), "42"),
        Envelope(A, "#server-to-user-42", "ping", "", None, None, Target.CHANNEL),
        Envelope(B, "", "", "{}", None, "42", Target.TERMINATE_USER),
        Envelope(B, "", "online", '{"user_ids":["42"]}', None, "42", Target.WATCHERS),
        Envelope(A, "private-x", "e", '"a \\"quoted\\" string"\n', SocketId("9.9")),
    ]
    for item in sent:
        broker.broker.publish(item)
    await broker.settle()
    assert seen == sent
    assert [e.target for e in seen] == [e.target for e in sent]


async def test_publish_does_not_hand_back_an_awaitable(broker: BrokerUnderTest) -> None:
    """`publish` never blocks: it is a plain call, not a coroutine the caller must await."""
    seen: list[Envelope] = []
    broker.broker.bind(seen.append)
    result = broker.broker.publish(envelope(1))
    await broker.settle()
    assert result is None
    assert seen == [envelope(1)]


async def test_envelopes_published_while_delivering_are_delivered_in_order(
    broker: BrokerUnderTest,
) -> None:
    """A node may publish from inside `deliver`; that envelope was published before the next
    outer one, so it arrives before it, and every envelope still arrives exactly once."""
    seen: list[Envelope] = []

    def deliver(item: Envelope) -> None:
        seen.append(item)
        if item.event == "event-1":
            broker.broker.publish(envelope(100))

    broker.broker.bind(deliver)
    broker.broker.publish(envelope(1))
    await broker.settle()
    broker.broker.publish(envelope(2))
    await broker.settle()
    assert seen == [envelope(1), envelope(100), envelope(2)]


async def test_nothing_is_delivered_after_close(broker: BrokerUnderTest) -> None:
    seen: list[Envelope] = []
    broker.broker.bind(seen.append)
    broker.broker.publish(envelope(1))
    await broker.settle()
    await broker.broker.close()
    broker.broker.publish(envelope(2))
    await broker.settle()
    assert seen == [envelope(1)]
