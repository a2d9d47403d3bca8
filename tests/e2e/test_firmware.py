"""Firmware Management end to end (OCPP 1.6 TC_044_1/2/3, TC_045_1/2, security extension TC_079):
real firmware, the real CSMS, firmware bundles built by harness.fwbundle and served, uploads
received, by tools.fwserver."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness.fwbundle import Bundle, build_bundle
from harness.mpbin import FIRMWARE
from tools.csms import Csms
from tools.fwserver import FwServer


def now_iso(delta_s: float = 0) -> str:
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta_s)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


# The chargers run every feature of proto/ocpp16 (FEATURES) unless a test picks some: the e2e image
# is a ROMFS, so their bytecode is not in the heap. A charger that installed a bundle runs it from
# /app as .mpy files, whose bytecode is (see test_update_with_the_default_features).


@pytest.fixture
async def fwserver() -> AsyncIterator[FwServer]:
    async with FwServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def bundle_v2(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    # The new firmware differs in code, not only in its version string: its BootNotification
    # reports another meter type, which only the new station module can do.
    station = (FIRMWARE / "proto/ocpp16/station.py").read_text()
    assert '"meterType": "EmuMeter"' in station
    patched = station.replace('"meterType": "EmuMeter"', '"meterType": "EmuMeterV2"')
    out = tmp_path_factory.mktemp("bundles") / "evfw-2.0.0.tar"
    return build_bundle("2.0.0-e2e", out, overlay={"proto/ocpp16/station.py": patched})


async def fw_statuses(csms: Csms, cp: str, since: int, until: str, timeout: float = 30) -> list[str]:
    """FirmwareStatusNotification statuses from `since` up to and including `until`."""
    await csms.wait_for("FirmwareStatusNotification", cp_id=cp, match={"status": until}, since=since,
                        timeout=timeout)
    return [r.payload["status"] for r in csms.records(cp, "FirmwareStatusNotification", direction="in",
                                                      type="CALL", since=since)]


async def fw_idle(cp, timeout: float = 5) -> dict:
    """The charger's `fw` console answer once its firmware status is back to Idle."""
    for _ in range(int(timeout * 10)):
        fw = await cp.request("fw")
        if fw["firmware_status"] == "Idle":
            return fw
        await asyncio.sleep(0.1)
    raise AssertionError(f"firmware status still {fw['firmware_status']}")


async def test_update_firmware_runs_the_new_firmware(start_charger, csms: Csms, fwserver: FwServer,
                                                     bundle_v2: Bundle) -> None:
    cp = await start_charger("CP1")
    info = await cp.request("info")
    assert info["fw_version"] == "1.0.0"
    assert (await cp.request("fw"))["running_from"] == "/rom"
    url = fwserver.add_file("evfw-2.0.0.tar", bundle_v2.data())
    mark = csms.last_seq
    reply = await csms.call("CP1", "UpdateFirmware", {"location": url, "retrieveDate": now_iso(),
                                                      "retries": 1, "retryInterval": 1})
    assert reply == {}
    # Installed comes from the new firmware, after its BootNotification (TC_044_1).
    boot = await csms.wait_for("BootNotification", cp_id="CP1", since=mark, timeout=30)
    assert boot.payload["firmwareVersion"] == "2.0.0-e2e"
    assert boot.payload["meterType"] == "EmuMeterV2"           # the new code runs
    statuses = await fw_statuses(csms, "CP1", mark, "Installed")
    assert statuses == ["Downloading", "Downloaded", "Installing", "Installed"]
    installed = csms.records("CP1", "FirmwareStatusNotification", direction="in", type="CALL",
                             match={"status": "Installed"}, since=mark)[0]
    installing = csms.records("CP1", "FirmwareStatusNotification", direction="in", type="CALL",
                              match={"status": "Installing"}, since=mark)[0]
    assert installing.seq < boot.seq < installed.seq
    assert cp.exits and cp.exits[-1].why == "reboot"
    info = await cp.request("info")
    assert info["fw_version"] == "2.0.0-e2e"
    fw = await fw_idle(cp)
    assert fw["running_from"] == "/app" and fw["version"] == "2.0.0-e2e"
    assert (cp.flash / "app" / "version.mpy").is_file()
    assert not (cp.flash / "app.new").exists() and not (cp.flash / "fw" / "download.tar").exists()
    assert fwserver.count("/fw/evfw-2.0.0.tar", "GET") == 1
    # The new firmware survives a further reboot and keeps reporting its version.
    mark = csms.last_seq
    assert await csms.reset("CP1", "Soft") == "Accepted"
    boot = await csms.wait_for("BootNotification", cp_id="CP1", since=mark, timeout=20)
    assert boot.payload["firmwareVersion"] == "2.0.0-e2e"
    assert not csms.records("CP1", "FirmwareStatusNotification", direction="in", since=mark)


