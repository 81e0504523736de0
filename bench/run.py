#!/usr/bin/env python3
"""Clarion benchmark driver.

Starts a fresh server for every run, pinned to one core (`taskset -c 0`), and the C load generator
(bench/loadgen) pinned to another (`taskset -c 1`), samples the server's CPU time
(/proc/<pid>/stat utime+stime) and RSS (/proc/<pid>/status VmRSS) between the generator's phases,
repeats each scenario R times and prints one markdown table row per scenario (medians over the
repetitions; error counters are summed over them).

Scenarios:
  connections  N idle subscribed WebSocket connections: setup rate and server RSS per connection.
  fanout-max   S subscribers on one channel, triggers over K keep-alive HTTP connections in a
               closed loop: deliveries/s at the subscribers.
  fanout-rate  S subscribers, a fixed delivery rate (triggers/s = deliveries/s / S): latency
               p50/p99/max from a CLOCK_MONOTONIC send stamp in each event; lost/duplicates.
  http         HTTP API triggers/s with a few subscribers (closed loop, K connections).
  client-events  S subscribers on a few private channels (signed auth), some of them sending
               client events: closed loop (a bounded window of events per sender whose copies
               have not all arrived) and a fixed delivery rate. Deliveries/s, latency from the
               send stamp, lost/dup, pusher:error 4301 (client-event rate limit) counts.
  presence-churn  a presence channel held at ~1,000 members while pool members leave
               (unsubscribe or disconnect) and join as new users, closed loop and at a fixed
               rate: joins+leaves/s, member_added/member_removed delivered/s, join -> member_added
               and leave -> member_removed latency, lost/dup, and the final roster checked via
               the HTTP API and a checker socket's subscription_succeeded.
  conn-churn   connect, subscribe, subscription_succeeded, disconnect, with W cycles in flight:
               cycles/s, failures, server RSS at the start and end of the load (leak check),
               and the channel's subscription_count back to 0 afterwards.
  slow-consumer  fan-out at a fixed rate to S subscribers, M of which stop reading part-way
               (back-pressure): the healthy subscribers' latency before and during the stall,
               their lost/dup, when and how the server dropped the stalled ones (4101), and the
               server's RSS at the stall, its peak and the end.

Cluster scenarios (Redis, --redis-url; not in the default list, see docs/benchmarks.md):
  cluster-fanout  fan-out max (and --cluster-fanout-rates) to S subscribers with the embedded
               single process, `--workers 1` with Redis and `--workers 2`: deliveries/s, and the
               CPU of the server processes (summed and each), redis-server and the generator.
  cluster-latency  two `clarion serve` nodes on one Redis prefix; subscribers on node B,
               triggers to node A at a fixed rate, against both on node B and the embedded
               server: p50/p99/max, lost/dup.
  cluster-connections  N idle subscribed connections to `--workers W`, from several generator
               processes (each under the open-file limit, each with its own source address):
               held, errors, setup rate, RSS per process and in all, Redis memory.
Each cluster run uses its own Redis key prefix clarion-bench:<hex> and deletes its keys after.

Example:  bench/build.sh && bench/run.py --repeat 3
Only 127.0.0.1 is ever loaded; every run is bounded in count and time.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import http.client
import json
import os
import platform
import re
import resource
import secrets
import selectors
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LOADGEN = HERE / "loadgen"
CLK_TCK = os.sysconf("SC_CLK_TCK")
APP_ID, APP_KEY, APP_SECRET = "123456", "bench-key", "bench-secret"
LISTENING = re.compile(r"listening on ws://127\.0\.0\.1:(\d+)")
ALL_SCENARIOS = ("connections", "fanout-max", "fanout-rate", "http", "client-events",
                 "presence-churn", "conn-churn", "slow-consumer")  # fmt: skip
# Need a Redis (--redis-url) and a server with the Redis backend: not in the default list.
CLUSTER_SCENARIOS = ("cluster-fanout", "cluster-latency", "cluster-connections")
# The server's line (INFO) when it closes a slow consumer, and its log time stamp.
SLOW_CLOSE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO .*closing a slow consumer")
# The open-file limit here is 20,000 per process: 19,500 connections leave the server (and the
# generator) about 500 descriptors for everything else.
MAX_CONNS = 19500


# ---- /proc sampling ---------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    # rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def proc_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_runq_wait_s(pid: int) -> float:
    """Time the process was runnable but waiting for a CPU (/proc/<pid>/schedstat, field 2):
    on a shared machine, how much other work on its core held it back."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


def core_times(core: int) -> tuple[float, float, float]:
    """(busy, softirq, total) jiffies of one CPU from /proc/stat. Busy counts user, nice,
    system, irq, softirq and steal: loopback TCP work done in softirq context is not always
    charged to a process, and other processes may share the core."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{core} "):
                v = [int(x) for x in line.split()[1:]]
                user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
                busy = user + nice + system + irq + softirq + steal
                return busy, softirq, busy + idle + iowait
    return float("nan"), float("nan"), float("nan")


def core_busy_pct(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    total = b[2] - a[2]
    return 100 * (b[0] - a[0]) / total if total > 0 else float("nan")


@dataclass
class Sample:
    t: float
    cpu_s: float
    rss_kb: int
    wait_s: float


def sample(pid: int) -> Sample:
    return Sample(time.monotonic(), proc_cpu_s(pid), proc_rss_kb(pid), proc_runq_wait_s(pid))


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if not line.strip():
                break
            name, _, value = line.partition(":")
            fields[name.strip()] = value.strip()
    return fields


def _mitigation(name: str) -> str:
    try:
        return Path(f"/sys/devices/system/cpu/vulnerabilities/{name}").read_text().strip()
    except OSError:
        return "?"


def default_clarion() -> Path:
    """The compiled build when it has been made (README "Compiled build"): the one to deploy
    where speed matters. The plain build otherwise; `server_build` says which one ran."""
    compiled = ROOT / ".venv-compiled" / "bin" / "clarion"
    return compiled if compiled.exists() else ROOT / ".venv" / "bin" / "clarion"


def server_build(clarion: Path) -> str:
    """Which build the server's venv imports: "compiled" (the mypyc modules) or "plain";
    "unknown" for a wrapper script outside a venv's bin/."""
    python = clarion.parent / "python"
    if not python.exists():
        return "unknown"
    probe = "import clarion.node as m; print(m.__file__)"
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    if found.returncode != 0:
        return "unknown"
    return "compiled" if found.stdout.strip().endswith(".so") else "plain"


def machine_info() -> dict[str, Any]:
    """What the figures depend on. The same VM kind has run on different host CPUs (AMD
    family 25 model 17, Zen 4, on 2026-11-23; model 1, Zen 3, with retpolines, on 2026-12-03),
    and the kernel's network path cost twice as much on the second: so the CPU model and the
    kernel's Spectre v2 / SRSO mitigations are part of every record."""
    cpu = _cpuinfo()
    model = cpu.get("model name", "?")
    family, number = cpu.get("cpu family", "?"), cpu.get("model", "?")
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "cpu_family_model": f"{family}/{number}",
        "cpu_mhz": cpu.get("cpu MHz", "?"),
        "spectre_v2": _mitigation("spectre_v2"),
        "srso": _mitigation("spec_rstack_overflow"),
        "mem_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE),
    }


def calibrate(args: argparse.Namespace) -> dict[str, Any]:
    """bench/calibrate.py pinned like the server and generator: today's machine speed."""
    cmd = ["taskset", "-c", str(args.server_core), sys.executable, str(HERE / "calibrate.py"),
           "--reader-core", str(args.gen_core)]  # fmt: skip
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    except (subprocess.SubprocessError, ValueError, IndexError) as error:
        return {"error": str(error)}


def steal_jiffies() -> tuple[int, int]:
    """(steal, all) jiffies over every CPU from /proc/stat: time the host ran someone else."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[7], sum(fields)


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---- server -------------------------------------------------------------------------------------


class Server:
    """One `clarion serve` on 127.0.0.1, an ephemeral port, pinned with taskset (by default to
    --server-core; `core=None`: not pinned). `extra_args` go after `serve` (the cluster
    scenarios' `--workers N`)."""

    def __init__(
        self,
        args: argparse.Namespace,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        log_level: str | None = None,
        extra_args: list[str] | None = None,
        core: str | None = "default",
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CLARION_", "PUSHER_"))}
        env.update(
            PUSHER_APP_ID=APP_ID,
            PUSHER_APP_KEY=APP_KEY,
            PUSHER_APP_SECRET=APP_SECRET,
            CLARION_APP_MAX_MESSAGE_SIZE_KB="100",
        )
        env.update(extra_env or {})
        self.extra_env = dict(extra_env or {})
        for item in args.server_env:
            key, _, value = item.partition("=")
            env[key] = value
        if core == "default":
            core = str(args.server_core)
        self.cmd = [
            *(["taskset", "-c", core] if core is not None else []), str(args.clarion),
            "serve", "--host", "127.0.0.1", "--port", "0",
            "--log-level", log_level or args.server_log_level, *(extra_args or []),
        ]  # fmt: skip
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
            preexec_fn=_raise_nofile,
            start_new_session=True,
        )
        self.pid = self.proc.pid  # taskset execs clarion: same pid
        self.port = self._wait_listening(timeout=30.0)
        # Keep draining stdout so the server can never block on a full pipe.
        self._drain = threading.Thread(target=self._copy_stdout, daemon=True)
        self._drain.start()

    def _wait_listening(self, timeout: float) -> int:
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            if not sel.select(timeout=deadline - time.monotonic()):
                continue
            line = self.proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            self._log.write("[stdout] " + line)
            match = LISTENING.search(line)
            if match:
                return int(match.group(1))
        self.stop()
        raise RuntimeError(f"server did not start; stdout={seen!r}; see {self.log_path}")

    def _copy_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._log.write("[stdout] " + line)
            self._log.flush()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (graceful shutdown), then SIGKILL after `timeout` s. Returns the exit
        status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.flush()
        self._log.close()
        return self.proc.returncode

    def log_problems(self) -> list[str]:
        """Lines of the server's stderr that report errors (log level is warning by default)."""
        text = self.log_path.read_text(errors="replace")
        return [
            line
            for line in text.splitlines()
            if not line.startswith("[stdout]")
            and re.search(r"\b(ERROR|CRITICAL|WARNING|Traceback|Exception)\b", line)
        ]

    def slow_closes(self, t0_wall: float) -> list[float]:
        """Seconds after `t0_wall` (time.time()) of each "closing a slow consumer" line (INFO;
        the log's time stamps are local time with milliseconds)."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            match = SLOW_CLOSE.match(line)
            if match:
                stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                out.append(round(stamp - t0_wall, 3))
        return out


class RssSampler:
    """The server's VmRSS every `period` seconds during the load, as (seconds since the load
    started, KiB) pairs: conn-churn's leak check, and the peak RSS for every scenario."""

    def __init__(self, pid: int, period: float = 0.1) -> None:
        self.pid, self.period = pid, period
        self.t0 = time.monotonic()
        self.series: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.series.append((round(time.monotonic() - self.t0, 3), proc_rss_kb(self.pid)))
            except OSError:
                return
            self._stop.wait(self.period)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


# ---- load generator ---------------------------------------------------------------------------


class LoadGen:
    def __init__(
        self,
        args: argparse.Namespace,
        port: int,
        extra: list[str],
        log_path: Path,
        core: str | None = "default",
    ):
        if core == "default":
            core = str(args.gen_core)
        self.cmd = [
            *(["taskset", "-c", core] if core is not None else []), str(LOADGEN),
            "--port", str(port),
            "--app-id", APP_ID, "--key", APP_KEY, "--secret", APP_SECRET,
            "--payload", str(args.payload), "--concurrency", str(args.connect_concurrency),
            "--interactive", *extra,
        ]  # fmt: skip
        self._err = open(log_path, "w")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            preexec_fn=_raise_nofile,
            start_new_session=True,
        )
        self.pid = self.proc.pid
        assert self.proc.stdout is not None
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)

    def expect(self, tag: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._sel.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"loadgen exited (status {self.proc.poll()}) before {tag}")
            if line.startswith(tag + " "):
                parsed: dict[str, Any] = json.loads(line[len(tag) + 1 :])
                return parsed
        raise RuntimeError(f"loadgen: no {tag} line within {timeout:.0f} s")

    def proceed(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self) -> int | None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=60)
        except (subprocess.TimeoutExpired, BrokenPipeError):
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._err.close()
        return self.proc.returncode


