"""One asyncio protocol per socket: HTTP/1.1 (httptools) until an upgrade, then WebSocket frames
(wsproto's sans-I/O frame layer). No task per connection: bytes arrive in `data_received`.

The same port serves `GET /app/{key}` upgrades (reference 1.1) and the HTTP API (reference 5).
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import hashlib
import logging
import re
import socket
import struct
import typing
from collections import deque
from typing import Any

import httptools
from wsproto.frame_protocol import CloseReason, FrameProtocol, Opcode, ParseFailed

from clarion.core.session import Session
from clarion.eager import run_eagerly
from clarion.node import Node
from clarion.protocol import codec
from clarion.protocol import errors as codes
from clarion.transport.feed import NOT_UPGRADED, feed_http
from clarion.transport.http import Request, Response, error_response, percent_decoded
from clarion.transport.http_api import HttpApi
from clarion.types import SocketId

_APP_PATH = re.compile(r"(?:/[^?]*)?/app/(?P<key>[^/?]+)")
_LINGER_ZERO = struct.pack("ii", 1, 0)
_WANTED_HEADERS = {
    name.encode(): name
    for name in ("upgrade", "sec-websocket-key", "sec-websocket-version", "origin")
}
_WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
_HEADER_16 = struct.Struct("!BBH")
_HEADER_64 = struct.Struct("!BBQ")
# Frames larger than the app's message limit plus this much envelope are refused unread.
_ENVELOPE_ALLOWANCE = 1024


def encode_text_frame(text: str) -> bytes:
    """A server-to-client text frame (RFC 6455 5.2: FIN + opcode 1, no mask, 7/16/64-bit
    length). Server frames are unmasked, so the bytes are the same for every subscriber and are
    built once per broadcast; built here directly because it runs for every frame sent and
    wsproto's general encoder costs five times as much. Parsing stays with wsproto."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        return bytes((0x81, size)) + payload
    if size < 65536:
        return _HEADER_16.pack(0x81, 126, size) + payload
    return _HEADER_64.pack(0x81, 127, size) + payload


class ConnectionRegistry(typing.Protocol):
    def add(self, protocol: ClientProtocol) -> None: ...

    def discard(self, protocol: ClientProtocol) -> None: ...

    def __len__(self) -> int: ...


class Connections:
    """The open sockets (a `ConnectionRegistry`), with a way to wait until the last one is
    gone (shutdown). The event exists only once someone waits: `add` runs for every accepted
    socket and stays a set insertion."""

    __slots__ = ("_empty", "_open")

    def __init__(self) -> None:
        self._open: set[ClientProtocol] = set()
        self._empty: asyncio.Event | None = None

    def add(self, protocol: ClientProtocol) -> None:
        self._open.add(protocol)

    def discard(self, protocol: ClientProtocol) -> None:
        self._open.discard(protocol)
        if not self._open and self._empty is not None:
            self._empty.set()

    def __len__(self) -> int:
        return len(self._open)

    def snapshot(self) -> list[ClientProtocol]:
        return list(self._open)

    async def wait_empty(self) -> None:
        if not self._open:
            return
        if self._empty is None or self._empty.is_set():
            self._empty = asyncio.Event()
        await self._empty.wait()


