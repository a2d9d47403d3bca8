"""The fleet controller: one fleet definition brought to life (back-ends, supervisor, chargers) and
the control API every client uses (CLI, HTTP server, pytest plugin, scenarios). Methods return
plain JSON-able data; errors are FleetError with a message meant for a person."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from harness import fleetfile
from harness.backends import BackendError, BackendProcess, CsmsClient, YkcClient, csms_process, ykc_process
from harness.console import ConsoleError
from harness.errors import FleetError
from harness.fleetfile import FleetConfig
from harness.fwbuild import build
from harness.instance import Instance
from harness.shards import ShardSet, shard_count
from harness.supervisor import Progress, Supervisor

log = logging.getLogger("evfleet")


class Fleet:
    def __init__(self, config: FleetConfig, run_dir: Path | None = None, launcher: str = "auto",
                 rom: bool = True, shards: int = 0) -> None:
        self.config = config
        self.run_dir = (run_dir or config.run_dir or Path("run") / config.name).resolve()
        self.launcher = launcher
        self.rom = rom
        self.supervisor: Supervisor | None = None
        self.shards = shards            # 0: one supervisor up to a few thousand chargers, then split
        self.shardset: ShardSet | None = None
        self.csms_proc: BackendProcess | None = None
        self.ykc_proc: BackendProcess | None = None
        self.csms: CsmsClient | None = None
        self.csms_url: str | None = config.csms
        self.ykc_url: str | None = None
        self.ykc_control: str | None = None
        self.ykc: YkcClient | None = None
        self.started_at: float | None = None
        self.backends_ready_at: float | None = None   # monotonic; None until the back-ends answer
        self._subscribers: list[asyncio.Queue[dict[str, Any]]] = []
        self.booted_at: dict[str, float] = {}

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self, progress: Progress | None = None, wait_booted: float | None = None) -> None:
        self.started_at = time.time()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        image = build("unix", romfs=self.rom)
        await self._start_backends()
        self.backends_ready_at = time.monotonic()   # chargers' boot time counts from here
        k = shard_count(len(self.config.chargers), self.shards)
        if k > 1:
            for spec in self.config.chargers:
                self._point_at_backend(spec.config)
            self.shardset = ShardSet(self.config, self.run_dir, k, self.launcher, self.rom)
            await self.shardset.start()
            if wait_booted:
                await self.wait_booted(wait_booted)
            return
        sup = Supervisor(self.run_dir, image, self.launcher, self.config.restart, self.config.capture, self.rom)
        await sup.open()
        sup.listeners.append(self._on_event)
        self.supervisor = sup
        for spec in self.config.chargers:
            self._point_at_backend(spec.config)
            sup.add(spec)
        (self.run_dir / "fleet-definition.json").write_text(json.dumps(fleetfile.to_dict(self.config), indent=1))
        await sup.launch(rate=self.config.launch_rate, progress=progress)
        if self.config.ports == "all":
            for cid in sup.instances:
                await sup.attach(cid)
        if wait_booted:
            await self.wait_booted(wait_booted)

    def _point_at_backend(self, cfg: dict[str, Any]) -> None:
        if cfg.get("csms_url"):
            return
        if cfg.get("protocol", "ocpp16") == "ykc":
            cfg["csms_url"] = self.ykc_url
        else:
            cfg["csms_url"] = (self.csms_url or "").rstrip("/") + "/ocpp"

    async def _start_backends(self) -> None:
        needs_ocpp = any(not c.config.get("csms_url") and c.config.get("protocol", "ocpp16") == "ocpp16"
                         for c in self.config.chargers)
        needs_ykc = any(not c.config.get("csms_url") and c.config.get("protocol") == "ykc"
                        for c in self.config.chargers)
        if needs_ocpp:
            self.csms_proc = csms_process(self.run_dir, self.config.tags)
            ocpp_url, control = await self.csms_proc.start()
            self.csms_url = ocpp_url
            self.csms = CsmsClient(control, ocpp_url)
            log.info("embedded CSMS at %s (control %s)", ocpp_url, control)
        if needs_ykc:
            self.ykc_proc = ykc_process(self.run_dir)
            self.ykc_url, self.ykc_control = await self.ykc_proc.start()
            self.ykc = YkcClient(self.ykc_control, self.ykc_url)
            log.info("embedded YKC platform at %s (control %s)", self.ykc_url, self.ykc_control)

    async def wait_booted(self, timeout: float) -> int:
        """Wait until every charger is registered with its back-end; returns how many are."""
        if self.shardset is not None:
            deadline = time.monotonic() + timeout
            while True:
                n = sum(i["registered"] for i in await self.shardset.infos())
                if n == len(self.config.chargers) or time.monotonic() > deadline:
                    return n
                await asyncio.sleep(0.3)
        sup = self._sup()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            n = sum(1 for i in sup.instances.values() if i.state.registered)
            if n == len(sup.instances):
                return n
            await asyncio.sleep(0.05)
        return sum(1 for i in sup.instances.values() if i.state.registered)

    async def shutdown(self) -> None:
        if self.shardset is not None:
            await self.shardset.shutdown()
        if self.supervisor is not None:
            await self.supervisor.shutdown()
        for s in self._subscribers:
            s.put_nowait({"ev": "shutdown"})
        for client in (self.csms, self.ykc):
            if client is not None:
                await client.close()
        for p in (self.csms_proc, self.ykc_proc):
            if p is not None:
                await p.stop()

    # -- events --------------------------------------------------------------------------------

    def _on_event(self, inst: Instance, ev: dict[str, Any]) -> None:
        if ev.get("ev") == "boot" and ev.get("status") == "Accepted" and inst.id not in self.booted_at:
            self.booted_at[inst.id] = time.time()
        if not self._subscribers or ev.get("ev") in ("log", "proto"):
            return
        rec = {"id": inst.id, "t": time.time(), **ev}
        for q in self._subscribers:
            if q.qsize() < 10000:
                q.put_nowait(rec)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every charger event (status, transactions, link, exits) as it happens."""
        if self.shardset is not None:
            async for ev in self.shardset.events():
                yield ev
            return
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._subscribers.append(q)
        try:
            while True:
                ev = await q.get()
                if ev.get("ev") == "shutdown":
                    return
                yield ev
        finally:
            self._subscribers.remove(q)

    # -- the control API -----------------------------------------------------------------------

    def _sup(self) -> Supervisor:
        if self.supervisor is None:
            raise FleetError("the fleet is not running")
        return self.supervisor

    def _inst(self, cid: str) -> Instance:
        inst = self._sup().instances.get(cid)
        if inst is None:
            raise FleetError(f"no charger {cid!r} in this fleet")
        return inst

    def ids(self) -> list[str]:
        if self.shardset is not None:
            return [c.id for c in self.config.chargers]
        return list(self._sup().instances)

    async def info(self) -> dict[str, Any]:
        if self.shardset is not None:
            parts = await self.shardset.infos()
            out = {"name": self.config.name, "run_dir": str(self.run_dir), "pid": os.getpid(),
                   "started_at": self.started_at, "launcher": parts[0]["launcher"] if parts else "?",
                   "shards": [{"pid": p["pid"], "zygote_pids": p.get("zygote_pids", []), "chargers": p["chargers"],
                               "registered": p["registered"]} for p in parts],
                   "csms": {"url": self.csms_url, "embedded": self.csms_proc is not None,
                            "control": self.csms.base if self.csms else None},
                   "ykc": {"url": self.ykc_url, "control": self.ykc_control} if self.ykc_url else None,
                   "ports": [x for p in parts for x in p["ports"]]}
            for k in ("chargers", "running", "online", "registered", "restarts"):
                out[k] = sum(p[k] for p in parts)
            return out
        sup = self._sup()
        insts = list(sup.instances.values())
        return {"name": self.config.name, "run_dir": str(self.run_dir), "pid": os.getpid(),
                "zygote_pids": list(getattr(sup.spawner, "pids", [])),
                "started_at": self.started_at, "launcher": sup.spawner_kind,
                "csms": {"url": self.csms_url, "embedded": self.csms_proc is not None,
                         "control": self.csms.base if self.csms else None},
                "ykc": {"url": self.ykc_url, "control": self.ykc_control} if self.ykc_url else None,
                "chargers": len(insts), "running": sum(1 for i in insts if i.pid is not None),
                "online": sum(1 for i in insts if i.state.online),
                "registered": sum(1 for i in insts if i.state.registered),
                "restarts": sum(i.restarts for i in insts), "ports": sorted(sup.bridges)}

    async def chargers(self, live: bool = False) -> list[dict[str, Any]]:
        """Summaries of every charger; live=True also asks each for power and energy now."""
        if self.shardset is not None:
            return await self.shardset.chargers(live)
        insts = list(self._sup().instances.values())
        out = [i.summary() for i in insts]
        if live:
            snaps = await asyncio.gather(*(self._live(i) for i in insts))
            for s, snap in zip(out, snaps):
                if snap:
                    s["meter"] = snap
        return out

    async def _live(self, inst: Instance) -> dict[str, Any] | None:
        if inst.pid is None or inst.console.fd is None:
            return None
        try:
            snap = await inst.console.request("status", timeout=3)
        except ConsoleError:
            return None
        return {str(c["conn"]): {"power_w": c.get("power_w"), "energy_wh": c.get("energy_wh"), "soc": c.get("soc")}
                for c in snap.get("connectors", []) if c.get("conn")}

    async def charger(self, cid: str) -> dict[str, Any]:
        if self.shardset is not None:
            return await self.shardset.of(cid).charger(cid)
        inst = self._inst(cid)
        d = inst.summary()
        d["log"] = inst.console.recent(50)
        d["flash"] = str(inst.flash)
        d["protocol"] = inst.config.get("protocol", "ocpp16")
        if "pile_code" in inst.config:
            d["pile_code"] = inst.config["pile_code"]
        d["port"] = self._sup().bridges[cid].path if cid in self._sup().bridges else None
        d["exits"] = [{"pid": e.pid, "why": e.why, "at": e.at} for e in inst.exits[-10:]]
        return d

    async def console(self, cid: str, cmd: str, args: list[Any] | None = None, timeout: float = 10.0) -> Any:
        """Run a console command on a charger (what a technician types, as a machine request)."""
        if self.shardset is not None:
            return await self.shardset.of(cid).console(cid, cmd, args, timeout)
        inst = self._inst(cid)
        bridge = self._sup().bridges.get(cid)
        waited = 0.0
        while bridge is not None and bridge.raw_repl and waited < timeout:
            await asyncio.sleep(0.1)   # mpremote owns the console: wait until it leaves raw mode
            waited += 0.1
        try:
            return await inst.request(cmd, *(args or []), timeout=timeout)
        except (ConsoleError, asyncio.TimeoutError) as e:
            raise FleetError(str(e) or f"{cid}: {cmd} timed out") from None

    async def wait_status(self, cid: str, conn: int, status: str, timeout: float = 30.0) -> dict[str, Any]:
        if self.shardset is not None:
            return await self.shardset.of(cid).wait_status(cid, conn, status, timeout)
        inst = self._inst(cid)
        try:
            await inst.wait_status(conn, status, timeout)
        except TimeoutError as e:
            raise FleetError(str(e)) from None
        return {"id": cid, "conn": conn, "status": status}

    async def wait_event(self, cid: str, kind: str, match: dict[str, Any] | None = None,
                         timeout: float = 30.0) -> dict[str, Any]:
        if self.shardset is not None:
            return await self.shardset.of(cid).wait_event(cid, kind, match, timeout)
        inst = self._inst(cid)
        want = match or {}

        def pred(e: dict[str, Any]) -> bool:
            return e.get("ev") == kind and all(e.get(k) == v for k, v in want.items())

        try:
            return await inst.wait_event(pred, timeout)
        except TimeoutError as e:
            raise FleetError(str(e)) from None

    async def reboot(self, cid: str) -> dict[str, Any]:
        """Power-cycle a charger (like pulling the plug and putting it back)."""
        if self.shardset is not None:
            return await self.shardset.of(cid).reboot(cid)
        await self._sup().reboot(cid)
        return {"id": cid, "pid": self._inst(cid).pid}

    async def power_cut(self, cid: str) -> dict[str, Any]:
        if self.shardset is not None:
            return await self.shardset.of(cid).power_cut(cid)
        inst = self._inst(cid)
        inst.power_cut()
        return {"id": cid}

    async def stop_charger(self, cid: str) -> dict[str, Any]:
        if self.shardset is not None:
            return await self.shardset.of(cid).stop_charger(cid)
        await self._inst(cid).stop()
        return {"id": cid, "running": False}

    async def start_charger(self, cid: str) -> dict[str, Any]:
        if self.shardset is not None:
            return await self.shardset.of(cid).start_charger(cid)
        inst = self._inst(cid)
        if inst.pid is None:
            inst.restart = self.config.restart
            await self._sup()._start(inst)
        return {"id": cid, "pid": inst.pid}

    async def attach(self, cid: str) -> dict[str, Any]:
        if self.shardset is not None:
            return await self.shardset.of(cid).attach(cid)
        self._inst(cid)
        path = await self._sup().attach(cid)
        return {"id": cid, "port": path, "link": str(self.run_dir / "ports" / cid)}

    async def detach(self, cid: str) -> dict[str, Any]:
        if self.shardset is not None:
            return await self.shardset.of(cid).detach(cid)
        self._inst(cid)
        return {"id": cid, "released": await self._sup().detach(cid)}

    def csms_client(self) -> CsmsClient:
        if self.csms is None:
            raise FleetError("this fleet uses an external CSMS: its records are not available here")
        return self.csms

    async def csms_records(self, **query: Any) -> list[dict[str, Any]]:
        try:
            return await self.csms_client().records(**query)
        except BackendError as e:
            raise FleetError(str(e)) from None

    async def csms_call(self, cid: str, action: str, payload: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        try:
            return await self.csms_client().call(cid, action, payload, timeout)
        except BackendError as e:
            raise FleetError(str(e)) from None

    async def reboot_all(self) -> dict[str, Any]:
        if self.shardset is not None:
            res = await asyncio.gather(*(c.reboot_all() for c in self.shardset.clients))
            return {"rebooted": sum(r["rebooted"] for r in res)}
        ids = self.ids()
        await asyncio.gather(*(self._sup().reboot(i) for i in ids))
        return {"rebooted": len(ids)}

