"""Feed bytes to httptools and turn its upgrade exception into a return value.

httptools signals "the rest is another protocol" (a WebSocket upgrade: every connection) by
raising `HttpParserUpgrade`. This module stays plain Python in the compiled build (setup.py):
a mypyc-compiled function that catches an exception builds a code object and a frame for the
traceback entry, about 11,000 instructions per connection here; the interpreter already has
its frame and pays a few hundred.
"""

from __future__ import annotations

import httptools

NOT_UPGRADED = -1


def feed_http(parser: httptools.HttpRequestParser, data: bytes) -> int:
    """Parse `data`; the offset in it where the upgraded protocol's bytes start, or
    NOT_UPGRADED. `httptools.HttpParserError` (malformed input) propagates."""
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade as upgrade:
        offset: int = upgrade.args[0]
        return offset
    return NOT_UPGRADED
