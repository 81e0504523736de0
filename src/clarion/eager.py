"""Start a coroutine synchronously; hand it to a task only if it really has to wait.

Python 3.12's eager tasks, by hand for 3.11. With the memory stores a subscribe or an HTTP API
request never suspends, so the common case costs no task and no extra loop iteration.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any


def run_eagerly(coro: Coroutine[Any, Any, None]) -> Coroutine[Any, Any, None] | None:
    """Run `coro` up to its first suspension. None if it finished; else a coroutine that
    continues it, for the caller to schedule as a task. Exceptions of the eager part propagate.
    """
    try:
        awaited = coro.send(None)
    except StopIteration:
        return None
    return _resume(coro, awaited)


class _Continuation:
    """Awaitable that hands a half-run coroutine to the task awaiting it: it re-yields what the
    coroutine yielded (the future it waits on) and forwards results and exceptions back."""

    __slots__ = ("_awaited", "_coro")

    def __init__(self, coro: Coroutine[Any, Any, None], awaited: Any) -> None:
        self._coro = coro
        self._awaited = awaited

    def __await__(self) -> Generator[Any, Any, None]:
        coro, awaited = self._coro, self._awaited
        while True:
            try:
                sent = yield awaited
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as error:  # thrown in by the task (cancel): forwarded
                try:
                    awaited = coro.throw(error)
                except StopIteration:
                    return
            else:
                try:
                    awaited = coro.send(sent)
                except StopIteration:
                    return


async def _resume(coro: Coroutine[Any, Any, None], awaited: Any) -> None:
    await _Continuation(coro, awaited)
