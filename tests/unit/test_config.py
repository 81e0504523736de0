"""Settings: defaults < TOML file < environment < flags; every error names key and source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clarion.config import ConfigError, ServerSettings, Settings, load, replace_server
from clarion.core.apps import Webhook

PUSHER_ENV = {"PUSHER_APP_ID": "42", "PUSHER_APP_KEY": "env-key", "PUSHER_APP_SECRET": "env-secret"}


@pytest.fixture
def toml(tmp_path: Path):  # type: ignore[no-untyped-def]
    def write(text: str, name: str = "clarion.toml") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


APP_TOML = """
[[apps]]
id = "1"
key = "file-key"
secret = "file-secret"
"""


def test_defaults_and_a_development_app() -> None:
    settings = load(None, {}, {})
    assert settings.server == ServerSettings()
    assert settings.server.port == 6001
    assert settings.server.host == "0.0.0.0"
    assert settings.server.activity_timeout == 30
    assert settings.server.pong_timeout == 30.0
    assert settings.dev_app is True
    (app,) = settings.apps
    assert app.id.isdigit()
    assert app.key
    assert app.secret
    assert app.enable_client_messages is True


def test_development_apps_are_not_shared_between_loads() -> None:
    assert load(None, {}, {}).apps[0].secret != load(None, {}, {}).apps[0].secret


def test_file_values(toml) -> None:  # type: ignore[no-untyped-def]
    path = toml(
        """
[server]
host = "127.0.0.1"
port = 7000
activity_timeout = 120
pong_timeout = 10
log_level = "debug"

[[apps]]
id = 123
key = "file-key"
secret = "file-secret"
name = "Shop"
enable_client_messages = true
max_connections = 50
allowed_origins = ["https://shop.example"]

