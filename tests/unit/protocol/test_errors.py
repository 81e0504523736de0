"""Error types carry their wire codes (reference 1.6, 5.1)."""

from __future__ import annotations

from clarion.protocol import errors


def test_pusher_error_keeps_code_message_and_does_not_close_by_default() -> None:
    error = errors.PusherError(4200, "Invalid message format")
    assert (error.code, error.message, error.close) == (4200, "Invalid message format", False)
    assert str(error) == "Invalid message format"


def test_connection_refused_closes() -> None:
    error = errors.ConnectionRefused(errors.UNKNOWN_APP, "App key x does not exist")
    assert isinstance(error, errors.PusherError)
    assert (error.code, error.close) == (4001, True)


def test_subscription_error_is_code_less_and_keeps_the_socket() -> None:
    error = errors.SubscriptionError("private-x", "AuthError", "bad", 401)
    assert isinstance(error, errors.PusherError)
    assert error.code is None
    assert error.close is False
    assert (error.channel, error.error_type, error.status) == ("private-x", "AuthError", 401)


def test_api_error() -> None:
    error = errors.ApiError(413, "too big")
    assert (error.status, error.message, str(error)) == (413, "too big", "too big")
    assert not isinstance(error, errors.PusherError)


def test_wire_codes_match_the_reference_table() -> None:
    assert errors.UNKNOWN_APP == 4001
    assert errors.APP_DISABLED == 4003
    assert errors.OVER_QUOTA == 4004
    assert errors.PATH_NOT_FOUND == 4005
    assert errors.INVALID_VERSION == 4006
    assert errors.UNSUPPORTED_PROTOCOL == 4007
    assert errors.NO_PROTOCOL == 4008
    assert errors.UNAUTHORIZED == 4009
    assert errors.OVER_CAPACITY == 4100
    assert errors.GOING_AWAY == 4200
    assert errors.PONG_NOT_RECEIVED == 4201
    assert errors.CLIENT_EVENT_REJECTED == 4301
    assert errors.WATCHLIST_LIMIT == 4302


def test_fatal_codes_are_never_in_the_4300_range() -> None:
    """pusher-js refuses to reconnect on any close >= 4300 (reference 1.6)."""
    assert 4100 <= errors.SLOW_CONSUMER < 4200
    assert errors.INVALID_MESSAGE < 4300
