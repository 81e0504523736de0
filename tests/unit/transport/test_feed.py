"""`feed_http`: httptools' upgrade exception as an offset, its errors left to propagate."""

from __future__ import annotations

import httptools
import pytest

from clarion.transport.feed import NOT_UPGRADED, feed_http


class Recorder:
    def __init__(self) -> None:
        self.complete = 0

    def on_message_complete(self) -> None:
        self.complete += 1


UPGRADE = (
    b"GET /app/key HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def test_a_plain_request_is_parsed_and_not_upgraded() -> None:
    recorder = Recorder()
    parser = httptools.HttpRequestParser(recorder)
    assert feed_http(parser, b"GET /apps/1/channels HTTP/1.1\r\nHost: x\r\n\r\n") == NOT_UPGRADED
    assert recorder.complete == 1


@pytest.mark.parametrize("after", [b"", b"\x81\x85frame", b"x" * 300])
def test_an_upgrade_returns_where_the_next_protocols_bytes_start(after: bytes) -> None:
    parser = httptools.HttpRequestParser(Recorder())
    data = UPGRADE + after
    offset = feed_http(parser, data)
    assert offset == len(UPGRADE)
    assert data[offset:] == after


def test_an_upgrade_split_over_reads_is_found_in_the_read_that_completes_it() -> None:
    parser = httptools.HttpRequestParser(Recorder())
    assert feed_http(parser, UPGRADE[:40]) == NOT_UPGRADED
    assert feed_http(parser, UPGRADE[40:] + b"rest") == len(UPGRADE) - 40


def test_malformed_input_raises_the_parser_error() -> None:
    parser = httptools.HttpRequestParser(Recorder())
    with pytest.raises(httptools.HttpParserError):
        feed_http(parser, b"NOT HTTP AT ALL\r\n\r\n")
