"""The pure parts of `clarion serve --workers N` (clarion.supervisor): restart back-off, a
worker's command line and environment, exit descriptions, the ready line; and the refusal of
several workers without Redis. The processes themselves: tests/integration/test_workers.py."""

from __future__ import annotations

import signal
import socket

import pytest
from click.testing import CliRunner

from clarion import supervisor
from clarion.cli import main
from clarion.config import ServerSettings, Settings, development_app, load
from clarion.supervisor import Backoff, describe_exit, worker_argv, worker_environ

# ---- back-off ----------------------------------------------------------------------------


def test_backoff_doubles_from_half_a_second_up_to_30_seconds() -> None:
    policy = Backoff()
    delays = []
    previous = None
    for _ in range(9):
        previous = policy.next_delay(previous, uptime_s=1.0)
        delays.append(previous)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_backoff_starts_over_after_the_worker_stayed_up() -> None:
    policy = Backoff(initial_s=0.5, max_s=30.0, reset_after_s=60.0)
    assert policy.next_delay(30.0, uptime_s=60.0) == 0.5
    assert policy.next_delay(30.0, uptime_s=59.9) == 30.0
    assert policy.next_delay(4.0, uptime_s=10.0) == 8.0


def test_backoff_first_restart_waits_the_initial_delay() -> None:
    assert Backoff(initial_s=2.0).next_delay(None, uptime_s=0.0) == 2.0


# ---- exit descriptions ---------------------------------------------------------------------


def test_describe_exit_names_status_or_signal() -> None:
    assert describe_exit(0) == "exited with status 0"
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(-signal.SIGKILL) == "was killed by signal 9 (SIGKILL)"
    assert describe_exit(-signal.SIGSEGV) == "was killed by signal 11 (SIGSEGV)"
    assert describe_exit(-200) == "was killed by signal 200 (unknown signal)"


# ---- a worker's command line ---------------------------------------------------------------


def test_worker_argv_repeats_the_given_flags_and_adds_one_worker_and_the_fd() -> None:
    flags = {
        "host": "127.0.0.1",
        "port": 0,
        "ssl_cert": None,
        "ssl_key": None,
        "log_level": "debug",
        "workers": 3,
        "redis_url": "redis://127.0.0.1:6379/0",
        "redis_prefix": None,
    }
    argv = worker_argv("/venv/bin/python", "conf/clarion.toml", flags, 7)
    assert argv == [
        "/venv/bin/python",
        "-m",
        "clarion",
        "serve",
        "--config",
        "conf/clarion.toml",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--log-level",
        "debug",
        "--redis-url",
        "redis://127.0.0.1:6379/0",
        "--workers",
        "1",
        "--listen-fd",
        "7",
    ]


def test_worker_argv_without_flags_or_config_file() -> None:
    argv = worker_argv("py", None, {"workers": None, "host": None}, 3)
    assert argv == ["py", "-m", "clarion", "serve", "--workers", "1", "--listen-fd", "3"]


def test_worker_argv_loads_the_same_settings_as_the_parent() -> None:
    """The worker's flags, read by the same `load()`, give the parent's settings but one
    worker (flags outrank CLARION_WORKERS in the environment)."""
    environ = {"CLARION_WORKERS": "4", "CLARION_REDIS_URL": "redis://localhost/0"}
    flags = {"host": "127.0.0.1", "port": 6010, "redis_prefix": "p", "workers": None}
    parent = load(None, environ, flags)
    argv = worker_argv("py", None, flags, 5)
    worker = load(None, environ, _parse_serve_flags(argv[4:]))
    assert parent.server.workers == 4
    assert worker.server.workers == 1
    assert worker.server == _with(parent.server, workers=1)


def _parse_serve_flags(args: list[str]) -> dict[str, object]:
    """What click hands `serve` for these arguments, as the flags `load()` takes."""
    from clarion.cli import serve

    context = serve.make_context("serve", list(args))
    params = dict(context.params)
    params.pop("config_path")
    params.pop("listen_fd")
    return params


def _with(server: ServerSettings, **changes: object) -> ServerSettings:
    import dataclasses

    return dataclasses.replace(server, **changes)  # type: ignore[arg-type]


# ---- a worker's environment ------------------------------------------------------------------


def test_worker_environ_is_the_parents_when_apps_are_configured() -> None:
    settings = load(
        None, {"PUSHER_APP_ID": "1", "PUSHER_APP_KEY": "k", "PUSHER_APP_SECRET": "s"}, {}
    )
    environ = {"PUSHER_APP_ID": "1", "PUSHER_APP_KEY": "k", "PUSHER_APP_SECRET": "s", "X": "y"}
    assert worker_environ(settings, environ) == environ


def test_worker_environ_hands_every_worker_the_one_generated_development_app() -> None:
    app = development_app()
    settings = Settings(apps=(app,), dev_app=True)
    environ = {"PATH": "/bin", "CLARION_APP_MAX_BATCH_SIZE": "0"}
    env = worker_environ(settings, environ)
    assert env["PATH"] == "/bin"
    # The parent ignored CLARION_APP_* (no environment app was defined), so workers must too.
    assert "CLARION_APP_MAX_BATCH_SIZE" not in env
    worker_settings = load(None, env, {})
    assert not worker_settings.dev_app
    assert worker_settings.apps == (app,)


# ---- the ready line and the listening socket ----------------------------------------------


def test_ready_line_names_scheme_host_port_and_workers() -> None:
    server = ServerSettings(host="127.0.0.1", workers=3, redis_url="redis://x")
    assert (
        supervisor.ready_line(server, 6001)
        == "clarion: listening on ws://127.0.0.1:6001 (3 workers)"
    )
    tls = _with(server, ssl_cert="c.pem", ssl_key="k.pem", host="0.0.0.0")
    assert supervisor.ready_line(tls, 443) == "clarion: listening on wss://0.0.0.0:443 (3 workers)"


def test_stop_grace_covers_the_workers_two_shutdown_phases() -> None:
    server = ServerSettings(shutdown_timeout=10)
    assert supervisor.stop_grace_s(server) == 2 * 10 + supervisor.STOP_MARGIN_S


def test_bind_listener_resolves_port_0_and_is_inheritable() -> None:
    with supervisor.bind_listener("127.0.0.1", 0) as sock:
        host, port = sock.getsockname()
        assert host == "127.0.0.1"
        assert port > 0
        assert sock.get_inheritable()
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)


def test_bind_listener_refuses_a_port_in_use() -> None:
    with supervisor.bind_listener("127.0.0.1", 0) as first:
        port = first.getsockname()[1]
        with pytest.raises(OSError, match="in use"):
            supervisor.bind_listener("127.0.0.1", port)


# ---- the refusal -----------------------------------------------------------------------------


def test_serve_refuses_several_workers_without_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CLARION_REDIS_URL", "CLARION_WORKERS", "CLARION_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["serve", "--port", "0", "--workers", "2"])
    assert result.exit_code != 0
    assert "workers=2 needs a Redis URL (--redis-url or CLARION_REDIS_URL)" in result.output


def test_serve_help_lists_the_cluster_flags_but_not_the_internal_one() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in ("--workers", "--redis-url", "--redis-prefix"):
        assert flag in result.output
    assert "--listen-fd" not in result.output
