"""UserStore contract (ports.UserStore): signed-in users per app; `sign_in` is True only for a
user's first socket (it comes online), `sign_out` only for its last (it goes offline); both are
idempotent per socket id; `online` keeps the ids that have a signed-in socket, in the given
order."""

from __future__ import annotations

from collections.abc import Iterator

from clarion.ports import UserStore
from clarion.types import AppId

A, B = AppId("app-a"), AppId("app-b")


async def test_nobody_is_online_in_a_fresh_store(user_store: UserStore) -> None:
    assert await user_store.online(A, ["42", "7"]) == []


async def test_sign_in_is_true_only_for_the_users_first_socket(user_store: UserStore) -> None:
    assert await user_store.sign_in(A, "42", "1.1") is True
    assert await user_store.online(A, ["42"]) == ["42"]
    assert await user_store.sign_in(A, "42", "2.2") is False
    assert await user_store.sign_in(A, "7", "3.3") is True
    assert await user_store.online(A, ["42", "7"]) == ["42", "7"]


async def test_sign_in_is_idempotent_per_socket(user_store: UserStore) -> None:
    assert await user_store.sign_in(A, "42", "1.1") is True
    assert await user_store.sign_in(A, "42", "1.1") is False
    # The socket was recorded once, so signing it out once takes the user offline.
    assert await user_store.sign_out(A, "42", "1.1") is True
    assert await user_store.online(A, ["42"]) == []


async def test_sign_out_is_true_only_for_the_users_last_socket(user_store: UserStore) -> None:
    for socket_id in ("1.1", "2.2", "3.3"):
        await user_store.sign_in(A, "42", socket_id)
    assert await user_store.sign_out(A, "42", "2.2") is False
    assert await user_store.online(A, ["42"]) == ["42"]
    assert await user_store.sign_out(A, "42", "3.3") is False
    assert await user_store.online(A, ["42"]) == ["42"]
    assert await user_store.sign_out(A, "42", "1.1") is True
    assert await user_store.online(A, ["42"]) == []


async def test_sign_out_is_idempotent_per_socket(user_store: UserStore) -> None:
    await user_store.sign_in(A, "42", "1.1")
    await user_store.sign_in(A, "42", "2.2")
    assert await user_store.sign_out(A, "42", "1.1") is False
    # Signing 1.1 out again must not count as 2.2 leaving: the user is still online.
    assert await user_store.sign_out(A, "42", "1.1") is False
    assert await user_store.online(A, ["42"]) == ["42"]
    assert await user_store.sign_out(A, "42", "2.2") is True
    assert await user_store.sign_out(A, "42", "2.2") is False
    assert await user_store.online(A, ["42"]) == []


async def test_sign_out_of_a_socket_that_never_signed_in_changes_nothing(
    user_store: UserStore,
) -> None:
    assert await user_store.sign_out(A, "42", "1.1") is False  # empty store
    await user_store.sign_in(A, "42", "1.1")
    assert await user_store.sign_out(A, "42", "9.9") is False
    assert await user_store.sign_out(A, "nobody", "9.9") is False
    assert await user_store.online(A, ["42", "nobody"]) == ["42"]


async def test_a_user_who_went_offline_is_first_again(user_store: UserStore) -> None:
    await user_store.sign_in(A, "42", "1.1")
    assert await user_store.sign_out(A, "42", "1.1") is True
    assert await user_store.sign_in(A, "42", "2.2") is True
    assert await user_store.sign_in(A, "42", "1.1") is False
    assert await user_store.online(A, ["42"]) == ["42"]


async def test_online_keeps_the_given_order_and_drops_offline_ids(user_store: UserStore) -> None:
    for user_id, socket_id in (("c", "1.1"), ("a", "2.2"), ("b", "3.3"), ("d", "4.4")):
        await user_store.sign_in(A, user_id, socket_id)
    await user_store.sign_out(A, "d", "4.4")
    assert await user_store.online(A, ["b", "x", "c", "d", "a"]) == ["b", "c", "a"]
    assert await user_store.online(A, ["a", "b", "c"]) == ["a", "b", "c"]
    assert await user_store.online(A, ["c", "b", "a"]) == ["c", "b", "a"]
    assert await user_store.online(A, ["x", "y"]) == []
    assert await user_store.online(A, []) == []


async def test_online_accepts_any_iterable(user_store: UserStore) -> None:
    await user_store.sign_in(A, "a", "1.1")
    await user_store.sign_in(A, "b", "2.2")

    def ids() -> Iterator[str]:
        yield from ("b", "x", "a")

    assert await user_store.online(A, ids()) == ["b", "a"]
    assert await user_store.online(A, ("a", "x")) == ["a"]


async def test_users_of_different_apps_are_separate(user_store: UserStore) -> None:
    assert await user_store.sign_in(A, "42", "1.1") is True
    assert await user_store.online(B, ["42"]) == []
    assert await user_store.sign_in(B, "42", "1.1") is True
    assert await user_store.sign_out(B, "42", "1.1") is True
    assert await user_store.online(A, ["42"]) == ["42"]
    assert await user_store.online(B, ["42"]) == []
    assert await user_store.sign_out(B, "42", "1.1") is False
    assert await user_store.sign_out(A, "42", "1.1") is True
