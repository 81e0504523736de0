"""An app (tenant): credentials, feature flags and limits (reference 5.4 for the defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field

from clarion.protocol.webhooks import WEBHOOK_EVENT_TYPES as WEBHOOK_EVENT_TYPES
from clarion.types import AppId, AppKey


@dataclass(frozen=True, slots=True)
class Webhook:
    """One endpoint of an app; an empty `event_types` means every event type."""

    url: str
    event_types: frozenset[str] = frozenset()

    def wants(self, event_name: str) -> bool:
        return not self.event_types or event_name in self.event_types


@dataclass(frozen=True, slots=True)
class App:
    id: AppId
    key: AppKey
    secret: str
    name: str = ""
    enabled: bool = True
    enable_client_messages: bool = False
    # 0 means unlimited.
    max_connections: int = 0
    # Pusher's 10 KB event payload is only the default.
    max_message_size_kb: int = 10
    max_presence_members: int = 100
    max_presence_user_info_kb: int = 1
    max_user_id_length: int = 128
    max_channel_name_length: int = 200
    max_event_name_length: int = 200
    max_channels_per_trigger: int = 100
    max_batch_size: int = 10
    # Reference 4: client events per connection per second; over it -> pusher:error 4301.
    max_client_events_per_second: int = 10
    # HTTP API requests per second for the app (429 past it); 0 means unlimited.
    max_api_requests_per_second: int = 0
    # Channels one connection may be subscribed to at once; 0 means unlimited.
    max_channels_per_connection: int = 0
    # Reference 3.2: ids of a sign-in's watchlist that are honoured; the rest get 4302.
    max_watchlist_size: int = 100
    # Reference 3.2 "authorized connections": a socket must sign in (or subscribe to a private
    # or presence channel) within `user_authentication_timeout` seconds or be closed with 4009.
    enable_user_authentication: bool = False
    user_authentication_timeout: int = 30
    # Reference 2.7: `pusher_internal:subscription_count` to subscribers; off by default.
    enable_subscription_count: bool = False
    # Reference 2.8: how long the last event of a cache channel is kept (Pusher: 30 minutes).
    cache_ttl_seconds: int = 1800
    webhooks: tuple[Webhook, ...] = field(default_factory=tuple)
    # Empty means every origin is allowed; entries are exact origins or `*`.
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)

    @property
    def max_message_bytes(self) -> int:
        return self.max_message_size_kb * 1024

    def wants_webhook(self, event_name: str) -> bool:
        # Asked on every subscribe: most apps have no webhooks, so skip the generator.
        return bool(self.webhooks) and any(hook.wants(event_name) for hook in self.webhooks)

    def origin_allowed(self, origin: str | None) -> bool:
        """Reference 7: an allow-list refuses other origins with 4009; no Origin header is a
        non-browser client, which an allow-list cannot vouch for either."""
        if not self.allowed_origins or "*" in self.allowed_origins:
            return True
        return origin is not None and origin.rstrip("/") in self.allowed_origins
