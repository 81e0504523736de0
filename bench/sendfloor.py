"""The kernel's floor under a fan-out: plain `send()`s to 10,000 loopback sockets, no server.

A fan-out to S subscribers is S sends, one per socket, and on loopback each send also runs the
receiver's TCP work on the sending core. This measures that floor with no WebSocket, no
Pusher protocol and no event loop: a Python loop of `socket.send` over N connections whose
reader (another process, on another core, epoll) only reads. One round of N sends starts every
`--period` seconds, as the fan-out benchmark's triggers do (5/s at 10,000 subscribers for
50,000 deliveries/s), and the CPU time of each round is reported per send.

The period matters: Linux acknowledges at once (quick-ACK mode) when a connection has heard
nothing for longer than its RTO (204 ms on loopback here), and on loopback the ACK is made
and processed on the sending core. At a 200 ms period a round that runs late by a few ms
puts the rest of the connections over that line, so several periods are measured: one
clearly below it, the benchmark's, one clearly above.

    taskset -c 0 .venv/bin/python bench/sendfloor.py --reader-core 1

Bounded: 127.0.0.1 only, a fixed number of rounds, a reader that stops when the senders close.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import socket
import statistics
import time

PAYLOAD = b"x" * 150  # about one 64-byte event's frame


def _reader(listener: socket.socket, connections: int, core: int) -> None:
    """Child: accept every connection, then read until all of them are closed."""
    os.sched_setaffinity(0, {core})
    sel = selectors.DefaultSelector()
    for _ in range(connections):
        conn, _ = listener.accept()
        conn.setblocking(False)
        sel.register(conn, selectors.EVENT_READ)
    left = connections
    while left:
        for key, _ in sel.select(timeout=30):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if not sock.recv(65536):
                sel.unregister(sock)
                sock.close()
                left -= 1
    os._exit(0)


def _open(connections: int, core: int) -> tuple[list[socket.socket], int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    pid = os.fork()
    if pid == 0:
        _reader(listener, connections, core)
    senders = []
    for _ in range(connections):
        s = socket.create_connection(listener.getsockname())
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        senders.append(s)
    listener.close()
    return senders, pid


def rounds_us(senders: list[socket.socket], period: float, rounds: int) -> list[float]:
    """CPU microseconds per send of each round, one round starting every `period` s."""
    per_send = []
    start = time.monotonic()
    for i in range(rounds):
        delay = start + i * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # the schedule itself, as the generator's fixed rate
        cpu = time.process_time()
        for s in senders:
            s.send(PAYLOAD)
        per_send.append((time.process_time() - cpu) / len(senders) * 1e6)
    return per_send


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader-core", type=int, default=1)
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--periods", default="0.15,0.2,0.25", help="seconds [0.15,0.2,0.25]")
    parser.add_argument("--rounds", type=int, default=40, help="per period [40]")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    senders, pid = _open(args.connections, args.reader_core)
    result: dict[str, object] = {"connections": args.connections, "payload": len(PAYLOAD)}
    try:
        rounds_us(senders, 0.2, 20)  # past every connection's first 16 quick ACKs
        for period in (float(p) for p in args.periods.split(",")):
            us = rounds_us(senders, period, args.rounds)
            result[f"period_{period:g}"] = {
                "send_us_median": round(statistics.median(us), 2),
                "send_us_min": round(min(us), 2),
                "send_us_max": round(max(us), 2),
                "round_ms_median": round(statistics.median(us) * args.connections / 1000, 1),
            }
    finally:
        for s in senders:
            s.close()
        os.waitpid(pid, 0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
