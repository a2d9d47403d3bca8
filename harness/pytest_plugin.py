"""pytest plugin: `fleet` and `charger` fixtures, so a back-end team tests its own CSMS with pytest.

    pytest --evfleet-csms ws://localhost:9000/ocpp --evfleet-count 5

    async def test_session(charger, fleet):
        await charger.plug(1)
        await charger.swipe(1, "TAG1")
        await charger.wait_for(connector=1, status="Charging")

The fleet runs once per test session in a background thread with its own event loop and control
API; each test gets a client of that API on its own loop (any pytest-asyncio loop scope works).
Without --evfleet-csms the embedded CSMS is used and `fleet.csms` shows what it received."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("evfleet", "real-firmware EV chargers")
    g.addoption("--evfleet-csms", default=None, help="CSMS URL the chargers use (default: the embedded CSMS)")
    g.addoption("--evfleet-count", type=int, default=1, help="chargers in the test fleet (default 1)")
    g.addoption("--evfleet-file", default=None, help="fleet definition instead of --evfleet-count")
    g.addoption("--evfleet-connectors", type=int, default=2, help="connectors per charger")
    g.addoption("--evfleet-protocol", default="ocpp16", help="ocpp16 or ykc")


class FleetThread:
    """A Fleet plus its HTTP API on a private event loop in a daemon thread."""

    def __init__(self, config: Any, run_dir: Path) -> None:
        self.config = config
        self.run_dir = run_dir
        self.url = ""
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="evfleet", daemon=True)

    def start(self, timeout: float = 180.0) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the evfleet test fleet did not come up in time")
        if self.error is not None:
            raise RuntimeError(f"the evfleet test fleet failed to start: {self.error}") from self.error

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        from harness.fleet import Fleet
        from harness.httpapi import HttpApi

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        fleet = Fleet(self.config, self.run_dir)
        api = HttpApi(fleet, on_shutdown=self._stop.set)
        try:
            await fleet.start()
            await fleet.wait_booted(120)
            self.url = await api.start()
        except BaseException as e:  # noqa: BLE001 - reported to the main thread
            self.error = e
            self._ready.set()
            await fleet.shutdown()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await api.close()
            await fleet.shutdown()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(60)


@pytest.fixture(scope="session")
def evfleet_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FleetThread]:
    from harness import fleetfile

    opt = request.config.getoption
    if opt("--evfleet-file"):
        fc = fleetfile.load(opt("--evfleet-file"))
    else:
        fc = fleetfile.simple(opt("--evfleet-count"), opt("--evfleet-protocol"), opt("--evfleet-csms"),
                              opt("--evfleet-connectors"), name="pytest")
    server = FleetThread(fc, tmp_path_factory.mktemp("evfleet"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def fleet(evfleet_server: FleetThread) -> AsyncIterator[Any]:
    """The test fleet (harness.scenario.FleetHandle): fleet["CP-0001"], fleet.all(), fleet.csms."""
    from harness.client import RemoteFleet
    from harness.fleet import FleetError
    from harness.scenario import FleetHandle

    remote = RemoteFleet(evfleet_server.url)
    try:
        ids = await remote.ids()
        try:
            csms = await remote.csms()
        except FleetError:
            csms = None
        yield FleetHandle(remote, ids, csms, await remote.ykc())
    finally:
        await remote.close()


@pytest.fixture
async def charger(fleet: Any) -> Any:
    """The fleet's first charger (harness.scenario.Charger)."""
    return fleet.all()[0]