# ---- scenarios ----------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    kind: str  # "connections", "messages", "client", "presence", "churn" or "slow"
    subs: int
    gen_args: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # extra server environment
    log_level: str | None = None  # server log level, if not --server-log-level


def steady_window(args: argparse.Namespace, events_per_s: float) -> tuple[float, float]:
    """(warm-up, duration) seconds for a fixed-rate load where each subscriber receives
    `events_per_s`: the warm-up lasts at least --warmup-events events, the measured window
    stays --duration minus --warmup long.

    Linux acknowledges the first 16 segments a connection receives at once (quick-ACK mode,
    TCP_MAX_QUICKACKS) and delays its ACKs after that. On loopback an ACK sent at once is
    processed by the core that sent the data, the server's, so a subscriber's first 16 events
    cost the server about a third more than the later ones (docs/benchmarks.md, fifth
    session). A warm-up in seconds alone ends after 50 events per subscriber at 1,000
    subscribers (50 triggers/s) but after 5 at 10,000 (5/s), whose window then measured
    mostly that start-up phase. (At 5/s the events come 200 ms apart, about the receiver's
    RTO, 204 ms; a gap longer than that starts quick ACKs again, so some runs stay in that
    mode longer: the warm-up cannot remove that, and is not meant to.)"""
    warmup = max(args.warmup, args.warmup_events / events_per_s)
    return warmup, args.duration + (warmup - args.warmup)


def build_scenarios(args: argparse.Namespace) -> list[Scenario]:
    out: list[Scenario] = []
    load = ["--duration", str(args.duration), "--warmup", str(args.warmup),
            "--drain", str(args.drain)]  # fmt: skip
    for name in args.scenarios:
        if name == "connections":
            for n in args.conns:
                out.append(
                    Scenario(
                        f"connections N={n}",
                        "connections",
                        n,
                        [
                            "--subs",
                            str(n),
                            "--mode",
                            "none",
                            "--setup-timeout",
                            "300",
                            "--duration",
                            str(args.conn_hold),
                        ],
                        {"N": n, "hold": args.conn_hold},
                    )
                )
        elif name == "fanout-max":
            for s in args.fanout_subs:
                out.append(
                    Scenario(
                        f"fan-out max, {s} subs",
                        "messages",
                        s,
                        [
                            "--subs",
                            str(s),
                            "--pubs",
                            str(args.publishers),
                            "--depth",
                            str(args.depth),
                            "--mode",
                            "closed",
                            *load,
                        ],
                        {"pubs": args.publishers, "depth": args.depth},
                    )
                )
        elif name == "fanout-rate":
            for s in args.fanout_subs:
                rate = args.fanout_deliveries / s
                warmup, duration = steady_window(args, rate)
                longer = f" (warm-up {warmup:g} s)" if warmup > args.warmup else ""
                out.append(
                    Scenario(
                        f"fan-out {args.fanout_deliveries:,} deliv/s, {s} subs{longer}",
                        "messages",
                        s,
                        [
                            "--subs",
                            str(s),
                            "--pubs",
                            str(args.publishers),
                            "--mode",
                            "rate",
                            "--rate",
                            repr(rate),
                            "--duration",
                            str(duration),
                            "--warmup",
                            str(warmup),
                            "--drain",
                            str(args.drain),
                        ],
                        {
                            "pubs": args.publishers,
                            "rate": rate,
                            "warmup_s": warmup,
                            "duration_s": duration,
                        },
                    )
                )
        elif name == "http":
            s = args.http_subs
            out.append(
                Scenario(
                    f"HTTP API triggers, {s} subs",
                    "messages",
                    s,
                    [
                        "--subs",
                        str(s),
                        "--pubs",
                        str(args.http_publishers),
                        "--depth",
                        str(args.depth),
                        "--mode",
                        "closed",
                        *load,
                    ],
                    {"pubs": args.http_publishers, "depth": args.depth},
                )
            )
        elif name == "client-events":
            out += client_scenarios(args, load)
        elif name == "presence-churn":
            out += presence_scenarios(args, load)
        elif name == "slow-consumer":
            out += slow_scenarios(args, load)
        elif name == "conn-churn":
            out.append(
                Scenario(
                    f"conn churn, {args.churn_window} in flight, close {args.churn_close}",
                    "churn",
                    0,
                    ["--scenario", "churn", "--window", str(args.churn_window),
                     "--close", args.churn_close, *load],
                    {"window": args.churn_window},
                )
            )  # fmt: skip
        elif name in CLUSTER_SCENARIOS:
            out += cluster_scenarios(args, name)
        else:
            raise SystemExit(f"unknown scenario {name!r}")
    return out


def client_scenarios(args: argparse.Namespace, load: list[str]) -> list[Scenario]:
    s, chans = args.client_subs, args.client_channels
    receivers = s // chans - 1  # copies of one event: the channel's members but the sender
    env = {
        "CLARION_APP_ENABLE_CLIENT_MESSAGES": "true",
        "CLARION_APP_MAX_CLIENT_EVENTS_PER_SECOND": str(args.client_event_limit),
    }
    common = ["--scenario", "client", "--subs", str(s), "--channels", str(chans),
              "--senders", str(args.client_senders), "--client-data", args.client_data]  # fmt: skip
    rate = args.client_deliveries / receivers
    where = f"{s} subs on {chans} private channels"
    return [
        Scenario(
            f"client events max, {where}",
            "client",
            s,
            [*common, "--mode", "closed", "--window", str(args.client_window), *load],
            {"senders": args.client_senders, "window": args.client_window},
            env,
        ),
        Scenario(
            f"client events {args.client_deliveries:,} deliv/s, {where}",
            "client",
            s,
            [*common, "--mode", "rate", "--rate", repr(rate), *load],
            {"senders": args.client_senders, "rate": rate},
            env,
        ),
    ]


def presence_scenarios(args: argparse.Namespace, load: list[str]) -> list[Scenario]:
    members, pool = args.presence_members, args.presence_pool
    stable = members - pool // 2  # half the pool is in the channel at any time
    env = {"CLARION_APP_MAX_PRESENCE_MEMBERS": str(members + pool + 10)}
    common = ["--scenario", "presence", "--subs", str(stable), "--pool", str(pool),
              "--leave", args.presence_leave, "--setup-timeout", "300"]  # fmt: skip
    params = {"members": members, "stable": stable, "pool": pool}
    return [
        Scenario(
            f"presence churn max, {members} members",
            "presence",
            stable + pool,
            [*common, "--mode", "closed", "--window", str(args.presence_window), *load],
            {**params, "window": args.presence_window},
            env,
        ),
        Scenario(
            f"presence churn {args.presence_rate:g} ops/s, {members} members",
            "presence",
            stable + pool,
            [*common, "--mode", "rate", "--rate", repr(args.presence_rate), *load],
            {**params, "rate": args.presence_rate},
            env,
        ),
    ]


def slow_stall_at(args: argparse.Namespace) -> float:
    if args.slow_stall_at is not None:
        return float(args.slow_stall_at)
    warmup, duration = float(args.warmup), float(args.duration)
    return max(warmup, min(3.0, warmup + (duration - warmup) / 2))


def slow_scenarios(args: argparse.Namespace, load: list[str]) -> list[Scenario]:
    s = args.slow_subs
    rate = args.slow_deliveries / s
    stall_at = slow_stall_at(args)
    wake = min(args.duration, stall_at + args.slow_wake_after)
    env = {"CLARION_MAX_PENDING_KB": str(args.slow_max_pending_kb)}
    out = []
    for m in args.slow_stalled:
        flood = (["--flood-bytes", str(args.slow_flood_kb * 1024),
                  "--flood-rate", repr(args.slow_flood_rate)]
                 if m and args.slow_flood_kb > 0 else [])  # fmt: skip
        gen = [
            "--subs", str(s), "--pubs", str(args.publishers), "--mode", "rate",
            "--rate", repr(rate), "--payload", str(args.slow_payload),
            "--stalled", str(m), "--stall-at", repr(stall_at), "--stall-wake", repr(wake),
            "--stall-wait", repr(args.slow_wait), "--stall-rcvbuf", str(args.slow_rcvbuf),
            "--stall-mss", str(args.slow_mss), *flood, *load,
        ]  # fmt: skip
        params = {
            "pubs": args.publishers, "rate": rate, "stalled": m, "stall_at": stall_at,
            "wake": wake, "max_pending_kb": args.slow_max_pending_kb,
            "payload": args.slow_payload, "flood_kb": args.slow_flood_kb if flood else 0,
            "flood_rate": args.slow_flood_rate,
        }  # fmt: skip
        name = (f"slow consumer: {m} of {s} stalled, {args.slow_deliveries:,} deliv/s x "
                f"{args.slow_payload} B, max_pending {args.slow_max_pending_kb} KiB")  # fmt: skip
        if flood:
            name += f", flood {args.slow_flood_kb} KiB x {args.slow_flood_rate:g}/s"
        out.append(Scenario(name, "slow", s, gen, params, env, log_level="info"))
    return out


def run_once(args: argparse.Namespace, sc: Scenario, rep: int, logdir: Path) -> dict[str, Any]:
    if sc.kind in CLUSTER_KINDS:
        return cluster_run_once(args, sc, rep, logdir)
    tag = re.sub(r"[^a-z0-9]+", "-", sc.name.lower()).strip("-") + f"-r{rep}"
    server = Server(args, logdir / f"{tag}.server.log", sc.env, sc.log_level)
    gen: LoadGen | None = None
    result: dict[str, Any] = {"scenario": sc.name, "rep": rep, "server_cmd": server.cmd}
    result["server_env"] = sc.env
    sampler: RssSampler | None = None
    t_go_wall: float | None = None
    try:
        time.sleep(args.server_settle)
        s0 = sample(server.pid)
        gen = LoadGen(args, server.port, sc.gen_args, logdir / f"{tag}.loadgen.log")
        result["gen_cmd"] = gen.cmd
        setup = gen.expect("SETUP", timeout=330)
        s1 = sample(server.pid)
        time.sleep(args.rss_settle if sc.kind == "connections" else 0.2)
        s1b = sample(server.pid)
        t_go_wall = time.time()
        gen.proceed()
        c2 = core_times(args.server_core), core_times(args.gen_core)
        s2 = sample(server.pid)
        sampler = RssSampler(server.pid)
        g2, gw2 = proc_cpu_s(gen.pid), proc_runq_wait_s(gen.pid)
        duration = sc.params.get("duration_s", args.duration)
        res = gen.expect("RESULT", timeout=max(duration, args.conn_hold) + args.drain + 60)
        sampler.stop()
        result["rss_series"] = sampler.series
        s3 = sample(server.pid)
        c3 = core_times(args.server_core), core_times(args.gen_core)
        g3, gw3 = proc_cpu_s(gen.pid), proc_runq_wait_s(gen.pid)
        result.update(setup=setup, load=res)
        result["server"] = {
            "rss_before_kb": s0.rss_kb,
            "rss_after_setup_kb": s1b.rss_kb,
            "rss_after_load_kb": s3.rss_kb,
            "cpu_setup_s": s1.cpu_s - s0.cpu_s,
            "cpu_load_s": s3.cpu_s - s2.cpu_s,
            "load_wall_s": s3.t - s2.t,
            "runq_wait_setup_s": s1.wait_s - s0.wait_s,
            "runq_wait_load_s": s3.wait_s - s2.wait_s,
        }
        result["gen_proc_cpu_load_s"] = g3 - g2
        result["gen_runq_wait_load_s"] = gw3 - gw2
        result["cores_load"] = {
            "server_core_busy_pct": core_busy_pct(c2[0], c3[0]),
            "gen_core_busy_pct": core_busy_pct(c2[1], c3[1]),
        }
        gen.proceed()  # let it close its sockets (RST: no TIME_WAIT)
        result["gen_status"] = gen.finish()
        gen = None
        result["server_alive_after"] = server.alive()
    except Exception as error:  # a failed run is reported, not fatal
        result["failure"] = f"{type(error).__name__}: {error}"
        result["server_alive_after"] = server.alive()
    finally:
        if sampler is not None:
            sampler.stop()
        if gen is not None:
            gen.finish()
        result["server_exit"] = server.stop()
        result["server_log_problems"] = server.log_problems()[:20]
        result["t_go_wall"] = t_go_wall
        if sc.kind == "slow" and t_go_wall is not None:
            result["slow_closes_s"] = server.slow_closes(t_go_wall)
        result["server_log"] = str(server.log_path)
    return result


