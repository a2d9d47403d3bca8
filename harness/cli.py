"""evfleet: the command line. It only parses options and calls the control API (a Fleet in this
process for `up`/`run`, the running fleet's HTTP API for everything else)."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness import fleetfile
from harness.client import RemoteFleet, find_fleet, run_dir_for
from harness.fleet import Fleet, FleetError
from harness.fleetfile import FleetConfig, FleetFileError

out = Console()
err = Console(stderr=True, soft_wrap=True)


def fail(msg: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {msg}")
    sys.exit(code)


def _fleet_config(file: str | None, count: int | None, protocol: str, csms: str | None, connectors: int,
                  name: str) -> FleetConfig:
    if file and count:
        fail("give either -f FLEET.yaml or --count N, not both")
    try:
        if file:
            fc = fleetfile.load(file)
            if csms:
                fc.csms = csms
                for c in fc.chargers:
                    c.config["csms_url"] = csms
            return fc
        return fleetfile.simple(count or 10, protocol, csms, connectors, name=name)
    except FleetFileError as e:
        fail(str(e))
        raise


def _remote(name: str, run_dir: str | None) -> RemoteFleet:
    state = find_fleet(name, run_dir)
    if state is None:
        fail(f"no fleet is up in {run_dir_for(name, run_dir)} (start one with `evfleet up`)")
    assert state is not None
    return RemoteFleet(state["api"])


def _run(coro: Any) -> Any:
    try:
        return asyncio.run(coro)
    except FleetError as e:
        fail(str(e))
    except KeyboardInterrupt:
        sys.exit(130)


@click.group()
@click.version_option("0.1.0", prog_name="evfleet")
def main() -> None:
    """Fleets of real-firmware EV chargers against any OCPP 1.6 or YKC back-end."""


fleet_opts = [
    click.option("-f", "--file", "file", type=click.Path(), help="fleet definition (YAML or JSON)"),
    click.option("--count", "-n", type=int, help="N identical chargers instead of a file"),
    click.option("--protocol", type=click.Choice(fleetfile.PROTOCOLS), default="ocpp16", show_default=True),
    click.option("--csms", help="external back-end URL (ws://host:port/path or tcp://host:port for YKC); "
                                "default: the embedded one"),
    click.option("--connectors", type=int, default=2, show_default=True, help="connectors per charger (--count)"),
    click.option("--name", default="fleet", show_default=True, help="fleet name (its run directory)"),
    click.option("--run-dir", help="run directory (default run/<name>)"),
    click.option("--launcher", type=click.Choice(["auto", "c", "python", "subprocess"]), default="auto",
                 show_default=True, help="how instances are started"),
    click.option("--rom/--no-rom", default=True, show_default=True,
                 help="share the firmware bytecode via a ROMFS image (--no-rom: .mpy files in each heap)"),
    click.option("--rate", type=float, default=None, help="chargers launched per second (0: all at once)"),
    click.option("--shards", type=int, default=0, show_default=True,
                 help="supervisor processes to split the fleet across (0: one per 2500 chargers)"),
]


def with_fleet_opts(fn: Any) -> Any:
    for opt in reversed(fleet_opts):
        fn = opt(fn)
    return fn


@main.command()
@with_fleet_opts
@click.option("--detach", is_flag=True, help="run the fleet in the background and return once it is up")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="seconds to wait for boot")
def up(file: str | None, count: int | None, protocol: str, csms: str | None, connectors: int, name: str,
       run_dir: str | None, launcher: str, rom: bool, rate: float | None, shards: int, detach: bool,
       timeout: float) -> None:
    """Bring a fleet up (from -f FLEET.yaml or --count N) and serve its control API."""
    fc = _fleet_config(file, count, protocol, csms, connectors, name)
    if rate is not None:
        fc.launch_rate = rate
    rd = run_dir_for(fc.name, run_dir or (str(fc.run_dir) if fc.run_dir else None))
    if find_fleet(fc.name, rd) is not None:
        fail(f"a fleet is already up in {rd} (`evfleet down --run-dir {rd}` first)")
    if detach:
        _detach(rd, timeout)
        return
    _run(_serve(fc, rd, launcher, rom, timeout, shards))


def _detach(rd: Path, timeout: float) -> None:
    rd.mkdir(parents=True, exist_ok=True)
    args = [a for a in sys.argv[1:] if a != "--detach"]
    if "--run-dir" not in args:
        args += ["--run-dir", str(rd)]
    logf = open(rd / "fleet.out", "ab")
    subprocess.Popen([sys.executable, "-m", "harness.cli", *args], stdout=logf, stderr=logf,
                     stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    with out.status("starting the fleet in the background...") as st:
        while time.monotonic() < deadline:
            state = find_fleet("", rd)
            if state and state.get("ready"):
                break
            if state:
                st.update(f"booting: {state.get('registered', 0)}/{state.get('chargers', '?')} registered")
            time.sleep(0.3)
        else:
            fail(f"the fleet did not come up within {timeout:g} s; see {rd / 'fleet.out'}")
    state = find_fleet("", rd) or {}
    out.print(f"fleet up: {state.get('chargers')} chargers, API {state.get('api')}, run dir {rd}")


async def _serve(fc: FleetConfig, rd: Path, launcher: str, rom: bool, timeout: float, shards: int = 0) -> None:
    from harness.httpapi import HttpApi

    fleet = Fleet(fc, rd, launcher, rom, shards)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    api = HttpApi(fleet, on_shutdown=stop.set)
    url = await api.start()
    rd.mkdir(parents=True, exist_ok=True)
    state_file = rd / "fleet.json"
    state: dict[str, Any] = {"pid": os.getpid(), "api": url, "name": fc.name, "chargers": len(fc.chargers),
                             "started": time.time(), "ready": False}

    def save() -> None:
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, state_file)

    save()
    t0 = time.monotonic()
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=out, transient=False) as prog:
            launched = prog.add_task("launched  ", total=len(fc.chargers))
            booted = prog.add_task("registered", total=len(fc.chargers))
            starter = asyncio.create_task(fleet.start(progress=lambda d, n: prog.update(launched, completed=d)))
            while not starter.done():
                await asyncio.sleep(0.1)
                if stop.is_set():
                    break
            await starter
            state["launched"] = True   # the control API answers for every charger from here on
            save()
            deadline = time.monotonic() + timeout
            while not stop.is_set():
                n = (await fleet.info())["registered"]
                if fleet.shardset is not None:
                    prog.update(launched, completed=len(fc.chargers))
                prog.update(booted, completed=n)
                state["registered"] = n
                save()
                if n == len(fc.chargers) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        info = await fleet.info()
        state.update({"ready": True, "registered": info["registered"], "boot_s": round(time.monotonic() - t0, 2),
                      "csms": info["csms"]})
        save()
        out.print(f"[green]{info['registered']}/{info['chargers']} registered[/green] in {state['boot_s']} s "
                  f"(launcher {info['launcher']}); CSMS {info['csms']['url']}"
                  f"{' (embedded)' if info['csms']['embedded'] else ''}; API {url}")
        out.print(f"consoles: evfleet console <id>; status: evfleet status; stop: evfleet down (or Ctrl-C)")
        await stop.wait()
    finally:
        out.print("stopping the fleet...")
        await fleet.shutdown()
        await api.close()
        if state_file.exists():
            state_file.unlink()


@main.command()
@click.option("--name", default="fleet", show_default=True)
@click.option("--run-dir")
def down(name: str, run_dir: str | None) -> None:
    """Stop the running fleet (every charger, the embedded back-ends, the fleet process)."""
    state = find_fleet(name, run_dir)
    if state is None:
        fail(f"no fleet is up in {run_dir_for(name, run_dir)}")
    assert state is not None

    async def go() -> None:
        r = RemoteFleet(state["api"])
        try:
            await r.shutdown()
        finally:
            await r.close()

    _run(go())
    for _ in range(300):
        if find_fleet(name, run_dir) is None:
            out.print("fleet stopped")
            return
        time.sleep(0.1)
    fail("the fleet process did not stop within 30 s")


def _status_table(rows: list[dict[str, Any]]) -> Table:
    t = Table(show_lines=False)
    for col in ("charger", "proc", "link", "connectors", "power kW", "energy kWh", "msgs in/out", "restarts"):
        t.add_column(col)
    for r in rows:
        conns = r.get("connectors", {})
        status = " ".join(f"{k}:{v.get('status')}" for k, v in conns.items() if k != "0") or "-"
        meter = r.get("meter") or {}
        power = sum((m.get("power_w") or 0) for m in meter.values()) / 1000
        energy = sum((m.get("energy_wh") or 0) for m in meter.values()) / 1000
        link = "registered" if r["registered"] else ("online" if r["online"] else "offline")
        t.add_row(r["id"], "up" if r["running"] else (r.get("last_exit") or "down"), link, status,
                  f"{power:.1f}" if meter else "-", f"{energy:.2f}" if meter else "-",
                  f"{r.get('msgs_in', 0)}/{r.get('msgs_out', 0)}", str(r["restarts"]))
    return t


@main.command()
@click.option("--name", default="fleet", show_default=True)
@click.option("--run-dir")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--watch", is_flag=True, help="refresh every 2 s until Ctrl-C")
def status(name: str, run_dir: str | None, as_json: bool, watch: bool) -> None:
    """Status of every charger: link, connector statuses, power, energy, messages."""
    r = _remote(name, run_dir)

    async def go() -> None:
        try:
            if as_json:
                out.print_json(json.dumps({"fleet": await r.info(), "chargers": await r.chargers(live=True)}))
                return
            info = await r.info()
            out.print(f"{info['name']}: {info['registered']}/{info['chargers']} registered, "
                      f"{info['running']} running, CSMS {info['csms']['url']}")
            if not watch:
                out.print(_status_table(await r.chargers(live=True)))
                return
            with Live(console=out, refresh_per_second=1) as live:
                while True:
                    live.update(_status_table(await r.chargers(live=True)))
                    await asyncio.sleep(2)
        finally:
            await r.close()

    _run(go())


@main.command()
@click.argument("charger_id")
@click.option("--name", default="fleet", show_default=True)
@click.option("--run-dir")
@click.option("--keep", is_flag=True, help="keep the pty open after leaving")
def console(charger_id: str, name: str, run_dir: str | None, keep: bool) -> None:
    """Interactive console of one charger (Ctrl-] leaves)."""
    r = _remote(name, run_dir)
    info = _run(_attach(r, charger_id))
    path = info["port"]
    out.print(f"connected to {charger_id} on {path} (Ctrl-] to leave)")
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    stdin = sys.stdin.fileno()
    old = termios.tcgetattr(stdin) if os.isatty(stdin) else None
    try:
        if old is not None:
            tty.setraw(stdin)
        os.write(fd, b"\r")
        while True:
            ready, _, _ = select.select([stdin, fd], [], [])
            if fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    break
                os.write(sys.stdout.fileno(), data)
            if stdin in ready:
                data = os.read(stdin, 1024)
                if not data or b"\x1d" in data:
                    break
                os.write(fd, data)
    finally:
        if old is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, old)
        os.close(fd)
        if not keep:
            _run(_detach_port(r, charger_id))
        print()


async def _attach(r: RemoteFleet, cid: str) -> dict[str, Any]:
    try:
        return await r.attach(cid)
    finally:
        await r.close()


async def _detach_port(r: RemoteFleet, cid: str) -> None:
    try:
        await r.detach(cid)
    finally:
        await r.close()


@main.command()
@click.argument("charger_id")
@click.option("--release", is_flag=True, help="close the charger's pty")
@click.option("--name", default="fleet", show_default=True)
@click.option("--run-dir")
def port(charger_id: str, release: bool, name: str, run_dir: str | None) -> None:
    """Give a charger a serial port (pty) for pyserial, mpremote, picocom; prints its path."""
    r = _remote(name, run_dir)
    if release:
        _run(_detach_port(r, charger_id))
        out.print(f"{charger_id}: port released")
        return
    info = _run(_attach(r, charger_id))
    out.print(info["port"])
    err.print(f"(also {info['link']}; release with `evfleet port {charger_id} --release`)")


@main.command()
@click.argument("charger_id")
@click.argument("cmd")
@click.argument("args", nargs=-1)
@click.option("--name", default="fleet", show_default=True)
@click.option("--run-dir")
def send(charger_id: str, cmd: str, args: tuple[str, ...], name: str, run_dir: str | None) -> None:
    """Run one console command on a charger (e.g. `evfleet send CP-0001 plug 1`)."""
    r = _remote(name, run_dir)

    async def go() -> Any:
        try:
            return await r.console(charger_id, cmd, list(args))
        finally:
            await r.close()

    out.print_json(json.dumps(_run(go())))


@main.command()
@click.argument("charger_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="every charger")
@click.option("--name", default="fleet", show_default=True)
@click.option("--run-dir")
def reboot(charger_ids: tuple[str, ...], all_: bool, name: str, run_dir: str | None) -> None:
    """Power-cycle one or more chargers (or --all)."""
    if not charger_ids and not all_:
        fail("name a charger id or give --all")
    r = _remote(name, run_dir)

    async def go() -> None:
        try:
            if all_:
                res = await r.reboot_all()
                out.print(f"rebooted {res['rebooted']} chargers")
            for cid in charger_ids:
                await r.reboot(cid)
                out.print(f"{cid} rebooted")
        finally:
            await r.close()

    _run(go())


@main.command("power-cut")
@click.argument("charger_ids", nargs=-1, required=True)
@click.option("--name", default="fleet", show_default=True)
@click.option("--run-dir")
def power_cut(charger_ids: tuple[str, ...], name: str, run_dir: str | None) -> None:
    """Cut the power of chargers (SIGKILL); they come back per the restart policy."""
    r = _remote(name, run_dir)

    async def go() -> None:
        try:
            for cid in charger_ids:
                await r.power_cut(cid)
                out.print(f"{cid}: power cut")
        finally:
            await r.close()

    _run(go())


@main.command()
@click.argument("scenario", type=click.Path())
@with_fleet_opts
@click.option("--timeout", type=float, default=120.0, show_default=True, help="seconds to wait for boot")
def run(scenario: str, file: str | None, count: int | None, protocol: str, csms: str | None, connectors: int,
        name: str, run_dir: str | None, launcher: str, rom: bool, rate: float | None, shards: int,
        timeout: float) -> None:
    """Run a scenario script: against the running fleet, or a fleet brought up just for it."""
    from harness.scenario import load_scenario

    try:
        mod = load_scenario(scenario)
    except (FileNotFoundError, ValueError, SyntaxError) as e:
        fail(str(e))
    state = None if (file or count) else find_fleet(name, run_dir)
    if state is not None:
        result = _run(_run_remote(mod, state["api"]))
    else:
        fc = _scenario_fleet(mod, file, count, protocol, csms, connectors, name)
        if rate is not None:
            fc.launch_rate = rate
        rd = run_dir_for(fc.name, run_dir)
        if find_fleet(fc.name, rd) is not None:
            fail(f"a fleet is already up in {rd}; run the scenario against it without -f/--count")
        result = _run(_run_local(mod, fc, rd, launcher, rom, timeout, shards))
    if result is not None:
        out.print_json(json.dumps(result, default=str))


def _scenario_fleet(mod: Any, file: str | None, count: int | None, protocol: str, csms: str | None,
                    connectors: int, name: str) -> FleetConfig:
    if file or count:
        return _fleet_config(file, count, protocol, csms, connectors, name)
    try:
        if getattr(mod, "FLEET", None) is not None:
            fc = fleetfile.from_dict(mod.FLEET, "FLEET")
        else:
            fc = fleetfile.simple(int(getattr(mod, "COUNT", 5)), protocol, csms, connectors, name=name)
    except FleetFileError as e:
        fail(str(e))
        raise
    return fc


async def _run_remote(mod: Any, api: str) -> Any:
    from harness.scenario import FleetHandle

    r = RemoteFleet(api)
    try:
        ids = await r.ids()
        try:
            csms_client = await r.csms()
        except FleetError:
            csms_client = None
        return await mod.main(FleetHandle(r, ids, csms_client, await r.ykc()))
    finally:
        await r.close()


async def _run_local(mod: Any, fc: FleetConfig, rd: Path, launcher: str, rom: bool, timeout: float,
                     shards: int = 0) -> Any:
    from harness.scenario import FleetHandle

    fleet = Fleet(fc, rd, launcher, rom, shards)
    try:
        with out.status(f"bringing up {len(fc.chargers)} chargers...") as st:
            await fleet.start(progress=lambda d, n: st.update(f"launched {d}/{n}"))
            st.update("waiting for registration...")
            n = await fleet.wait_booted(timeout)
        out.print(f"{n}/{len(fc.chargers)} chargers registered; running {getattr(mod, '__file__', 'scenario')}")
        result = await mod.main(FleetHandle(fleet, fleet.ids(), fleet.csms, fleet.ykc))
        out.print("[green]scenario finished[/green]")
        return result
    finally:
        await fleet.shutdown()


@main.command()
@click.option("--sizes", default="100,1000,5000", show_default=True, help="fleet sizes, comma-separated")
@click.option("--json", "json_out", type=click.Path(), help="also write the figures to this JSON file")
@click.option("--window", type=float, default=60.0, show_default=True,
              help="steady-state window for CPU and messages, s (then as long again for the round-trip probes)")
@click.option("--warmup", type=float, default=90.0, show_default=True,
              help="workload warm-up before it, s (every connector has started a session by 60 s)")
@click.option("--run-dir", default="run/bench", show_default=True)
@click.option("--rom/--no-rom", default=True, help="share the firmware bytecode via a ROMFS image")
@click.option("--launcher", type=click.Choice(["auto", "c", "python", "subprocess"]), default="auto")
@click.option("--shards", type=int, default=0, show_default=True, help="supervisor processes (0: automatic)")
@click.option("--driver", type=click.Choice(["firmware", "harness"]), default="firmware", show_default=True,
              help="who drives the sessions: each charger's own generator (as in the peer simulators), or "
                   "this process through every console")
def bench(sizes: str, json_out: str | None, window: float, warmup: float, run_dir: str, rom: bool,
          launcher: str, shards: int, driver: str) -> None:
    """Scale benchmark on the standard workload: boot time, memory, CPU, round trips per size."""
    from tools.bench.fleet_bench import bench as run_bench

    try:
        ns = [int(x) for x in sizes.split(",") if x.strip()]
    except ValueError:
        fail(f"--sizes must be numbers separated by commas, not {sizes!r}")
    _run(run_bench(ns, Path(json_out) if json_out else None, Path(run_dir), window, warmup, rom, launcher,
                   say=lambda m: out.print(m, soft_wrap=True), shards=shards, driver=driver))


@main.command()
@click.option("--count", "-n", type=int, default=50, show_default=True, help="chargers")
@click.option("--duration", type=float, default=120.0, show_default=True, help="seconds of chaos")
@click.option("--rate", type=float, default=None, help="faults per second (default: count/25)")
@click.option("--seed", type=int, default=None, help="random seed, to replay a run")
@click.option("--run-dir", default="run/chaos", show_default=True)
@click.option("--json", "json_out", type=click.Path(), help="also write the report as JSON")
def chaos(count: int, duration: float, rate: float | None, seed: int | None, run_dir: str,
          json_out: str | None) -> None:
    """Random power cuts, network cuts and CSMS restarts during sessions; then check every record."""
    from harness.chaos import run as run_chaos

    result = _run(run_chaos(count, duration, rate, Path(run_dir), seed, say=lambda m: out.print(m, soft_wrap=True)))
    out.print_json(json.dumps(result))
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=1))
    if result["problems"]:
        fail(f"{result['problems']} problem(s) in the records (see first_problems)")
    out.print(f"[green]{result['sessions']} sessions checked, {sum(result['faults'].values())} faults survived, "
              f"{result['messages_lost']} messages lost[/green]")


@main.command()
@click.option("--count", "-n", type=int, default=50, show_default=True, help="chargers")
@click.option("--duration", type=float, default=600.0, show_default=True, help="seconds")
@click.option("--interval", type=float, default=30.0, show_default=True, help="seconds between samples")
@click.option("--run-dir", default="run/soak", show_default=True)
@click.option("--json", "json_out", type=click.Path(), help="also write the samples as JSON")
def soak(count: int, duration: float, interval: float, run_dir: str, json_out: str | None) -> None:
    """Run a fleet for a long time and report memory per instance over time (it must stay flat)."""
    from harness.soak import run as run_soak

    result = _run(run_soak(count, duration, interval, Path(run_dir), say=lambda m: out.print(m, soft_wrap=True)))
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=1))
    out.print(f"PSS per instance: {result['pss_early_kib']} KiB in the first third, {result['pss_late_kib']} KiB "
              f"in the last ({result['pss_growth_pct']:+} %), slope {result['pss_slope_kib_per_hour']} KiB/h over "
              f"{result['sessions']} sessions")


@main.command()
@click.argument("file", type=click.Path())
@click.option("--json", "json_out", type=click.Path(), help="write the expanded fleet as JSON")
def validate(file: str, json_out: str | None) -> None:
    """Check a fleet definition (and optionally export it as JSON)."""
    try:
        fc = fleetfile.load(file)
    except FleetFileError as e:
        fail(str(e))
        raise
    out.print(f"{file}: {len(fc.chargers)} chargers ({', '.join(c.id for c in fc.chargers[:3])}"
              f"{', ...' if len(fc.chargers) > 3 else ''})")
    if json_out:
        Path(json_out).write_text(json.dumps(fleetfile.to_dict(fc), indent=1))
        out.print(f"wrote {json_out}")


if __name__ == "__main__":
    main()
