# Tests for timedevent.TimedEvent on the unix port: timeouts, early wake by set(), several waiters,
# cancellation, and its cost against asyncio.wait_for (the reason it exists).
import asyncio
import gc
import time

import mptest
from timedevent import TimedEvent


async def test_times_out_when_nobody_sets_it():
    ev = TimedEvent()
    t0 = time.ticks_ms()
    assert await ev.wait_ms(60) is False
    dt = time.ticks_diff(time.ticks_ms(), t0)
    assert 55 <= dt < 500, dt
    assert await ev.wait(0.02) is False


async def test_set_wakes_the_sleeper_at_once():
    ev = TimedEvent()

    async def later():
        await asyncio.sleep_ms(20)
        ev.set()

    asyncio.create_task(later())
    t0 = time.ticks_ms()
    assert await ev.wait_ms(10000) is True
    dt = time.ticks_diff(time.ticks_ms(), t0)
    assert dt < 1000, dt   # woken by set(), not by the 10 s deadline
    assert ev.is_set()


async def test_already_set_returns_without_waiting():
    ev = TimedEvent()
    ev.set()
    assert await ev.wait_ms(0) is True
    ev.clear()
    assert not ev.is_set()
    assert await ev.wait_ms(0) is False


async def test_woken_counts_even_if_cleared_before_it_ran():
    ev = TimedEvent()
    got = []

    async def waiter():
        got.append(await ev.wait_ms(5000))

    t = asyncio.create_task(waiter())
    await asyncio.sleep_ms(10)
    ev.set()
    ev.clear()   # before the waiter runs: it was still woken by set()
    await t
    assert got == [True], got


async def test_every_waiter_wakes():
    ev = TimedEvent()
    got = []

    async def waiter(i):
        got.append((i, await ev.wait_ms(5000)))

    tasks = [asyncio.create_task(waiter(i)) for i in range(3)]
    await asyncio.sleep_ms(10)
    ev.set()
    for t in tasks:
        await t
    assert sorted(got) == [(0, True), (1, True), (2, True)], got
    assert ev._sleepers == []


async def test_cancelled_waiter_leaves_no_trace():
    ev = TimedEvent()
    t = asyncio.create_task(ev.wait_ms(10000))
    await asyncio.sleep_ms(10)
    t.cancel()
    try:
        await t
    except asyncio.CancelledError:
        pass
    assert ev._sleepers == []
    ev.set()   # must not touch the run queue for a task that is gone
    await asyncio.sleep_ms(10)
    ev.clear()
    assert await ev.wait_ms(20) is False   # the loop still works


async def test_cheaper_than_wait_for():
    # The OCPP call pattern: wait for an answer that comes one scheduler pass later.
    async def cost(wait):
        ev = TimedEvent() if wait is None else asyncio.Event()
        stop = [False]

        async def answer():
            while not stop[0]:
                await asyncio.sleep_ms(0)
                ev.set()

        t = asyncio.create_task(answer())
        await asyncio.sleep_ms(0)
        gc.collect()
        gc.disable()
        m0 = gc.mem_alloc()
        for _ in range(50):
            ev.clear()
            if wait is None:
                await ev.wait_ms(30000)
            else:
                await wait(ev.wait(), 30000)
        used = (gc.mem_alloc() - m0) // 50
        gc.enable()
        stop[0] = True
        await t
        return used

    timed = await cost(None)
    plain = await cost(asyncio.wait_for_ms)
    print("bytes allocated per wait: TimedEvent %d, asyncio.wait_for_ms %d" % (timed, plain))
    assert timed * 3 < plain, (timed, plain)


mptest.run(globals())
