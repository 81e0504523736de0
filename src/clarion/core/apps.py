"""An app (tenant): credentials, feature flags and limits (reference 5.4 for the defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field

from clarion.types import AppId, AppKey


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
    # Empty means every origin is allowed; entries are exact origins or `*`.
    allowed_origins: tuple[str, ...] = field(default_factory=tuple)

    @property
    def max_message_bytes(self) -> int:
        return self.max_message_size_kb * 1024

    def origin_allowed(self, origin: str | None) -> bool:
        """Reference 7: an allow-list refuses other origins with 4009; no Origin header is a
        non-browser client, which an allow-list cannot vouch for either."""
        if not self.allowed_origins or "*" in self.allowed_origins:
            return True
        return origin is not None and origin.rstrip("/") in self.allowed_origins
