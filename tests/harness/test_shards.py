"""A fleet split across supervisor processes behind one control API: routing, aggregation, events."""

from __future__ import annotations

import asyncio
from pathlib import Path

from harness import fleetfile
from harness.fleet import Fleet


async def test_sharded_fleet_routes_and_merges(tmp_path: Path) -> None:
    fleet = Fleet(fleetfile.simple(6, connectors=1), tmp_path / "run", shards=3)
    try:
        await fleet.start()
        assert await fleet.wait_booted(60) == 6
        info = await fleet.info()
        assert len(info["shards"]) == 3 and {s["chargers"] for s in info["shards"]} == {2}
        assert len({s["pid"] for s in info["shards"]}) == 3          # three supervisor processes
        assert sorted(c["id"] for c in await fleet.chargers()) == fleet.ids()
        events = []

        async def listen() -> None:
            async for ev in fleet.events():
                events.append(ev)
                if len({e["id"] for e in events if e.get("ev") == "status"}) == 2:
                    return

        task = asyncio.create_task(listen())
        await asyncio.sleep(0.5)
        for cid in ("CP-0001", "CP-0002"):          # on two different shards
            await fleet.console(cid, "plug", [1])
        await asyncio.wait_for(task, 10)
        await fleet.wait_status("CP-0002", 1, "Preparing", 10)
        assert (await fleet.charger("CP-0004"))["registered"]
        await fleet.reboot("CP-0003")
        assert await fleet.wait_booted(30) == 6
    finally:
        await fleet.shutdown()
