"""HTTP API routes (reference 5.3). Handlers resolve the app, check the signature, parse the
body with `protocol.api` and call the node; they hold no protocol rules themselves."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from clarion.core.apps import App
from clarion.core.ratelimit import TokenBucket
from clarion.node import Node
from clarion.protocol import api
from clarion.protocol.auth import verify_api_request
from clarion.protocol.channels import ChannelKind, channel_kind, check_api_channel
from clarion.protocol.errors import ApiError
from clarion.transport.http import (
    Request,
    Response,
    error_response,
    json_response,
    percent_decoded,
)
from clarion.types import AppId

Handler = Callable[[App, Request, dict[str, str]], Awaitable[Response]]


class HttpApi:
    def __init__(self, node: Node, wall_clock: Callable[[], float] = time.time) -> None:
        self._node = node
        self._now = wall_clock
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("POST", re.compile(r"/apps/(?P<app>[^/]+)/events"), self._events),
            ("POST", re.compile(r"/apps/(?P<app>[^/]+)/batch_events"), self._batch_events),
            ("GET", re.compile(r"/apps/(?P<app>[^/]+)/channels"), self._channels),
            (
                "GET",
                re.compile(r"/apps/(?P<app>[^/]+)/channels/(?P<channel>[^/]+)"),
                self._channel,
            ),
            (
                "GET",
                re.compile(r"/apps/(?P<app>[^/]+)/channels/(?P<channel>[^/]+)/users"),
                self._users,
            ),
            (
                "POST",
                re.compile(r"/apps/(?P<app>[^/]+)/users/(?P<user>[^/]+)/terminate_connections"),
                self._terminate,
            ),
            # Reference 5.3: pusher-http-python 3.3 posts here, without `/apps/{id}`; the app
            # is the one whose key signed the request.
            (
                "POST",
                re.compile(r"/users/(?P<user>[^/]+)/terminate_connections"),
                self._terminate,
            ),
        ]
        self._request_budgets: dict[AppId, TokenBucket] = {}

    async def handle(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except ApiError as error:
            return error_response(error.status, error.message)

    async def _dispatch(self, request: Request) -> Response:
        if request.path in ("/", "/health", "/ready"):
            return Response(200, b"OK", "text/plain")
        path_matched = False
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            path_matched = True
            if method != request.method:
                continue
            params = {k: percent_decoded(v) for k, v in match.groupdict().items()}
            app = self._authenticate(self._app_for(params, request), request)
            self._check_rate(app)
            return await handler(app, request, params)
        if path_matched:
            raise ApiError(405, f"Method {request.method} not allowed on {request.path}")
        raise ApiError(404, f"No route for {request.method} {request.path}")

    def _app_for(self, params: dict[str, str], request: Request) -> App:
        if "app" in params:
            app = self._node.apps.by_id(params["app"])
            if app is None:
                raise ApiError(404, f"Unknown app id {params['app']}")
            return app
        key = request.query().get("auth_key")
        app = self._node.apps.by_key(key) if key else None
        if app is None:
            raise ApiError(401, "Unknown auth_key")
        return app

    def _check_rate(self, app: App) -> None:
        """Per-app HTTP API request budget; 429 past it (0 = unlimited)."""
        limit = app.max_api_requests_per_second
        if not limit:
            return
        now = self._node.now()
        budget = self._request_budgets.get(app.id)
        if budget is None or budget.rate != limit:
            budget = self._request_budgets[app.id] = TokenBucket(limit, now)
        if not budget.take(now):
            raise ApiError(429, f"Too many requests: this app may make {limit} per second")

    def _authenticate(self, app: App, request: Request) -> App:
        """Reference 5.2: verify key, timestamp, body MD5 and signature."""
        query = request.query()
        if query.get("auth_key") != app.key:
            raise ApiError(401, "Unknown auth_key")
        try:
            self._verify(app, request, query, request.path)
        except ApiError:
            decoded = unquote(request.path)
            if decoded == request.path:
                raise
            # Reference 5.2 step 2: some SDKs sign the decoded path of `@,;=` channel names.
            self._verify(app, request, query, decoded)
        if not app.enabled:
            raise ApiError(403, "Application is disabled")
        return app

    def _verify(self, app: App, request: Request, query: dict[str, str], path: str) -> None:
        verify_api_request(
            method=request.method,
            path=path,
            params=query,
            body=request.body,
            secret=app.secret,
            now=self._now(),
        )

    async def _events(self, app: App, request: Request, _: dict[str, str]) -> Response:
        trigger = api.parse_trigger(request.body, app)
        await self._node.trigger(
            app, trigger.channels, trigger.event, trigger.data, trigger.socket_id
        )
        if not trigger.info:
            return json_response({})
        info = {c: await self._info(app, c, trigger.info) for c in trigger.channels}
        return json_response({"channels": info})

    async def _batch_events(self, app: App, request: Request, _: dict[str, str]) -> Response:
        triggers = api.parse_batch(request.body, app)
        for t in triggers:
            await self._node.trigger(app, t.channels, t.event, t.data, t.socket_id)
        if not any(t.info for t in triggers):
            return json_response({})
        batch = [await self._info(app, t.channels[0], t.info) for t in triggers]
        return json_response({"batch": batch})

    async def _info(self, app: App, channel: str, attrs: frozenset[str]) -> dict[str, Any]:
        """Attributes that apply to the channel's kind; others are left out (reference 5.3)."""
        info: dict[str, Any] = {}
        if "user_count" in attrs and channel_kind(channel) is ChannelKind.PRESENCE:
            info["user_count"] = await self._node.user_count(app.id, channel)
        if "subscription_count" in attrs:
            info["subscription_count"] = await self._node.subscription_count(app.id, channel)
        return info

    async def _channels(self, app: App, request: Request, _: dict[str, str]) -> Response:
        query = request.query()
        prefix = query.get("filter_by_prefix", "")
        attrs = api.parse_info(query.get("info"), api.CHANNEL_INFO)
        api.check_channels_list(prefix, attrs)
        occupied = await self._node.occupied_channels(app.id, prefix)
        channels: dict[str, dict[str, int]] = {}
        for name in sorted(occupied):
            channels[name] = await self._info(app, name, attrs)
        return json_response({"channels": channels})

    async def _channel(self, app: App, request: Request, params: dict[str, str]) -> Response:
        channel = check_api_channel(params["channel"], app.max_channel_name_length)
        attrs = api.parse_info(request.query().get("info"), api.CHANNEL_INFO)
        api.check_channel_info(channel, attrs)
        count = await self._node.subscription_count(app.id, channel)
        body: dict[str, Any] = {"occupied": count > 0}
        body.update(await self._info(app, channel, attrs))
        if "cache" in attrs:
            cached = await self._node.cached(app.id, channel)
            # Reference 2.8: the cached event's data and the seconds it has left, or null.
            body["cache"] = (
                {"event": cached.event, "data": cached.data, "ttl": cached.ttl_seconds}
                if cached is not None
                else None
            )
        return json_response(body)

    async def _users(self, app: App, _: Request, params: dict[str, str]) -> Response:
        channel = check_api_channel(params["channel"], app.max_channel_name_length)
        api.check_presence_channel(channel)
        ids = await self._node.presence_user_ids(app.id, channel)
        return json_response({"users": [{"id": user_id} for user_id in ids]})

    async def _terminate(self, app: App, _: Request, params: dict[str, str]) -> Response:
        """Reference 3.4: close every socket signed in as the user, on every node."""
        user_id = params["user"]
        if not user_id or len(user_id) > app.max_user_id_length:
            raise ApiError(400, f"Invalid user id: {user_id[:40]!r}")
        self._node.terminate_user(app, user_id)
        return json_response({})