[[apps]]
id = "2"
key = "second"
secret = "s2"
"""
    )
    settings = load(path, {}, {})
    server = settings.server
    assert (server.host, server.port, server.activity_timeout) == ("127.0.0.1", 7000, 120)
    assert server.pong_timeout == 10.0
    assert isinstance(server.pong_timeout, float)
    assert server.log_level == "debug"
    assert settings.dev_app is False
    first, second = settings.apps
    assert first.id == "123"
    assert (first.key, first.secret, first.name) == ("file-key", "file-secret", "Shop")
    assert first.enable_client_messages is True
    assert first.max_connections == 50
    assert first.allowed_origins == ("https://shop.example",)
    assert second.name == "2"  # the name defaults to the id


def test_config_path_from_the_environment(toml) -> None:  # type: ignore[no-untyped-def]
    path = toml("[server]\nport = 7001\n" + APP_TOML)
    settings = load(None, {"CLARION_CONFIG": path}, {})
    assert settings.server.port == 7001
    assert settings.apps[0].key == "file-key"


def test_environment_overrides_the_file(toml) -> None:  # type: ignore[no-untyped-def]
    path = toml('[server]\nport = 7000\nhost = "127.0.0.1"\n' + APP_TOML)
    settings = load(path, {"CLARION_PORT": "7100", "CLARION_PONG_TIMEOUT": "2.5"}, {})
    assert settings.server.port == 7100
    assert settings.server.pong_timeout == 2.5
    assert settings.server.host == "127.0.0.1"


def test_flags_override_the_environment(toml) -> None:  # type: ignore[no-untyped-def]
    path = toml('[server]\nport = 7000\nlog_level = "warning"\n' + APP_TOML)
    env = {"CLARION_PORT": "7100", "CLARION_HOST": "10.0.0.1"}
    settings = load(path, env, {"port": 7200, "host": None, "log_level": None})
    assert settings.server.port == 7200
    assert settings.server.host == "10.0.0.1"  # a None flag was not given
    assert settings.server.log_level == "warning"


def test_pusher_app_from_the_environment() -> None:
    settings = load(None, PUSHER_ENV, {})
    assert settings.dev_app is False
    (app,) = settings.apps
    assert (app.id, app.key, app.secret) == ("42", "env-key", "env-secret")
    assert app.enable_client_messages is False


def test_clarion_app_variables_set_the_other_fields() -> None:
    env = {
        **PUSHER_ENV,
        "CLARION_APP_ENABLE_CLIENT_MESSAGES": "true",
        "CLARION_APP_MAX_CONNECTIONS": "5",
        "CLARION_APP_ALLOWED_ORIGINS": "https://a.example, https://b.example",
        "CLARION_APP_NAME": "Laravel",
    }
    (app,) = load(None, env, {}).apps
    assert app.enable_client_messages is True
    assert app.max_connections == 5
    assert app.allowed_origins == ("https://a.example", "https://b.example")
    assert app.name == "Laravel"


def test_clarion_app_variables_cannot_replace_the_credentials() -> None:
    (app,) = load(None, {**PUSHER_ENV, "CLARION_APP_SECRET": "other"}, {}).apps
    assert app.secret == "env-secret"


def test_clarion_app_variables_without_a_pusher_app_do_nothing() -> None:
    settings = load(None, {"CLARION_APP_ENABLE_CLIENT_MESSAGES": "false"}, {})
    assert settings.dev_app is True


@pytest.mark.parametrize("missing", ["PUSHER_APP_ID", "PUSHER_APP_KEY", "PUSHER_APP_SECRET"])
def test_incomplete_pusher_app_names_the_missing_variable(missing: str) -> None:
    env = {k: v for k, v in PUSHER_ENV.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        load(None, env, {})


def test_environment_app_joins_the_file_apps(toml) -> None:  # type: ignore[no-untyped-def]
    settings = load(toml(APP_TOML), PUSHER_ENV, {})
    assert sorted(app.key for app in settings.apps) == ["env-key", "file-key"]


def test_environment_app_replaces_a_file_app_with_the_same_id(toml) -> None:  # type: ignore[no-untyped-def]
    env = {**PUSHER_ENV, "PUSHER_APP_ID": "1"}
    (app,) = load(toml(APP_TOML), env, {}).apps
    assert (app.id, app.key) == ("1", "env-key")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[server]\nprot = 1\n", "prot"),
        ("[server]\nactivity_timout = 10\n", "activity_timout"),
        (APP_TOML + "enable_client_events = true\n", "enable_client_events"),
    ],
)
def test_unknown_key_error_names_the_key_and_the_file(toml, text: str, key: str) -> None:  # type: ignore[no-untyped-def]
    path = toml(text)
    with pytest.raises(ConfigError) as caught:
        load(path, {}, {})
    message = str(caught.value)
    assert key in message
    assert path in message


def test_unknown_section_names_the_file(toml) -> None:  # type: ignore[no-untyped-def]
    path = toml("[servers]\nport = 1\n")
    with pytest.raises(ConfigError) as caught:
        load(path, {}, {})
    assert "servers" in str(caught.value)
    assert path in str(caught.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[server]\nport = "abc"\n', "server.port"),
        ("[server]\nport = true\n", "server.port"),
        ("[server]\nport = 1.5\n", "server.port"),
        ("[server]\nhost = 1.5\n", "server.host"),
        ('[server]\npong_timeout = "soon"\n', "server.pong_timeout"),
        (APP_TOML + 'enabled = "maybe"\n', "apps[0].enabled"),
        (APP_TOML + "allowed_origins = [1, 2]\n", "apps[0].allowed_origins"),
        (APP_TOML + 'max_connections = "many"\n', "apps[0].max_connections"),
    ],
)
def test_bad_type_error_names_the_key_and_the_file(toml, text: str, key: str) -> None:  # type: ignore[no-untyped-def]
    path = toml(text)
    with pytest.raises(ConfigError) as caught:
        load(path, {}, {})
    assert key in str(caught.value)
    assert path in str(caught.value)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"CLARION_PORT": "abc"}, "CLARION_PORT"),
        ({"CLARION_ACTIVITY_TIMEOUT": "1.5"}, "CLARION_ACTIVITY_TIMEOUT"),
        ({**PUSHER_ENV, "CLARION_APP_ENABLED": "perhaps"}, "CLARION_APP_ENABLED"),
        ({**PUSHER_ENV, "CLARION_APP_MAX_BATCH_SIZE": "ten"}, "CLARION_APP_MAX_BATCH_SIZE"),
    ],
)
def test_bad_environment_value_names_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load(None, env, {})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("YES", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("No", False),
        ("off", False),
    ],
)
def test_boolean_spellings(value: str, expected: bool) -> None:
    env = {**PUSHER_ENV, "CLARION_APP_ENABLE_CLIENT_MESSAGES": value}
    assert load(None, env, {}).apps[0].enable_client_messages is expected


def test_duplicate_app_ids_are_rejected(toml) -> None:  # type: ignore[no-untyped-def]
    path = toml(APP_TOML + APP_TOML.replace("file-key", "other-key"))
    with pytest.raises(ConfigError, match="id"):
        load(path, {}, {})


def test_duplicate_app_keys_are_rejected(toml) -> None:  # type: ignore[no-untyped-def]
    path = toml(APP_TOML + APP_TOML.replace('id = "1"', 'id = "2"'))
    with pytest.raises(ConfigError, match="key"):
        load(path, {}, {})


@pytest.mark.parametrize("field", ["id", "key", "secret"])
def test_file_app_missing_credentials(toml, field: str) -> None:  # type: ignore[no-untyped-def]
    lines = [line for line in APP_TOML.splitlines() if not line.startswith(field)]
    path = toml("\n".join(lines))
    with pytest.raises(ConfigError) as caught:
        load(path, {}, {})
    assert field in str(caught.value)
    assert path in str(caught.value)


@pytest.mark.parametrize(
    "line",
    [
        "max_message_size_kb = 0",
        "max_batch_size = -1",
        "max_channels_per_trigger = 0",
        "max_connections = -1",
    ],
)
def test_app_limits_are_validated(toml, line: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=line.split()[0]):
        load(toml(APP_TOML + line + "\n"), {}, {})


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        ({"port": 70000}, "port"),
        ({"port": -1}, "port"),
        ({"ssl_cert": "cert.pem"}, "ssl_key"),
        ({"ssl_key": "key.pem"}, "ssl_cert"),
        ({"log_level": "chatty"}, "log_level"),
    ],
)
def test_server_values_are_validated(flags: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load(None, PUSHER_ENV, flags)


def test_activity_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="activity_timeout"):
        load(None, {**PUSHER_ENV, "CLARION_ACTIVITY_TIMEOUT": "0"}, {})


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not found") as caught:
        load(path, {}, {})
    assert path in str(caught.value)


def test_invalid_toml(toml) -> None:  # type: ignore[no-untyped-def]
    path = toml("[server\nport = ")
    with pytest.raises(ConfigError, match="TOML") as caught:
        load(path, {}, {})
    assert path in str(caught.value)


def test_settings_are_frozen_and_replace_server_copies() -> None:
    settings = load(None, PUSHER_ENV, {})
    changed = replace_server(settings, port=0)
    assert changed.server.port == 0
    assert settings.server.port == 6001
    assert changed.apps == settings.apps
    assert isinstance(changed, Settings)
    with pytest.raises(AttributeError):
        settings.server.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value", "wanted"),
    [("CLARION_PORT", "abc", "integer"), ("CLARION_PONG_TIMEOUT", "soon", "number")],
)
def test_unparsable_number_says_what_was_expected(name: str, value: str, wanted: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(None, {name: value}, {})
    assert str(caught.value) == f"{name}: expected an {wanted}, got {value!r}".replace(
        "an number", "a number"
    )


# ---- issue 3: per-app limits and features, webhooks, webhook delivery settings -----------


def test_new_app_defaults() -> None:
    (app,) = load(None, PUSHER_ENV, {}).apps
    assert app.max_client_events_per_second == 10
    assert app.max_api_requests_per_second == 0
    assert app.max_channels_per_connection == 0
    assert app.max_watchlist_size == 100
    assert app.enable_user_authentication is False
    assert app.user_authentication_timeout == 30
    assert app.enable_subscription_count is False
    assert app.cache_ttl_seconds == 1800
    assert app.webhooks == ()


def test_new_app_settings_from_the_file(toml) -> None:  # type: ignore[no-untyped-def]
    path = toml(
        APP_TOML
        + """max_client_events_per_second = 20
