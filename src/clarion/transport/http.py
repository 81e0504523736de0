"""Minimal HTTP/1.1 request and response values for the API routes (parsing is httptools')."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl


@dataclass(slots=True)
class Request:
    method: str
    path: str  # as received, still percent-encoded: signatures are over this (reference 5.2)
    query_string: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def query(self) -> dict[str, str]:
        """Percent-decoded parameters; the last of a repeated name wins."""
        return dict(parse_qsl(self.query_string, keep_blank_values=True))


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self, keep_alive: bool) -> bytes:
        reason = HTTPStatus(self.status).phrase
        lines = [
            f"HTTP/1.1 {self.status} {reason}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            "Connection: keep-alive" if keep_alive else "Connection: close",
            "Access-Control-Allow-Origin: *",
        ]
        lines.extend(f"{name}: {value}" for name, value in self.headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(payload, separators=(",", ":")).encode())


def error_response(status: int, message: str) -> Response:
    """Errors carry a real status and a JSON body with the text the SDKs surface."""
    return Response(status, json.dumps({"error": message}).encode())
