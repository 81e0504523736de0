"""Settings, loaded and validated once at start-up: defaults < TOML file < environment < flags.

Nothing reads `os.environ` after this module has built a `Settings`. Every error names the bad
key and where it came from (the file path, the environment variable or the flag).

Environment:
* `PUSHER_APP_ID`, `PUSHER_APP_KEY`, `PUSHER_APP_SECRET` - one app, exactly as a Laravel `.env`
  holds them; `CLARION_APP_<FIELD>` sets any other field of that app (e.g.
  `CLARION_APP_ENABLE_CLIENT_MESSAGES=true`).
* `CLARION_<SETTING>` for each server setting (`CLARION_PORT=6001`), `CLARION_CONFIG` for the file.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clarion.core.apps import WEBHOOK_EVENT_TYPES, App, Webhook
from clarion.types import AppId, AppKey


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the key and its source."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "0.0.0.0"
    port: int = 6001
    # TLS on the same port: wss:// and https:// (both files PEM).
    ssl_cert: str | None = None
    ssl_key: str | None = None
    ssl_passphrase: str | None = None
    # Seconds of client silence before we ping (sent to clients in connection_established).
    activity_timeout: int = 30
    # Seconds a client has to answer our ping before it is closed with 4201.
    pong_timeout: float = 30.0
    # Seconds to wait for clients to go after SIGTERM/SIGINT before exiting anyway.
    shutdown_timeout: float = 10.0
    # Largest HTTP API request body; larger ones get 413.
    max_http_body_kb: int = 1024
    # Unsent output a client may accumulate before it is closed with 4101 (slow consumer).
    max_pending_kb: int = 1024
    # Seconds a slow consumer's close frame may wait behind its unread backlog before the
    # socket is reset.
    slow_consumer_grace_s: float = 5.0
    # Open sockets (WebSocket and HTTP) this process serves; past it a new WebSocket is closed
    # with 4100 (pusher-js retries after a back-off) and an HTTP request gets 503. 0 means the
    # open-files limit (RLIMIT_NOFILE) less a reserve, so accept() itself never fails.
    max_sockets: int = 0
    log_level: str = "info"
    # Webhooks (reference 6): events wait up to `webhook_batch_ms` to share one request of at
    # most `webhook_batch_max` events; channel_vacated / member_removed are held back
    # `webhook_holdback_s` and dropped if the channel / member comes back meanwhile.
    webhook_batch_ms: int = 250
    webhook_batch_max: int = 50
    webhook_holdback_s: float = 3.0
    # A failed delivery (non-2xx, timeout, refused) is retried with exponential back-off from
    # `webhook_retry_initial_s` up to `webhook_retry_max_s` between tries, for
    # `webhook_retry_period_s` in all (Pusher: 5 minutes), then dropped and logged.
    webhook_retry_initial_s: float = 1.0
    webhook_retry_max_s: float = 60.0
    webhook_retry_period_s: float = 300.0
    webhook_timeout_s: float = 10.0
    # Events waiting for delivery, all endpoints together; past it new ones are dropped,
    # counted and logged.
    webhook_queue_max: int = 10000
    # Cluster (docs/cluster.md): with a Redis URL, channels, presence, users, cache channels and
    # webhooks are shared through Redis, so several processes and hosts serve one deployment.
    # Empty: embedded, everything in this process's memory.
    redis_url: str = ""
    # Every Redis key this deployment writes starts with `<redis_prefix>:`, so several
    # deployments (or test runs) can share one Redis.
    redis_prefix: str = "clarion"
    # A node's state in Redis lives on a lease it renews every third of this; a node that stops
    # renewing (killed, partitioned) has its subscriptions and members removed by the others
    # within one lease, with member_removed / channel_vacated sent once.
    node_lease_s: float = 10.0
    # Longest wait for one Redis command before the node treats Redis as unreachable and
    # serves from its local state until it reconnects.
    redis_timeout_s: float = 2.0
    # Processes serving the one port (`clarion serve --workers N`); more than 1 needs Redis.
    workers: int = 1


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    apps: tuple[App, ...] = ()
    # True when no app was configured and a development app was generated.
    dev_app: bool = False


_SERVER_HINTS = typing.get_type_hints(ServerSettings)
_APP_HINTS = typing.get_type_hints(App)
_REQUIRED_APP_FIELDS = ("id", "key", "secret")
_POSITIVE_APP_LIMITS = (
    "max_message_size_kb",
    "max_presence_members",
    "max_presence_user_info_kb",
    "max_user_id_length",
    "max_channel_name_length",
    "max_event_name_length",
    "max_channels_per_trigger",
    "max_batch_size",
    "max_client_events_per_second",
    "max_watchlist_size",
    "user_authentication_timeout",
    "cache_ttl_seconds",
)


def load(
    config_path: str | None,
    environ: Mapping[str, str],
    flags: Mapping[str, Any],
) -> Settings:
    """Build validated settings. `flags` holds only the flags the user gave (non-None)."""
    path = config_path or environ.get("CLARION_CONFIG")
    file_data = _read_file(Path(path)) if path else {}
    where = str(path) if path else "<no config file>"
    server_values = _server_from_file(file_data, where)
    server_values.update(_server_from_env(environ))
    server_values.update({k: v for k, v in flags.items() if v is not None})
    server = ServerSettings(**server_values)
    _check_server(server)
    apps = _apps_from_file(file_data, where)
    env_app = _app_from_env(environ)
    if env_app is not None:
        apps = [a for a in apps if a.id != env_app.id and a.key != env_app.key] + [env_app]
    if not apps:
        return Settings(server=server, apps=(development_app(),), dev_app=True)
    _check_unique(apps)
    return Settings(server=server, apps=tuple(apps))


def development_app() -> App:
    """A throwaway app so `clarion serve` works out of the box; printed with its secret."""
    return App(
        id=AppId(str(secrets.randbelow(900000) + 100000)),
        key=AppKey(secrets.token_hex(10)),
        secret=secrets.token_hex(10),
        name="development",
        enable_client_messages=True,
    )


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    unknown = set(data) - {"server", "apps"}
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {sorted(unknown)}; use [server], [[apps]]")
    return data


def _server_from_file(data: dict[str, Any], where: str) -> dict[str, Any]:
    section = data.get("server", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [server] must be a table")
    return {k: _convert(_SERVER_HINTS, k, v, f"{where}: server.{k}") for k, v in section.items()}


def _server_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in _SERVER_HINTS:
        env_name = f"CLARION_{name.upper()}"
        if env_name in environ:
            values[name] = _convert(_SERVER_HINTS, name, environ[env_name], env_name)
    return values


def _apps_from_file(data: dict[str, Any], where: str) -> list[App]:
    entries = data.get("apps", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: apps must be an array of tables ([[apps]])")
    apps = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: apps[{index}] must be a table")
        values = {
            k: _convert(_APP_HINTS, k, v, f"{where}: apps[{index}].{k}") for k, v in entry.items()
        }
        apps.append(_build_app(values, f"{where}: apps[{index}]"))
    return apps


def _app_from_env(environ: Mapping[str, str]) -> App | None:
    names = {"id": "PUSHER_APP_ID", "key": "PUSHER_APP_KEY", "secret": "PUSHER_APP_SECRET"}
    present = {f: environ[n] for f, n in names.items() if environ.get(n)}
    if not present:
        return None
    values: dict[str, Any] = dict(present)
    for name in _APP_HINTS:
        env_name = f"CLARION_APP_{name.upper()}"
        if env_name in environ and name not in _REQUIRED_APP_FIELDS:
            values[name] = _convert(_APP_HINTS, name, environ[env_name], env_name)
    missing = [names[f] for f in _REQUIRED_APP_FIELDS if f not in values]
    if missing:
        raise ConfigError(f"environment: {', '.join(missing)} must be set as well")
    return _build_app(values, "environment")


def _build_app(values: dict[str, Any], where: str) -> App:
    missing = [f for f in _REQUIRED_APP_FIELDS if not values.get(f)]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    values.setdefault("name", str(values["id"]))
    app = App(**values)
    for name in _POSITIVE_APP_LIMITS:
        if getattr(app, name) <= 0:
            raise ConfigError(f"{where}: {name} must be positive")
    for name in ("max_connections", "max_api_requests_per_second", "max_channels_per_connection"):
        if getattr(app, name) < 0:
            raise ConfigError(f"{where}: {name} must be 0 (unlimited) or positive")
    return app


def _convert(hints: dict[str, Any], name: str, value: Any, where: str) -> Any:
    """Coerce a file or environment value to the field's type, or say what is wrong."""
    if name not in hints:
        raise ConfigError(f"{where}: unknown setting {name!r}")
    wanted = hints[name]
    try:
        return _coerce(wanted, value)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from None


