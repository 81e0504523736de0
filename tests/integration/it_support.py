"""Helpers for the integration suite: timeouts, the test apps, a thin WebSocket client wrapper,
raw frames for what the `websockets` client refuses to send, and signed raw HTTP requests.

Every wait is a multiple of `UNIT` (env `CLARION_TEST_TIMEOUT_SCALE`, default 1). Nothing sleeps:
to show that a frame does NOT arrive, a `pusher:ping` is sent and its `pusher:pong` must be the
very next frame (the server answers a socket's messages in order, and the in-memory broker
delivers synchronously, so anything that was going to arrive would come first).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import struct
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pusher
import pusher.requests
from aiohttp import web
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from clarion.core.apps import App
from clarion.types import AppId, AppKey

# ---- time ------------------------------------------------------------------------------

UNIT = float(os.environ.get("CLARION_TEST_TIMEOUT_SCALE") or "1")
TIMEOUT = 5 * UNIT

SOCKET_ID_RE = re.compile(r"^\d+\.\d+$")
HOST = "127.0.0.1"
DEFAULT_QUERY = "protocol=7&client=js&version=8.6.0&flash=false"

# ---- apps (numeric ids: the python SDK insists on digits) --------------------------------

MASTER_KEY_B64 = base64.b64encode(bytes(range(32))).decode()


def _app(app_id: str, name: str, **kwargs: Any) -> App:
    return App(
        id=AppId(app_id),
        key=AppKey(f"{name}-key"),
        secret=f"{name}-secret",
        name=name,
        **kwargs,
    )


MAIN = _app("123456", "main", enable_client_messages=True)
NO_CLIENT_EVENTS = _app("234567", "quiet", enable_client_messages=False)
DISABLED = _app("345678", "disabled", enabled=False)
LIMITED = _app("456789", "limited", max_connections=1)
ORIGINS = _app("567890", "origins", allowed_origins=("https://good.example",))
SMALL_ROOM = _app("678901", "room", max_presence_members=2, enable_client_messages=True)
ALL_APPS = (MAIN, NO_CLIENT_EVENTS, DISABLED, LIMITED, ORIGINS, SMALL_ROOM)


# ---- frames ------------------------------------------------------------------------------


def data_of(msg: Mapping[str, Any]) -> Any:
    """The frame's `data`, JSON-decoded when it is a string holding JSON (reference 1.2)."""
    data = msg.get("data")
    if isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError:
            return data
    return data


def error_code(msg: Mapping[str, Any]) -> Any:
    data = data_of(msg)
    assert isinstance(data, dict), f"pusher:error without an object as data: {msg}"
    return data.get("code")


class WsClient:
    """A connected, established Pusher WebSocket client (the `websockets` asyncio client)."""

    def __init__(self, ws: ClientConnection, established: dict[str, Any]) -> None:
        self.ws = ws
        self.established = established
        info = data_of(established)
        self.socket_id: str = info["socket_id"]
        self.activity_timeout: int = info["activity_timeout"]

    # sending
    async def send_json(self, payload: Any) -> None:
        await self.ws.send(json.dumps(payload))

    async def send_raw(self, payload: str | bytes) -> None:
        await self.ws.send(payload)

    async def send_event(self, event: str, data: Any = None, channel: str | None = None) -> None:
        frame: dict[str, Any] = {"event": event, "data": {} if data is None else data}
        if channel is not None:
            frame["channel"] = channel
        await self.send_json(frame)

    async def subscribe(
        self, channel: str, auth: str | None = None, channel_data: str | None = None
    ) -> None:
        data: dict[str, Any] = {"auth": auth or "", "channel": channel}
        if channel_data is not None:
            data["channel_data"] = channel_data
        await self.send_event("pusher:subscribe", data)

    async def unsubscribe(self, channel: str) -> None:
        await self.send_event("pusher:unsubscribe", {"channel": channel})

    # receiving
    async def recv(self, within: float = TIMEOUT) -> dict[str, Any]:
        text = await asyncio.wait_for(self.ws.recv(), within)
        assert isinstance(text, str), f"server sent a binary frame: {text!r}"
        msg = json.loads(text)
        assert isinstance(msg, dict), msg
        return msg

    async def expect(
        self, event: str, channel: str | None = None, within: float = TIMEOUT
    ) -> dict[str, Any]:
        msg = await self.recv(within)
        assert msg.get("event") == event, f"expected {event}, got {msg}"
        if channel is not None:
            assert msg.get("channel") == channel, f"expected channel {channel}, got {msg}"
        return msg

    async def expect_succeeded(self, channel: str) -> Any:
        msg = await self.expect("pusher_internal:subscription_succeeded", channel)
        return data_of(msg)

    async def until_pong(self) -> list[dict[str, Any]]:
        """Send a `pusher:ping` and return every frame that arrived before its pong."""
        await self.send_event("pusher:ping")
        frames = []
        while True:
            msg = await self.recv()
            if msg.get("event") == "pusher:pong":
                return frames
            frames.append(msg)

    async def assert_nothing_pending(self) -> None:
        frames = await self.until_pong()
        assert frames == [], f"unexpected frames: {frames}"

    async def closed(self, within: float = TIMEOUT) -> tuple[int | None, list[dict[str, Any]]]:
        """Read until the server closes; the close code it sent and the frames before it."""
        frames: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(within):
                while True:
                    frames.append(json.loads(await self.ws.recv()))
        except ConnectionClosed as closed:
            return (closed.rcvd.code if closed.rcvd is not None else None), frames

    async def close(self) -> None:
        await self.ws.close()