class WriteCoalescer:
    """Frames written to one socket during a loop iteration leave in one send.

    A trigger fans out to every subscriber; several triggers handled in the same iteration (K
    API connections, pipelined requests) would otherwise cost one syscall per frame per
    subscriber. Sockets with output are marked dirty and flushed once, at the end of the
    iteration (architecture, performance rules). One per server, bound to its loop.
    """

    __slots__ = ("_dirty", "_loop", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._dirty: list[ClientProtocol] = []
        self._scheduled = False

    def mark(self, protocol: ClientProtocol) -> None:
        self._dirty.append(protocol)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        dirty, self._dirty = self._dirty, []
        for protocol in dirty:
            protocol.flush()


def write_each(sessions: dict[SocketId, Session], frame: bytes, excluded: SocketId | None) -> None:
    """The node's `FanOut` port: `frame` to every session but `excluded`'s."""
    for socket_id, session in sessions.items():
        if socket_id != excluded:
            conn = session.conn
            # Narrowed, the compiled build calls ClientProtocol.write directly; through the
            # `Connection` protocol it looks `write` up by name on every call.
            if isinstance(conn, ClientProtocol):
                conn.write(frame)
            else:  # another Connection: the unit tests' fakes
                conn.write(frame)


class ServerLimits:
    __slots__ = ("max_body_bytes", "max_pending_bytes", "max_sockets", "slow_consumer_grace_s")

    def __init__(
        self,
        max_body_bytes: int,
        max_pending_bytes: int,
        max_sockets: int,
        slow_consumer_grace_s: float,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.max_pending_bytes = max_pending_bytes
        self.max_sockets = max_sockets
        self.slow_consumer_grace_s = slow_consumer_grace_s


class ClientProtocol(asyncio.Protocol):
    """A socket's protocol object; also the node's `Connection` once upgraded."""

    __slots__ = (
        "_api",
        "_closing",
        "_coalescer",
        "_connections",
        "_fast_frames",
        "_limits",
        "_log",
        "_message",
        "_message_size",
        "_node",
        "_out",
        "_over_capacity",
        "_parser",
        "_paused",
        "_pending",
        "_queue",
        "_request",
        "_transport",
        "_upgraded",
        "_url",
        "_ws",
        "session",
    )

    def __init__(
        self,
        node: Node,
        api: HttpApi,
        limits: ServerLimits,
        log: logging.Logger,
        connections: ConnectionRegistry,
        coalescer: WriteCoalescer,
    ) -> None:
        self._node = node
        self._coalescer = coalescer
        # Frames written in this loop iteration, sent by `flush`: None, one frame, or a list.
        self._out: bytes | list[bytes] | None = None
        self._connections = connections
        self._api = api
        self._limits = limits
        self._log = log
        self._transport: asyncio.Transport | None = None
        self._parser: Any = httptools.HttpRequestParser(self)
        self._request: Request | None = None
        self._url = b""
        self._queue: deque[Request] | None = None
        # Set at the upgrade. wsproto's frame layer is made only when a frame needs it (control
        # frames, fragments, errors, our close): most sockets never do, and it costs ~1 KB each.
        self._upgraded = False
        self._ws: FrameProtocol | None = None
        self._message: list[str] | None = None
        self._message_size = 0
        self._paused = False
        self._closing = False
        self._over_capacity = False
        # Inbound frames: a partial plain text frame kept by the fast path, which stays on
        # until a frame only wsproto should handle arrives.
        self._pending = b""
        self._fast_frames = True
        self.session: Session | None = None

    # ---- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = typing.cast(asyncio.Transport, transport)
        self._connections.add(self)
        # Refused politely once the request arrives (4100 / 503), never by failing accept().
        self._over_capacity = len(self._connections) > self._limits.max_sockets

    def data_received(self, data: bytes) -> None:
        if self._upgraded:
            self._ws_received(data)
            return
        try:
            offset = feed_http(self._parser, data)
        except httptools.HttpParserError as error:
            self._http_fail(400, f"Malformed HTTP request: {error}")
            return
        if offset != NOT_UPGRADED:
            self._upgrade(data[offset:])

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._connections.discard(self)
        if self.session is not None:
            self._node.on_close(self.session)
            self.session = None

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False

    # ---- httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        self._request = Request(method="", path="", query_string="")

    def on_url(self, url: bytes) -> None:
        # Called once per piece when the request line arrives split over several reads.
        self._url += url

    def _split_url(self, request: Request) -> None:
        url, self._url = self._url, b""
        if url.startswith(b"/"):
            # Origin form (RFC 9112 3.2.1), what every client sends: split here, as the path
            # and query are all that is read; httptools' URL parser is for the absolute form.
            path, _, query = url.partition(b"?")
            path, query = path.partition(b"#")[0], query.partition(b"#")[0]
        else:
            parsed = httptools.parse_url(url)
            path, query = parsed.path or b"", parsed.query or b""
        request.path = path.decode("latin-1")
        request.query_string = query.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self._request is not None
        # Only the headers something reads are kept (the upgrade's); an API request needs none.
        wanted = _WANTED_HEADERS.get(name.lower())
        if wanted is not None:
            self._request.headers[wanted] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        request = self._request
        assert request is not None
        request.method = self._parser.get_method().decode()
        self._split_url(request)

    def on_body(self, body: bytes) -> None:
        request = self._request
        assert request is not None
        request.body += body
        if len(request.body) > self._limits.max_body_bytes:
            raise httptools.HttpParserError("body too large")

    def on_message_complete(self) -> None:
        request, self._request = self._request, None
        if request is None or self._parser.should_upgrade():
            self._request = request
            return
        if self._over_capacity:
            self._respond(error_response(503, "Server over capacity"), keep_alive=False)
            return
        if self._queue is not None:
            self._queue.append(request)
            return
        self._queue = deque([request])
        # Answered now, inside the parser's callback, unless the handler has to wait.
        rest = run_eagerly(self._serve_requests())
        if rest is not None:
            asyncio.get_running_loop().create_task(rest)

    # ---- HTTP API ---------------------------------------------------------------------

    async def _serve_requests(self) -> None:
        """Answer pipelined requests in order, one at a time."""
        queue = self._queue
        assert queue is not None
        try:
            while queue and not self._closing:
                request = queue.popleft()
                try:
                    response = await self._api.handle(request)
                except Exception:
                    self._log.exception("HTTP API handler failed")
                    response = error_response(500, "Internal server error")
                self._respond(response, self._parser.should_keep_alive())
        finally:
            self._queue = None

    def _respond(self, response: Response, keep_alive: bool) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        # Through the coalescer: pipelined requests answered in one iteration share a send.
        self.write(response.encode(keep_alive))
        if not keep_alive:
            self.flush()
            transport.close()

    def _http_fail(self, status: int, message: str) -> None:
        if self._request is not None and len(self._request.body) > self._limits.max_body_bytes:
            status, message = 413, "Request body too large"
        self._respond(error_response(status, message), keep_alive=False)

    # ---- WebSocket upgrade (RFC 6455 section 4.2) ------------------------------------

    def _upgrade(self, rest: bytes) -> None:
        request, self._request = self._request, None
        assert request is not None
        assert self._transport is not None
        key = request.headers.get("sec-websocket-key")
        if request.headers.get("upgrade", "").lower() != "websocket" or not key:
            self._respond(error_response(400, "Expected a WebSocket upgrade"), keep_alive=False)
            return
        if request.headers.get("sec-websocket-version") != "13":
            response = Response(426, b"", headers=(("Sec-WebSocket-Version", "13"),))
            self._respond(response, keep_alive=False)
            return
        self.write(_handshake_response(key))  # leaves in one send with connection_established
        self._parser = None
        self._upgraded = True
        self._open_session(request)
        if rest:
            self._ws_received(rest)

    def _open_session(self, request: Request) -> None:
        if self._over_capacity:
            # Reference 1.6: 4100 "over capacity"; pusher-js reconnects after a back-off.
            message = "Over capacity: this server holds as many connections as it can"
            self.write(encode_text_frame(codec.error(codes.OVER_CAPACITY, message)))
            self.close(codes.OVER_CAPACITY, "Over capacity")
            return
        match = _APP_PATH.fullmatch(request.path)
        if match is None:
            self.write(encode_text_frame(codec.error(codes.PATH_NOT_FOUND, "Path not found")))
            self.close(codes.PATH_NOT_FOUND, "Path not found")
            return
        query = request.query()
        self.session = self._node.on_open(
            self,
            percent_decoded(match["key"]),
            query.get("protocol"),
            request.headers.get("origin"),
        )

    # ---- WebSocket frames -------------------------------------------------------------

    def _ws_received(self, data: bytes) -> None:
        if self._fast_frames:
            data = self._take_plain_frames(data)
            if not data:
                return
        self._wsproto_received(data)

    def _frames(self) -> FrameProtocol:
        if self._ws is None:
            self._ws = FrameProtocol(client=False, extensions=[])
        return self._ws

    def _take_plain_frames(self, data: bytes) -> bytes:
        """Handle whole, unfragmented, masked text frames here (every Pusher client message);
        return the bytes from the first frame that is anything else, for wsproto.

        wsproto parses in pure Python at ~10 us a frame; this is a few. Control frames pass
        to wsproto one whole frame at a time; a fragmented, binary, 64-bit-length or malformed
        frame hands everything from there on to wsproto for good (its rules, its errors).
        """
        buf = self._pending + data if self._pending else data
        size = len(buf)
        pos = 0
        while size - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            length = second & 0x7F
            header = 6
            if length == 126:
                if size - pos < 8:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                header = 8
            end = pos + header + length
            if not second & 0x80 or length == 127:
                return self._hand_over(buf, pos)  # unmasked (an error) or 64-bit length
            if end > size:
                break
            if first == 0x81:  # FIN, no RSV bits, opcode text (RFC 6455 5.2)
                text = _unmask_text(buf[pos + header - 4 : pos + header], buf[pos + header : end])
                if text is None:
                    return self._hand_over(buf, pos)  # invalid UTF-8: wsproto closes 1007
                pos = end
                self._on_text(text, True)
            elif first & 0x88 == 0x88 and not first & 0x70:  # FIN control frame
                self._wsproto_received(buf[pos:end])
                pos = end
            else:
                return self._hand_over(buf, pos)
            if self._closing:
                return b""
        self._pending = buf[pos:] if pos < size else b""
        return b""

    def _hand_over(self, buf: bytes, pos: int) -> bytes:
        self._fast_frames = False
        self._pending = b""
        return buf[pos:]

    def _wsproto_received(self, data: bytes) -> None:
        ws = self._frames()
        ws.receive_bytes(data)
        try:
            for frame in ws.received_frames():
                if self._closing:
                    return
                self._on_frame(frame.opcode, frame.payload, frame.message_finished)
        except ParseFailed as failure:
            # RFC 6455: protocol errors (unmasked frame, bad UTF-8 -> 1007) close the socket.
            self.close(failure.code, failure.args[0] if failure.args else "Protocol error")

    def _on_frame(self, opcode: Opcode, payload: Any, finished: bool) -> None:
        if opcode is Opcode.TEXT or (opcode is Opcode.CONTINUATION and self._message is not None):
            self._on_text(payload, finished)
        elif opcode is Opcode.BINARY or opcode is Opcode.CONTINUATION:
            self._on_binary(finished)
        elif opcode is Opcode.PING:
            self._touch()
            self.write(bytes(self._frames().pong(payload)))
        elif opcode is Opcode.PONG:
            self._touch()
        elif opcode is Opcode.CLOSE:
            # RFC 6455 5.5.1: answer a close with a close; 1005 means "no code given".
            code = int(payload[0])
            self.close(1000 if code == CloseReason.NO_STATUS_RCVD else code, "")

    def _on_text(self, chunk: str, finished: bool) -> None:
        if self._message is None:
            self._message, self._message_size = [], 0
        self._message_size += len(chunk)
        limit = self._max_frame_chars()
        if self._message_size <= limit:
            self._message.append(chunk)
        if not finished:
            return
        parts, size = self._message, self._message_size
        self._message = None
        if size > limit:
            self._refuse(codes.INVALID_MESSAGE, f"Message larger than {limit}")
        elif self.session is not None:
            self._node.on_message(self.session, "".join(parts))

    def _on_binary(self, finished: bool) -> None:
        # Reference 1.2: binary frames are not supported; say so once the message ends.
        self._message = None
        if finished:
            self._refuse(codes.INVALID_MESSAGE, "Binary frames are not supported")

    def _max_frame_chars(self) -> int:
        session = self.session
        app_limit = session.app.max_message_bytes if session is not None else 10240
        return app_limit + _ENVELOPE_ALLOWANCE

    def _refuse(self, code: int, message: str) -> None:
        self.write(encode_text_frame(codec.error(code, message)))

    def _touch(self) -> None:
        if self.session is not None:
            self.session.seen(self._node.now())

    # ---- Connection port --------------------------------------------------------------

    def write(self, frame: bytes) -> None:
        if self._closing:
            return
        out = self._out
        if out is None:
            # One frame is kept as is: a list per write would be 10k GC-tracked allocations
            # per broadcast to 10k sockets, and the collections they trigger cost more.
            self._out = frame
            self._coalescer.mark(self)
        elif isinstance(out, list):
            out.append(frame)
        else:
            self._out = [out, frame]

    def flush(self) -> None:
        """Send what `write` gathered in this loop iteration as one buffer."""
        out, self._out = self._out, None
        transport = self._transport
        if out is None or transport is None or transport.is_closing():
            return
        transport.write(b"".join(out) if isinstance(out, list) else out)
        if self._paused and transport.get_write_buffer_size() > self._limits.max_pending_bytes:
            # Architecture, back-pressure: a client that does not read is dropped with a
            # 4100-range code (it reconnects after a back-off) instead of growing our memory.
            self._abort_slow_consumer()

    def close(self, code: int, reason: str) -> None:
        transport = self._transport
        if transport is None or self._closing:
            return
        self.flush()  # what was written before the close goes first (e.g. pusher:error)
        if self._closing:  # the flush found a slow consumer and closed it already
            return
        self._closing = True
        if self._upgraded:
            transport.write(bytes(self._frames().close(code, reason[:120])))
        transport.close()

    def close_idle_http(self) -> None:
        """At shutdown: a keep-alive HTTP connection with no request in flight just goes.
        Aborted, not closed: a TLS close would wait for an idle client's close_notify."""
        if not self._upgraded and self._queue is None and self._transport is not None:
            self._transport.abort()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def _abort_slow_consumer(self) -> None:
        transport = self._transport
        assert transport is not None
        self._log.info(
            "closing a slow consumer: over %d bytes pending", self._limits.max_pending_bytes
        )
        self.close(codes.SLOW_CONSUMER, "Client is not reading its messages")
        # The close frame sits behind the unread backlog; drop the socket if it is not drained.
        grace = self._limits.slow_consumer_grace_s
        asyncio.get_running_loop().call_later(grace, _reset, transport)


def _reset(transport: asyncio.Transport) -> None:
    """Abort with a TCP reset (SO_LINGER 0): a plain close would leave the unread backlog,
    up to the kernel's send buffer (MBs), queued to a peer that is not reading."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    transport.abort()


def _unmask_text(mask: bytes, payload: bytes) -> str | None:
    """RFC 6455 5.3 unmasking, as one big-integer XOR; None when not valid UTF-8 (5.6)."""
    size = len(payload)
    if size:
        key = (mask * (size // 4 + 1))[:size]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(
            size, "big"
        )
    try:
        return payload.decode()
    except UnicodeDecodeError:
        return None


def accept_token(key: str) -> str:
    """RFC 6455 4.2.2: base64 of the SHA-1 of the key and the protocol's GUID. Written here as
    C calls (wsproto's `generate_accept_token` is the same through two Python-level calls, per
    connection); a unit test compares the two."""
    digest = hashlib.sha1(key.encode() + _WEBSOCKET_GUID).digest()
    return binascii.b2a_base64(digest, newline=False).decode()


def _handshake_response(key: str) -> bytes:
    accept = accept_token(key)
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
    ).encode()