async def test_update_with_the_default_features(start_charger, csms: Csms, fwserver: FwServer,
                                                bundle_v2: Bundle) -> None:
    cp = await start_charger("CP1")
    before = (await cp.request("mem"))["alloc"]
    url = fwserver.add_file("evfw-2.0.0.tar", bundle_v2.data())
    mark = csms.last_seq
    await csms.call("CP1", "UpdateFirmware", {"location": url, "retrieveDate": now_iso()})
    statuses = await fw_statuses(csms, "CP1", mark, "Installed", timeout=40)
    assert statuses == ["Downloading", "Downloaded", "Installing", "Installed"]
    assert (await cp.request("info"))["fw_version"] == "2.0.0-e2e"
    await fw_idle(cp)
    after = (await cp.request("mem"))["alloc"]
    # The bundle runs from /app as .mpy files: its bytecode is in the heap, not in a ROM image.
    print(f"heap in use with every feature: {before} from /rom, {after} from /app")


async def test_update_waits_for_the_running_transaction(start_charger, csms: Csms, fwserver: FwServer,
                                                        bundle_v2: Bundle) -> None:
    cp = await start_charger("CP1", ocpp_features=["trigger", "firmware"])
    await cp.request("plug", 1)
    await cp.request("swipe", 1, "TAG1")
    await cp.wait_status(1, "Charging", timeout=5)
    url = fwserver.add_file("evfw-2.0.0.tar", bundle_v2.data())
    mark = csms.last_seq
    await csms.call("CP1", "UpdateFirmware", {"location": url, "retrieveDate": now_iso()})
    await csms.wait_for("FirmwareStatusNotification", cp_id="CP1", match={"status": "Downloaded"},
                        since=mark, timeout=15)
    await asyncio.sleep(2)
    assert (await cp.request("fw"))["firmware_status"] == "Downloaded"
    assert not csms.records("CP1", "FirmwareStatusNotification", match={"status": "Installing"}, since=mark)
    # TriggerMessage reads the feature's statuses (TC_054).
    trig = csms.last_seq
    assert await csms.trigger_message("CP1", "FirmwareStatusNotification") == "Accepted"
    rec = await csms.wait_for("FirmwareStatusNotification", cp_id="CP1", since=trig, timeout=5)
    assert rec.payload == {"status": "Downloaded"}
    assert await csms.trigger_message("CP1", "DiagnosticsStatusNotification") == "Accepted"
    rec = await csms.wait_for("DiagnosticsStatusNotification", cp_id="CP1", since=trig, timeout=5)
    assert rec.payload == {"status": "Idle"}
    stop_mark = csms.last_seq
    await cp.request("unplug", 1)     # the session ends: now it may install
    stop = await csms.wait_for("StopTransaction", cp_id="CP1", since=stop_mark, timeout=10)
    installing = await csms.wait_for("FirmwareStatusNotification", cp_id="CP1",
                                     match={"status": "Installing"}, since=stop_mark, timeout=15)
    assert stop.seq < installing.seq
    boot = await csms.wait_for("BootNotification", cp_id="CP1", since=installing.seq, timeout=30)
    assert boot.payload["firmwareVersion"] == "2.0.0-e2e"
    await csms.wait_for("FirmwareStatusNotification", cp_id="CP1", match={"status": "Installed"},
                        since=boot.seq, timeout=15)