# ---- metrics and reporting ----------------------------------------------------------------------


def metrics(sc: Scenario, r: dict[str, Any]) -> dict[str, float]:
    if sc.kind in CLUSTER_KINDS:
        return cluster_metrics(sc, r)
    if "failure" in r:
        return {}
    setup, load, srv = r["setup"], r["load"], r["server"]
    m: dict[str, float] = {}
    if sc.kind == "connections":
        ok = setup["subs_ok"]
        m["ok"] = ok
        m["setup_rate"] = setup["setup_rate"]
        m["setup_s"] = setup["setup_s"]
        m["rss_before_mib"] = srv["rss_before_kb"] / 1024
        m["rss_after_mib"] = srv["rss_after_setup_kb"] / 1024
        m["rss_per_conn_kib"] = (
            (srv["rss_after_setup_kb"] - srv["rss_before_kb"]) / ok if ok else float("nan")
        )
        m["server_cpu_s"] = srv["cpu_setup_s"]
        m["server_wait_pct"] = 100 * srv["runq_wait_setup_s"] / setup["setup_s"]
        m["gen_cpu_s"] = setup["gen_cpu_s"]
        m["idle_cpu_pct"] = 100 * srv["cpu_load_s"] / srv["load_wall_s"]
        m["pings"] = load["pings_answered"]
    elif sc.kind in ("client", "presence", "churn"):
        wall = srv["load_wall_s"] or float("nan")
        m["deliveries_per_s"] = load["deliveries_per_s"]
        m["server_cpu_pct"] = 100 * srv["cpu_load_s"] / wall
        m["gen_cpu_pct"] = 100 * load["gen_cpu_s"] / load["load_wall_s"]
        m["server_wait_pct"] = 100 * srv["runq_wait_load_s"] / wall
        m["server_core_pct"] = r["cores_load"]["server_core_busy_pct"]
        m["gen_core_pct"] = r["cores_load"]["gen_core_busy_pct"]
        m["server_cpu_s"] = srv["cpu_load_s"]
        m["gen_cpu_s"] = load["gen_cpu_s"]
        m["server_rss_mib"] = srv["rss_after_load_kb"] / 1024
        series = r.get("rss_series") or [(0.0, srv["rss_after_setup_kb"])]
        m["rss_peak_mib"] = max(kb for _, kb in series) / 1024
        if sc.kind == "client":
            m["events_per_s"] = load["events_per_s"]
            m["p50"], m["p99"], m["max"] = (
                load["lat_p50_ms"],
                load["lat_p99_ms"],
                load["lat_max_ms"],
            )
        elif sc.kind == "presence":
            m["ops_per_s"] = load["ops_per_s"]
            m["join_p50"], m["join_p99"] = load["join_p50_ms"], load["join_p99_ms"]
            m["leave_p50"], m["leave_p99"] = load["leave_p50_ms"], load["leave_p99_ms"]
            m["join_max"] = load["join_max_ms"]
        else:
            m["cycles_per_s"] = load["cycles_per_s"]
            m["p50"], m["p99"], m["max"] = (
                load["cycle_p50_ms"], load["cycle_p99_ms"], load["cycle_max_ms"],
            )  # fmt: skip
            # RSS at the start of the load, once the warm-up is over (allocator pools
            # populated), and at its end; growth between the last two per 1,000 cycles.
            warm = [kb for t, kb in series if t >= load["warmup_s"]]
            during = [kb for t, kb in series if t <= load["duration_s"]]
            m["rss_start_mib"] = series[0][1] / 1024
            m["rss_warm_mib"] = (warm[0] if warm else series[0][1]) / 1024
            m["rss_end_mib"] = (during[-1] if during else series[-1][1]) / 1024
            cycles = load["cycles"] or float("nan")
            m["rss_growth_kib_per_1k"] = (
                (m["rss_end_mib"] - m["rss_warm_mib"]) * 1024 / cycles * 1000
            )
    else:
        wall = srv["load_wall_s"] or float("nan")
        m["triggers_per_s"] = load["triggers_per_s"]
        m["deliveries_per_s"] = load["deliveries_per_s"]
        m["p50"] = load["lat_p50_ms"]
        m["p99"] = load["lat_p99_ms"]
        m["max"] = load["lat_max_ms"]
        m["server_cpu_pct"] = 100 * srv["cpu_load_s"] / wall
        m["gen_cpu_pct"] = 100 * load["gen_cpu_s"] / load["load_wall_s"]
        m["server_wait_pct"] = 100 * srv["runq_wait_load_s"] / wall
        m["gen_wait_pct"] = 100 * r["gen_runq_wait_load_s"] / wall
        m["server_core_pct"] = r["cores_load"]["server_core_busy_pct"]
        m["gen_core_pct"] = r["cores_load"]["gen_core_busy_pct"]
        m["server_cpu_s"] = srv["cpu_load_s"]
        m["gen_cpu_s"] = load["gen_cpu_s"]
        m["server_rss_mib"] = srv["rss_after_load_kb"] / 1024
        if sc.kind == "slow":
            m.update(slow_metrics(sc, r))
    return m


def _span(values: list[float]) -> tuple[float, float]:
    return (min(values), max(values)) if values else (float("nan"), float("nan"))


def slow_metrics(sc: Scenario, r: dict[str, Any]) -> dict[str, float]:
    """Healthy latency before / during the stall, the stalled subscribers' fate (times in
    seconds after the stall), and the server's RSS around it."""
    stall = r["load"]["stall"]
    m: dict[str, float] = {}
    windows = (("base", "baseline"), ("stall", "during"), ("wake", "after_wake"))
    for key, name in windows:
        window = stall[name]
        for q in ("p50", "p99", "max"):
            m[f"{key}_{q}"] = window[f"{q}_ms"] if window["samples"] else float("nan")
    t_stall = stall["t_stall_s"]
    subs = stall["subs"]
    m["ready"] = stall["ready"]
    m["dropped"] = stall["ready"] - stall["not_dropped"] - stall["unresolved"]
    closes = [t - t_stall for t in r.get("slow_closes_s", []) if t >= t_stall - 0.5]
    m["log_closes"] = len(r.get("slow_closes_s", []))
    m["close_first_s"], m["close_last_s"] = _span(closes)
    aborts = [x["srv_gone_ms"] / 1000 for x in subs if x["group"] == "B" and x["srv_gone_ms"] >= 0]
    m["abort_first_s"], m["abort_last_s"] = _span(aborts)
    # Group A: the last event before the close frame was sent just before the server gave up.
    decided = [x["last_event_sent_ms"] / 1000 for x in subs if x["close_code"] == 4101]
    m["decided_first_s"], m["decided_last_s"] = _span(decided)
    series = r.get("rss_series") or []
    before = [kb for t, kb in series if t <= t_stall]
    after = [kb for t, kb in series if t >= t_stall]
    m["rss_stall_mib"] = (before[-1] if before else float("nan")) / 1024
    m["rss_peak_before_mib"] = (max(before) if before else float("nan")) / 1024
    m["rss_peak_mib"] = (max(after) if after else float("nan")) / 1024
    m["rss_end_mib"] = (series[-1][1] if series else float("nan")) / 1024
    m["rss_growth_kib"] = (m["rss_peak_mib"] - m["rss_stall_mib"]) * 1024
    # The limit is checked after a write: each stalled socket may hold max_pending plus the
    # frames of one loop iteration (here about one event).
    biggest_kib = max(sc.params["flood_kb"], sc.params["payload"] / 1024)
    m["rss_bound_kib"] = sc.params["stalled"] * (sc.params["max_pending_kb"] + biggest_kib)
    m["srv_sendq_max_kib"] = max((x["srv_sendq_max"] for x in subs), default=0) / 1024
    return m


def slow_outcomes(runs: list[dict[str, Any]]) -> str:
    """What the stalled subscribers read once they read again, per group, over the runs."""
    tally: dict[str, dict[str, int]] = {"A": {}, "B": {}}
    for r in runs:
        for x in r.get("load", {}).get("stall", {}).get("subs", []):
            if x["close_code"] == 4101:
                what = "4101 frame+EOF" if x["eof"] else "4101 frame"
            elif x["close_code"] >= 0:
                what = f"close {x['close_code']}"
            elif x["reset"]:
                what = "RST"
            elif x["eof"]:
                what = "EOF, no frame"
            elif x["open_at_end"]:
                what = "still open"
            else:
                what = "unresolved"
            if x["early"]:
                what += " (HUP while stalled)"
            tally[x["group"]][what] = tally[x["group"]].get(what, 0) + 1
    parts = []
    for group, label in (("A", "A (woken)"), ("B", "B (waited)")):
        if tally[group]:
            parts.append(f"{label}: " + ", ".join(f"{n} {w}" for w, n in tally[group].items()))
    return "; ".join(parts) or "-"


def counters(sc: Scenario, r: dict[str, Any]) -> dict[str, int]:
    """Correctness counters, summed over repetitions."""
    if sc.kind in CLUSTER_KINDS:
        return cluster_counters(sc, r)
    c = {"failed_runs": int("failure" in r), "server_died": int(not r.get("server_alive_after"))}
    c["log_problems"] = len(r.get("server_log_problems", []))
    if "failure" in r:
        return c
    setup, load = r["setup"], r["load"]
    c["setup_failed"] = setup["subs_failed"] + setup["pubs_failed"]
    c["setup_timed_out"] = setup["timed_out"]
    c["closed"] = load["sub_closed"] + load["pub_closed"]
    c["pusher_errors"] = load["pusher_errors"]
    if sc.kind == "messages":
        c["lost"] = load["lost"]
        c["dup"] = load["dup"]
        c["non200"] = load["status_other"] + load["unanswered"]
        c["unexpected"] = load["unexpected"] + load["unparsed"] + load["fragmented"]
        c["seq_exhausted"] = load["seq_exhausted"]
    if sc.kind in ("client", "presence", "churn"):
        c["unexpected"] = load["unexpected"] + load["unparsed"] + load["fragmented"]
        c["self_echo"] = load["self_echo"]
        c["subscription_errors"] = load["subscription_errors"]
        c["seq_exhausted"] = load["seq_exhausted"]
        c["dup"] = load["dup"]
    if sc.kind == "client":
        c["lost"] = load["lost"]
        c["err_4301"] = load["err_4301"]
        c["wrong_channel"] = load["wrong_channel"]
    elif sc.kind == "presence":
        c["lost"] = load["lost"]
        c["join_failed"] = load["join_failed"]
        c["ops_unfinished"] = max(load["ops_unfinished"], load["ops_outstanding"])
        c["reconnect_fail"] = load["reconnect_fail"]
        c["verify_timed_out"] = load["verify_timed_out"]
        c["roster_mismatch"] = int(
            load["checker"] != 1
            or load["roster_count"] != load["roster_expected"]
            or load["roster_missing"] != 0
            or load["roster_extra"] != 0
            or load["api_user_count"] != load["members_expected"]
            or load["api_subscription_count"] != load["members_expected"]
        )
    if sc.kind == "slow":
        c["lost"] = load["lost"]
        c["dup"] = load["dup"]
        c["non200"] = load["status_other"] + load["unanswered"]
        c["unexpected"] = load["unexpected"] + load["unparsed"] + load["fragmented"]
        c["seq_exhausted"] = load["seq_exhausted"]
        stall = load["stall"]
        c["stalled_not_dropped"] = stall["not_dropped"]
        c["stalled_unresolved"] = stall["unresolved"]
        c["stalled_other_close"] = sum(
            1 for x in stall["subs"] if x["close_code"] >= 0 and x["close_code"] != 4101
        )
        c["flood_non200"] = load["flood"]["status_other"]
        if load["flood"]["bytes"]:
            c["flood_subs_missing"] = sc.params["stalled"] - load["flood"]["subs_ok"]
    elif sc.kind == "churn":
        c["failures"] = load["failures"]
        c["close_no_frame"] = load["close_no_frame"]
        c["close_timeout"] = load["close_timeout"]
        c["still_open"] = load["still_open"]
        c["subscriptions_left"] = int(load["api_subscription_count"] != 0)
        c["verify_timed_out"] = load["verify_timed_out"]
    return c


