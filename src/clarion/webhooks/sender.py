"""One HTTP attempt to deliver a batch of webhook events (reference 6)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import aiohttp

from clarion.core.apps import App
from clarion.protocol.webhooks import WebhookEvent, body, headers

_DRAIN_CHUNK = 64 * 1024


async def post_batch(
    session: aiohttp.ClientSession,
    url: str,
    app: App,
    events: Sequence[WebhookEvent],
    wall_clock: Callable[[], float],
) -> str | None:
    """POST `events` as one signed body; None on any 2xx, else why it failed.

    The body is stamped and signed for this attempt: receivers such as pusher-http-python's
    `validate_webhook` reject a `time_ms` more than 300 s off their clock, and a retry can come
    minutes after the first try. The session's timeout bounds the whole exchange.
    """
    raw = body(int(wall_clock() * 1000), events)
    try:
        async with session.post(
            url, data=raw, headers=headers(app.key, app.secret, raw), allow_redirects=False
        ) as response:
            # Read the answer to its end so the connection can be reused; discard it.
            async for _ in response.content.iter_chunked(_DRAIN_CHUNK):
                pass
            if 200 <= response.status < 300:
                return None
            return f"HTTP {response.status} {response.reason or ''}".rstrip()
    except TimeoutError:
        return "no response within the timeout"
    except (aiohttp.ClientError, OSError, ValueError) as exc:
        # ValueError: aiohttp's InvalidURL and friends for a malformed endpoint URL.
        return f"{type(exc).__name__}: {exc}"
