"""`clarion serve --workers N` (issue 5): one parent binds the port and keeps N worker processes
serving it, sharing state through Redis.

Real processes throughout: the parent is started as an operator would, its workers are found
through /proc (their parent pid), and which worker holds a client's socket is read from
/proc/net/tcp and the workers' descriptor tables. Nothing sleeps: waits are on the parent's
output lines (its log says when a worker dies and when it serves again), on frames, and on
pidfds for processes that are not ours to wait for. Each test uses a Redis key prefix of its own
and deletes its keys afterwards (the shared Redis is never flushed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pusher
import pytest
import redis
from it_support import (
    HOST,
    MAIN,
    TIMEOUT,
    WsClient,
    clarion_command,
    data_of,
    open_ws,
    presence_data,
    sdk,
)

REDIS_URL = os.environ.get("CLARION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
READY = re.compile(r"clarion: listening on ws://127\.0\.0\.1:(\d+) \((\d+) workers\)")
# Any ready line, the parent's or (wrongly) a worker's.
ANY_READY = re.compile(r"clarion: listening on ")
# Parent's log, clarion.supervisor.
SERVING = re.compile(r"worker (\d+) \(pid (\d+)\) is serving")
SERVING_AGAIN = re.compile(r"worker (\d+) \(pid (\d+)\) is serving again")


# ---- the supervised server ---------------------------------------------------------------------


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLARION_", "PUSHER_"))}
    env.update(PUSHER_APP_ID=MAIN.id, PUSHER_APP_KEY=MAIN.key, PUSHER_APP_SECRET=MAIN.secret)
    env.update(
        CLARION_APP_ENABLE_CLIENT_MESSAGES="true",
        CLARION_SHUTDOWN_TIMEOUT=str(TIMEOUT),
        CLARION_LOG_LEVEL="info",
    )
    env.update(extra or {})
    return env


class Supervised:
    """A `clarion serve --workers N` process: its output, line by line, as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.port = 0
        self._changed = asyncio.Event()
        assert proc.stdout is not None
        assert proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._read(proc.stdout, self.stdout)),
            asyncio.create_task(self._read(proc.stderr, self.stderr)),
        ]

    @classmethod
    async def start(cls, *args: str, env: dict[str, str] | None = None) -> Supervised:
        proc = await asyncio.create_subprocess_exec(
            *clarion_command(),
            "serve",
            "--host",
            HOST,
            "--port",
            "0",
            *args,
            env=_environment(env),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def _read(self, stream: asyncio.StreamReader, into: list[str]) -> None:
        while line := await stream.readline():
            into.append(line.decode(errors="replace").rstrip("\n"))
            self._changed.set()
        self._changed.set()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return "\n--- stdout ---\n{}\n--- stderr ---\n{}".format(
            "\n".join(self.stdout), "\n".join(self.stderr[-100:])
        )

    async def until(self, predicate: Callable[[], Any], within: float = 3 * TIMEOUT) -> Any:
        """Wait for the output to satisfy `predicate` (woken by every new line); its value."""
        try:
            async with asyncio.timeout(within):
                while not (found := predicate()):
                    if self.proc.returncode is not None and all(r.done() for r in self._readers):
                        raise AssertionError(f"the parent exited ({self.proc.returncode})")
                    self._changed.clear()
                    await self._changed.wait()
                return found
        except (TimeoutError, AssertionError) as error:
            raise AssertionError(f"{error or 'timed out'}{self.log()}") from None

    async def ready(self, workers: int) -> int:
        def port() -> int | None:
            for line in self.stdout:
                match = READY.search(line)
                if match:
                    assert int(match.group(2)) == workers, line
                    return int(match.group(1))
            return None

        self.port = await self.until(port)
        return self.port

    def stderr_matches(self, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        return [m for line in self.stderr if (m := pattern.search(line))]

    async def exit_code(self, within: float) -> int:
        code = await asyncio.wait_for(self.proc.wait(), within)
        await asyncio.wait_for(asyncio.gather(*self._readers), TIMEOUT)
        return code

    async def aclose(self) -> None:
        """Leave nothing behind, whatever the test did: the parent and its workers killed."""
        workers = children_of(self.pid) if self.proc.returncode is None else set()
        if self.proc.returncode is None:
            self.proc.kill()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await self.proc.wait()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


@contextlib.asynccontextmanager
async def supervised(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[Supervised]:
    server = await Supervised.start(*args, env=env)
    try:
        yield server
    except BaseException as error:
        error.add_note(server.log())
        raise
    finally:
        await server.aclose()


@pytest.fixture
def redis_prefix() -> Any:
    """A key prefix for this test alone; its keys (and only they) are deleted afterwards."""
    prefix = f"clarion-test:{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=TIMEOUT)
    try:
        keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()


def cluster_flags(prefix: str, workers: int) -> list[str]:
    return ["--workers", str(workers), "--redis-url", REDIS_URL, "--redis-prefix", prefix]


# ---- processes, through /proc --------------------------------------------------------------


def children_of(parent: int) -> set[int]:
    """Pids whose parent is `parent` (from /proc/<pid>/stat; the command name, in
    parentheses, may hold spaces, so the fields are read after its closing one)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent:
            found.add(int(entry.name))
    return found


def running(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


async def exited(pid: int, within: float = 3 * TIMEOUT) -> None:
    """Wait for a process that is not our child to end (its pidfd becomes readable)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    loop.add_reader(fd, lambda: done.done() or done.set_result(None))
    try:
        await asyncio.wait_for(done, within)
    finally:
        loop.remove_reader(fd)
        os.close(fd)


def _tcp_inode(local_port: int, remote_port: int) -> int | None:
    """The socket inode of the server side of a 127.0.0.1 connection, from /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], int(fields[9])
        if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == (
            remote_port
        ):
            return inode
    return None


def owner(client: WsClient, server_port: int, workers: set[int]) -> int:
    """Which worker process holds the server side of this client's connection."""
    client_port = client.ws.local_address[1]
    inode = _tcp_inode(server_port, client_port)
    assert inode, f"no server socket for client port {client_port}"
    target = f"socket:[{inode}]"
    for pid in workers:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == target:
                        return pid
    raise AssertionError(f"no worker of {workers} holds {target}")


# ---- clients -----------------------------------------------------------------------------------


async def connect(port: int, key: str = MAIN.key) -> WsClient:
    ws = await open_ws(port, key)
    msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert msg.get("event") == "pusher:connection_established", msg
    return WsClient(ws, msg)


async def spread(
    port: int, workers: set[int], key: str = MAIN.key, at_most: int = 150
) -> dict[int, list[WsClient]]:
    """Open sockets, a batch at a time, until every worker holds at least one; by worker pid.
    The kernel gives each connection to whichever worker accepts first, so it takes a few."""
    held: dict[int, list[WsClient]] = {pid: [] for pid in workers}
    opened = 0
    while any(not clients for clients in held.values()):
        assert opened < at_most, f"{opened} sockets never reached every worker: {held}"
        batch = await asyncio.gather(*(connect(port, key) for _ in range(10)))
        opened += len(batch)
        for client in batch:
            held[owner(client, port, workers)].append(client)
    return held


async def close_all(clients: list[WsClient]) -> None:
    for client in clients:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), TIMEOUT)


async def subscribe(client: WsClient, channel: str, user: str | None = None) -> Any:
    if channel.startswith(("private-", "presence-")):
        custom = presence_data(user, f"name-{user}") if user is not None else None
        signer = pusher.Pusher(MAIN.id, MAIN.key, MAIN.secret)
        signed = signer.authenticate(
            channel=channel, socket_id=client.socket_id, custom_data=custom
        )
        await client.subscribe(channel, signed["auth"], signed.get("channel_data"))
    else:
        await client.subscribe(channel)
    return await client.expect_succeeded(channel)


async def workers_of(server: Supervised, count: int) -> set[int]:
    """The worker pids, once all `count` have said they serve (the ready line says so)."""
    pids = children_of(server.pid)
    assert len(pids) == count, pids
    return pids


# ---- refusals and start-up failures ------------------------------------------------------------


async def test_several_workers_without_redis_are_refused():
    async with supervised("--workers", "2") as server:
        code = await server.exit_code(3 * TIMEOUT)
        assert code != 0
        stderr = "\n".join(server.stderr)
        assert (
            "workers=2 needs a Redis URL (--redis-url or CLARION_REDIS_URL): the processes share "
            "channels, presence and counts through Redis"
        ) in stderr
        assert not any(ANY_READY.search(line) for line in server.stdout)


async def test_a_worker_that_cannot_start_stops_the_others_and_the_parent_fails(redis_prefix):
    # Every worker fails to load the certificate, after the parent bound the port.
    missing = "/nonexistent/clarion-test.pem"
    flags = [*cluster_flags(redis_prefix, 3), "--ssl-cert", missing, "--ssl-key", missing]
    async with supervised(*flags) as server:
        code = await server.exit_code(3 * TIMEOUT + 10)
        assert code != 0
        assert server.stderr_matches(
            re.compile(r"worker \d \(pid \d+\) exited with status 1 before it was ready")
        )
        assert any("a worker exited before it was ready" in line for line in server.stderr)
        assert not any(ANY_READY.search(line) for line in server.stdout)
        assert children_of(server.pid) == set()


async def test_a_port_in_use_is_refused_before_any_worker_starts(redis_prefix):
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        flags = [*cluster_flags(redis_prefix, 2), "--port", str(port)]
        async with supervised(*flags) as server:
            assert await server.exit_code(3 * TIMEOUT) != 0
            assert any(
                f"cannot listen on {HOST}:{port}: Address already in use" in line
                for line in server.stderr
            ), server.stderr
            assert not server.stderr_matches(re.compile(r"worker \d started"))


# ---- serving, restarting, stopping ----------------------------------------------------------


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_three_workers_serve_one_port_and_stop_on_a_signal(redis_prefix, stop):
    async with supervised(*cluster_flags(redis_prefix, 3)) as server:
        port = await server.ready(3)
        workers = await workers_of(server, 3)
        for pid in workers:
            argv = cmdline(pid)
            assert argv[argv.index("--workers") + 1] == "1", argv
            assert "--listen-fd" in argv, argv
        # Each worker said it serves, once, under its own pid.
        assert {int(m.group(2)) for m in server.stderr_matches(SERVING)} == workers

        held = await spread(port, workers)
        clients = [client for group in held.values() for client in group]
        for client in clients[:: max(1, len(clients) // 10)]:
            await subscribe(client, "news")
            await client.assert_nothing_pending()
        socket_ids = {client.socket_id for client in clients}
        assert len(socket_ids) == len(clients), "socket ids must be unique across workers"

        server.proc.send_signal(stop)  # passed on to every worker as SIGTERM
        closes = await asyncio.gather(*(client.closed(within=3 * TIMEOUT) for client in clients))
        assert {code for code, _ in closes} == {4200}
        assert await server.exit_code(3 * TIMEOUT) == 0
        for pid in workers:
            assert not running(pid), f"worker {pid} outlived the parent"
        # One ready line, the parent's: the workers' own are not passed on.
        assert len([line for line in server.stdout if ANY_READY.search(line)]) == 1


async def test_a_killed_worker_is_restarted_and_the_others_keep_serving(redis_prefix):
    async with supervised(*cluster_flags(redis_prefix, 3)) as server:
        port = await server.ready(3)
        workers = await workers_of(server, 3)
        held = await spread(port, workers)
        victim = next(iter(workers))

        os.kill(victim, signal.SIGKILL)
        died = re.compile(
            rf"worker (\d) \(pid {victim}\) was killed by signal 9 \(SIGKILL\) after [\d.]+ s; "
            r"restarting it in 0\.5 s"
        )
        slot = (await server.until(lambda: server.stderr_matches(died)))[0].group(1)
        again = await server.until(
            lambda: [m for m in server.stderr_matches(SERVING_AGAIN) if m.group(1) == slot]
        )
        replacement = int(again[0].group(2))
        assert replacement not in workers
        now = children_of(server.pid)
        assert now == (workers - {victim}) | {replacement}

        # The victim's sockets dropped (no closing handshake: it was killed) ...
        for client in held[victim]:
            code, _ = await client.closed(within=TIMEOUT)
            assert code is None
        # ... the others' are still served ...
        for pid in workers - {victim}:
            for client in held[pid]:
                await client.assert_nothing_pending()
        # ... and new sockets reach every worker, the replacement included.
        fresh = await spread(port, now)
        for clients in fresh.values():
            await subscribe(clients[0], "after-restart")

        server.proc.send_signal(signal.SIGTERM)
        assert await server.exit_code(3 * TIMEOUT) == 0
        await close_all([c for group in (*held.values(), *fresh.values()) for c in group])
        for pid in now:
            assert not running(pid), f"worker {pid} outlived the parent"


async def test_every_worker_serves_the_one_generated_development_app(redis_prefix):
    no_app = {"PUSHER_APP_ID": "", "PUSHER_APP_KEY": "", "PUSHER_APP_SECRET": ""}
    async with supervised(*cluster_flags(redis_prefix, 2), env=no_app) as server:
        port = await server.ready(2)
        keys = [m.group(1) for line in server.stdout if (m := re.search(r" key=(\w+)", line))]
        assert len(keys) == 1, server.stdout  # described once, by the parent
        workers = await workers_of(server, 2)
        held = await spread(port, workers, key=keys[0])
        await close_all([c for group in held.values() for c in group])


async def test_workers_shut_down_when_the_parent_is_killed(redis_prefix):
    async with supervised(*cluster_flags(redis_prefix, 2)) as server:
        port = await server.ready(2)
        workers = await workers_of(server, 2)
        held = await spread(port, workers)

        server.proc.kill()  # no chance to stop its workers: they notice on their own
        await server.exit_code(TIMEOUT)
        closes = await asyncio.gather(
            *(c.closed(within=3 * TIMEOUT) for group in held.values() for c in group)
        )
        assert {code for code, _ in closes} == {4200}  # a graceful shutdown, not a crash
        await asyncio.gather(*(exited(pid) for pid in workers))


# ---- sharing through Redis (needs the Redis backends wired into bootstrap) -------------------


async def test_an_api_trigger_reaches_subscribers_on_every_worker(redis_prefix):
    async with supervised(*cluster_flags(redis_prefix, 3)) as server:
        port = await server.ready(3)
        workers = await workers_of(server, 3)
        held = await spread(port, workers)
        subscribers = [group[0] for group in held.values()]
        for client in subscribers:
            await subscribe(client, "private-orders")

        # Several triggers, each answered by whichever worker accepts the HTTP connection.
        api = sdk(port)
        for n in range(5):
            await asyncio.to_thread(api.trigger, "private-orders", "placed", {"n": n})
        for client in subscribers:
            got = [await client.expect("placed", "private-orders") for _ in range(5)]
            assert [data_of(m) for m in got] == [{"n": n} for n in range(5)]
            await client.assert_nothing_pending()

        # One worker's client event reaches the others', never its sender.
        sender, *others = subscribers
        await sender.send_event("client-typing", {"who": "a"}, channel="private-orders")
        for client in others:
            msg = await client.expect("client-typing", "private-orders")
            assert data_of(msg) == {"who": "a"}
        await sender.assert_nothing_pending()

        info = await asyncio.to_thread(api.channel_info, "private-orders", ["subscription_count"])
        assert info["occupied"] is True
        assert info["subscription_count"] == len(subscribers)
        await close_all([c for group in held.values() for c in group])


async def test_presence_spans_workers(redis_prefix):
    async with supervised(*cluster_flags(redis_prefix, 2)) as server:
        port = await server.ready(2)
        workers = await workers_of(server, 2)
        held = await spread(port, workers)
        first_pid, second_pid = sorted(workers)
        alice, bob = held[first_pid][0], held[second_pid][0]
        channel = "presence-room"

        joined = await subscribe(alice, channel, "alice")
        assert joined["presence"]["ids"] == ["alice"]
        joined = await subscribe(bob, channel, "bob")
        assert sorted(joined["presence"]["ids"]) == ["alice", "bob"]
        assert joined["presence"]["hash"]["alice"] == {"name": "name-alice"}
        added = await alice.expect("pusher_internal:member_added", channel)
        assert data_of(added) == {"user_id": "bob", "user_info": {"name": "name-bob"}}

        users = await asyncio.to_thread(sdk(port).users_info, channel)
        assert sorted(u["id"] for u in users["users"]) == ["alice", "bob"]

        await bob.unsubscribe(channel)
        removed = await alice.expect("pusher_internal:member_removed", channel)
        assert data_of(removed) == {"user_id": "bob"}
        await close_all([c for group in held.values() for c in group])


async def test_unreachable_redis_fails_the_start(redis_prefix):
    nowhere = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    flags = ["--workers", "2", "--redis-url", nowhere, "--redis-prefix", redis_prefix]
    async with supervised(*flags, env={"CLARION_REDIS_TIMEOUT_S": "1"}) as server:
        code = await server.exit_code(3 * TIMEOUT + 10)
        assert code != 0
        assert any("a worker exited before it was ready" in line for line in server.stderr)
        assert not any(ANY_READY.search(line) for line in server.stdout)
