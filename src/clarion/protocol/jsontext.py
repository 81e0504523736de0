"""`json.loads` and the channel-event frame, with the stdlib's results at a fraction of its cost.

Every client frame and every API request body is decoded, and every broadcast is encoded, so
the few microseconds the `json` module spends around its C scanner and string encoder count:
`json.loads` runs two whitespace regexes and (for bytes) an encoding sniff around the scan,
and `JSONEncoder.encode` builds a new C encoder on every call (`compact` builds it once). What
is done here instead gives the same value, the same text and the same errors
(`tests/unit/protocol/test_jsontext.py` compares both on tricky input).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

_DECODER = json.JSONDecoder()
# ASCII-only output: valid UTF-8 whatever the input held (a lone surrogate from a `\\ud800`
# escape is re-escaped, not turned into bytes no client can decode), and CPython's fastest path.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _c_encoder() -> Callable[[Any, int], list[str]] | None:
    """The C encoder `JSONEncoder.encode` builds on each call, built once. Without circular
    checks: what is encoded here was decoded from JSON, so it has no cycles. None where the
    C accelerator is missing or takes other arguments (then `JSONEncoder.encode` is used)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return None
    try:
        encoder: Callable[[Any, int], list[str]] = make(
            None, _ENCODER.default, encode_basestring_ascii, None, ":", ",", False, False, True
        )
    except TypeError:
        return None
    return encoder


_C_ENCODER = _c_encoder()


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


def compact(value: Any) -> str:
    """`json.dumps(value, separators=(",", ":"))`: ASCII, no spaces, keys in their order."""
    if _C_ENCODER is None:
        return _ENCODER.encode(value)
    return "".join(_C_ENCODER(value, 0))


def quote(text: str) -> str:
    """A JSON string literal, ASCII only, exactly as `json.dumps(text)` writes it."""
    return encode_basestring_ascii(text)
