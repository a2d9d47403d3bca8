"""YKC end-to-end fixtures: real firmware instances with `"protocol": "ykc"` on the unix port against
the YKC platform peer (tools.ykc_peer), which decodes every frame with its own codec."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from harness.fwbuild import Image
from harness.instance import Instance, SubprocessSpawner
from harness.mpbin import micropython_exe
from tools.ykc_peer import PeerConfig, YkcPeer

PILE = "32010200000001"
# The host's UTC offset: the firmware's local time then equals the peer's (naive local) time, so a
# test can price energy with the peer's billing model at the host's local time.
TZ_MIN = time.localtime().tm_gmtoff // 60


@pytest.fixture
async def peer() -> AsyncIterator[YkcPeer]:
    async with YkcPeer(port=0, config=PeerConfig()) as p:
        yield p
    errors = [r for r in p.records() if r.event in ("error", "frame_error") or r.error]
    assert not errors, f"the peer saw bad frames: {[r.to_dict() for r in errors]}"


StartYkc = Callable[..., Awaitable[Instance]]


@pytest.fixture
async def start_ykc_charger(tmp_path: Path, peer: YkcPeer, image: Image) -> AsyncIterator[StartYkc]:
    """start_ykc_charger(id="Y1", pile=PILE, **config) boots one YKC charger; with wait=True it
    returns once the pile logged in, fetched the billing model and reported every gun (0x13)."""
    spawner = SubprocessSpawner()
    instances: dict[int, Instance] = {}
    started: list[Instance] = []

    def on_exit(pid: int, rc: int) -> None:
        inst = instances.pop(pid, None)
        if inst is not None:
            inst.exited(rc)
            if inst.pid is not None:
                instances[inst.pid] = inst

    spawner.on_exit = on_exit

    async def start(cid: str = "Y1", pile: str = PILE, wait: bool = True, **cfg: Any) -> Instance:
        config: dict[str, Any] = {
            "id": cid, "connectors": 1, "protocol": "ykc", "pile_code": pile,
            "ykc_host": peer.host, "ykc_port": peer.port, "ykc_tz_min": TZ_MIN,
            "reconnect_base_ms": 200, "reconnect_cap_ms": 1000,
            "ykc_heartbeat_s": 2, "ykc_realtime_s": 1, "ykc_record_retry_s": 2,
        }
        config.update(cfg)
        inst = Instance(cid, tmp_path / cid, config, image, spawner, micropython=str(micropython_exe()))
        inst.prepare()
        orig_start = inst.start

        async def tracked_start() -> None:
            await orig_start()
            assert inst.pid is not None
            instances[inst.pid] = inst

        inst.start = tracked_start  # type: ignore[method-assign]
        mark = peer.mark()
        await inst.start()
        started.append(inst)
        if wait:
            await peer.wait_for(0x01, pile=pile, since=mark, timeout=20)
            await peer.wait_for(0x0A, pile=pile, since=mark, direction="out", timeout=10)
            for gun in range(1, int(config["connectors"]) + 1):
                await peer.wait_for(0x13, pile=pile, since=mark, match={"gun": gun}, timeout=10)
        return inst

    yield start
    await asyncio.gather(*(i.stop() for i in started), return_exceptions=True)
