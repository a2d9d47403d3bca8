"""End-to-end fixtures: real firmware instances on the unix port against the real CSMS
(tools.csms, built on the `ocpp` package, which validates every message against the schemas)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from harness.fwbuild import Image, build
from harness.instance import Instance
from harness.mpbin import micropython_exe
from harness.spawners import ZygoteSpawner
from tools.csms import Csms, CsmsConfig

TAGS = {"TAG1": "Accepted", "TAG2": "Accepted", "BLOCKED": "Blocked", "GROUPA": "Accepted"}


@pytest.fixture(scope="session")
def image() -> Image:
    # ROMFS, as fleets run: the bytecode executes in place from memory shared by every instance.
    return build("unix", romfs=True)


@pytest.fixture
async def csms() -> AsyncIterator[Csms]:
    config = CsmsConfig(heartbeat_interval=300)
    config.update({"tags": dict(TAGS)})
    config.add_tag("CHILD1", parent_id_tag="GROUPA")
    config.add_tag("CHILD2", parent_id_tag="GROUPA")
    async with Csms(config) as c:
        yield c
    bad = c.violations()
    assert not bad, f"the firmware sent invalid OCPP messages: {[r.to_dict() for r in bad]}"


StartCharger = Callable[..., Awaitable[Instance]]


@pytest.fixture
async def start_charger(tmp_path: Path, csms: Csms, image: Image) -> AsyncIterator[StartCharger]:
    """start_charger(id="CP1", **config) boots one charger and waits until it is registered."""
    spawner = await ZygoteSpawner.start(rom=str(image.romfs))
    instances: dict[int, Instance] = {}
    started: list[Instance] = []

    def on_exit(pid: int, rc: int) -> None:
        inst = instances.pop(pid, None)
        if inst is not None:
            inst.exited(rc)

    spawner.on_exit = on_exit

    async def start(cid: str = "CP1", wait: bool = True, **cfg: Any) -> Instance:
        config: dict[str, Any] = {"id": cid, "connectors": 1, "csms_url": csms.url + "/ocpp",
                                  "reconnect_base_ms": 200, "reconnect_cap_ms": 2000}
        config.update(cfg)
        inst = Instance(cid, tmp_path / cid, config, image, spawner, micropython=str(micropython_exe()))
        inst.prepare()
        inst.on_start = lambda i: instances.__setitem__(i.pid, i)
        await inst.start()
        started.append(inst)
        if wait:
            # Registered and every connector's first StatusNotification delivered.
            boot = await csms.wait_for("BootNotification", cp_id=cid, direction="out", timeout=20)
            for conn in range(int(config.get("connectors", 1)) + 1):
                await csms.wait_for("StatusNotification", cp_id=cid, match={"connectorId": conn},
                                    since=boot.seq, timeout=10)
        return inst

    yield start
    await asyncio.gather(*(i.stop() for i in started), return_exceptions=True)
    await spawner.close()
    for inst in started:   # shown by pytest only when the test failed
        lines = inst.console.recent()
        print(f"---- {inst.id} console log (last {len(lines)} lines) ----")
        print("\n".join(lines))
