"""AppStore contract (ports.AppStore): apps looked up by key and by id, synchronously, and all
of them listed. An app comes back equal, field for field, to the one the store was seeded
with."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager

from clarion.core.apps import App, Webhook
from clarion.ports import AppStore
from clarion.types import AppId, AppKey

StoreFactory = Callable[[Sequence[App]], AbstractAsyncContextManager[AppStore]]

ONE = App(AppId("1"), AppKey("key-one"), "secret-one", name="One")
TWO = App(AppId("2"), AppKey("key-two"), "secret-two", name="Two")
# Every field away from its default, so a store that drops or rewrites one is caught.
FULL = App(
    id=AppId("full"),
    key=AppKey("key-full"),
    secret="s3cr3t ✓",
    name="Full app",
    enabled=False,
    enable_client_messages=True,
    max_connections=500,
    max_message_size_kb=64,
    max_presence_members=7,
    max_presence_user_info_kb=3,
    max_user_id_length=64,
    max_channel_name_length=150,
    max_event_name_length=120,
    max_channels_per_trigger=20,
    max_batch_size=5,
    max_client_events_per_second=3,
    max_api_requests_per_second=50,
    max_channels_per_connection=11,
    max_watchlist_size=9,
    enable_user_authentication=True,
    user_authentication_timeout=12,
    enable_subscription_count=True,
    cache_ttl_seconds=600,
    webhooks=(
        Webhook("https://example.test/all"),
        Webhook("https://example.test/some", frozenset({"channel_occupied", "member_added"})),
    ),
    allowed_origins=("https://app.example.test", "http://localhost:3000"),
)


async def test_by_key_finds_each_app(app_store_factory: StoreFactory) -> None:
    async with app_store_factory([ONE, TWO, FULL]) as store:
        assert store.by_key("key-one") == ONE
        assert store.by_key("key-two") == TWO
        assert store.by_key("key-full") == FULL


async def test_by_id_finds_each_app(app_store_factory: StoreFactory) -> None:
    async with app_store_factory([ONE, TWO, FULL]) as store:
        assert store.by_id("1") == ONE
        assert store.by_id("2") == TWO
        assert store.by_id("full") == FULL


async def test_unknown_keys_and_ids_find_nothing(app_store_factory: StoreFactory) -> None:
    async with app_store_factory([ONE, TWO]) as store:
        assert store.by_key("key-three") is None
        assert store.by_id("3") is None
        assert store.by_key("") is None
        assert store.by_id("") is None
        assert store.by_key("KEY-ONE") is None  # keys are exact


async def test_a_key_is_not_an_id_nor_an_id_a_key(app_store_factory: StoreFactory) -> None:
    async with app_store_factory([ONE, TWO]) as store:
        assert store.by_key("1") is None
        assert store.by_id("key-one") is None


async def test_a_disabled_app_is_still_found(app_store_factory: StoreFactory) -> None:
    """Refusing a disabled app (4003 / 403) is the node's decision, so the store returns it."""
    async with app_store_factory([FULL]) as store:
        found = store.by_key("key-full")
        assert found is not None
        assert found.enabled is False
        assert store.by_id("full") == found


async def test_all_lists_every_app_once(app_store_factory: StoreFactory) -> None:
    async with app_store_factory([ONE, TWO, FULL]) as store:
        listed = list(store.all())
        assert sorted(app.id for app in listed) == ["1", "2", "full"]
        assert {app.id: app for app in listed} == {"1": ONE, "2": TWO, "full": FULL}
        assert sorted(app.id for app in store.all()) == ["1", "2", "full"]  # iterable again


async def test_an_empty_store_has_no_apps(app_store_factory: StoreFactory) -> None:
    async with app_store_factory([]) as store:
        assert list(store.all()) == []
        assert store.by_key("key-one") is None
        assert store.by_id("1") is None
