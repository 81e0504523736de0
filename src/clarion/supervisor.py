"""`clarion serve --workers N`: one parent process binds the port and keeps N workers serving it.

The parent binds and listens, then starts N `clarion serve` children that inherit the listening
socket; the kernel hands each new connection to whichever worker accepts it first, so a busy
worker takes fewer. The parent never accepts: it only starts, watches and stops the workers.
Holding the socket in the parent means a restarted worker serves the same port at once and no
other process can take the port while a worker is down. The workers share channels, presence
and counts through Redis (config refuses workers > 1 without a Redis URL).

The parent runs on the standard asyncio loop: it does little work, and `pass_fds` /
`start_new_session` for subprocesses are exactly what the standard loop implements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from clarion.config import ServerSettings, Settings

# Every worker prints this when it serves (bootstrap.serve_forever); the parent swallows it and
# prints one line of its own once every worker has.
READY_PREFIX = "clarion: listening on "
LISTEN_BACKLOG = 4096
# A worker's own shutdown takes up to `shutdown_timeout` for its clients, then up to as long
# again for its webhook queue; past both, and this margin for exiting, it is killed.
STOP_MARGIN_S = 5.0


class StartupFailed(Exception):
    """The port could not be bound, or a worker exited before it ever served (the others
    were stopped); the message says which."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait before restarting a worker that died: doubling from `initial_s` up to
    `max_s`, so a worker that cannot start (Redis down) does not spin, and back to `initial_s`
    once a worker stayed up `reset_after_s` (its next crash is a new problem, not the same)."""

    initial_s: float = 0.5
    max_s: float = 30.0
    reset_after_s: float = 60.0

    def next_delay(self, previous_s: float | None, uptime_s: float) -> float:
        if previous_s is None or uptime_s >= self.reset_after_s:
            return self.initial_s
        return min(previous_s * 2, self.max_s)


def describe_exit(returncode: int) -> str:
    """`exited with status 1` or `was killed by signal 9 (SIGKILL)`, for the log."""
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = "unknown signal"
    return f"was killed by signal {-returncode} ({name})"


def worker_argv(
    executable: str, config_path: str | None, flags: Mapping[str, Any], listen_fd: int
) -> list[str]:
    """The command line of one worker: the flags the user gave (so it loads the same settings
    from the same file and environment), one worker, and the inherited socket's descriptor.
    `flags` maps `serve`'s option names (`ssl_cert`) to values; None means not given."""
    argv = [executable, "-m", "clarion", "serve"]
    if config_path:
        argv += ["--config", config_path]
    for name, value in flags.items():
        if value is None or name == "workers":
            continue
        argv += [f"--{name.replace('_', '-')}", str(value)]
    # Flags outrank the environment, so CLARION_WORKERS cannot make a worker a supervisor.
    return [*argv, "--workers", "1", "--listen-fd", str(listen_fd)]


def worker_environ(settings: Settings, environ: Mapping[str, str]) -> dict[str, str]:
    """The parent's environment, plus the development app when one was generated: each worker
    would otherwise generate its own, and clients would meet a different app on each."""
    env = dict(environ)
    if not settings.dev_app:
        return env
    app = settings.apps[0]
    # The parent ignored CLARION_APP_* (there was no environment app); so must the workers.
    env = {k: v for k, v in env.items() if not k.startswith("CLARION_APP_")}
    env.update(
        PUSHER_APP_ID=app.id,
        PUSHER_APP_KEY=app.key,
        PUSHER_APP_SECRET=app.secret,
        CLARION_APP_NAME=app.name,
        CLARION_APP_ENABLE_CLIENT_MESSAGES=str(app.enable_client_messages).lower(),
    )
    return env


def ready_line(server: ServerSettings, port: int) -> str:
    scheme = "wss" if server.ssl_cert else "ws"
    return f"clarion: listening on {scheme}://{server.host}:{port} ({server.workers} workers)"


def stop_grace_s(server: ServerSettings) -> float:
    return 2 * server.shutdown_timeout + STOP_MARGIN_S


def bind_listener(host: str, port: int) -> socket.socket:
    """The listening socket every worker inherits (port 0 picks a free one). TLS, if any, is
    the workers' business: the socket carries plain TCP."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything the supervisor needs, decided before it starts."""

    workers: int
    argv: list[str]
    env: dict[str, str]
    listen_fd: int
    ready: str
    stop_grace_s: float
    backoff: Backoff = Backoff()


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    # Set the first time this worker serves; until then its exit fails the whole start-up.
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0


