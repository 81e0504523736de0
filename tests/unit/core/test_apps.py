"""App: defaults from reference 5.4, derived limits and the origin allow-list."""

from __future__ import annotations

import dataclasses

import pytest

from clarion.core.apps import App
from clarion.core.envelope import Envelope

from ..fakes import make_app


def test_defaults_follow_the_reference_limits() -> None:
    app = make_app()
    assert app.enabled is True
    assert app.enable_client_messages is False
    assert app.max_connections == 0
    assert app.max_message_size_kb == 10
    assert app.max_message_bytes == 10240
    assert app.max_presence_members == 100
    assert app.max_presence_user_info_kb == 1
    assert app.max_channel_name_length == 200
    assert app.max_event_name_length == 200
    assert app.max_channels_per_trigger == 100
    assert app.max_batch_size == 10
    assert app.allowed_origins == ()


def test_app_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_app().secret = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("allowed", "origin", "ok"),
    [
        ((), None, True),
        ((), "https://evil.example", True),
        (("*",), None, True),
        (("https://app.example",), "https://app.example", True),
        (("https://app.example",), "https://app.example/", True),
        (("https://app.example",), "https://evil.example", False),
        (("https://app.example",), "http://app.example", False),
        (("https://app.example",), None, False),
    ],
)
def test_origin_allowed(allowed: tuple[str, ...], origin: str | None, ok: bool) -> None:
    app = App(id="1", key="k", secret="s", allowed_origins=allowed)  # type: ignore[arg-type]
    assert app.origin_allowed(origin) is ok


def test_envelope_defaults() -> None:
    envelope = Envelope(app_id="1", channel="c", event="e", data="{}")  # type: ignore[arg-type]
    assert envelope.exclude_socket_id is None
    assert envelope.user_id is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        envelope.data = "x"  # type: ignore[misc]