async def open_ws(
    port: int,
    key: str = MAIN.key,
    *,
    query: str | None = DEFAULT_QUERY,
    path: str | None = None,
    origin: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    max_queue: int | None = 16,
) -> ClientConnection:
    """`max_queue=None`: never stop reading the socket however many frames go unread (a test
    with a crowd of sockets it does not read would otherwise stall their closing handshakes)."""
    scheme = "wss" if ssl_context is not None else "ws"
    url = f"{scheme}://{HOST}:{port}{path if path is not None else f'/app/{key}'}"
    if query is not None:
        url += f"?{query}"
    kwargs: dict[str, Any] = {}
    if ssl_context is not None:
        kwargs["ssl"] = ssl_context
    return await connect(
        url,
        origin=origin,  # type: ignore[arg-type]
        proxy=None,
        ping_interval=None,  # our own keepalive pings would count as liveness
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
        max_size=None,
        max_queue=max_queue,
        **kwargs,
    )


async def refused(ws: ClientConnection) -> tuple[int | None, list[dict[str, Any]]]:
    """For a connection the server refuses: the frames it sent, then its close code."""
    frames: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(TIMEOUT):
            while True:
                frames.append(json.loads(await ws.recv()))
    except ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd is not None else None), frames


# ---- the pusher SDK ----------------------------------------------------------------------


def sdk(
    port: int,
    app: App = MAIN,
    *,
    secret: str | None = None,
    app_id: str | None = None,
    ssl_ca: str | None = None,
) -> pusher.Pusher:
    kwargs: dict[str, Any] = {}
    if ssl_ca is not None:
        kwargs["backend"] = TrustingRequestsBackend
        kwargs["ca_file"] = ssl_ca
    return pusher.Pusher(
        app_id=app_id or app.id,
        key=app.key,
        secret=secret or app.secret,
        host=HOST,
        port=port,
        ssl=ssl_ca is not None,
        timeout=TIMEOUT,
        encryption_master_key_base64=MASTER_KEY_B64,
        **kwargs,
    )


class TrustingRequestsBackend(pusher.requests.RequestsBackend):
    """The SDK's own requests backend, verifying TLS against a given CA file instead of the
    bundled one (the stock backend overwrites any `verify` option with its cacert.pem)."""

    def __init__(self, client: Any, ca_file: str, **options: Any) -> None:
        super().__init__(client, **options)
        self.options["verify"] = ca_file


def sdk_request(client: pusher.Pusher, method: str, path: str, params: dict[str, Any]) -> Any:
    """Send a request the SDK has no method for (e.g. trigger with `info`), signed by the SDK."""
    from pusher.http import Request

    inner = client._pusher_client
    return inner.http.send_request(Request(inner, method, path, params))


