"""Signatures: channel auth, user sign-in, HTTP API requests, webhooks (reference 3, 5.2, 6).

Every comparison is constant-time (`hmac.compare_digest`). Signed strings are always the bytes
as received: presence `channel_data` and request bodies are never re-serialized (reference 9.5).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from clarion.protocol.errors import ApiError

# Reference 5.2 step 3: |now - auth_timestamp| must be below 600 s.
API_TIMESTAMP_WINDOW_S = 600
EMPTY_BODY_MD5 = hashlib.md5(b"").hexdigest()

# An HMAC keyed with each secret, copied for every signature: keying one costs OpenSSL 3 a
# provider lookup and two key-block hashes (~29,000 instructions a signature here; a copy,
# ~21,000). Bounded, as apps come and go from a SQL table: past the bound it starts again.
_KEYED_MAX = 4096
_keyed: dict[str, hmac.HMAC] = {}


def _hmac_sha256(secret: str) -> hmac.HMAC:
    """A fresh HMAC-SHA256 keyed with `secret`, ready for `update`."""
    keyed = _keyed.get(secret)
    if keyed is None:
        if len(_keyed) >= _KEYED_MAX:
            _keyed.clear()
        keyed = _keyed[secret] = hmac.new(secret.encode(), digestmod=hashlib.sha256)
    return keyed.copy()


def sign(secret: str, string_to_sign: str) -> str:
    """Lower-case hex HMAC-SHA256 of `string_to_sign` with the app secret."""
    mac = _hmac_sha256(secret)
    mac.update(string_to_sign.encode())
    return mac.hexdigest()


def channel_string_to_sign(socket_id: str, channel: str, channel_data: str | None) -> str:
    """Reference 3.1: `socket:channel`, plus `:channel_data` for presence channels."""
    if channel_data is None:
        return f"{socket_id}:{channel}"
    return f"{socket_id}:{channel}:{channel_data}"


def user_string_to_sign(socket_id: str, user_data: str) -> str:
    """Reference 3.2: `<socket_id>::user::<user_data>`, user_data exactly as received."""
    return f"{socket_id}::user::{user_data}"


def verify_token(key: str, secret: str, string_to_sign: str, auth: object) -> bool:
    """Check an `<app_key>:<hex signature>` token (channel auth and sign-in share the format)."""
    if not isinstance(auth, str):
        return False
    given_key, sep, given_sig = auth.partition(":")
    if not sep:
        return False
    expected = sign(secret, string_to_sign)
    key_ok = hmac.compare_digest(given_key.encode(), key.encode())
    sig_ok = hmac.compare_digest(given_sig.encode(), expected.encode())
    return key_ok and sig_ok


def verify_channel_auth(
    key: str, secret: str, socket_id: str, channel: str, channel_data: str | None, auth: object
) -> bool:
    to_sign = channel_string_to_sign(socket_id, channel, channel_data)
    return verify_token(key, secret, to_sign, auth)


def canonical_query(params: Iterable[tuple[str, str]]) -> str:
    """Reference 5.2: all params but `auth_signature`, keys lower-cased and sorted, unescaped."""
    pairs = sorted((k.lower(), v) for k, v in params if k != "auth_signature")
    return "&".join(f"{k}={v}" for k, v in pairs)


def api_string_to_sign(method: str, path: str, params: Iterable[tuple[str, str]]) -> str:
    return f"{method.upper()}\n{path}\n{canonical_query(params)}"


def verify_api_request(
    *,
    method: str,
    path: str,
    params: dict[str, str],
    body: bytes,
    secret: str,
    now: float,
) -> None:
    """Verify a signed HTTP API request (reference 5.2); raises `ApiError(401)`.

    `params` is the percent-decoded query; the caller has already resolved `auth_key` to the app
    whose `secret` is passed here.
    """
    if params.get("auth_version", "1.0") != "1.0":
        raise ApiError(401, "Unsupported auth_version: only 1.0 is accepted")
    _check_timestamp(params.get("auth_timestamp"), now)
    _check_body_md5(params.get("body_md5"), body)
    given = params.get("auth_signature")
    if not given:
        raise ApiError(401, "Missing auth_signature")
    to_sign = api_string_to_sign(method, path, params.items())
    expected = sign(secret, to_sign)
    if not hmac.compare_digest(given.encode(), expected.encode()):
        shown = to_sign.replace("\n", "\\n")
        raise ApiError(
            401,
            f'Invalid signature: you should have sent HmacSHA256Hex("{shown}", '
            f'your_secret_key), but you sent "{given}"',
        )


def _check_timestamp(raw: str | None, now: float) -> None:
    if raw is None:
        raise ApiError(401, "Missing auth_timestamp")
    try:
        stamp = int(raw)
    except ValueError:
        raise ApiError(401, f"Invalid auth_timestamp: {raw!r}") from None
    if abs(now - stamp) >= API_TIMESTAMP_WINDOW_S:
        raise ApiError(
            401,
            f"Timestamp expired: Given timestamp ({stamp}) not within "
            f"{API_TIMESTAMP_WINDOW_S}s of server time ({int(now)})",
        )


def _check_body_md5(given: str | None, body: bytes) -> None:
    """Reference 5.2 step 4: required for a non-empty body; optional (but checked) for empty."""
    if not body and given is None:
        return
    if given is None:
        raise ApiError(401, "Missing body_md5 for a request with a body")
    actual = hashlib.md5(body).hexdigest()
    if not hmac.compare_digest(given.lower().encode(), actual.encode()):
        raise ApiError(401, "body_md5 does not match the MD5 of the request body")


def webhook_signature(secret: str, body: bytes) -> str:
    """Reference 6: `X-Pusher-Signature` is hex HMAC-SHA256 of the exact body bytes."""
    mac = _hmac_sha256(secret)
    mac.update(body)
    return mac.hexdigest()
