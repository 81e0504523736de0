"""Envelopes: text and ids only, addressed by target (reference 2.10, 3.3, 3.4)."""

from __future__ import annotations

import dataclasses

import pytest

from clarion.core.envelope import Envelope, Target
from clarion.types import AppId


def test_a_plain_envelope_is_for_the_channel_subscribers() -> None:
    envelope = Envelope(AppId("a"), "c", "ev", "{}")
    assert envelope.target is Target.CHANNEL
    assert envelope.user_id is None
    assert envelope.exclude_socket_id is None


def test_targets_are_distinct() -> None:
    assert len({Target.CHANNEL, Target.WATCHERS, Target.TERMINATE_USER}) == 3


def test_envelopes_are_frozen() -> None:
    envelope = Envelope(AppId("a"), "", "online", "", user_id="42", target=Target.WATCHERS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        envelope.user_id = "7"  # type: ignore[misc]
    assert envelope == Envelope(AppId("a"), "", "online", "", user_id="42", target=Target.WATCHERS)
