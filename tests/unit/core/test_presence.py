"""Presence rosters: first join / last leave per user (reference 2.6)."""

from __future__ import annotations

from clarion.core.presence import Roster


def test_first_join_and_last_leave() -> None:
    roster = Roster()
    assert roster.join("42", "1.1", {"name": "Alice"}) is True
    assert roster.has("42")
    assert len(roster) == 1
    assert roster.leave("42", "1.1") is True
    assert not roster.has("42")
    assert len(roster) == 0
    assert roster.members() == {}


def test_user_with_several_sockets_is_counted_once() -> None:
    roster = Roster()
    assert roster.join("42", "1.1", {"name": "Alice"}) is True
    assert roster.join("42", "2.2", {"name": "Alice"}) is False
    assert roster.join("7", "3.3", None) is True
    assert len(roster) == 2
    assert roster.members() == {"42": {"name": "Alice"}, "7": None}
    assert roster.leave("42", "1.1") is False
    assert roster.has("42")
    assert len(roster) == 2
    assert roster.leave("42", "2.2") is True
    assert len(roster) == 1


def test_leave_is_idempotent() -> None:
    roster = Roster()
    roster.join("42", "1.1", None)
    roster.join("42", "2.2", None)
    assert roster.leave("42", "1.1") is False
    assert roster.leave("42", "1.1") is False  # the same socket again does not count
    assert roster.has("42")
    assert roster.leave("42", "2.2") is True
    assert roster.leave("42", "2.2") is False


def test_leave_of_unknown_user_or_socket() -> None:
    roster = Roster()
    assert roster.leave("nobody", "1.1") is False
    roster.join("42", "1.1", None)
    assert roster.leave("42", "9.9") is False
    assert roster.has("42")


def test_joining_twice_from_one_socket() -> None:
    roster = Roster()
    assert roster.join("42", "1.1", None) is True
    assert roster.join("42", "1.1", None) is False
    assert roster.leave("42", "1.1") is True


def test_roster_shows_the_latest_user_info() -> None:
    roster = Roster()
    roster.join("42", "1.1", {"name": "Alice"})
    roster.join("42", "2.2", {"name": "Alice B."})
    assert roster.members() == {"42": {"name": "Alice B."}}


def test_members_is_a_copy_in_join_order() -> None:
    roster = Roster()
    roster.join("b", "1.1", 1)
    roster.join("a", "2.2", 2)
    members = roster.members()
    assert list(members) == ["b", "a"]
    members["c"] = 3
    assert not roster.has("c")