async def test_download_failure_after_the_given_retries(start_charger, csms: Csms,
                                                        fwserver: FwServer) -> None:
    cp = await start_charger("CP1")
    fwserver.fail("/fw/gone.tar", 503)
    mark = csms.last_seq
    await csms.call("CP1", "UpdateFirmware", {"location": fwserver.url + "/fw/gone.tar",
                                              "retrieveDate": now_iso(), "retries": 2,
                                              "retryInterval": 1})
    statuses = await fw_statuses(csms, "CP1", mark, "DownloadFailed", timeout=20)
    assert statuses == ["Downloading", "DownloadFailed"]        # TC_044_2
    assert fwserver.count("/fw/gone.tar", "GET") == 3           # the first try and 2 retries
    await fw_idle(cp)
    assert (await cp.request("info"))["fw_version"] == "1.0.0"
    assert not (cp.flash / "app").exists()
    assert not csms.records("CP1", "BootNotification", since=mark)


async def test_unreachable_location_fails_too(start_charger, csms: Csms) -> None:
    await start_charger("CP1")
    mark = csms.last_seq
    await csms.call("CP1", "UpdateFirmware", {"location": "http://127.0.0.1:9/fw.tar",
                                              "retrieveDate": now_iso(), "retries": 0})
    assert await fw_statuses(csms, "CP1", mark, "DownloadFailed") == ["Downloading", "DownloadFailed"]


