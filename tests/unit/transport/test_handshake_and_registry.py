"""The upgrade's accept token and the open-socket registry, without sockets."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import Coroutine
from typing import Any

import pytest
from wsproto.utilities import generate_accept_token

from clarion.core.session import Session
from clarion.ports import Connection
from clarion.transport.http_api import HttpApi
from clarion.transport.server import (
    ClientProtocol,
    Connections,
    ServerLimits,
    WriteCoalescer,
    accept_token,
    write_each,
)
from clarion.types import SocketId

from ..fakes import FakeConnection, NodeHarness, make_app

# As tests/integration/it_support.py scales its waits.
TIMEOUT = 5 * float(os.environ.get("CLARION_TEST_TIMEOUT_SCALE") or "1")


def test_accept_token_of_rfc_6455_section_1_3() -> None:
    assert accept_token("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("seed", range(20))
def test_accept_token_matches_wsproto(seed: int) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    assert accept_token(key) == generate_accept_token(key.encode()).decode()


def _protocols(n: int) -> list[ClientProtocol]:
    """Real protocol objects (the compiled build checks the type), never connected."""
    node = NodeHarness().node
    loop = asyncio.get_running_loop()
    limits = ServerLimits(1 << 20, 1 << 20, 100, slow_consumer_grace_s=1.0)
    log = logging.getLogger("test")
    registry = Connections()  # where the protocol would file itself on connection_made
    return [
        ClientProtocol(node, HttpApi(node), limits, log, registry, WriteCoalescer(loop))
        for _ in range(n)
    ]


async def test_wait_empty_returns_at_once_when_nothing_is_open() -> None:
    await asyncio.wait_for(Connections().wait_empty(), timeout=TIMEOUT)


def _suspend(waiting: Coroutine[Any, Any, None]) -> asyncio.Future[Any]:
    """Run `wait_empty()` by hand up to its await: the future it waits on (its Event's).
    No loop iterations are needed to know where it stands."""
    awaited = waiting.send(None)
    assert isinstance(awaited, asyncio.Future)
    return awaited


def _finish(waiting: Coroutine[Any, Any, None]) -> None:
    with pytest.raises(StopIteration):
        waiting.send(None)


async def test_wait_empty_waits_for_the_last_socket() -> None:
    connections = Connections()
    first, second = _protocols(2)
    connections.add(first)
    connections.add(second)
    assert len(connections) == 2
    waiting = connections.wait_empty()
    awaited = _suspend(waiting)
    connections.discard(first)
    assert not awaited.done()
    connections.discard(second)
    assert awaited.done()
    _finish(waiting)
    assert len(connections) == 0


async def test_wait_empty_again_after_new_sockets_arrive() -> None:
    connections = Connections()
    (first,) = _protocols(1)
    connections.add(first)
    waiting = connections.wait_empty()
    awaited = _suspend(waiting)
    connections.discard(first)
    assert awaited.done()
    _finish(waiting)
    (second,) = _protocols(1)
    connections.add(second)
    again = connections.wait_empty()
    awaited_again = _suspend(again)
    assert not awaited_again.done()
    assert connections.snapshot() == [second]
    connections.discard(second)
    assert awaited_again.done()
    _finish(again)


# ---- write_each: the node's fan-out port ---------------------------------------------------


class RecordingTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0


@pytest.mark.parametrize("excluded", [None, "1.1", "2.2", "9.9"])
async def test_write_each_writes_to_every_session_but_the_excluded_one(
    excluded: str | None,
) -> None:
    """Both kinds of connection: the server's own (the compiled build's direct call) and any
    other `Connection` (here the unit tests' fake)."""
    protocols = _protocols(2)
    transports = [RecordingTransport() for _ in protocols]
    for protocol, transport in zip(protocols, transports, strict=True):
        protocol.connection_made(transport)  # type: ignore[arg-type]
    fakes = [FakeConnection(), FakeConnection()]
    app = make_app()
    conns: list[Connection] = [protocols[0], fakes[0], protocols[1], fakes[1]]
    ids = ["1.1", "2.2", "3.3", "4.4"]
    sessions = {
        SocketId(socket_id): Session(app, SocketId(socket_id), conn, 0.0)
        for socket_id, conn in zip(ids, conns, strict=True)
    }
    write_each(sessions, b"frame", None if excluded is None else SocketId(excluded))
    for protocol in protocols:
        protocol.flush()
    received = [transports[0].sent, fakes[0].written, transports[1].sent, fakes[1].written]
    assert received == [[] if i == excluded else [b"frame"] for i in ids]
