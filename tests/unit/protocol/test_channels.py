"""Channel kinds by prefix, cache detection and name/event rules (reference 2.1, 2.2, 2.8, 5.4)."""

from __future__ import annotations

import pytest

from clarion.protocol.channels import (
    ChannelKind,
    channel_kind,
    check_api_channel,
    event_name_problem,
    is_cache_channel,
    name_problem,
)
from clarion.protocol.errors import ApiError


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("private-encrypted-my-channel", ChannelKind.ENCRYPTED),
        ("private-encrypted-cache-x", ChannelKind.ENCRYPTED),
        ("private-encrypted", ChannelKind.PRIVATE),  # no trailing dash: just a private channel
        ("private-my-channel", ChannelKind.PRIVATE),
        ("private-cache-x", ChannelKind.PRIVATE),
        ("private-", ChannelKind.PRIVATE),
        ("presence-room", ChannelKind.PRESENCE),
        ("presence-cache-room", ChannelKind.PRESENCE),
        ("#server-to-user-42", ChannelKind.SERVER_TO_USER),
        ("my-channel", ChannelKind.PUBLIC),
        ("cache-x", ChannelKind.PUBLIC),
        ("privatechannel", ChannelKind.PUBLIC),
        ("presence", ChannelKind.PUBLIC),
        ("Private-x", ChannelKind.PUBLIC),
        ("my-private-x", ChannelKind.PUBLIC),
    ],
)
def test_channel_kind_by_prefix(name: str, kind: ChannelKind) -> None:
    assert channel_kind(name) is kind


def test_encrypted_prefix_is_checked_before_private() -> None:
    assert channel_kind("private-encrypted-x") is ChannelKind.ENCRYPTED
    assert channel_kind("private-encrypted-x") is not ChannelKind.PRIVATE


@pytest.mark.parametrize(
    ("kind", "needs_auth", "client_events"),
    [
        (ChannelKind.PUBLIC, False, False),
        (ChannelKind.PRIVATE, True, True),
        (ChannelKind.PRESENCE, True, True),
        (ChannelKind.ENCRYPTED, True, False),
        (ChannelKind.SERVER_TO_USER, False, False),
    ],
)
def test_kind_properties(kind: ChannelKind, needs_auth: bool, client_events: bool) -> None:
    assert kind.needs_auth is needs_auth
    assert kind.allows_client_events is client_events


@pytest.mark.parametrize(
    ("name", "cached"),
    [
        ("cache-x", True),
        ("private-cache-x", True),
        ("presence-cache-x", True),
        ("private-encrypted-cache-x", True),
        ("my-cache-x", False),
        ("cachex", False),
        ("private-x", False),
        ("presence-x-cache-", False),
        ("private-encrypted-x", False),
    ],
)
def test_cache_channel_detection(name: str, cached: bool) -> None:
    assert is_cache_channel(name) is cached


@pytest.mark.parametrize(
    "name",
    [
        "my-channel",
        "-a-zA-Z0-9_=@,.;",
        "private-encrypted-x",
        "presence-room",
        "a",
        "UPPER_lower=1@2,3.4;5",
        "#server-to-user-42",
        "#server-to-user-user@example.com",
        "x" * 200,
    ],
)
def test_valid_channel_names(name: str) -> None:
    assert name_problem(name, 200) is None
    assert check_api_channel(name, 200) == name


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
        pytest.param(42, id="number"),
        pytest.param(["a"], id="list"),
        pytest.param("my channel", id="space"),
        pytest.param("a/b", id="slash"),
        pytest.param("a:b", id="colon"),
        pytest.param("a#b", id="hash-inside"),
        pytest.param("#private", id="hash-prefix"),
        pytest.param("#server-to-user-", id="server-to-user-without-id"),
        pytest.param("#server-to-user-a b", id="server-to-user-bad-id"),
        pytest.param("#server-to-user-#1", id="server-to-user-hash-in-id"),
        pytest.param("caf\u00e9", id="non-ascii"),
        pytest.param("abc\n", id="trailing-newline"),
        pytest.param("a*b", id="star"),
        pytest.param("x" * 201, id="201-chars"),
        pytest.param("private-" + "x" * 193, id="201-chars-with-prefix"),
    ],
)
def test_invalid_channel_names(name: object) -> None:
    problem = name_problem(name, 200)
    assert isinstance(problem, str)
    assert problem
    with pytest.raises(ApiError) as caught:
        check_api_channel(name, 200)
    assert caught.value.status == 400


def test_name_length_limit_is_configurable() -> None:
    assert name_problem("x" * 164, 164) is None
    assert name_problem("x" * 165, 164) is not None
    assert "164" in (name_problem("x" * 165, 164) or "")


@pytest.mark.parametrize(
    "event",
    [
        "my-event",
        "App\\Events\\OrderShipped",
        "client-typing",
        "pusher-without-colon",
        "pusher_internal",
        "order.shipped",
        "Événement ✓",
        "e" * 200,
    ],
)
def test_allowed_event_names(event: str) -> None:
    assert event_name_problem(event, 200) is None


@pytest.mark.parametrize(
    "event",
    [
        pytest.param("pusher:subscribe", id="pusher-prefix"),
        pytest.param("pusher:", id="bare-pusher-prefix"),
        pytest.param("pusher_internal:member_added", id="pusher-internal-prefix"),
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
        pytest.param(7, id="number"),
        pytest.param("e" * 201, id="201-chars"),
    ],
)
def test_refused_event_names(event: object) -> None:
    assert event_name_problem(event, 200)
