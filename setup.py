"""Build hook for the optional compiled build (README, "Compiled build").

`CLARION_COMPILE=1 pip install .` compiles the modules on the socket's hot path (connection
setup, message handling, fan-out, the HTTP API) to C extensions with mypyc, from the same
source, which the package's `mypy --strict` typing makes possible. Everything else, and every
install without the variable (editable ones included: a compiled module would shadow its
edited source), stays plain Python. Both builds pass the same test suite (`make test`).
"""

from __future__ import annotations

import os

from setuptools import setup

# Hot-path modules only. Not compiled: configuration and startup (core/apps.py and config.py:
# config reads App's and ServerSettings' type hints at runtime, which a compiled class no
# longer carries), the CLI,
# the supervisor, webhooks and the Redis backends (network-bound). Also not compiled, on purpose:
# eager.py and transport/feed.py, which catch an exception on every connection or request
# (StopIteration, HttpParserUpgrade). A compiled function that catches one builds a code object
# and a frame for its traceback entry (mypyc's CPy_AddTraceback: ~11,000 instructions per
# connection for the upgrade, ~2,000 per eager run); the interpreter's frame is already there
# (docs/benchmarks.md, "fourth session").
COMPILED = [
    "node.py",
    "types.py",
    "backends/memory.py",
    "core/envelope.py",
    "core/hub.py",
    "core/liveness.py",
    "core/presence.py",
    "core/ratelimit.py",
    "core/session.py",
    "protocol/api.py",
    "protocol/auth.py",
    "protocol/channels.py",
    "protocol/codec.py",
    "protocol/errors.py",
    "protocol/jsontext.py",
    "protocol/messages.py",
    "transport/http.py",
    "transport/http_api.py",
    "transport/server.py",
]


def _ext_modules() -> list[object]:
    if os.environ.get("CLARION_COMPILE", "") not in ("1", "true", "yes"):
        return []
    from mypyc.build import mypycify

    return list(
        mypycify(
            [os.path.join("src", "clarion", name) for name in COMPILED],
            opt_level="3",
            group_name="clarion",
        )
    )


setup(ext_modules=_ext_modules())