def med(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def fmt(v: float, digits: int = 0) -> str:
    if v != v:
        return "-"
    return f"{v:,.{digits}f}"


SHOWN = ("lost", "dup", "non200", "err_4301", "failures", "roster_mismatch",
         "stalled_not_dropped")  # fmt: skip


def problems_cell(c: dict[str, int]) -> str:
    bad = [f"{k}={v}" for k, v in c.items() if v and k not in SHOWN]
    return ", ".join(bad) if bad else "none"


CONN_HEADER = (
    "| scenario | N ok | setup conn/s | setup s | RSS before MiB | RSS after MiB | RSS/conn KiB "
    "| server CPU s | server runq wait % | gen CPU s | idle hold: server CPU % | pings answered "
    "| problems |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)
MSG_HEADER = (
    "| scenario | pubs | triggers/s | deliveries/s | p50 ms | p99 ms | max ms | lost | dup "
    "| non-200 | server CPU % | server runq wait % | gen CPU % | cores busy % srv/gen "
    "| server RSS MiB | problems |"
    "\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


CLIENT_HEADER = (
    "| scenario | senders | client events/s | deliveries/s | p50 ms | p99 ms | max ms | lost "
    "| dup | 4301 errors | server CPU % | server runq wait % | gen CPU % | cores busy % srv/gen "
    "| server RSS MiB | problems |"
    "\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)
PRESENCE_HEADER = (
    "| scenario | members (stable + pool) | joins+leaves/s | member events delivered/s "
    "| join -> member_added p50 / p99 / max ms | leave -> member_removed p50 / p99 ms | lost "
    "| dup | final roster | server CPU % | server runq wait % | gen CPU % | server RSS MiB "
    "| problems |"
    "\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)
CHURN_HEADER = (
    "| scenario | cycles/s | cycle p50 / p99 / max ms | failures "
    "| server RSS MiB: load start / after warm-up / load end | RSS growth KiB per 1k cycles "
    "| server CPU % | server runq wait % | gen CPU % | problems |"
    "\n|---|---|---|---|---|---|---|---|---|---|"
)
SLOW_HEADER = (
    "| scenario | triggers/s | healthy deliveries/s "
    "| healthy p50 / p99 / max ms: before the stall | stalled (until group A reads) "
    "| after group A reads again | lost | dup | non-200 "
    "| stalled dropped | server 4101 closes (log), s after stall "
    "| last event before the 4101 frame, s after stall | abort seen (sock_diag), s after stall "
    "| stalled subscribers read | server RSS MiB: at stall / peak / end (growth KiB, bound) "
    "| max kernel send queue KiB | server CPU % | gen CPU % | problems |"
    "\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)
CFANOUT_HEADER = (
    "| scenario | processes | deliveries/s | triggers/s | backlog at the end: s (last after, ms) "
    "| p50 / p99 / max ms | lost "
    "| dup "
    "| non-200 | CPU %: servers (per worker) | redis-server | generator | machine busy (of 200) "
    "| other | subscribers per worker | server RSS MiB | Redis: this run's keys MiB at the end "
    "| problems |"
    "\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)
CLAT_HEADER = (
    "| scenario | path | deliveries/s | triggers/s | backlog at the end: s (last after, ms) "
    "| p50 ms | p99 ms | max ms | lost "
    "| dup "
    "| non-200 | CPU %: servers (node A ; node B) | redis-server | generator "
    "| machine busy (of 200) | other | problems |"
    "\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)
CCONN_HEADER = (
    "| scenario | held / asked | setup conn/s (all generators) | setup s | connections per worker "
    "| RSS MiB per worker after setup | RSS MiB all processes: before / after | RSS/conn KiB "
    "| Redis used_memory delta MiB (B/conn) | prefix keys (MEMORY USAGE B/conn) "
    "| setup CPU %: servers / redis / generators / other | idle hold CPU %: servers / redis "
    "| pings answered | API subscription_count: held / after | generators gone: sockets released s "
    "| SIGTERM -> all exited s | problems |"
    "\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


HEADERS = {
    "connections": CONN_HEADER,
    "cfanout": CFANOUT_HEADER,
    "clatency": CLAT_HEADER,
    "cconns": CCONN_HEADER,
    "messages": MSG_HEADER,
    "client": CLIENT_HEADER,
    "presence": PRESENCE_HEADER,
    "churn": CHURN_HEADER,
    "slow": SLOW_HEADER,
}
CLUSTER_KINDS = ("cfanout", "clatency", "cconns")


def roster_cell(runs: list[dict[str, Any]], mismatches: int) -> str:
    """The last good run's figures: checker count / expected (the checker included), and the
    HTTP API's user_count / subscription_count against the members the generator holds."""
    loads = [r["load"] for r in runs if "load" in r]
    if not loads:
        return "-"
    ld = loads[-1]
    text = (
        f"checker {ld['roster_count']}/{ld['roster_expected']}, API users "
        f"{ld['api_user_count']}/{ld['members_expected']}"
    )
    return ("MISMATCH " if mismatches else "ok: ") + text


def row(sc: Scenario, runs: list[dict[str, Any]]) -> str:
    if sc.kind in CLUSTER_KINDS:
        return cluster_row(sc, runs)
    ms = [metrics(sc, r) for r in runs]
    ms = [m for m in ms if m]
    cs = [counters(sc, r) for r in runs]
    total: dict[str, int] = {}
    for c in cs:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v

    def g(key: str) -> float:
        return med([m[key] for m in ms]) if ms else float("nan")

    def gen_note(cell: str) -> str:
        return cell + (" (generator near saturation)" if g("gen_cpu_pct") > 90 else "")

    if sc.kind == "client":
        how = f"{sc.params['senders']} " + (
            f"x{sc.params['window']} closed" if "window" in sc.params else "@ fixed rate"
        )
        cells = [
            sc.name, how, fmt(g("events_per_s"), 1), fmt(g("deliveries_per_s")),
            fmt(g("p50"), 2), fmt(g("p99"), 2), fmt(g("max"), 2),
            str(total.get("lost", "-")), str(total.get("dup", "-")),
            str(total.get("err_4301", "-")), fmt(g("server_cpu_pct")), fmt(g("server_wait_pct")),
            fmt(g("gen_cpu_pct")), f"{fmt(g('server_core_pct'))}/{fmt(g('gen_core_pct'))}",
            fmt(g("server_rss_mib"), 1), gen_note(problems_cell(total)),
        ]  # fmt: skip
        return "| " + " | ".join(cells) + " |"
    if sc.kind == "presence":
        p = sc.params
        how = f"window {p['window']}" if "window" in p else f"{p['rate']:g} ops/s"
        cells = [
            f"{sc.name} ({how})", f"{p['members']} ({p['stable']} + {p['pool']}/2)",
            fmt(g("ops_per_s"), 1), fmt(g("deliveries_per_s")),
            f"{fmt(g('join_p50'), 2)} / {fmt(g('join_p99'), 2)} / {fmt(g('join_max'), 2)}",
            f"{fmt(g('leave_p50'), 2)} / {fmt(g('leave_p99'), 2)}",
            str(total.get("lost", "-")), str(total.get("dup", "-")),
            roster_cell(runs, total.get("roster_mismatch", 0)), fmt(g("server_cpu_pct")),
            fmt(g("server_wait_pct")), fmt(g("gen_cpu_pct")), fmt(g("server_rss_mib"), 1),
            gen_note(problems_cell(total)),
        ]  # fmt: skip
        return "| " + " | ".join(cells) + " |"
    if sc.kind == "slow":

        def span(a: str, b: str) -> str:
            lo, hi = g(a), g(b)
            if lo != lo:
                return "-"
            return fmt(lo, 2) if abs(hi - lo) < 0.005 else f"{fmt(lo, 2)} to {fmt(hi, 2)}"

        def lat(key: str) -> str:
            return (
                f"{fmt(g(key + '_p50'), 2)} / {fmt(g(key + '_p99'), 2)} / {fmt(g(key + '_max'), 2)}"
            )

        stalled = sc.params["stalled"]
        dropped = "-" if not stalled else f"{fmt(g('dropped'))}/{fmt(g('ready'))}"
        closes = (
            "-"
            if not g("log_closes")
            else f"{fmt(g('log_closes'))}: {span('close_first_s', 'close_last_s')}"
        )
        rss = (f"{fmt(g('rss_stall_mib'), 1)} / {fmt(g('rss_peak_mib'), 1)} / "
               f"{fmt(g('rss_end_mib'), 1)} ({fmt(g('rss_growth_kib'))}, "
               f"{fmt(g('rss_bound_kib'))})")  # fmt: skip
        cells = [
            sc.name, fmt(g("triggers_per_s"), 1), fmt(g("deliveries_per_s")), lat("base"),
            lat("stall"), lat("wake"), str(total.get("lost", "-")), str(total.get("dup", "-")),
            str(total.get("non200", "-")), dropped, closes,
            span("decided_first_s", "decided_last_s"), span("abort_first_s", "abort_last_s"),
            slow_outcomes(runs) if stalled else "-", rss,
            fmt(g("srv_sendq_max_kib")) if stalled else "-", fmt(g("server_cpu_pct")),
            fmt(g("gen_cpu_pct")), gen_note(problems_cell(total)),
        ]  # fmt: skip
        return "| " + " | ".join(cells) + " |"
    if sc.kind == "churn":
        cells = [
            sc.name, fmt(g("cycles_per_s")),
            f"{fmt(g('p50'), 2)} / {fmt(g('p99'), 2)} / {fmt(g('max'), 2)}",
            str(total.get("failures", "-")),
            f"{fmt(g('rss_start_mib'), 1)} / {fmt(g('rss_warm_mib'), 1)} / "
            f"{fmt(g('rss_end_mib'), 1)}",
            fmt(g("rss_growth_kib_per_1k"), 2), fmt(g("server_cpu_pct")),
            fmt(g("server_wait_pct")), fmt(g("gen_cpu_pct")), gen_note(problems_cell(total)),
        ]  # fmt: skip
        return "| " + " | ".join(cells) + " |"
    if sc.kind == "connections":
        cells = [
            sc.name, fmt(g("ok")), fmt(g("setup_rate")), fmt(g("setup_s"), 2),
            fmt(g("rss_before_mib"), 1), fmt(g("rss_after_mib"), 1),
            fmt(g("rss_per_conn_kib"), 2), fmt(g("server_cpu_s"), 2), fmt(g("server_wait_pct")),
            fmt(g("gen_cpu_s"), 2),
            f"{fmt(g('idle_cpu_pct'), 1)} ({sc.params['hold']:g} s)", fmt(g("pings")),
            problems_cell(total),
        ]  # fmt: skip
    else:
        pubs = f"{sc.params['pubs']}"
        if "depth" in sc.params:
            pubs += f" x{sc.params['depth']} closed"
        else:
            pubs += f" @{sc.params['rate']:g}/s"
        notes = problems_cell(total)
        if g("gen_cpu_pct") > 90:
            notes += " (generator near saturation)"
        cells = [
            sc.name, pubs, fmt(g("triggers_per_s"), 1), fmt(g("deliveries_per_s")),
            fmt(g("p50"), 2), fmt(g("p99"), 2), fmt(g("max"), 2),
            str(total.get("lost", "-")), str(total.get("dup", "-")),
            str(total.get("non200", "-")), fmt(g("server_cpu_pct")),
            fmt(g("server_wait_pct")), fmt(g("gen_cpu_pct")),
            f"{fmt(g('server_core_pct'))}/{fmt(g('gen_core_pct'))}",
            fmt(g("server_rss_mib"), 1), notes,
        ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


# ---- cluster (Redis) --------------------------------------------------------------------------
#
# cluster-fanout, cluster-latency and cluster-connections run Clarion as several processes that
# share state and delivery through Redis (`--workers N` on one port, or separate `clarion serve`
# nodes with the same --redis-prefix). Each run gets its own prefix `clarion-bench:<hex>`; its
# keys are counted after the servers have shut down (what a clean shutdown left behind) and then
# deleted. The driver never writes to Redis otherwise: INFO, DBSIZE, SCAN, MEMORY USAGE and
# UNLINK of its own prefix only.


class Redis:
    """A minimal RESP2 client over one blocking socket (no dependency beyond the stdlib)."""

    def __init__(self, url: str) -> None:
        u = urlsplit(url)
        if u.scheme != "redis" or u.hostname not in ("127.0.0.1", "localhost"):
            raise SystemExit(f"--redis-url: only redis://127.0.0.1 is allowed, got {url!r}")
        self.sock = socket.create_connection((u.hostname, u.port or 6379), timeout=30)
        self.buf = b""
        if u.password:
            self.cmd("AUTH", *([u.username] if u.username else []), u.password)
        db = (u.path or "/").strip("/")
        if db and db != "0":
            self.cmd("SELECT", db)

    def close(self) -> None:
        self.sock.close()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def _reply(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(f"redis: {rest.decode(errors='replace')}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError(f"redis: unexpected reply {line[:80]!r}")

    @staticmethod
    def _encode(parts: tuple[str | bytes, ...]) -> bytes:
        out = [f"*{len(parts)}\r\n".encode()]
        for p in parts:
            b = p if isinstance(p, bytes) else str(p).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        return b"".join(out)

    def cmd(self, *parts: str | bytes) -> Any:
        self.sock.sendall(self._encode(parts))
        return self._reply()

    def pipeline(self, cmds: list[tuple[str | bytes, ...]]) -> list[Any]:
        out: list[Any] = []
        for i in range(0, len(cmds), 1000):
            batch = cmds[i : i + 1000]
            self.sock.sendall(b"".join(self._encode(c) for c in batch))
            out += [self._reply() for _ in batch]
        return out

    def info(self, section: str) -> dict[str, str]:
        text = self.cmd("INFO", section).decode()
        return dict(
            line.split(":", 1) for line in text.splitlines() if ":" in line and line[0] != "#"
        )

    def cpu_s(self) -> float:
        i = self.info("cpu")
        return float(i["used_cpu_user"]) + float(i["used_cpu_sys"])

    def used_memory(self) -> int:
        return int(self.info("memory")["used_memory"])

    def keys(self, prefix: str) -> list[bytes]:
        """Every key under `<prefix>:` (the prefix is `clarion-bench:<hex>`: no glob chars)."""
        out, cursor = [], b"0"
        while True:
            cursor, batch = self.cmd("SCAN", cursor, "MATCH", f"{prefix}:*", "COUNT", "1000")
            out += batch
            if cursor == b"0":
                break
        if self.cmd("EXISTS", prefix):
            out.append(prefix.encode())
        return sorted(set(out))

    def memory_usage(self, keys: list[bytes]) -> int:
        got = self.pipeline([("MEMORY", "USAGE", k, "SAMPLES", "0") for k in keys])
        return sum(x or 0 for x in got)

    def key_types(self, keys: list[bytes]) -> dict[str, int]:
        types: dict[str, int] = {}
        for t in self.pipeline([("TYPE", k) for k in keys]):
            types[t] = types.get(t, 0) + 1
        return types

    def delete(self, keys: list[bytes]) -> int:
        return sum(self.pipeline([("UNLINK", k) for k in keys]))


API_ERRORS: list[str] = []  # what went wrong with api_subscription_count, for the JSON


def api_subscription_count(port: int, channel: str = "bench") -> int:
    """The channel's subscription_count from a signed `GET /apps/{id}/channels/{channel}`
    (reference 5.2) on a new connection, so with --workers any worker may answer it; -1 on an
    error (noted in API_ERRORS). An unoccupied channel counts 0."""
    path = f"/apps/{APP_ID}/channels/{channel}"
    query = f"auth_key={APP_KEY}&auth_timestamp={int(time.time())}&auth_version=1.0"
    query += "&info=subscription_count"
    sig = hmac.new(APP_SECRET.encode(), f"GET\n{path}\n{query}".encode(), hashlib.sha256)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", f"{path}?{query}&auth_signature={sig.hexdigest()}")
        resp = conn.getresponse()
        body = json.loads(resp.read() or b"{}")
        if resp.status != 200:
            API_ERRORS.append(f"{resp.status} {body}"[:300])
            return -1
        return int(body.get("subscription_count", 0)) if body.get("occupied") else 0
    except (OSError, ValueError) as error:
        API_ERRORS.append(f"{type(error).__name__}: {error}"[:300])
        return -1
    finally:
        conn.close()


def tree_pids(root: int) -> list[int]:
    """`root` and all its descendants (the `--workers` supervisor and its children)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, i = [root], 0
    while i < len(out):
        out += sorted(children.get(out[i], []))
        i += 1
    return out


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def socket_fds(pid: int) -> int:
    """Open sockets of a process (its connections, listening socket and Redis clients)."""
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
    except OSError:
        return -1
    return n


def machine_times() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs (/proc/stat "cpu" line; busy as in core_times)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


@dataclass
class Snap:
    t: float
    procs: dict[int, tuple[float, int, float]]  # pid -> (cpu s, RSS KiB, run-queue wait s)
    gens: dict[int, float]  # generator pid -> cpu s
    machine: tuple[int, int]
    redis_cpu_s: float
    redis_mem: int
    sockets: dict[int, int] = field(default_factory=dict)


def snap(pids: list[int], gen_pids: list[int], redis: Redis | None, socks: bool = False) -> Snap:
    procs = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            procs[pid] = (proc_cpu_s(pid), proc_rss_kb(pid), proc_runq_wait_s(pid))
    gens = {}
    for pid in gen_pids:
        with contextlib.suppress(OSError):
            gens[pid] = proc_cpu_s(pid)
    return Snap(
        time.monotonic(),
        procs,
        gens,
        machine_times(),
        redis.cpu_s() if redis else float("nan"),
        redis.used_memory() if redis else -1,
        {pid: socket_fds(pid) for pid in pids} if socks else {},
    )


def window(a: Snap, b: Snap) -> dict[str, Any]:
    """CPU between two snapshots, in % of one core (the machine's 2 cores: 200 %)."""
    wall = b.t - a.t
    busy = (b.machine[0] - a.machine[0]) / CLK_TCK
    per = {
        pid: 100 * (b.procs[pid][0] - a.procs[pid][0]) / wall for pid in b.procs if pid in a.procs
    }
    wait = {
        pid: 100 * (b.procs[pid][2] - a.procs[pid][2]) / wall for pid in b.procs if pid in a.procs
    }
    gens = sum(b.gens[p] - a.gens[p] for p in b.gens if p in a.gens)
    srv = sum(per.values()) * wall / 100
    redis = b.redis_cpu_s - a.redis_cpu_s
    ncpu = os.cpu_count() or 1
    return {
        "wall_s": wall,
        "server_pct": {str(p): round(v, 3) for p, v in per.items()},
        "server_wait_pct": {str(p): round(v, 3) for p, v in wait.items()},
        "servers_pct": 100 * srv / wall,
        "redis_pct": 100 * redis / wall,
        "gen_pct": 100 * gens / wall,
        # busy jiffies over all CPUs, as % of one core; "other" is what no process of this
        # run accounts for: other processes (other Redis clients' share is inside redis_pct),
        # and softirq/kernel work charged to no process.
        "machine_pct": 100 * busy / wall,
        "ncpu": ncpu,
        "other_pct": 100 * (busy - srv - redis - gens) / wall,
    }


def rss_map(s: Snap) -> dict[str, int]:
    return {str(pid): v[1] for pid, v in s.procs.items()}


class Node:
    """One `clarion serve` for a cluster scenario: embedded (no Redis) or a Redis node, with
    `--workers N` or without; its process tree (the supervisor and its workers)."""

    def __init__(
        self,
        args: argparse.Namespace,
        log_path: Path,
        redis_env: dict[str, str] | None,
        workers: int,
        core: str | None,
    ) -> None:
        extra = ["--workers", str(workers)] if workers else []
        self.server = Server(args, log_path, redis_env, None, extra, core)
        self.port = self.server.port
        self.workers = workers
        self.pids = [self.server.pid]

    def settle(self, timeout: float = 15.0) -> None:
        """Wait until the supervisor has all its workers (the listening line may come first)."""
        deadline = time.monotonic() + timeout
        want = 1 + self.workers if self.workers > 1 else 1  # --workers 1: no supervisor
        while True:
            self.pids = tree_pids(self.server.pid)
            if len(self.pids) >= want or time.monotonic() > deadline:
                return
            time.sleep(0.2)

    def worker_pids(self) -> list[int]:
        """The processes that serve connections: the children of a --workers supervisor (the
        supervisor itself if it has none)."""
        return self.pids[1:] if len(self.pids) > 1 else self.pids

    def stop(self, timeout: float) -> dict[str, Any]:
        """SIGTERM to the supervisor; SIGKILL after `timeout` s. Workers still alive 10 s
        after their supervisor exited are reported as orphans and killed (ours, by pid)."""
        pids = tree_pids(self.server.pid) if self.server.alive() else self.pids
        t0 = time.monotonic()
        status = self.server.stop(timeout)
        stop_s = time.monotonic() - t0
        deadline = time.monotonic() + 10
        while any(pid_alive(p) for p in pids[1:]) and time.monotonic() < deadline:
            time.sleep(0.1)
        workers_s = time.monotonic() - t0
        left = [p for p in pids[1:] if pid_alive(p)]
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return {"exit": status, "orphans": left, "stop_s": round(stop_s, 2),
                "all_gone_s": round(workers_s, 2)}  # fmt: skip


def cluster_scenarios(args: argparse.Namespace, name: str) -> list[Scenario]:
    load = ["--duration", str(args.duration), "--warmup", str(args.warmup),
            "--drain", str(args.drain)]  # fmt: skip
    out = []
    if name == "cluster-fanout":
        pin = args.cluster_fanout_pin
        for s in args.fanout_subs:
            # the closed loop (max rate), then each fixed rate of --cluster-fanout-rates
            for rate in [0, *args.cluster_fanout_rates]:
                for w in args.cluster_workers:
                    topo = "embedded, no Redis" if w == 0 else f"--workers {w} + Redis"
                    how = (["--mode", "closed", "--depth", str(args.depth)] if not rate
                           else ["--mode", "rate", "--rate", repr(rate / s)])  # fmt: skip
                    gen = ["--subs", str(s), "--pubs", str(args.publishers), *how, *load]
                    params = {
                        "nodes": [w], "redis": w > 0, "pin": pin, "subs": s, "sub_node": 0,
                        "pub_node": 0, "gens": [gen], "topo": topo, "workers": w,
                        "pubs": args.publishers, "depth": args.depth, "rate": rate,
                    }  # fmt: skip
                    what = "max" if not rate else f"{rate:,} deliv/s"
                    name_ = f"cluster fan-out {what}, {s} subs, {topo}"
                    out.append(Scenario(name_, "cfanout", s, gen, params))
    elif name == "cluster-latency":
        pin = args.cluster_latency_pin
        for s in args.cluster_lat_subs:
            rate = args.cluster_lat_deliveries / s
            gen = ["--subs", str(s), "--pubs", str(args.publishers), "--mode", "rate",
                   "--rate", repr(rate), *load]  # fmt: skip
            for path in args.cluster_lat_paths:
                if path == "embedded":
                    nodes, sub, pub, redis = [0], 0, 0, False
                    what = "embedded single process (no Redis): subscribers and triggers on it"
                elif path == "same":
                    nodes, sub, pub, redis = [0, 0], 1, 1, True
                    what = "same node: subscribers and triggers on node B (node A idle)"
                elif path == "both":
                    nodes, sub, pub, redis = [0, 0], -1, 0, True
                    what = ("subscribers half on node A, half on node B, triggers to node A "
                            "(p50/p99/max: all; per node in the notes)")  # fmt: skip
                else:
                    nodes, sub, pub, redis = [0, 0], 1, 0, True
                    what = "cross-node: subscribers on node B, triggers to node A"
                params = {
                    "nodes": nodes, "redis": redis, "pin": pin, "subs": s, "sub_node": sub,
                    "pub_node": pub, "gens": [gen], "path": path, "what": what, "rate": rate,
                    "pubs": args.publishers,
                }  # fmt: skip
                out.append(
                    Scenario(
                        f"cluster latency {args.cluster_lat_deliveries:,} deliv/s, {s} subs, "
                        f"{path}",
                        "clatency",
                        s,
                        gen,
                        params,
                    )
                )
    elif name == "cluster-connections":
        total, per = args.cluster_conns, args.cluster_conns_per_gen
        ngens = -(-total // per)
        lo, hi = args.cluster_src_ports
        gens = []
        for i in range(ngens):
            n = total // ngens + (1 if i < total % ngens else 0)
            # Source ports below ip_local_port_range (see loadgen's --bind-range), each address
            # using at most 90 % of them; every generator has its own addresses.
            k = -(-n // int(0.9 * (hi - lo + 1)))
            gens.append(["--subs", str(n), "--mode", "none", "--setup-timeout", "300",
                         "--duration", str(args.conn_hold), "--src-ips", f"127.0.{10 + i}.1+{k}",
                         "--bind-range", f"{lo}-{hi}"])  # fmt: skip
        w = args.cluster_conn_workers
        params = {
            "nodes": [w], "redis": True, "pin": "none", "subs": total, "sub_node": 0,
            "pub_node": 0, "gens": gens, "workers": w, "hold": args.conn_hold,
            "ngens": ngens,
        }  # fmt: skip
        out.append(
            Scenario(
                f"cluster connections N={total}, --workers {w}, {ngens} generators",
                "cconns",
                total,
                gens[0],
                params,
            )
        )
    return out


def cluster_run_once(
    args: argparse.Namespace, sc: Scenario, rep: int, logdir: Path
) -> dict[str, Any]:
    tag = re.sub(r"[^a-z0-9]+", "-", sc.name.lower()).strip("-") + f"-r{rep}"
    p = sc.params
    prefix = f"clarion-bench:{secrets.token_hex(6)}"
    split = p["pin"] == "split"
    server_core = str(args.server_core) if split else None
    gen_core = str(args.gen_core) if split else None
    result: dict[str, Any] = {"scenario": sc.name, "rep": rep, "params": p, "pin": p["pin"]}
    with open("/proc/loadavg") as f:  # how busy the machine was before this run
        result["loadavg_before"] = f.read().split()[:3]
    redis: Redis | None = None
    nodes: list[Node] = []
    gens: list[LoadGen] = []
    try:
        redis = Redis(args.redis_url)
        env = {"CLARION_REDIS_URL": args.redis_url, "CLARION_REDIS_PREFIX": prefix}
        result["redis_prefix"] = prefix if p["redis"] else None
        for i, w in enumerate(p["nodes"]):
            node = Node(args, logdir / f"{tag}.node{'AB'[i]}.log", env if p["redis"] else None,
                        w, server_core)  # fmt: skip
            nodes.append(node)
        for node in nodes:
            node.settle()
        result["server_cmds"] = [n.server.cmd for n in nodes]
        result["server_env"] = env if p["redis"] else {}
        result["node_pids"] = [n.pids for n in nodes]
        time.sleep(args.server_settle)
        for node in nodes:  # a worker may have been replaced meanwhile
            node.settle(0)
        pids = [pid for n in nodes for pid in n.pids]
        result["node_pids"] = [n.pids for n in nodes]
        s0 = snap(pids, [], redis, socks=True)
        sub_port, pub_port = nodes[max(0, p["sub_node"])].port, nodes[p["pub_node"]].port
        spread_ports = []  # subscribers on every node: --ports, round robin
        if p["sub_node"] < 0:
            spread_ports = ["--ports", ",".join(str(n.port) for n in nodes)]
        for i, gen_args in enumerate(p["gens"]):
            extra = [*gen_args, *spread_ports, "--pub-port", str(pub_port)]
            gens.append(LoadGen(args, sub_port, extra, logdir / f"{tag}.loadgen{i}.log", gen_core))
        result["gen_cmds"] = [g.cmd for g in gens]
        gen_pids = [g.pid for g in gens]
        setups = [g.expect("SETUP", timeout=330) for g in gens]
        s1 = snap(pids, gen_pids, redis)
        time.sleep(args.rss_settle if sc.kind == "cconns" else 0.2)
        s1b = snap(pids, gen_pids, redis, socks=True)
        if sc.kind == "cconns":  # what the cluster reports: any worker must see them all
            API_ERRORS.clear()
            result["api_count_held"] = [api_subscription_count(sub_port) for _ in range(3)]
            result["api_errors"] = list(API_ERRORS)
        if p["redis"] and sc.kind == "cconns":
            keys = redis.keys(prefix)
            result["prefix_keys"] = len(keys)
            result["prefix_key_types"] = redis.key_types(keys)
            result["prefix_key_bytes"] = redis.memory_usage(keys)
        for g in gens:
            g.proceed()
        s2 = snap(pids, gen_pids, redis)
        loads = [
            g.expect("RESULT", timeout=max(args.duration, args.conn_hold) + args.drain + 60)
            for g in gens
        ]
        s3 = snap(pids, gen_pids, redis)
        if p["redis"]:  # what the run keeps in Redis at its end (the bus stream among it)
            keys = redis.keys(prefix)
            result["end_keys"] = len(keys)
            result["end_key_types"] = redis.key_types(keys)
            result["end_key_bytes"] = redis.memory_usage(keys)
            result["end_redis_mem"] = redis.used_memory()
        for g in gens:
            g.proceed()
        result["gen_status"] = [g.finish() for g in gens]
        gens = []
        if sc.kind == "cconns":  # how long the servers take to let go of the closed sockets
            t0, base = time.monotonic(), sum(s0.sockets.values())
            while time.monotonic() - t0 < 60:
                now = sum(max(0, socket_fds(pid)) for pid in pids)
                if now <= base + 10:
                    break
                time.sleep(0.5)
            result["release_s"] = round(time.monotonic() - t0, 2)
            result["release_left"] = now - base
            # then until the cluster's count is back to 0 (at most 30 s)
            API_ERRORS.clear()
            result["api_count_after"] = [api_subscription_count(sub_port) for _ in range(3)]
            t1 = time.monotonic()
            while any(x != 0 for x in result["api_count_after"]) and time.monotonic() - t1 < 30:
                time.sleep(0.5)
                result["api_count_after"] = [api_subscription_count(sub_port) for _ in range(3)]
            result["api_zero_s"] = round(time.monotonic() - t0, 2)
            result["api_errors"] = result.get("api_errors", []) + API_ERRORS[:10]
        result.update(setups=setups, loads=loads)
        result["setup_cpu"] = window(s0, s1)
        # the generators started after s0: their CPU for the setup is their own figure
        gen_setup = 100 * sum(x["gen_cpu_s"] for x in setups) / result["setup_cpu"]["wall_s"]
        result["setup_cpu"]["gen_pct"] = gen_setup
        result["setup_cpu"]["other_pct"] -= gen_setup
        result["load_cpu"] = window(s2, s3)
        result["rss_before_kb"] = rss_map(s0)
        result["rss_after_setup_kb"] = rss_map(s1b)
        result["rss_after_load_kb"] = rss_map(s3)
        result["sockets_before"] = {str(k): v for k, v in s0.sockets.items()}
        result["sockets_after_setup"] = {str(k): v for k, v in s1b.sockets.items()}
        result["redis_mem_before"] = s0.redis_mem
        result["redis_mem_after_setup"] = s1b.redis_mem
        result["server_alive_after"] = all(n.server.alive() for n in nodes)
        result["workers_alive_after"] = all(pid_alive(pid) for pid in pids)
    except Exception as error:  # a failed run is reported, not fatal
        result["failure"] = f"{type(error).__name__}: {error}"
        result["server_alive_after"] = all(n.server.alive() for n in nodes)
    finally:
        for g in gens:
            g.finish()
        result["stops"] = [n.stop(args.cluster_stop_timeout) for n in nodes]
        result["server_log_problems"] = [x for n in nodes for x in n.server.log_problems()][:20]
        result["server_logs"] = [str(n.server.log_path) for n in nodes]
        if redis is not None:
            try:
                if p["redis"]:
                    left = redis.keys(prefix)
                    # the bus stream is kept by design (capped history for nodes that come back)
                    result["bus_left"] = f"{prefix}:bus".encode() in left
                    result["keys_left"] = len(left) - result["bus_left"]
                    result["keys_left_sample"] = [k.decode(errors="replace") for k in left[:10]]
                    redis.delete(left)
                    result["keys_left_after_delete"] = len(redis.keys(prefix))
            finally:
                redis.close()
    return result


def _sum(loads: list[dict[str, Any]], key: str) -> float:
    return float(sum(x.get(key, 0) for x in loads))


def cluster_metrics(sc: Scenario, r: dict[str, Any]) -> dict[str, float]:
    if "failure" in r:
        return {}
    m: dict[str, float] = {}
    setups, loads = r["setups"], r["loads"]
    if sc.kind in ("cfanout", "clatency"):
        ld, cpu = loads[0], r["load_cpu"]
        m["deliveries_per_s"] = ld["deliveries_per_s"]
        m["triggers_per_s"] = ld["triggers_per_s"]
        m["p50"], m["p99"], m["max"] = ld["lat_p50_ms"], ld["lat_p99_ms"], ld["lat_max_ms"]
        for k in ("servers_pct", "redis_pct", "gen_pct", "machine_pct", "other_pct"):
            m[k] = cpu[k]
        m["server_rss_mib"] = sum(r["rss_after_load_kb"].values()) / 1024
        m["end_key_mib"] = r.get("end_key_bytes", float("nan")) / 2**20
        # What was still to deliver when the load stopped, in seconds of the measured rate, and
        # the time from the end of the load to the last delivery: a rate the servers sustain
        # leaves about one latency's worth; a backlog that grew through the run leaves more
        # (it is delivered during the drain: it counts for loss, not for deliveries/s).
        rate = ld["deliveries_per_s"]
        m["backlog_s"] = ld["deliveries_after_end"] / rate if rate else float("nan")
        m["last_ms"] = ld["last_delivery_after_end_ms"]
        return m
    # cconns
    ok = _sum(setups, "subs_ok")
    t0 = min(x["t0_mono_ns"] for x in setups)
    t1 = max(x["t_last_mono_ns"] for x in setups)
    m["ok"] = ok
    m["setup_s"] = (t1 - t0) / 1e9
    m["setup_rate"] = ok / m["setup_s"] if t1 > t0 else float("nan")
    before, after = r["rss_before_kb"], r["rss_after_setup_kb"]
    m["rss_before_mib"] = sum(before.values()) / 1024
    m["rss_after_mib"] = sum(after.values()) / 1024
    m["rss_per_conn_kib"] = (
        (sum(after.values()) - sum(before.values())) / ok if ok else float("nan")
    )
    m["redis_mem_delta_mib"] = (r["redis_mem_after_setup"] - r["redis_mem_before"]) / 2**20
    m["redis_b_per_conn"] = (
        (r["redis_mem_after_setup"] - r["redis_mem_before"]) / ok if ok else float("nan")
    )
    m["prefix_keys"] = r.get("prefix_keys", float("nan"))
    m["prefix_b_per_conn"] = r.get("prefix_key_bytes", float("nan")) / ok if ok else float("nan")
    m["setup_servers_pct"] = r["setup_cpu"]["servers_pct"]
    m["setup_redis_pct"] = r["setup_cpu"]["redis_pct"]
    m["setup_gen_pct"] = r["setup_cpu"]["gen_pct"]
    m["setup_other_pct"] = r["setup_cpu"]["other_pct"]
    m["idle_servers_pct"] = r["load_cpu"]["servers_pct"]
    m["idle_redis_pct"] = r["load_cpu"]["redis_pct"]
    m["pings"] = _sum(loads, "pings_answered")
    m["release_s"] = r.get("release_s", float("nan"))
    m["stop_s"] = max((x["all_gone_s"] for x in r.get("stops", [])), default=float("nan"))
    return m


def cluster_counters(sc: Scenario, r: dict[str, Any]) -> dict[str, int]:
    c = {"failed_runs": int("failure" in r), "server_died": int(not r.get("server_alive_after"))}
    c["log_problems"] = len(r.get("server_log_problems", []))
    c["orphans"] = sum(len(s["orphans"]) for s in r.get("stops", []))
    c["bad_exit"] = sum(1 for s in r.get("stops", []) if s["exit"] not in (0, None))
    if "failure" in r:
        return c
    c["worker_died"] = int(not r.get("workers_alive_after", True))
    setups, loads = r["setups"], r["loads"]
    c["setup_failed"] = int(_sum(setups, "subs_failed") + _sum(setups, "pubs_failed"))
    c["setup_timed_out"] = int(_sum(setups, "timed_out"))
    c["bind_fallbacks"] = int(_sum(setups, "bind_fallbacks"))
    c["closed"] = int(_sum(loads, "sub_closed") + _sum(loads, "pub_closed"))
    c["pusher_errors"] = int(_sum(loads, "pusher_errors"))
    c["connect_errors"] = int(
        sum(sum(x["connect_errors"].values()) for x in setups)
        + sum(sum(x["connect_errors"].values()) for x in loads)
    )
    if sc.kind == "cconns":
        ok = int(_sum(setups, "subs_ok"))
        c["api_count_wrong"] = sum(1 for x in r.get("api_count_held", []) if x != ok)
        c["api_count_left"] = sum(1 for x in r.get("api_count_after", []) if x != 0)
        c["sockets_not_released"] = int(r.get("release_left", 0) > 10)
    if sc.kind in ("cfanout", "clatency"):
        c["lost"] = int(_sum(loads, "lost"))
        c["dup"] = int(_sum(loads, "dup"))
        c["non200"] = int(_sum(loads, "status_other") + _sum(loads, "unanswered"))
        c["unexpected"] = int(
            _sum(loads, "unexpected") + _sum(loads, "unparsed") + _sum(loads, "fragmented")
        )
        c["seq_exhausted"] = int(_sum(loads, "seq_exhausted"))
    return c


def spread(r: dict[str, Any], node: int = 0) -> str:
    """Connections each serving process holds: its sockets after setup minus before."""
    if "failure" in r:
        return "-"
    pids = r["node_pids"][node]
    pids = pids[1:] if len(pids) > 1 else pids
    b, a = r["sockets_before"], r["sockets_after_setup"]
    return " / ".join(f"{a.get(str(p), 0) - b.get(str(p), 0):,}" for p in pids)


def per_proc_cpu(r: dict[str, Any]) -> str:
    if "failure" in r:
        return "-"
    per = r["load_cpu"]["server_pct"]
    groups = []
    for pids in r["node_pids"]:
        shown = pids[1:] if len(pids) > 1 else pids
        text = "+".join(f"{per.get(str(p), float('nan')):.0f}" for p in shown)
        if len(pids) > 1:  # the supervisor's own share
            text += f" (sup {per.get(str(pids[0]), float('nan')):.0f})"
        groups.append(text)
    return " ; ".join(groups)


def counts(values: list[int]) -> str:
    """Answers of repeated API queries: "60,000 (3x)" when they agree."""
    if not values:
        return "-"
    if len(set(values)) == 1:
        return f"{values[0]:,} ({len(values)}x)"
    return ", ".join(f"{v:,}" for v in values)


def cluster_row(sc: Scenario, runs: list[dict[str, Any]]) -> str:
    ms = [m for m in (cluster_metrics(sc, r) for r in runs) if m]
    total: dict[str, int] = {}
    for c in (cluster_counters(sc, r) for r in runs):
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    good = [r for r in runs if "failure" not in r]
    last = good[-1] if good else runs[-1]
    keys_left = sum(r.get("keys_left", 0) for r in runs)

    def g(key: str) -> float:
        return med([m[key] for m in ms]) if ms else float("nan")

    probs = problems_cell(total)
    if keys_left:
        probs += f"; {keys_left} prefix keys besides the bus stream left after shutdown"
    if sc.kind == "cfanout":
        w = sc.params["workers"]
        procs = "1 (embedded)" if w == 0 else f"{w} (--workers {w}, Redis)"
        rss_list = (
            " / ".join(f"{v / 1024:.0f}" for v in last["rss_after_load_kb"].values())
            if "rss_after_load_kb" in last
            else "-"
        )
        cells = [
            f"fan-out {'max' if not sc.params['rate'] else format(sc.params['rate'], ',')}"
            f"{' deliv/s' if sc.params['rate'] else ''}, {sc.subs:,} subs", procs,
            fmt(g("deliveries_per_s")), fmt(g("triggers_per_s"), 1),
            f"{fmt(g('backlog_s'), 2)} ({fmt(g('last_ms'))})",
            f"{fmt(g('p50'), 2)} / {fmt(g('p99'), 2)} / {fmt(g('max'), 2)}",
            str(total.get("lost", "-")), str(total.get("dup", "-")),
            str(total.get("non200", "-")),
            f"{fmt(g('servers_pct'))} ({per_proc_cpu(last)})", fmt(g("redis_pct")),
            fmt(g("gen_pct")), fmt(g("machine_pct")), fmt(g("other_pct")), spread(last),
            f"{fmt(g('server_rss_mib'), 1)} ({rss_list})",
            fmt(g("end_key_mib"), 1) if sc.params["workers"] else "-", probs,
        ]  # fmt: skip
    elif sc.kind == "clatency":
        what = sc.params["what"]
        by_port = last.get("loads", [{}])[0].get("lat_by_port") if "loads" in last else None
        if by_port:  # per node, the last run: in node order (A, B)
            what += ": " + "; ".join(
                f"node {'AB'[i]} {v['p50_ms']:.2f} / {v['p99_ms']:.2f} / {v['max_ms']:.2f}"
                for i, v in enumerate(by_port.values())
            )
        cells = [
            sc.name, what, fmt(g("deliveries_per_s")), fmt(g("triggers_per_s"), 1),
            f"{fmt(g('backlog_s'), 2)} ({fmt(g('last_ms'))})",
            fmt(g("p50"), 2), fmt(g("p99"), 2), fmt(g("max"), 2),
            str(total.get("lost", "-")), str(total.get("dup", "-")),
            str(total.get("non200", "-")), f"{fmt(g('servers_pct'))} ({per_proc_cpu(last)})",
            fmt(g("redis_pct")), fmt(g("gen_pct")), fmt(g("machine_pct")), fmt(g("other_pct")),
            probs,
        ]  # fmt: skip
    else:
        pids = last.get("node_pids", [[0]])[0]
        pids = pids[1:] if len(pids) > 1 else pids
        after = last.get("rss_after_setup_kb", {})
        rss_w = " / ".join(f"{after.get(str(p), 0) / 1024:.1f}" for p in pids)
        if len(last.get("node_pids", [[0]])[0]) > 1:
            sup = last["node_pids"][0][0]
            rss_w += f" (supervisor {after.get(str(sup), 0) / 1024:.1f})"
        cells = [
            sc.name, f"{fmt(g('ok'))} / {sc.subs:,}", fmt(g("setup_rate")), fmt(g("setup_s"), 2),
            spread(last), rss_w,
            f"{fmt(g('rss_before_mib'), 1)} / {fmt(g('rss_after_mib'), 1)}",
            fmt(g("rss_per_conn_kib"), 2),
            f"{fmt(g('redis_mem_delta_mib'), 1)} ({fmt(g('redis_b_per_conn'))})",
            f"{fmt(g('prefix_keys'))} ({fmt(g('prefix_b_per_conn'))})",
            f"{fmt(g('setup_servers_pct'))} / {fmt(g('setup_redis_pct'))} / "
            f"{fmt(g('setup_gen_pct'))} / {fmt(g('setup_other_pct'))}",
            f"{fmt(g('idle_servers_pct'), 1)} / {fmt(g('idle_redis_pct'), 1)} "
            f"({sc.params['hold']:g} s)",
            fmt(g("pings")),
            f"{counts(last.get('api_count_held', []))} / {counts(last.get('api_count_after', []))}",
            fmt(g("release_s"), 1), fmt(g("stop_s"), 1), probs,
        ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def parse_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--scenarios",
        default=",".join(ALL_SCENARIOS),
        type=lambda s: s.split(","),
        help=f"comma-separated: {', '.join(ALL_SCENARIOS)} [all]; also (not by default) "
        f"{', '.join(CLUSTER_SCENARIOS)}",
    )
    p.add_argument("--repeat", "-R", type=int, default=3, help="runs per scenario [3]")
    p.add_argument(
        "--conns",
        type=parse_list,
        default=[10000],
        help=f"connections scenario: N, comma-separated (<= {MAX_CONNS}) [10000]",
    )
    p.add_argument(
        "--conn-hold",
        type=float,
        default=5.0,
        help="connections: seconds to hold them idle after setup (server idle CPU; "
        "over 30 s the server pings and the generator answers) [5]",
    )
    p.add_argument(
        "--connect-concurrency",
        type=int,
        default=500,
        help="handshakes in flight while connecting [500]",
    )
    p.add_argument(
        "--fanout-subs",
        type=parse_list,
        default=[1000, 10000],
        help="fan-out subscriber counts [1000,10000]",
    )
    p.add_argument(
        "--fanout-deliveries",
        type=int,
        default=50000,
        help="fixed-rate fan-out: deliveries/s (triggers/s = this / subs) [50000]",
    )
    p.add_argument(
        "--publishers",
        type=int,
        default=4,
        help="keep-alive HTTP connections for fan-out triggers [4]",
    )
    p.add_argument(
        "--depth",
        type=int,
        default=1,
        help="closed loop: requests in flight per HTTP connection [1]",
    )
    p.add_argument("--http-subs", type=int, default=10, help="http scenario: subscribers [10]")
    p.add_argument(
        "--http-publishers",
        type=int,
        default=8,
        help="http scenario: keep-alive HTTP connections [8]",
    )
    g = p.add_argument_group("client-events")
    g.add_argument("--client-subs", type=int, default=1000, help="subscribers [1000]")
    g.add_argument(
        "--client-channels", type=int, default=10, help="private channels, equal shares [10]"
    )
    g.add_argument("--client-senders", type=int, default=20, help="subscribers that also send [20]")
    g.add_argument(
        "--client-window",
        type=int,
        default=4,
        help="closed loop: events per sender not yet delivered to every other member [4]",
    )
    g.add_argument(
        "--client-deliveries",
        type=int,
        default=50000,
        help="fixed rate: deliveries/s (events/s = this / (members per channel - 1)) [50000]",
    )
    g.add_argument(
        "--client-data",
        choices=("object", "string"),
        default="object",
        help="send the event data as a JSON object or a JSON string [object]",
    )
    g.add_argument(
        "--client-event-limit",
        type=int,
        default=1000000,
        help="server's CLARION_APP_MAX_CLIENT_EVENTS_PER_SECOND (per connection) [1000000]",
    )
    g = p.add_argument_group("presence-churn")
    g.add_argument("--presence-members", type=int, default=1000, help="channel size [1000]")
    g.add_argument(
        "--presence-pool",
        type=int,
        default=100,
        help="sockets that leave and join; half of them are members at any time [100]",
    )
    g.add_argument(
        "--presence-window", type=int, default=4, help="closed loop: operations in flight [4]"
    )
    g.add_argument(
        "--presence-rate", type=float, default=50.0, help="fixed rate: joins+leaves/s [50]"
    )
    g.add_argument(
        "--presence-leave",
        choices=("unsub", "close", "mixed"),
        default="mixed",
        help="how members leave: pusher:unsubscribe, disconnect, or alternately [mixed]",
    )
    g = p.add_argument_group("conn-churn")
    g.add_argument("--churn-window", type=int, default=50, help="cycles in flight [50]")
    g.add_argument(
        "--churn-close",
        choices=("ws", "rst", "mixed"),
        default="mixed",
        help="close with a WebSocket close handshake, a TCP RST, or alternately [mixed]",
    )
    g = p.add_argument_group("slow-consumer")
    g.add_argument(
        "--slow-subs", type=int, default=1000, help="subscribers, stalled included [1000]"
    )
    g.add_argument(
        "--slow-stalled",
        type=parse_list,
        default=[10],
        help="stalled subscribers M, comma-separated: one row each (0 = a control run) [10]",
    )
    g.add_argument(
        "--slow-deliveries",
        type=int,
        default=50000,
        help="fixed rate: deliveries/s (triggers/s = this / subs) [50000]",
    )
    g.add_argument("--slow-payload", type=int, default=1024, help="event data bytes [1024]")
    g.add_argument(
        "--slow-max-pending-kb",
        type=int,
        default=256,
        help="server's CLARION_MAX_PENDING_KB (its default is 1024) [256]",
    )
    g.add_argument(
        "--slow-stall-at",
        type=float,
        help="seconds into the load when the stalled subscribers stop reading "
        "[warm-up + half the rest, at most 3]",
    )
    g.add_argument(
        "--slow-wake-after",
        type=float,
        default=2.5,
        help="group A reads again this many seconds after the stall (at most at the end of "
        "the load); the server aborts a closed slow consumer 5 s after its close [2.5]",
    )
    g.add_argument(
        "--slow-wait",
        type=float,
        default=10.0,
        help="group B: seconds after the load to wait for the server's abort [10]",
    )
    g.add_argument(
        "--slow-rcvbuf", type=int, default=4096, help="stalled sockets' SO_RCVBUF [4096]"
    )
    g.add_argument(
        "--slow-mss",
        type=int,
        default=0,
        help="stalled sockets' TCP_MAXSEG, set before connect: 536 or 1460 keep the server's "
        "send buffer for them smaller than loopback's 64 KiB segments do (0: leave it) [0]",
    )
    g.add_argument(
        "--slow-flood-kb",
        type=int,
        default=64,
        help="events of this many KiB on a second channel only the stalled subscribers join, "
        "so that the server's kernel send buffer (autotuned up to tcp_wmem's 4 MiB) and then "
        "max_pending fill within the run; 0: none [64]",
    )
    g.add_argument("--slow-flood-rate", type=float, default=40.0, help="flood events/s [40]")
    g = p.add_argument_group("cluster (Redis)")
    g.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/0",
        help="Redis the cluster nodes share; each run uses its own prefix clarion-bench:<hex> "
        "and deletes its keys afterwards [redis://127.0.0.1:6379/0]",
    )
    g.add_argument(
        "--cluster-workers",
        type=parse_list,
        default=[0, 1, 2],
        help="cluster-fanout: one row per entry: 0 = embedded single process (no Redis), "
        "N = `--workers N` with Redis [0,1,2]",
    )
    g.add_argument(
        "--cluster-fanout-rates",
        type=parse_list,
        default=[],
        help="cluster-fanout: also fixed-rate rows at these deliveries/s (triggers/s = this "
        "/ subs), e.g. 200000,300000: whether a rate is sustained shows in the kept-up column "
        "and p99 [none]",
    )
    g.add_argument(
        "--cluster-fanout-pin",
        choices=("none", "split"),
        default="none",
        help="cluster-fanout: none = nothing pinned (servers, generator and Redis share both "
        "cores); split = every server process on --server-core, the generator on --gen-core "
        "[none]",
    )
    g.add_argument(
        "--cluster-latency-pin",
        choices=("none", "split"),
        default="split",
        help="cluster-latency: split = both nodes on --server-core, the generator on "
        "--gen-core (Redis, shared, is never pinned); none = nothing pinned [split]",
    )
    g.add_argument(
        "--cluster-lat-subs",
        type=parse_list,
        default=[100, 1000],
        help="cluster-latency: subscriber counts [100,1000]",
    )
    g.add_argument(
        "--cluster-lat-deliveries",
        type=int,
        default=50000,
        help="cluster-latency: deliveries/s (triggers/s = this / subs) [50000]",
    )
    g.add_argument(
        "--cluster-lat-paths",
        type=lambda t: t.split(","),
        default=["cross", "same", "embedded", "both"],
        help="cluster-latency rows: cross (subscribers on node B, triggers to node A), same "
        "(both on node B), embedded (one process, no Redis), both (subscribers half on each "
        "node, triggers to node A) [cross,same,embedded,both]",
    )
    g.add_argument(
        "--cluster-conns",
        type=int,
        default=60000,
        help="cluster-connections: subscribed idle connections in all [60000]",
    )
    g.add_argument(
        "--cluster-conns-per-gen",
        type=int,
        default=15000,
        help=f"cluster-connections: at most this many per generator process, each with its "
        f"own source addresses 127.0.<10+i>.1, .2, ... (<= {MAX_CONNS}) [15000]",
    )
    g.add_argument(
        "--cluster-src-ports",
        type=lambda t: tuple(int(x) for x in t.split("-")),
        default=(24000, 31999),
        help="cluster-connections: the source ports the generators bind, LO-HI; keep them "
        "below ip_local_port_range (32768-60999 here): explicitly bound ports inside it are "
        "taken out of every other process's connect() [24000-31999]",
    )
    g.add_argument(
        "--cluster-stop-timeout",
        type=float,
        default=60.0,
        help="seconds a cluster server gets after SIGTERM before SIGKILL; the time it took is "
        "in the JSON (stops) [60]",
    )
    g.add_argument(
        "--cluster-conn-workers",
        type=int,
        default=4,
        help="cluster-connections: `clarion serve --workers N` [4]",
    )
    p.add_argument("--duration", type=float, default=8.0, help="seconds of load per run [8]")
    p.add_argument(
        "--warmup",
        type=float,
        default=1.0,
        help="seconds at the start of the load not counted in rates/latency [1]",
    )
    p.add_argument(
        "--warmup-events",
        type=int,
        default=20,
        help="fanout-rate: the warm-up lasts until each subscriber has received this many "
        "events, past TCP's 16 quick ACKs (0: --warmup alone) [20]",
    )
    p.add_argument(
        "--drain",
        type=float,
        default=15.0,
        help="max seconds to wait for outstanding deliveries after the load [15]",
    )
    p.add_argument("--payload", type=int, default=64, help="event data bytes [64]")
    p.add_argument("--server-core", type=int, default=0)
    p.add_argument("--gen-core", type=int, default=1)
    p.add_argument(
        "--server-settle",
        type=float,
        default=1.0,
        help="seconds between server start and the RSS-before sample [1]",
    )
    p.add_argument(
        "--rss-settle",
        type=float,
        default=2.0,
        help="connections: seconds after setup before the RSS-after sample [2]",
    )
    p.add_argument("--server-log-level", default="warning")
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the server (repeatable)",
    )
    p.add_argument(
        "--clarion",
        type=Path,
        default=default_clarion(),
        help="the server to run [the compiled build, .venv-compiled/bin/clarion (`make "
        "compiled`), if it is there; else .venv/bin/clarion]",
    )
    p.add_argument("--json", type=Path, help="write every run's raw results here")
    p.add_argument("--log-dir", type=Path, help="server/loadgen logs [a new /tmp directory]")
    args = p.parse_args()

    if any(n > MAX_CONNS for n in args.conns):
        p.error(f"--conns: at most {MAX_CONNS} (the open-file limit is 20000 per process)")
    if not 1 <= args.cluster_conns_per_gen <= MAX_CONNS:
        p.error(f"--cluster-conns-per-gen: 1..{MAX_CONNS} (open-file limit per process)")
    ports = list(args.cluster_src_ports)
    if len(ports) != 2 or not 1024 <= ports[0] < ports[1] <= 65535:
        p.error("--cluster-src-ports: LO-HI within 1024..65535")
    if any(x not in ("cross", "same", "embedded", "both") for x in args.cluster_lat_paths):
        p.error("--cluster-lat-paths: cross, same, embedded, both")
    if any(w < 0 for w in args.cluster_workers):
        p.error("--cluster-workers: 0 (embedded) or a worker count")
    if args.presence_pool < 2 or args.presence_members <= args.presence_pool // 2:
        p.error("--presence-pool must be >= 2 and below twice --presence-members")
    if args.client_subs < 2 * args.client_channels:
        p.error("--client-subs: at least 2 subscribers per channel")
    if args.repeat < 1 or args.duration <= args.warmup:
        p.error("need --repeat >= 1 and --duration > --warmup")
    if "slow-consumer" in args.scenarios:
        stall_at = slow_stall_at(args)
        if not args.warmup <= stall_at < args.duration:
            p.error("--slow-stall-at must be within [--warmup, --duration)")
        if any(m < 0 or m >= args.slow_subs for m in args.slow_stalled):
            p.error("--slow-stalled: each M must be in [0, --slow-subs)")
        if not 32 <= args.slow_payload <= 65536 or args.slow_flood_kb > 64:
            p.error("--slow-payload: 32..65536 bytes; --slow-flood-kb: at most 64")
        if args.slow_wake_after <= 0 or args.slow_wait < 0:
            p.error("--slow-wake-after must be > 0 and --slow-wait >= 0")
    if not LOADGEN.exists() or LOADGEN.stat().st_mtime < (HERE / "loadgen.c").stat().st_mtime:
        subprocess.run([str(HERE / "build.sh")], check=True)
    logdir = args.log_dir or Path(tempfile.mkdtemp(prefix="clarion-bench-"))
    logdir.mkdir(parents=True, exist_ok=True)

    info = machine_info()
    print(f"# machine: {info['nproc']} CPUs, {info['cpu_model']} (family/model "
          f"{info['cpu_family_model']}, {info['cpu_mhz']} MHz), {info['mem_gib']} GiB RAM, "
          f"kernel {info['kernel']}, nofile {info['nofile']}", file=sys.stderr)  # fmt: skip
    print(f"# mitigations: spectre_v2 {info['spectre_v2']}; srso {info['srso']}",
          file=sys.stderr)  # fmt: skip
    print(f"# command: {shlex.join(sys.argv)}", file=sys.stderr)
    build = server_build(args.clarion)
    print(f"# server: {args.clarion} ({build} build)", file=sys.stderr)
    print(f"# logs: {logdir}", file=sys.stderr)
    calibration = {"before": calibrate(args)}
    print(f"# calibration before: {json.dumps(calibration['before'])}", file=sys.stderr)
    steal_start = steal_jiffies()

    scenarios = build_scenarios(args)
    all_runs: list[dict[str, Any]] = []
    rows: dict[str, list[str]] = {kind: [] for kind in HEADERS}
    for sc in scenarios:
        runs = []
        for rep in range(args.repeat):
            r = run_once(args, sc, rep, logdir)
            runs.append(r)
            all_runs.append(r)
            m, c = metrics(sc, r), counters(sc, r)
            brief = ", ".join(f"{k}={v:.4g}" for k, v in m.items())
            bad = {k: v for k, v in c.items() if v}
            print(f"# {sc.name} run {rep + 1}/{args.repeat}: {brief or r.get('failure')}"
                  f"{'; ' + json.dumps(bad) if bad else ''}", file=sys.stderr)  # fmt: skip
            for line in r.get("server_log_problems", [])[:5]:
                print(f"#   server log: {line}", file=sys.stderr)
        rows[sc.kind].append(row(sc, runs))

    calibration["after"] = calibrate(args)
    steal_end = steal_jiffies()
    steal_pct = 100 * (steal_end[0] - steal_start[0]) / max(1, steal_end[1] - steal_start[1])
    calibration["steal_pct"] = round(steal_pct, 2)
    before, after = json.dumps(calibration["before"]), json.dumps(calibration["after"])
    print(f"\n# machine calibration (bench/calibrate.py; python_us: one sum(range(1000)), "
          f"send_us: kernel CPU per loopback send): before {before}, after {after}; "
          f"steal during the runs {steal_pct:.1f}%")  # fmt: skip
    print(f"\nMedian of {args.repeat} run(s) per scenario; lost/dup/non-200/problems are totals "
          f"over the runs.\n")  # fmt: skip
    for kind, header in HEADERS.items():
        if rows[kind]:
            print(header)
            print("\n".join(rows[kind]))
            print()
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "server_build": build,
                    "calibration": calibration,
                    "argv": sys.argv,
                    "runs": all_runs,
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