max_api_requests_per_second = 50
max_channels_per_connection = 7
max_watchlist_size = 5
enable_user_authentication = true
user_authentication_timeout = 12
enable_subscription_count = true
cache_ttl_seconds = 60
"""
    )
    (app,) = load(path, {}, {}).apps
    assert app.max_client_events_per_second == 20
    assert app.max_api_requests_per_second == 50
    assert app.max_channels_per_connection == 7
    assert app.max_watchlist_size == 5
    assert app.enable_user_authentication is True
    assert app.user_authentication_timeout == 12
    assert app.enable_subscription_count is True
    assert app.cache_ttl_seconds == 60


def test_new_app_settings_from_the_environment() -> None:
    env = {
        **PUSHER_ENV,
        "CLARION_APP_ENABLE_USER_AUTHENTICATION": "true",
        "CLARION_APP_USER_AUTHENTICATION_TIMEOUT": "5",
        "CLARION_APP_ENABLE_SUBSCRIPTION_COUNT": "yes",
        "CLARION_APP_MAX_CHANNELS_PER_CONNECTION": "3",
        "CLARION_APP_CACHE_TTL_SECONDS": "90",
    }
    (app,) = load(None, env, {}).apps
    assert app.enable_user_authentication is True
    assert app.user_authentication_timeout == 5
    assert app.enable_subscription_count is True
    assert app.max_channels_per_connection == 3
    assert app.cache_ttl_seconds == 90


@pytest.mark.parametrize(
    "line",
    [
        "max_client_events_per_second = 0",
        "max_watchlist_size = 0",
        "user_authentication_timeout = 0",
        "cache_ttl_seconds = -5",
        "max_api_requests_per_second = -1",
        "max_channels_per_connection = -1",
    ],
)
def test_new_app_limits_are_validated(toml, line: str) -> None:  # type: ignore[no-untyped-def]
    path = toml(APP_TOML + line + "\n")
    with pytest.raises(ConfigError, match=line.split()[0]) as caught:
        load(path, {}, {})
    assert path in str(caught.value)


@pytest.mark.parametrize(
    "line", ["max_api_requests_per_second = 0", "max_channels_per_connection = 0"]
)
def test_zero_means_unlimited_where_documented(toml, line: str) -> None:  # type: ignore[no-untyped-def]
    (app,) = load(toml(APP_TOML + line + "\n"), {}, {}).apps
    assert getattr(app, line.split()[0]) == 0


WEBHOOKS_TOML = (
    APP_TOML
    + """
