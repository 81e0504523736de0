"""The liveness wheel: sockets filed by the second their check falls due (reference 1.4)."""

from __future__ import annotations

from dataclasses import dataclass

from clarion.core.liveness import DeadlineWheel
from clarion.types import SocketId


@dataclass(frozen=True)
class Item:
    socket_id: SocketId


def item(n: int) -> Item:
    return Item(SocketId(f"{n}.{n}"))


def test_nothing_is_due_before_its_second_begins() -> None:
    wheel: DeadlineWheel[Item] = DeadlineWheel()
    wheel.file(item(1), 10.5)
    assert wheel.due(9.99) == []
    assert wheel.due(10.0) == [item(1)]  # its second has begun: taken, maybe a little early
    assert len(wheel) == 0
    assert wheel.due(11.0) == []


def test_due_takes_every_slot_that_has_begun_in_order() -> None:
    wheel: DeadlineWheel[Item] = DeadlineWheel()
    wheel.file(item(3), 30.0)
    wheel.file(item(1), 10.0)
    wheel.file(item(2), 20.0)
    wheel.file(item(4), 40.0)
    assert wheel.due(35.0) == [item(1), item(2), item(3)]
    assert item(4).socket_id in wheel
    assert len(wheel) == 1


def test_filing_again_moves_the_item() -> None:
    wheel: DeadlineWheel[Item] = DeadlineWheel()
    wheel.file(item(1), 10.0)
    wheel.file(item(1), 50.0)
    assert len(wheel) == 1
    assert wheel.due(49.0) == []
    assert wheel.due(50.0) == [item(1)]


def test_a_discarded_item_is_gone_and_its_slot_with_it() -> None:
    wheel: DeadlineWheel[Item] = DeadlineWheel()
    wheel.file(item(1), 10.0)
    wheel.file(item(2), 10.2)
    wheel.discard(item(1).socket_id)
    wheel.discard(item(1).socket_id)  # twice is harmless
    assert wheel.due(11.0) == [item(2)]
    wheel.discard(item(2).socket_id)
    assert len(wheel) == 0
    assert wheel.due(1e12) == []