def channel_auth(
    client: WsClient, channel: str, app: App, custom_data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The auth an app's backend returns for `client` (signed by the SDK with the secret; the
    master key makes encrypted channels' auth carry their shared secret)."""
    signer = pusher.Pusher(app.id, app.key, app.secret, encryption_master_key_base64=MASTER_KEY_B64)
    return dict(
        signer.authenticate(channel=channel, socket_id=client.socket_id, custom_data=custom_data)
    )


async def subscribe_signed(
    client: WsClient, channel: str, app: App, custom_data: dict[str, Any] | None = None
) -> None:
    """Send a subscribe, with an SDK-made auth for private/presence/encrypted channels."""
    if channel.startswith(("private-", "presence-")):
        signed = channel_auth(client, channel, app, custom_data)
        await client.subscribe(channel, signed["auth"], signed.get("channel_data"))
    else:
        await client.subscribe(channel)


def presence_data(user_id: str, name: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"user_id": user_id}
    if name is not None:
        data["user_info"] = {"name": name}
    return data


# ---- signed raw HTTP (reference 5.2) -----------------------------------------------------


def api_signature(secret: str, method: str, path: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(
        f"{k}={v}"
        for k, v in sorted((k.lower(), v) for k, v in params.items() if k != "auth_signature")
    )
    to_sign = f"{method.upper()}\n{path}\n{canonical}"
    return hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def signed_params(
    app: App,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    extra: Mapping[str, str] | None = None,
    timestamp: int | None = None,
    secret: str | None = None,
) -> dict[str, str]:
    params: dict[str, str] = {
        "auth_key": app.key,
        "auth_timestamp": str(int(time.time()) if timestamp is None else timestamp),
        "auth_version": "1.0",
    }
    if body:
        params["body_md5"] = hashlib.md5(body).hexdigest()
    params.update(extra or {})
    params["auth_signature"] = api_signature(secret or app.secret, method, path, params)
    return params


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
    raw_query: str | None = None,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[int, bytes]:
    """Blocking; call through `asyncio.to_thread`."""
    if ssl_context is not None:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            HOST, port, timeout=TIMEOUT, context=ssl_context
        )
    else:
        conn = http.client.HTTPConnection(HOST, port, timeout=TIMEOUT)
    query = raw_query if raw_query is not None else urlencode(params or {}, safe=",")
    target = f"{path}?{query}" if query else path
    all_headers = {"Content-Type": "application/json"} if body else {}
    all_headers.update(headers or {})
    try:
        conn.request(method, target, body=body or None, headers=all_headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


async def signed_http(
    port: int,
    method: str,
    path: str,
    body: bytes = b"",
    app: App = MAIN,
    **sign_kwargs: Any,
) -> tuple[int, bytes]:
    params = signed_params(app, method, path, body, **sign_kwargs)
    return await asyncio.to_thread(http_request, port, method, path, params=params, body=body)


# ---- raw WebSocket (for frames the websockets client refuses to send) ---------------------


class RawWebSocket:
    """A hand-made RFC 6455 client on a plain asyncio stream."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, target: str = f"/app/{MAIN.key}?protocol=7") -> RawWebSocket:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {target} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 101"), head
        accept = base64.b64encode(
            hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        )
        headers = dict(
            (name.strip().lower(), value.strip())
            for name, _, value in (line.partition(b":") for line in head.split(b"\r\n")[1:])
            if name
        )
        assert headers.get(b"sec-websocket-accept") == accept, head
        return cls(reader, writer)

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self.writer.write(self.frame_bytes(opcode, payload, fin))

    @staticmethod
    def frame_bytes(opcode: int, payload: bytes, fin: bool = True) -> bytes:
        """A masked client frame (RFC 6455 5.2), to send whole, split or concatenated."""
        mask = os.urandom(4)
        first = (0x80 if fin else 0) | opcode
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", first, 0x80 | length)
        elif length < 65536:
            header = struct.pack("!BBH", first, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", first, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return header + mask + masked

    async def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame; server frames are unmasked."""
        first, second = await asyncio.wait_for(self.reader.readexactly(2), TIMEOUT)
        assert not second & 0x80, "server frames must not be masked"
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
        payload = await asyncio.wait_for(self.reader.readexactly(length), TIMEOUT)
        return first & 0x0F, payload

    async def read_until_close(self) -> tuple[int | None, list[bytes]]:
        """Frames until a close frame; its code (None if the socket just ended)."""
        seen: list[bytes] = []
        while True:
            try:
                opcode, payload = await self.read_frame()
            except asyncio.IncompleteReadError:
                return None, seen
            if opcode == 0x8:
                return (struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005), seen
            seen.append(payload)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(self.writer.wait_closed(), TIMEOUT)


# ---- issue 3: apps with the per-app options of users, counts, caches and limits ------------
# (Each has its own id and key; all are in ALL_APPS, so the `server` fixture serves them.)

COUNTED = _app("789012", "counted", enable_subscription_count=True)
AUTH_REQUIRED = _app(
    "890123", "authreq", enable_user_authentication=True, user_authentication_timeout=1
)
SHORT_CACHE = _app("901234", "shortcache", cache_ttl_seconds=1)
SLOW_EVENTS = _app(
    "112233", "slowevents", enable_client_messages=True, max_client_events_per_second=2
)
THROTTLED = _app("223344", "throttled", max_api_requests_per_second=3)
FEW_CHANNELS = _app("334455", "fewchannels", max_channels_per_connection=2)
SMALL_WATCH = _app("445566", "smallwatch", max_watchlist_size=2)
TIGHT = _app(
    "556677",
    "tight",
    enable_client_messages=True,
    max_message_size_kb=1,
    max_event_name_length=20,
    max_channels_per_trigger=2,
    max_batch_size=2,
    max_user_id_length=5,
    max_presence_user_info_kb=1,
)
ALL_APPS = (
    *ALL_APPS,
    COUNTED,
    AUTH_REQUIRED,
    SHORT_CACHE,
    SLOW_EVENTS,
    THROTTLED,
    FEW_CHANNELS,
    SMALL_WATCH,
    TIGHT,
)


def user_auth(app: App, socket_id: str, user_data: str) -> str:
    """`auth` of a `pusher:signin` over an exact `user_data` string (reference 3.2), for the
    payloads the SDK's `authenticate_user` refuses to sign."""
    to_sign = f"{socket_id}::user::{user_data}".encode()
    return f"{app.key}:{hmac.new(app.secret.encode(), to_sign, hashlib.sha256).hexdigest()}"


def watchlist_of(msg: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """The (name, user_ids) entries of a `pusher_internal:watchlist_events` frame."""
    assert msg.get("event") == "pusher_internal:watchlist_events", msg
    assert "channel" not in msg, msg
    assert isinstance(msg["data"], str), msg  # double-encoded like every pusher_internal event
    return [(entry["name"], entry["user_ids"]) for entry in data_of(msg)["events"]]


# ---- a real webhook receiver (reference 6) ----------------------------------------------


class WebhookReceiver:
    """An `aiohttp.web` app on 127.0.0.1, port 0, that records every POST.

    `plan(n)` gives the status for the n-th request (0-based; default 200). Every request is
    checked with the pusher SDK's `validate_webhook` for the app given at construction; tests wait
    with `until(predicate)`, which wakes on every request (no polling, no sleeping).
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.plan: Any = lambda n: 200
        self.requests: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> WebhookReceiver:
        web_app = web.Application()
        web_app.router.add_post("/{path:.*}", self._handle)
        self._runner = web.AppRunner(web_app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind((HOST, 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str = "hook") -> str:
        return f"http://{HOST}:{self.port}/{path}"

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        status = self.plan(len(self.requests))
        validator = pusher.Pusher(self.app.id, self.app.key, self.app.secret)
        self.requests.append(
            {
                "path": request.match_info["path"],
                "at": asyncio.get_running_loop().time(),
                "status": status,
                "headers": dict(request.headers),
                "raw": raw,
                # None when the SDK refuses the signature, key or time_ms.
                "valid": validator.validate_webhook(
                    request.headers.get("X-Pusher-Key", ""),
                    request.headers.get("X-Pusher-Signature", ""),
                    raw.decode(),
                ),
            }
        )
        self._changed.set()
        return web.Response(status=status, text="ok")

    async def until(self, predicate: Any, within: float = TIMEOUT) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def accepted(self, path: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.requests
            if 200 <= r["status"] < 300 and (path is None or r["path"] == path)
        ]

    def events(self, path: str | None = None) -> list[dict[str, Any]]:
        """Every event of every accepted request, in arrival order; each request must pass the
        SDK's `validate_webhook` and carry the headers of reference 6."""
        out: list[dict[str, Any]] = []
        for r in self.accepted(path):
            assert r["valid"] is not None, f"validate_webhook refused {r['raw']!r}"
            assert r["headers"].get("Content-Type") == "application/json", r["headers"]
            assert r["headers"].get("X-Pusher-Key") == self.app.key, r["headers"]
            assert r["valid"] == json.loads(r["raw"])
            out.extend(r["valid"]["events"])
        return out

    def names(self, path: str | None = None) -> list[str]:
        """The accepted events as `name:channel[:user_id]`, in arrival order."""
        return [
            f"{e['name']}:{e['channel']}" + (f":{e['user_id']}" if "user_id" in e else "")
            for e in self.events(path)
        ]


# ---- a `clarion serve` subprocess ---------------------------------------------------------


def clarion_command() -> list[str]:
    script = shutil.which("clarion", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "clarion"]


async def spawn_clarion(
    preexec_fn: Callable[[], None] | None = None,
) -> tuple[asyncio.subprocess.Process, int]:
    """`clarion serve` on 127.0.0.1, port 0, serving MAIN from the environment; returns the
    process and the port it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLARION_", "PUSHER_"))}
    env.update(PUSHER_APP_ID=MAIN.id, PUSHER_APP_KEY=MAIN.key, PUSHER_APP_SECRET=MAIN.secret)
    proc = await asyncio.create_subprocess_exec(
        *clarion_command(),
        "serve",
        "--host",
        HOST,
        "--port",
        "0",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=preexec_fn,
    )
    seen: list[str] = []
    try:
        async with asyncio.timeout(3 * TIMEOUT):
            while True:
                assert proc.stdout is not None
                line = (await proc.stdout.readline()).decode()
                assert line, f"clarion exited before listening: {seen}"
                seen.append(line)
                match = re.search(r"clarion: listening on ws://127\.0\.0\.1:(\d+)", line)
                if match:
                    return proc, int(match.group(1))
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
