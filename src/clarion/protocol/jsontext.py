"""`json.loads` and the channel-event frame, with the stdlib's results at a fraction of its cost.

Every client frame and every API request body is decoded, and every broadcast is encoded, so
the few microseconds the `json` module spends around its C scanner and string encoder count:
`json.loads` runs two whitespace regexes and (for bytes) an encoding sniff around the scan,
and `JSONEncoder.encode` builds a new C encoder on every call. What is done here instead gives
the same value, the same text and the same errors (`tests/unit/protocol/test_jsontext.py`
compares both on tricky input).
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii
from typing import Any

_DECODER = json.JSONDecoder()


def loads(text: str) -> Any:
    """`json.loads(text)`. Compact JSON with nothing around it (what clients send) is scanned
    directly; anything else, errors included, is left to `json.loads`."""
    value, whole = _scan(text)
    return value if whole else json.loads(text)


def loads_bytes(body: bytes) -> Any:
    """`json.loads(body)`: UTF-8 as above; a BOM, UTF-16/32 or bad UTF-8 go to `json.loads`."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return json.loads(body)
    value, whole = _scan(text)
    return value if whole else json.loads(body)


def _scan(text: str) -> tuple[Any, bool]:
    """The scanner `json.loads` uses, from offset 0; whether it consumed the whole text."""
    try:
        value, end = _DECODER.raw_decode(text)
    except ValueError:  # JSONDecodeError: leading whitespace, or not JSON at all
        return None, False
    return value, end == len(text)


def quote(text: str) -> str:
    """A JSON string literal, ASCII only, exactly as `json.dumps(text)` writes it."""
    return encode_basestring_ascii(text)
