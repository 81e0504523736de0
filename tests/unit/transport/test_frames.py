"""The hand-built server text frame must be byte-for-byte what wsproto (the parser we keep, and
an independent RFC 6455 implementation) builds, at every length-encoding boundary."""

from __future__ import annotations

import pytest
from wsproto.frame_protocol import FrameProtocol, Opcode

from clarion.transport.server import encode_text_frame

BOUNDARIES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


@pytest.mark.parametrize("size", BOUNDARIES)
def test_frame_matches_wsproto(size: int) -> None:
    text = "x" * size
    expected = bytes(FrameProtocol(client=False, extensions=[]).send_data(text, fin=True))
    assert encode_text_frame(text) == expected


@pytest.mark.parametrize("size", BOUNDARIES)
def test_a_client_parses_it_back(size: int) -> None:
    text = "é" * (size // 2)  # multi-byte: the length is of the UTF-8 bytes, not characters
    client = FrameProtocol(client=True, extensions=[])
    client.receive_bytes(encode_text_frame(text))
    frames = list(client.received_frames())
    assert len(frames) == 1
    assert frames[0].opcode is Opcode.TEXT
    assert frames[0].message_finished
    assert frames[0].payload == text
