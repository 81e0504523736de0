"""`run_eagerly`: synchronous when nothing waits, a faithful task continuation otherwise."""

from __future__ import annotations

import asyncio

import pytest

from clarion.eager import run_eagerly


async def test_a_coroutine_that_never_waits_finishes_at_once() -> None:
    steps: list[str] = []

    async def step() -> None:
        steps.append("ran")

    assert run_eagerly(step()) is None
    assert steps == ["ran"]


async def test_a_suspended_coroutine_is_continued_by_a_task_with_results_passed_in() -> None:
    steps: list[object] = []
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def step() -> None:
        steps.append("before")
        steps.append(await gate)
        await asyncio.sleep(0)
        steps.append("after")

    rest = run_eagerly(step())
    assert rest is not None
    assert steps == ["before"]  # the eager part ran synchronously
    task = asyncio.get_running_loop().create_task(rest)
    gate.set_result("value")
    await asyncio.wait_for(task, 5)
    assert steps == ["before", "value", "after"]


async def test_an_exception_after_the_suspension_reaches_the_task() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def step() -> None:
        await gate
        raise ValueError("late")

    rest = run_eagerly(step())
    assert rest is not None
    task = asyncio.get_running_loop().create_task(rest)
    gate.set_exception(KeyError("thrown in"))
    with pytest.raises(KeyError):
        await asyncio.wait_for(task, 5)


def test_an_exception_of_the_eager_part_propagates_to_the_caller() -> None:
    async def step() -> None:
        raise ValueError("early")

    with pytest.raises(ValueError, match="early"):
        run_eagerly(step())


async def test_cancelling_the_task_cancels_the_coroutine() -> None:
    cleaned: list[str] = []
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def step() -> None:
        try:
            await gate
        finally:
            cleaned.append("finally ran")

    rest = run_eagerly(step())
    assert rest is not None
    task = asyncio.get_running_loop().create_task(rest)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert cleaned == ["finally ran"]
    assert gate.cancelled()
