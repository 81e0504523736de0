"""Machine calibration: how fast this machine is today at what the server's figures depend on.

The same code measured on this VM on different days has differed by 2x (a shared host), so a
figure is only comparable with another taken on an equally fast machine. Two numbers, printed
as one JSON line:

* `python_us`: one `sum(range(1000))` (best of 5), pure interpreter speed;
* `send_us`: CPU time of the sending process per 150-byte `send()` over loopback TCP,
  round-robin over 1,000 connections whose reader runs on another core. This is the kernel
  cost of one fan-out delivery (on loopback it includes the receiver's TCP processing and its
  wake-up), which is most of the server's cost per delivery.

Run pinned: `taskset -c 0 python bench/calibrate.py --reader-core 1`. Bounded: 127.0.0.1 only,
a fixed number of sends, and a reader that stops when the sender closes.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
import time
import timeit

CONNECTIONS = 1000
ROUNDS = 40
PAYLOAD = b"x" * 150


def python_us() -> float:
    return min(timeit.repeat("sum(range(1000))", number=2000, repeat=5)) / 2000 * 1e6


def _drain(listener: socket.socket, reader_core: int) -> None:
    """Child: accept the connections, then read until every one is closed."""
    os.sched_setaffinity(0, {reader_core})
    sel = selectors.DefaultSelector()
    accepted = 0
    while accepted < CONNECTIONS:
        conn, _ = listener.accept()
        conn.setblocking(False)
        sel.register(conn, selectors.EVENT_READ)
        accepted += 1
    open_count = accepted
    while open_count:
        for key, _ in sel.select(timeout=10):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if not sock.recv(65536):
                sel.unregister(sock)
                sock.close()
                open_count -= 1
    os._exit(0)


def send_us(reader_core: int) -> float:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(CONNECTIONS)
    pid = os.fork()
    if pid == 0:
        _drain(listener, reader_core)
    senders = []
    for _ in range(CONNECTIONS):
        s = socket.create_connection(listener.getsockname())
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        senders.append(s)
    listener.close()
    for s in senders:  # warm-up round
        s.send(PAYLOAD)
    start = time.process_time()
    for _ in range(ROUNDS):
        for s in senders:
            s.send(PAYLOAD)
    cpu = time.process_time() - start
    for s in senders:
        s.close()
    os.waitpid(pid, 0)
    return cpu / (ROUNDS * CONNECTIONS) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reader-core", type=int, default=1)
    args = parser.parse_args()
    result = {"python_us": round(python_us(), 2), "send_us": round(send_us(args.reader_core), 2)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
