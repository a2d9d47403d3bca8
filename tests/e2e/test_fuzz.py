"""Property-based fuzzing against a running charger (hypothesis): whatever the CSMS sends and
whatever arrives on the console, the firmware answers per OCPP-J (or drops and logs) and lives on."""

from __future__ import annotations

import asyncio
import json


from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as s

from tools.csms import Csms, NotConnected

# Reset is left out: a valid one reboots the charger, which is behaviour, not a crash.
ACTIONS = ["ChangeAvailability", "GetConfiguration", "ChangeConfiguration", "RemoteStartTransaction",
           "RemoteStopTransaction", "UnlockConnector", "DataTransfer", "ClearCache", "TriggerMessage",
           "SetChargingProfile", "ReserveNow", "SendLocalList", "BakeCake", ""]
CODES = {"NotImplemented", "NotSupported", "InternalError", "ProtocolError", "SecurityError",
         "FormationViolation", "PropertyConstraintViolation", "OccurenceConstraintViolation",
         "TypeConstraintViolation", "GenericError"}

json_value = s.recursive(
    s.none() | s.booleans() | s.integers(-2**40, 2**40) | s.floats(allow_nan=False, allow_infinity=False)
    | s.text(max_size=40),
    lambda inner: s.lists(inner, max_size=5) | s.dictionaries(s.text(max_size=12), inner, max_size=5),
    max_leaves=20)
safe_payload = s.dictionaries(
    s.sampled_from(["type", "connectorId", "key", "value", "idTag", "transactionId", "vendorId", "x"]),
    json_value, max_size=4)
call_frame = s.builds(lambda mid, action, payload: json.dumps([2, mid, action, payload]),
                      s.text(min_size=1, max_size=40), s.sampled_from(ACTIONS), safe_payload)
any_frame = s.one_of(
    call_frame,
    s.builds(lambda v: json.dumps(v), json_value),
    s.text(max_size=200),
    s.builds(lambda mid, t: json.dumps([t, mid, {}]), s.text(max_size=10), s.integers(-3, 9)),
)


def _check_reply(frame: str, reply: str | None) -> None:
    if reply is None:
        return
    msg = json.loads(reply)
    assert isinstance(msg, list) and msg[0] in (3, 4), reply
    if msg[0] == 4:
        assert msg[2] in CODES, reply
    try:
        sent = json.loads(frame)
    except ValueError:
        return
    if isinstance(sent, list) and len(sent) > 1 and isinstance(sent[1], str) and sent[0] == 2:
        assert msg[1] == sent[1][:36], (frame, reply)


async def test_random_frames_from_the_csms_never_crash_the_charger(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1", connectors=2)
    loop = asyncio.get_running_loop()
    seen: list[int] = []

    async def send_async(frame: str) -> str | None:
        # A frame the charger must refuse by closing the link (bad UTF-8: 1007) is fine; wait for
        # it to come back before the next one.
        if not csms.is_connected("CP1"):
            await csms.wait_connected("CP1", timeout=20)
        try:
            return await csms.send_raw("CP1", frame, timeout=0.4)
        except NotConnected:
            return None

    def send(frame: str) -> str | None:
        return asyncio.run_coroutine_threadsafe(send_async(frame), loop).result(30)

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(any_frame)
    def fuzz(frame: str) -> None:
        reply = send(frame)
        _check_reply(frame, reply)
        seen.append(1)

    await asyncio.to_thread(fuzz)
    assert len(seen) == 150
    # Still the same process, still online, still answering both sides.
    assert not cp.exits, [e.why for e in cp.exits]
    assert (await cp.request("ping")) == "pong"
    if not csms.is_connected("CP1"):
        await csms.wait_connected("CP1", timeout=20)
    reply = await csms.call("CP1", "GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert reply["configurationKey"][0]["key"] == "HeartbeatInterval"


async def test_huge_and_duplicate_frames(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1")
    huge = json.dumps([2, "h1", "DataTransfer", {"vendorId": "x", "data": "A" * 200_000}])
    mark = csms.last_seq
    await csms.send_raw("CP1", huge, timeout=1)        # over the charger's frame limit: it closes (1009)
    await csms.wait_for(cp_id="CP1", event="connect", since=mark, timeout=20)
    frame = json.dumps([2, "dup-1", "GetConfiguration", {"key": ["HeartbeatInterval"]}])
    first = await csms.send_raw("CP1", frame)
    second = await csms.send_raw("CP1", frame)          # the same message id again: answered again
    assert first is not None and second is not None and json.loads(first)[1] == json.loads(second)[1] == "dup-1"
    assert not cp.exits and (await cp.request("ping")) == "pong"


async def test_random_console_input_never_crashes_the_charger(start_charger, csms: Csms) -> None:
    cp = await start_charger("CP1")
    loop = asyncio.get_running_loop()
    commands = ["plug", "unplug", "swipe", "fault", "net", "config", "ev", "pilot", "lock", "status", "help", "x"]
    lines = s.one_of(
        s.binary(max_size=300),
        s.builds(lambda c, a: (c + " " + " ".join(a)).encode(), s.sampled_from(commands),
                 s.lists(s.text(alphabet="0123456789abcdefxyz=-. ", max_size=8), max_size=4)),
        s.builds(lambda v: b"\x1e" + json.dumps(v).encode(), json_value),
        s.builds(lambda v: json.dumps({"id": 1, "cmd": "status", "args": v}).encode(), json_value),
    )

    def write(data: bytes) -> None:
        async def go() -> None:
            cp.console.write(data + b"\r\n")
            await asyncio.sleep(0.01)
        asyncio.run_coroutine_threadsafe(go(), loop).result(10)

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(lines)
    def fuzz(data: bytes) -> None:
        # Commands that would legitimately reboot or cut the link are not what this test is about.
        if b"reboot" in data or data.startswith(b"net"):
            return
        write(data)

    await asyncio.to_thread(fuzz)
    await asyncio.sleep(1)
    assert not cp.exits, [e.why for e in cp.exits]
    # Garbage may have left the console in mpremote's raw REPL; the harness brings it back.
    assert (await cp.request("ping", timeout=10)) == "pong"
    assert (await cp.request("status"))["link"]["online"]



