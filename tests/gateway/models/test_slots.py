"""`Slots`: how many turns an in-process model runs at once, and the queue behind them."""

from __future__ import annotations

import asyncio
import threading

from jupyter_interactions.gateway.models._slots import Slots


async def places(slots: Slots, seen: list[int]) -> None:
    async for place in slots.enter():
        seen.append(place)


async def test_turns_beyond_the_slots_wait_in_order_and_see_their_place() -> None:
    slots = Slots(2)
    await places(slots, [])
    await places(slots, [])  # two turns hold both slots, without waiting
    seen: dict[str, list[int]] = {"c": [], "d": []}
    c = asyncio.create_task(places(slots, seen["c"]))
    await asyncio.sleep(0)
    d = asyncio.create_task(places(slots, seen["d"]))
    await asyncio.sleep(0.01)
    assert seen == {"c": [1], "d": [2]} and not c.done() and not d.done()
    slots.release()  # the first turn ends: c runs, d moves up
    await c
    await asyncio.sleep(0.01)
    assert seen["d"] == [2, 1] and not d.done()
    slots.release()
    await d
    slots.release()
    slots.release()
    assert slots.busy == 0


async def test_a_turn_cancelled_while_waiting_leaves_the_queue() -> None:
    slots = Slots(1)
    await places(slots, [])
    first: list[int] = []
    second: list[int] = []
    waiting = asyncio.create_task(places(slots, first))
    await asyncio.sleep(0.01)
    behind = asyncio.create_task(places(slots, second))
    await asyncio.sleep(0.01)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    await asyncio.sleep(0.01)
    assert first == [1] and second == [2, 1]  # it moved up when the other left
    slots.release()
    await behind  # and it got the slot, not the cancelled turn
    slots.release()
    assert slots.busy == 0


async def test_a_slot_freed_from_another_thread_wakes_the_waiting_loop() -> None:
    slots = Slots(1)
    await places(slots, [])
    waiting = asyncio.create_task(places(slots, []))
    await asyncio.sleep(0.01)
    # llama.cpp's worker thread frees the slot when the generation ends.
    releaser = threading.Thread(target=slots.release)
    releaser.start()
    await asyncio.wait_for(waiting, 5)
    releaser.join()
    slots.release()
    assert slots.busy == 0