[[apps.webhooks]]
url = "http://hooks.example/pusher"
event_types = ["channel_occupied", "channel_vacated"]

[[apps.webhooks]]
url = "https://all.example/"
"""
)


def test_webhooks_from_the_file(toml) -> None:  # type: ignore[no-untyped-def]
    (app,) = load(toml(WEBHOOKS_TOML), {}, {}).apps
    assert app.webhooks == (
        Webhook("http://hooks.example/pusher", frozenset({"channel_occupied", "channel_vacated"})),
        Webhook("https://all.example/", frozenset()),
    )
    first, every = app.webhooks
    assert first.wants("channel_occupied")
    assert not first.wants("member_added")
    assert every.wants("member_added")  # empty event_types: every type
    assert app.wants_webhook("client_event")


def test_webhooks_from_the_environment_as_json() -> None:
    env = {
        **PUSHER_ENV,
        "CLARION_APP_WEBHOOKS": json.dumps(
            [{"url": "http://hooks.example/", "event_types": ["cache_miss"]}]
        ),
    }
    (app,) = load(None, env, {}).apps
    assert app.webhooks == (Webhook("http://hooks.example/", frozenset({"cache_miss"})),)
    assert app.wants_webhook("cache_miss")
    assert not app.wants_webhook("channel_occupied")


def test_no_webhooks_means_no_event_is_wanted() -> None:
    (app,) = load(None, PUSHER_ENV, {}).apps
    assert not app.wants_webhook("channel_occupied")


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        pytest.param('url = "ftp://x.example"', "url", id="not-http"),
        pytest.param('url = "hooks.example"', "url", id="no-scheme"),
        pytest.param('url = "http://"', "url", id="no-host"),
        pytest.param('url = "http://x.example:99999/"', "url", id="bad-port"),
        pytest.param('event_types = ["channel_occupied"]', "url", id="no-url"),
        pytest.param(
            'url = "http://x.example"\nevent_types = ["channel_occupied", "member_joined"]',
            "member_joined",
            id="unknown-type",
        ),
        pytest.param(
            'url = "http://x.example"\nevent_types = "channel_occupied"',
            "event_types",
            id="types-not-a-list",
        ),
        pytest.param('url = "http://x.example"\nsecret = "s"', "secret", id="unknown-key"),
    ],
)
def test_bad_webhook_in_the_file(toml, entry: str, fragment: str) -> None:  # type: ignore[no-untyped-def]
    path = toml(APP_TOML + "\n[[apps.webhooks]]\n" + entry + "\n")
    with pytest.raises(ConfigError) as caught:
        load(path, {}, {})
    message = str(caught.value)
    assert fragment in message
    assert path in message
    assert "webhooks" in message


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("not json", id="not-json"),
        pytest.param('{"url": "http://x.example"}', id="object-not-array"),
        pytest.param('[{"url": "http://x.example", "event_types": ["bogus"]}]', id="unknown-type"),
        pytest.param('[{"url": "x.example"}]', id="bad-url"),
        pytest.param('["http://x.example"]', id="string-entry"),
    ],
)
def test_bad_webhooks_in_the_environment(value: str) -> None:
    with pytest.raises(ConfigError, match="CLARION_APP_WEBHOOKS"):
        load(None, {**PUSHER_ENV, "CLARION_APP_WEBHOOKS": value}, {})


def test_webhook_delivery_defaults() -> None:
    server = load(None, PUSHER_ENV, {}).server
    assert server.webhook_batch_ms == 250
    assert server.webhook_batch_max == 50
    assert server.webhook_holdback_s == 3.0
    assert server.webhook_retry_initial_s == 1.0
    assert server.webhook_retry_max_s == 60.0
    assert server.webhook_retry_period_s == 300.0
    assert server.webhook_timeout_s == 10.0
    assert server.webhook_queue_max == 10000


def test_webhook_delivery_settings_from_file_and_environment(toml) -> None:  # type: ignore[no-untyped-def]
    path = toml("[server]\nwebhook_batch_ms = 100\nwebhook_holdback_s = 1.5\n" + APP_TOML)
    env = {"CLARION_WEBHOOK_TIMEOUT_S": "2.5", "CLARION_WEBHOOK_QUEUE_MAX": "10"}
    server = load(path, env, {}).server
    assert server.webhook_batch_ms == 100
    assert server.webhook_holdback_s == 1.5
    assert server.webhook_timeout_s == 2.5
    assert server.webhook_queue_max == 10


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("webhook_batch_max", "0"),
        ("webhook_queue_max", "0"),
        ("webhook_retry_initial_s", "0"),
        ("webhook_retry_max_s", "-1"),
        ("webhook_timeout_s", "0"),
        ("webhook_batch_ms", "-1"),
        ("webhook_holdback_s", "-0.5"),
        ("webhook_retry_period_s", "-1"),
    ],
)
def test_webhook_delivery_settings_are_validated(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load(None, {**PUSHER_ENV, f"CLARION_{name.upper()}": value}, {})


@pytest.mark.parametrize(
    "name",
    [
        "webhook_batch_ms",
        "webhook_batch_max",
        "webhook_holdback_s",
        "webhook_queue_max",
        "webhook_retry_initial_s",
        "webhook_retry_max_s",
        "webhook_retry_period_s",
        "webhook_timeout_s",
    ],
)
def test_webhook_delivery_settings_must_be_positive(name: str) -> None:
    with pytest.raises(ConfigError, match=f"{name} must be positive"):
        load(None, {**PUSHER_ENV, f"CLARION_{name.upper()}": "0"}, {})
