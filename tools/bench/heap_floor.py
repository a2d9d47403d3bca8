"""The smallest MicroPython heap (-X heapsize) in which one charger boots, registers and runs a full
charging session (plug, authorize, start, meter values, stop, unplug) without a MemoryError, for the
ROMFS image (bytecode in place, as fleets run) and the plain .mpy image; plus one idle instance's
memory. `python -m tools.bench.heap_floor`."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.fwbuild import build
from harness.instance import Instance, SubprocessSpawner
from harness.mpbin import micropython_exe
from harness.spawners import ZygoteSpawner
from harness.procstat import pss_kib
from tools.csms import Csms, CsmsConfig

MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC"


async def session_ok(heap_kib: int, rom: bool, root: Path) -> tuple[bool, dict[str, Any]]:
    image = build("unix", romfs=rom)
    config = CsmsConfig(heartbeat_interval=300)
    config.update({"tags": ["TAG1"]})
    async with Csms(config) as csms:
        spawner: Any = await ZygoteSpawner.start(rom=str(image.romfs)) if rom else SubprocessSpawner()
        inst = Instance("HF1", root / f"hf-{heap_kib}-{rom}", {
            "id": "HF1", "connectors": 2, "csms_url": csms.url + "/ocpp",
            "ocpp": {"MeterValueSampleInterval": 1, "MeterValuesSampledData": MEASURANDS}},
            image, spawner, heap=f"{heap_kib}k", restart="never", micropython=str(micropython_exe()))
        pids: dict[int, Instance] = {}
        inst.on_start = lambda i: pids.__setitem__(i.pid, i)
        spawner.on_exit = lambda pid, rc: pids[pid].exited(rc) if pid in pids else None
        inst.prepare()
        info: dict[str, Any] = {}
        try:
            await inst.start()
            await csms.wait_for("StatusNotification", cp_id="HF1", match={"connectorId": 2}, timeout=15)
            await asyncio.sleep(2)
            info["idle_pss_kib"] = pss_kib(inst.pid) if inst.pid else None
            info["idle_heap"] = await inst.request("mem")
            await inst.request("plug", 1)
            await inst.request("swipe", 1, "TAG1")
            await inst.wait_status(1, "Charging", timeout=10)
            await csms.wait_for("StartTransaction", cp_id="HF1", direction="out", timeout=10)
            await asyncio.sleep(5)
            mvs = csms.records("HF1", "MeterValues", direction="in")
            await inst.request("swipe", 1, "TAG1")
            await csms.wait_for("StopTransaction", cp_id="HF1", timeout=10)
            await inst.request("unplug", 1)
            await inst.wait_status(1, "Available", timeout=10)
            info["busy_heap"] = await inst.request("mem")
            ok = len(mvs) >= 3 and not any("MemoryError" in line for line in inst.console.recent()) and not inst.exits
        except Exception as e:  # noqa: BLE001 - any failure means this heap is too small
            info["error"] = f"{type(e).__name__}: {e}"
            ok = False
        finally:
            await inst.stop()
            closer = getattr(spawner, "close", None)
            if closer:
                await closer()
        return ok, info


async def floor(rom: bool, lo: int = 64, hi: int = 512, step: int = 8) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="heapfloor-"))
    ok, info = await session_ok(hi, rom, root)
    if not ok:
        return {"rom": rom, "floor_kib": None, "note": f"fails even at {hi}k", **info}
    best = (hi, info)
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        ok, info = await session_ok(mid, rom, root)
        if ok:
            hi, best = mid, (mid, info)
        else:
            lo = mid
    return {"rom": rom, "floor_kib": best[0], **best[1]}


async def main() -> None:
    t0 = time.monotonic()
    results = [await floor(True), await floor(False)]
    for r in results:
        kind = "ROMFS image (fleets)" if r["rom"] else ".mpy image in RAM"
        print(f"{kind}: lowest heap for a full session {r['floor_kib']} KiB; idle PSS {r.get('idle_pss_kib')} KiB; "
              f"heap in use idle {r.get('idle_heap', {}).get('alloc')} B, after a session {r.get('busy_heap', {}).get('alloc')} B")
    print(f"({time.monotonic() - t0:.0f} s)")
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
