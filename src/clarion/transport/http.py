"""Minimal HTTP/1.1 request and response values for the API routes (parsing is httptools')."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote


@dataclass(slots=True, init=False)
class Request:
    method: str
    path: str  # as received, still percent-encoded: signatures are over this (reference 5.2)
    query_string: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    _query: dict[str, str] | None = field(default=None, init=False, repr=False, compare=False)

    def __init__(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        # Written out: the `__init__` dataclasses generates stays interpreted in the compiled
        # build (one per HTTP request and per upgrade).
        self.method = method
        self.path = path
        self.query_string = query_string
        self.headers = {} if headers is None else headers
        self.body = body
        self._query = None

    def query(self) -> dict[str, str]:
        """Percent-decoded parameters; the last of a repeated name wins. Parsed once."""
        if self._query is None:
            self._query = _parse_query(self.query_string)
        return self._query


def percent_decoded(text: str) -> str:
    """`urllib.parse.unquote`, skipped (a Python-level call) when there is nothing to decode."""
    return unquote(text) if "%" in text else text


def _parse_query(text: str) -> dict[str, str]:
    # The SDKs send plain `k=v&...` (hex signatures, digits, names); only escaped input needs
    # the general parser, which is several times slower.
    if "%" in text or "+" in text:
        return dict(parse_qsl(text, keep_blank_values=True))
    params: dict[str, str] = {}
    for pair in text.split("&"):
        if pair:
            name, _, value = pair.partition("=")
            params[name] = value
    return params


@dataclass(frozen=True, slots=True, init=False)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        # As Request's; mypyc compiles `object.__setattr__` on its own class to a plain store.
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "content_type", content_type)
        object.__setattr__(self, "headers", headers)

    def encode(self, keep_alive: bool) -> bytes:
        reason = _REASONS.get(self.status) or HTTPStatus(self.status).phrase
        lines = [
            f"HTTP/1.1 {self.status} {reason}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            "Connection: keep-alive" if keep_alive else "Connection: close",
            "Access-Control-Allow-Origin: *",
        ]
        lines.extend(f"{name}: {value}" for name, value in self.headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


_REASONS = {status.value: status.phrase for status in HTTPStatus}
# Reference 5.1: success is 200 with a JSON body, `{}` for most endpoints; built once.
EMPTY_OK = Response(200, b"{}")


def json_response(payload: Any, status: int = 200) -> Response:
    if status == 200 and not payload and isinstance(payload, dict):
        return EMPTY_OK
    return Response(status, json.dumps(payload, separators=(",", ":")).encode())


def error_response(status: int, message: str) -> Response:
    """Errors carry a real status and a JSON body with the text the SDKs surface."""
    return Response(status, json.dumps({"error": message}).encode())