async def test_corrupt_bundle_is_refused_and_the_old_firmware_runs(
        start_charger, csms: Csms, fwserver: FwServer, bundle_v2: Bundle) -> None:
    cp = await start_charger("CP1")
    data = bytearray(bundle_v2.data())
    data[len(data) // 2] ^= 0x55                                 # one flipped byte inside a module
    url = fwserver.add_file("bad.tar", bytes(data))
    mark = csms.last_seq
    await csms.call("CP1", "UpdateFirmware", {"location": url, "retrieveDate": now_iso()})
    statuses = await fw_statuses(csms, "CP1", mark, "InstallationFailed")
    assert statuses == ["Downloading", "Downloaded", "Installing", "InstallationFailed"]   # TC_044_3
    await asyncio.sleep(1)
    assert not csms.records("CP1", "BootNotification", since=mark)
    assert not cp.exits
    assert (await cp.request("info"))["fw_version"] == "1.0.0"
    assert (await cp.request("fw"))["running_from"] == "/rom"
    assert not (cp.flash / "app").exists() and not (cp.flash / "app.new").exists()
    # A good bundle still installs afterwards.
    mark = csms.last_seq
    url = fwserver.add_file("good.tar", bundle_v2.data())
    await csms.call("CP1", "UpdateFirmware", {"location": url, "retrieveDate": now_iso()})
    boot = await csms.wait_for("BootNotification", cp_id="CP1", since=mark, timeout=30)
    assert boot.payload["firmwareVersion"] == "2.0.0-e2e"


async def test_bundle_for_another_board_is_refused(start_charger, csms: Csms, fwserver: FwServer,
                                                   tmp_path: Path) -> None:
    cp = await start_charger("CP1")
    b = build_bundle("9.9.9", tmp_path / "x.tar")
    data = b.data().replace(b"board unix\n", b"board esp3\n")   # same length; manifest hash breaks
    url = fwserver.add_file("other.tar", data)
    mark = csms.last_seq
    await csms.call("CP1", "UpdateFirmware", {"location": url, "retrieveDate": now_iso()})
    assert (await fw_statuses(csms, "CP1", mark, "InstallationFailed"))[-1] == "InstallationFailed"
    assert (await cp.request("info"))["fw_version"] == "1.0.0"


async def test_retrieve_date_in_the_future_survives_a_reboot(start_charger, csms: Csms,
                                                             fwserver: FwServer, bundle_v2: Bundle) -> None:
    cp = await start_charger("CP1")
    url = fwserver.add_file("later.tar", bundle_v2.data())
    mark = csms.last_seq
    await csms.call("CP1", "UpdateFirmware", {"location": url, "retrieveDate": now_iso(6)})
    await asyncio.sleep(1)
    assert fwserver.count("/fw/later.tar") == 0
    cp.power_cut()                                             # the accepted request is on flash
    boot = await csms.wait_for("BootNotification", cp_id="CP1", since=mark, timeout=15)
    assert boot.payload["firmwareVersion"] == "1.0.0"
    boot2 = await csms.wait_for("BootNotification", cp_id="CP1", since=boot.seq, timeout=40)
    assert boot2.payload["firmwareVersion"] == "2.0.0-e2e"
    await csms.wait_for("FirmwareStatusNotification", cp_id="CP1", match={"status": "Installed"},
                        since=boot2.seq, timeout=15)
    assert fwserver.count("/fw/later.tar") == 1
    assert cp.exits[-1].why == "reboot"


async def test_get_diagnostics_uploads_log_and_configuration(start_charger, csms: Csms,
                                                             fwserver: FwServer) -> None:
    cp = await start_charger("CP1")
    assert await csms.change_configuration("CP1", "MeterValueSampleInterval", "37") == "Accepted"
    await cp.request("plug", 1)                                 # state on flash: /hw/conn1.json
    mark = csms.last_seq
    reply = await csms.call("CP1", "GetDiagnostics", {"location": fwserver.upload_url("diag/")})
    name = reply["fileName"]
    assert name.startswith("CP1-diagnostics-") and name.endswith(".txt")
    await csms.wait_for("DiagnosticsStatusNotification", cp_id="CP1", match={"status": "Uploaded"},
                        since=mark, timeout=15)
    statuses = [r.payload["status"] for r in csms.records("CP1", "DiagnosticsStatusNotification",
                                                          direction="in", type="CALL", since=mark)]
    assert statuses == ["Uploading", "Uploaded"]               # TC_045_1
    up = await fwserver.wait_upload(name=name)
    assert up.method == "PUT" and up.path == "/upload/diag/" + name
    text = up.data.decode()
    assert "charger: CP1" in text and "firmware: 1.0.0" in text
    assert "MeterValueSampleInterval = 37" in text              # configuration
    assert "registered (heartbeat" in text                      # recent log lines
    assert "--- /config.json" in text and "--- /hw/conn1" in text   # state files
    assert '"cable": 1' in text
    assert "AuthorizationKey" not in text


async def test_get_diagnostics_time_window_and_post(start_charger, csms: Csms, fwserver: FwServer) -> None:
    await start_charger("CP1", upload_method="POST")
    mark = csms.last_seq
    reply = await csms.call("CP1", "GetDiagnostics", {"location": fwserver.upload_url(),
                                                      "startTime": now_iso(3600),
                                                      "stopTime": now_iso(7200)})
    await csms.wait_for("DiagnosticsStatusNotification", cp_id="CP1", match={"status": "Uploaded"},
                        since=mark, timeout=15)
    up = await fwserver.wait_upload(name=reply["fileName"])
    assert up.method == "POST" and up.multipart
    text = up.data.decode()
    log = text.split("== log ==")[1].split("== configuration ==")[0]
    assert "registered (heartbeat" not in log                   # outside the window
    assert "HeartbeatInterval = " in text


@pytest.mark.parametrize("where", ["ftp", "http500", "refused"])
async def test_get_diagnostics_upload_failed(start_charger, csms: Csms, fwserver: FwServer,
                                             where: str) -> None:
    await start_charger("CP1")
    location = {"ftp": "ftp://user:pw@127.0.0.1/diag/", "http500": fwserver.url + "/status/500/diag/",
                "refused": "http://127.0.0.1:9/diag/"}[where]
    mark = csms.last_seq
    reply = await csms.call("CP1", "GetDiagnostics", {"location": location, "retries": 1,
                                                      "retryInterval": 1})
    assert "fileName" in reply
    await csms.wait_for("DiagnosticsStatusNotification", cp_id="CP1", match={"status": "UploadFailed"},
                        since=mark, timeout=15)            # TC_045_2
    if where == "http500":
        assert fwserver.count("/status/500/", "PUT") == 2
    assert not fwserver.uploads


async def test_get_log_diagnostics_and_security(start_charger, csms: Csms, fwserver: FwServer) -> None:
    cp = await start_charger("CP1")
    mark = csms.last_seq
    reply = await csms.call("CP1", "GetLog", {"logType": "DiagnosticsLog", "requestId": 7,
                                              "log": {"remoteLocation": fwserver.upload_url("logs/")}})
    assert reply["status"] == "Accepted" and reply["filename"].startswith("CP1-diagnostics-")
    await csms.wait_for("LogStatusNotification", cp_id="CP1", match={"status": "Uploaded", "requestId": 7},
                        since=mark, timeout=15)
    statuses = [(r.payload["status"], r.payload.get("requestId")) for r in
                csms.records("CP1", "LogStatusNotification", direction="in", type="CALL", since=mark)]
    assert statuses == [("Uploading", 7), ("Uploaded", 7)]
    up = await fwserver.wait_upload(name=reply["filename"])
    assert "registered (heartbeat" in up.data.decode()
    # SecurityLog (TC_079): security-tagged lines and the security log file, if any.
    (cp.flash / "security.log").write_text("2026-01-01T00:00:00Z FirmwareUpdated\n")
    mark = csms.last_seq
    reply = await csms.call("CP1", "GetLog", {"logType": "SecurityLog", "requestId": 8,
                                              "log": {"remoteLocation": fwserver.upload_url("logs/")}})
    assert reply["status"] == "Accepted"
    await csms.wait_for("LogStatusNotification", cp_id="CP1", match={"status": "Uploaded", "requestId": 8},
                        since=mark, timeout=15)
    text = (await fwserver.wait_upload(name=reply["filename"])).data.decode()
    assert "FirmwareUpdated" in text and "registered (heartbeat" not in text
    for _ in range(50):
        if (await cp.request("fw"))["log_status"] == "Idle":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("log status not back to Idle")


async def test_get_log_failures(start_charger, csms: Csms, fwserver: FwServer) -> None:
    await start_charger("CP1")

    async def get_log(rid: int, location: str, **kw: int) -> tuple[dict, str]:
        mark = csms.last_seq
        reply = await csms.call("CP1", "GetLog", {"logType": "DiagnosticsLog", "requestId": rid,
                                                  "log": {"remoteLocation": location}, **kw})
        if reply["status"] == "Rejected":
            return reply, ""
        rec = await csms.wait_for("LogStatusNotification", cp_id="CP1", since=mark, timeout=15,
                                  where=lambda r: r.payload.get("status") != "Uploading"
                                  and r.payload.get("requestId") == rid)
        return reply, rec.payload["status"]

    assert (await get_log(1, fwserver.url + "/status/403/logs/"))[1] == "PermissionDenied"
    assert (await get_log(2, fwserver.url + "/status/405/logs/"))[1] == "NotSupportedOperation"
    assert (await get_log(3, fwserver.url + "/status/500/logs/", retries=1, retryInterval=1))[1] == \
        "UploadFailure"
    assert fwserver.count("/status/500/", "PUT") == 2
    assert fwserver.count("/status/403/", "PUT") == 1          # no point retrying a refusal
    assert (await get_log(4, "ftp://127.0.0.1/logs/"))[0]["status"] == "Rejected"

    async def not_http(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        head = (await r.readuntil(b"\r\n\r\n")).decode().lower()
        await r.readexactly(int(head.split("content-length:")[1].split()[0]))
        w.write(b"220 this is an FTP server\r\n\r\n")
        await w.drain()
        w.close()

    server = await asyncio.start_server(not_http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await get_log(5, f"http://127.0.0.1:{port}/logs/"))[1] == "BadMessage"
    finally:
        server.close()


async def test_get_log_while_one_runs_cancels_it(start_charger, csms: Csms, fwserver: FwServer) -> None:
    await start_charger("CP1")
    slow = fwserver.url + "/status/503/logs/"
    first = await csms.call("CP1", "GetLog", {"logType": "DiagnosticsLog", "requestId": 1, "retries": 3,
                                              "retryInterval": 5, "log": {"remoteLocation": slow}})
    assert first["status"] == "Accepted"
    mark = csms.last_seq
    second = await csms.call("CP1", "GetLog", {"logType": "DiagnosticsLog", "requestId": 2,
                                               "log": {"remoteLocation": fwserver.upload_url()}})
    assert second["status"] == "AcceptedCanceled"
    await csms.wait_for("LogStatusNotification", cp_id="CP1", match={"status": "Uploaded", "requestId": 2},
                        since=mark, timeout=15)
    await asyncio.sleep(6)
    assert not csms.records("CP1", "LogStatusNotification", match={"requestId": 1, "status": "UploadFailure"})


async def test_feature_heap_cost(start_charger, csms: Csms) -> None:
    # The idle cost of the feature: heap in use with and without it (routes, ring, status strings).
    a = await start_charger("CPA", ocpp_features=[])
    b = await start_charger("CPB", ocpp_features=["firmware"])
    await asyncio.sleep(1)
    without = (await a.request("mem"))["alloc"]
    with_fw = (await b.request("mem"))["alloc"]
    print(f"firmware feature idle heap cost: {with_fw - without} bytes ({without} -> {with_fw})")
    assert with_fw - without < 16 * 1024