class Supervisor:
    """Starts the workers, prints one ready line when all serve, restarts the ones that die,
    and on SIGTERM / SIGINT stops them all (SIGTERM, then SIGKILL after the grace period)."""

    def __init__(self, plan: Plan, logger: logging.Logger, out: TextIO = sys.stdout) -> None:
        self._plan = plan
        self._log = logger
        self._out = out
        self._workers = [_Worker(index) for index in range(1, plan.workers + 1)]
        self._stop = asyncio.Event()
        self._failed = asyncio.Event()

    async def run(self) -> int:
        """0 after a requested stop; 1 when a worker failed to start (the others stopped)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        keepers = [asyncio.create_task(self._keep(worker)) for worker in self._workers]
        outcome = await self._first_of(
            all_ready=self._all_ready(), failed=self._failed.wait(), stopped=self._stop.wait()
        )
        if outcome == "all_ready":
            print(self._plan.ready, file=self._out, flush=True)
            await self._stop.wait()
        await self._stop_workers(keepers)
        return 1 if outcome == "failed" else 0

    async def _all_ready(self) -> None:
        await asyncio.gather(*(worker.ready.wait() for worker in self._workers))

    @staticmethod
    async def _first_of(**waits: Any) -> str:
        """The name of the first of `waits` to finish; the others are cancelled. A failure
        wins over a stop, which wins over readiness, should they finish together."""
        tasks = {asyncio.ensure_future(wait): name for name, wait in waits.items()}
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        finished = {tasks[task] for task in done}
        return next(name for name in ("failed", "stopped", "all_ready") if name in finished)

    async def _keep(self, worker: _Worker) -> None:
        """Run one worker slot: start it, and restart it with back-off each time it dies."""
        loop = asyncio.get_running_loop()
        delay: float | None = None
        while not self._stop.is_set():
            started = loop.time()
            try:
                how = describe_exit(await self._run_once(worker))
            except OSError as error:  # not even started: out of descriptors, memory, ...
                how = f"could not be started ({error})"
            if self._stop.is_set():
                self._log.info("worker %d (pid %d) %s", worker.index, worker.pid, how)
                return
            if not worker.ready.is_set():
                self._log.error(
                    "worker %d (pid %d) %s before it was ready; stopping the others",
                    worker.index,
                    worker.pid,
                    how,
                )
                self._failed.set()
                return
            uptime = loop.time() - started
            delay = self._plan.backoff.next_delay(delay, uptime)
            self._log.warning(
                "worker %d (pid %d) %s after %.1f s; restarting it in %.1f s",
                worker.index,
                worker.pid,
                how,
                uptime,
                delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _run_once(self, worker: _Worker) -> int:
        """Start the worker, relay its output until it exits; its return code."""
        plan = self._plan
        process = await asyncio.create_subprocess_exec(
            *plan.argv,
            env=plan.env,
            pass_fds=(plan.listen_fd,),
            # The parent decides when workers stop: a terminal's Ctrl-C reaches only it (and
            # with no controlling terminal, a worker is never stopped for writing to it).
            start_new_session=True,
            # Never written: the worker shuts down when it reads end-of-file, which is what it
            # gets if the parent dies without stopping it (even by SIGKILL).
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=None,
        )
        worker.process = process
        self._log.info("worker %d started (pid %d)", worker.index, process.pid)
        if self._stop.is_set():  # the stop came while it was starting
            self._signal(worker, signal.SIGTERM)
        assert process.stdout is not None
        assert process.stdin is not None
        await self._relay(worker, process.stdout)
        returncode = await process.wait()
        process.stdin.close()
        return returncode

    async def _relay(self, worker: _Worker, stdout: asyncio.StreamReader) -> None:
        """Read the worker's stdout until it closes: its ready line marks it serving,
        anything else goes to the parent's stdout."""
        while True:
            try:
                raw = await stdout.readline()
            except ValueError:  # a line past the stream limit: dropped, keep reading
                continue
            if not raw:
                return
            line = raw.decode(errors="replace")
            if line.startswith(READY_PREFIX):
                self._on_ready(worker)
            else:
                self._out.write(line)
                self._out.flush()

    def _on_ready(self, worker: _Worker) -> None:
        if worker.ready.is_set():
            self._log.info("worker %d (pid %d) is serving again", worker.index, worker.pid)
            return
        worker.ready.set()
        self._log.info("worker %d (pid %d) is serving", worker.index, worker.pid)

    async def _stop_workers(self, keepers: list[asyncio.Task[None]]) -> None:
        self._stop.set()  # a failed start-up stops too; this also ends any back-off wait
        for worker in self._workers:
            self._signal(worker, signal.SIGTERM)
        grace = self._plan.stop_grace_s
        _, pending = await asyncio.wait(keepers, timeout=grace)
        if not pending:
            return
        for worker in self._workers:
            if worker.alive:
                self._log.warning(
                    "worker %d (pid %d) still running %.0f s after SIGTERM: killing it",
                    worker.index,
                    worker.pid,
                    grace,
                )
                self._signal(worker, signal.SIGKILL)
        await asyncio.wait(pending)

    @staticmethod
    def _signal(worker: _Worker, sig: signal.Signals) -> None:
        if worker.process is None or worker.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):  # it exited before we got to it
            worker.process.send_signal(sig)


def serve_workers(
    settings: Settings,
    config_path: str | None,
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    logger: logging.Logger,
) -> None:
    """Bind, supervise until SIGTERM / SIGINT. Raises StartupFailed when the port cannot be
    bound or a worker exits before it serves."""
    server = settings.server
    try:
        listener = bind_listener(server.host, server.port)
    except OSError as error:
        reason = error.strerror or str(error)
        raise StartupFailed(f"cannot listen on {server.host}:{server.port}: {reason}") from None
    with listener:
        port = int(listener.getsockname()[1])
        plan = Plan(
            workers=server.workers,
            argv=worker_argv(sys.executable, config_path, flags, listener.fileno()),
            env=worker_environ(settings, environ),
            listen_fd=listener.fileno(),
            ready=ready_line(server, port),
            stop_grace_s=stop_grace_s(server),
        )
        code = asyncio.run(Supervisor(plan, logger.getChild("supervisor")).run())
    if code:
        raise StartupFailed(
            "a worker exited before it was ready (its messages are above); the others were stopped"
        )