def _coerce(wanted: Any, value: Any) -> Any:
    if wanted in (AppId, AppKey):
        wanted = str
    if wanted is bool:
        return _to_bool(value)
    if wanted is int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise TypeError(f"expected an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"expected an integer, got {value!r}") from None
    if wanted is float:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise TypeError(f"expected a number, got {value!r}")
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"expected a number, got {value!r}") from None
    if wanted is str or wanted == (str | None):
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # `id = 123` in TOML is a natural thing to write
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    if wanted == tuple[Webhook, ...]:
        return _webhooks(value)
    if wanted == tuple[str, ...]:
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"expected a list of strings, got {value!r}")
        return tuple(value)
    raise TypeError(f"unsupported setting type {wanted!r}")


def _webhooks(value: Any) -> tuple[Webhook, ...]:
    """`[[apps.webhooks]]` tables in TOML, or the same as a JSON array in the environment."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError("expected a JSON array of {url, event_types} objects") from None
    if not isinstance(value, list):
        raise TypeError("expected a list of {url, event_types} tables")
    return tuple(_webhook(entry, index) for index, entry in enumerate(value))


def _webhook(entry: Any, index: int) -> Webhook:
    if not isinstance(entry, dict):
        raise TypeError(f"webhooks[{index}] must be a table with url and event_types")
    unknown = set(entry) - {"url", "event_types"}
    if unknown:
        raise ValueError(f"webhooks[{index}]: unknown key(s) {sorted(unknown)}")
    url = entry.get("url")
    if not _is_http_url(url):
        raise ValueError(f"webhooks[{index}].url must be an http:// or https:// URL, got {url!r}")
    assert isinstance(url, str)
    types = entry.get("event_types", [])
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise TypeError(f"webhooks[{index}].event_types must be a list of event names")
    bad = sorted(set(types) - WEBHOOK_EVENT_TYPES)
    if bad:
        known = ", ".join(sorted(WEBHOOK_EVENT_TYPES))
        raise ValueError(f"webhooks[{index}]: unknown event type(s) {bad}; known: {known}")
    return Webhook(url, frozenset(types))


def _is_http_url(url: object) -> bool:
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


def _check_server(server: ServerSettings) -> None:
    if not 0 <= server.port <= 65535:
        raise ConfigError(f"port must be between 0 and 65535, got {server.port}")
    if server.max_sockets < 0:
        raise ConfigError("max_sockets must be 0 (from the open-files limit) or positive")
    if server.activity_timeout <= 0:
        raise ConfigError("activity_timeout must be positive (pusher-js refuses 0)")
    if bool(server.ssl_cert) != bool(server.ssl_key):
        raise ConfigError("ssl_cert and ssl_key must be given together")
    _check_webhook_settings(server)
    _check_cluster_settings(server)
    if server.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"log_level must be debug, info, warning or error: {server.log_level}")


def _check_webhook_settings(server: ServerSettings) -> None:
    for name in (
        "webhook_batch_ms",
        "webhook_batch_max",
        "webhook_holdback_s",
        "webhook_queue_max",
        "webhook_retry_initial_s",
        "webhook_retry_max_s",
        "webhook_retry_period_s",
        "webhook_timeout_s",
    ):
        if getattr(server, name) <= 0:
            raise ConfigError(f"{name} must be positive")


def _check_cluster_settings(server: ServerSettings) -> None:
    if server.workers < 1:
        raise ConfigError(f"workers must be 1 or more, got {server.workers}")
    if server.workers > 1 and not server.redis_url:
        raise ConfigError(
            f"workers={server.workers} needs a Redis URL (--redis-url or CLARION_REDIS_URL): "
            "the processes share channels, presence and counts through Redis"
        )
    if server.redis_url and urlsplit(server.redis_url).scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"redis_url must be redis://, rediss:// or unix://, got {server.redis_url!r}"
        )
    if not server.redis_prefix or any(c.isspace() for c in server.redis_prefix):
        raise ConfigError(f"redis_prefix must be non-empty without spaces: {server.redis_prefix!r}")
    for name in ("node_lease_s", "redis_timeout_s"):
        if getattr(server, name) <= 0:
            raise ConfigError(f"{name} must be positive")


def _check_unique(apps: list[App]) -> None:
    for attr in ("id", "key"):
        seen: set[str] = set()
        for app in apps:
            value = getattr(app, attr)
            if value in seen:
                raise ConfigError(f"two apps share the {attr} {value!r}")
            seen.add(value)


def replace_server(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, server=dataclasses.replace(settings.server, **changes))
