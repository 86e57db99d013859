"""start_eagerly: immediate results without the loop, waits handed to the loop in order."""

from __future__ import annotations

import asyncio

import pytest

from dynamo_toolkit.eager_start import start_eagerly


async def _immediate(log: list[str]) -> int:
    log.append("ran")
    return 7


async def _waits(gate: asyncio.Future[int], log: list[str]) -> int:
    log.append("before")
    value = await gate
    log.append("after")
    await asyncio.sleep(0)  # a bare yield resumes on the next turn
    return value + 1


async def _fails() -> None:
    raise ValueError("bad request")


def test_a_coroutine_that_never_waits_is_done_on_return() -> None:
    async def main() -> None:
        log: list[str] = []
        result = start_eagerly(_immediate(log))
        # Done before the loop ran anything: that is the point.
        assert log == ["ran"]
        assert result.done()
        assert result.result() == 7

    asyncio.run(main())


def test_a_waiting_coroutine_resumes_when_its_future_completes() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        gate: asyncio.Future[int] = loop.create_future()
        log: list[str] = []
        result = start_eagerly(_waits(gate, log))
        assert log == ["before"]
        assert not result.done()
        gate.set_result(41)
        assert await result == 42
        assert log == ["before", "after"]

    asyncio.run(main())


def test_errors_reach_the_caller() -> None:
    async def main() -> None:
        result = start_eagerly(_fails())
        assert result.done()
        with pytest.raises(ValueError, match="bad request"):
            result.result()

    asyncio.run(main())


def test_an_error_raised_by_the_awaited_future_propagates() -> None:
    async def main() -> None:
        gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        result = start_eagerly(_waits(gate, []))
        gate.set_exception(KeyError("gone"))
        with pytest.raises(KeyError):
            await result

    asyncio.run(main())


def test_a_cancelled_result_is_left_alone_when_the_coroutine_finishes() -> None:
    async def main() -> None:
        gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        log: list[str] = []
        result = start_eagerly(_waits(gate, log))
        result.cancel()
        gate.set_result(1)
        for _ in range(3):
            await asyncio.sleep(0)
        # The coroutine ran to its end; the cancelled future did not break it.
        assert log == ["before", "after"]
        assert result.cancelled()

    asyncio.run(main())
