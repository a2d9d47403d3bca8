"""The YKC platform peer: its own codec against the golden vectors, and the server driven by a fake pile."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tools.ykc_peer import BillingModel, PeerConfig, YkcPeer, codec
from tools.ykc_peer.control import start_control

REPO = Path(__file__).resolve().parents[2]
VECTOR_DIR = REPO / "tests" / "vectors" / "ykc"
PILE = "32010200000001"
TRADE = "32010200000001012501011200000001"


def load_vectors() -> list[tuple[str, int, int, str, str, bytes, dict[str, Any]]]:
    out = []
    for path in sorted(VECTOR_DIR.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, typ, seq, crc, source, hexa, fields = line.split(" | ", 6)
            raw = bytes.fromhex(hexa.replace(" ", ""))
            out.append((name, int(typ, 16), int(seq), crc, source, raw, json.loads(fields)))
    return out


VECTORS = load_vectors()
BY_NAME = {v[0]: v for v in VECTORS}


# ---- the peer's codec -------------------------------------------------------------------------


def test_vector_files_cover_the_reference() -> None:
    # every §1.1 example (A-P) plus the three published frames, and the built set
    assert {*"ABCDEFGHIJKLMNOP", "PDF62", "PDF66", "JCPP01"} <= set(BY_NAME)
    assert len(VECTORS) >= 40
    assert len({v[0] for v in VECTORS}) == len(VECTORS)


def test_crc_check_value() -> None:
    assert codec.crc16_modbus(b"123456789") == 0x4B37


@pytest.mark.parametrize("vec", VECTORS, ids=[v[0] for v in VECTORS])
def test_peer_codec_golden_vector(
    vec: tuple[str, int, int, str, str, bytes, dict[str, Any]],
) -> None:
    _name, typ, seq, crc, _source, raw, fields = vec
    errors: list[tuple[str, str]] = []
    frames = codec.FrameReader(lambda r, d: errors.append((r, d))).feed(raw)
    assert errors == []
    assert len(frames) == 1
    f = frames[0]
    assert (f.seq, f.enc, f.type, f.crc_order) == (seq, 0, typ, crc)
    assert codec.decode_body(f.type, f.body) == fields
    assert codec.build(seq, typ, fields, crc_high_first=crc == "hi") == raw
    swapped = raw[:-2] + raw[-1:] + raw[-2:-1]
    again = codec.FrameReader().feed(swapped)
    assert len(again) == 1 and again[0].body == f.body


def test_reader_recovers_from_garbage_truncation_and_bad_crc() -> None:
    hb, start = BY_NAME["C"][5], BY_NAME["J"][5]
    bad = bytearray(hb)
    bad[9] ^= 0x40
    stream = b"GET / HTTP/1.1\r\n" + start[:20] + hb + bytes(bad) + b"\x68\x01" + start
    for step in (1, 3, len(stream)):
        errors: list[str] = []
        reader = codec.FrameReader(lambda r, d, errors=errors: errors.append(r))
        got = []
        for i in range(0, len(stream), step):
            got += reader.feed(stream[i : i + step])
        assert [f.type for f in got] == [0x03, 0x34], step
        assert {"garbage", "bad crc", "bad length"} <= set(errors), (step, errors)
        # fed whole, the cut-off frame's LEN covers the bytes behind it, so it fails as a bad CRC
        assert ("truncated" in errors) == (step < len(stream)), (step, errors)


def test_body_errors() -> None:
    with pytest.raises(ValueError):
        codec.decode_body(0x03, bytes(8))
    with pytest.raises(ValueError):
        codec.decode_body(0x99, b"")
    with pytest.raises(ValueError):
        codec.encode_body(0x13, {"voltage": 70000})
    with pytest.raises(ValueError):
        codec.encode_body(0x56, {"time": [2025, 13, 1, 0, 0, 0]})
    # JCPP's 4-byte reboot control: the last byte counts
    assert codec.decode_body(0x92, bytes.fromhex(PILE) + b"\x00\x00\x00\x02")["control"] == 2


# ---- a fake pile built on the peer's codec ----------------------------------------------------


class FakePile:
    """The charger side, by hand: sends frames with an incrementing seq, reads decoded frames."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pile: str
    ) -> None:
        self.reader, self.writer, self.pile = reader, writer, pile
        self.seq = 0
        self.frames = codec.FrameReader()
        self.inbox: list[codec.Frame] = []

    @classmethod
    async def connect(cls, peer: YkcPeer, pile: str = PILE) -> FakePile:
        reader, writer = await asyncio.open_connection(peer.host, peer.port)
        fake = cls(reader, writer, pile)
        _OPEN.append(fake)
        return fake

    async def send(
        self,
        ftype: int,
        fields: dict[str, Any],
        seq: int | None = None,
        crc_high_first: bool = False,
    ) -> int:
        if seq is None:
            seq, self.seq = self.seq, self.seq + 1
        body = {"pile": self.pile, **fields}
        self.writer.write(codec.build(seq, ftype, body, crc_high_first=crc_high_first))
        await self.writer.drain()
        return seq

    async def recv(
        self, ftype: int | None = None, timeout: float = 5.0
    ) -> tuple[codec.Frame, dict[str, Any]]:
        async def next_frame() -> codec.Frame:
            while True:
                for i, f in enumerate(self.inbox):
                    if ftype is None or f.type == ftype:
                        return self.inbox.pop(i)
                data = await self.reader.read(4096)
                if not data:
                    raise EOFError("peer closed the connection")
                self.inbox += self.frames.feed(data)

        f = await asyncio.wait_for(next_frame(), timeout)
        return f, codec.decode_body(f.type, f.body)

    async def nothing(self, wait: float = 0.3) -> None:
        with pytest.raises(TimeoutError):
            f = await self.recv(timeout=wait)
            pytest.fail(f"unexpected frame {f}")

    async def closed(self, timeout: float = 5.0) -> bool:
        data = await asyncio.wait_for(self.reader.read(4096), timeout)
        return data == b""

    async def login(self) -> dict[str, Any]:
        await self.send(
            0x01,
            {"pile_type": 0, "guns": 1, "proto": 0x10, "fw": "V1.0.0", "net": 1, "operator": 4},
        )
        return (await self.recv(0x02))[1]

    def close(self) -> None:
        self.writer.close()


_OPEN: list[FakePile] = []


@pytest.fixture
async def peer() -> Any:
    async with YkcPeer(port=0) as p:
        yield p
    while _OPEN:  # the fake piles' sockets, whichever side closed first
        _OPEN.pop().close()


async def test_full_session(peer: YkcPeer) -> None:
    pile = await FakePile.connect(peer)
    assert await pile.login() == {"pile": PILE, "result": 0}
    assert peer.piles[PILE].logged_in

    seq = await pile.send(0x03, {"gun": 1, "state": 0})
    f, hb = await pile.recv(0x04)
    assert f.seq == seq and hb == {"pile": PILE, "gun": 1, "state": 0}

    await pile.send(0x05, {"model": "0000"})
    assert (await pile.recv(0x06))[1] == {"pile": PILE, "model": "0000", "result": 1}
    await pile.send(0x09, {})
    _, model = await pile.recv(0x0A)
    assert model == peer.config.billing.fields(PILE)
    assert model["slots"][34:38] == "0000"  # 17:00-19:00 is the sharp period
    await pile.send(0x05, {"model": model["model"]})
    assert (await pile.recv(0x06))[1]["result"] == 0

    mark = peer.mark()
    sent = await peer.remote_start(PILE, 1, trade=TRADE, balance=100000)
    _, start = await pile.recv(0x34)
    assert start["trade"] == TRADE and start["balance"] == 100000 and sent.direction == "out"
    await pile.send(0x33, {"trade": TRADE, "gun": 1, "result": 1, "reason": 0})
    reply = await peer.wait_for(0x33, pile=PILE, since=mark)
    assert reply.fields is not None and reply.fields["result"] == 1

    await pile.send(
        0x13,
        {
            "trade": TRADE,
            "gun": 1,
            "status": 3,
            "plugged": 1,
            "voltage": 3805,
            "current": 500,
            "energy": 83333,
            "loss_energy": 83333,
            "amount": 108332,
        },
    )
    rt = await peer.wait_for("realtime", pile=PILE, match={"status": 3, "trade": TRADE})
    assert rt.fields is not None and rt.fields["voltage"] == 3805
    assert peer.piles[PILE].guns[1]["status"] == 3

    await peer.remote_stop(PILE, 1)
    assert (await pile.recv(0x36))[1] == {"pile": PILE, "gun": 1}
    await pile.send(0x35, {"gun": 1, "result": 1})
    record = dict(BY_NAME["B09"][6])
    seq = await pile.send(0x3B, record)
    f, confirm = await pile.recv(0x40)
    assert confirm == {"trade": TRADE, "result": 0} and f.seq == seq

    ins = [r.type for r in peer.records(pile=PILE, direction="in")]
    outs = [r.type for r in peer.records(pile=PILE, direction="out")]
    assert ins == [0x01, 0x03, 0x05, 0x09, 0x05, 0x33, 0x13, 0x35, 0x3B]
    assert outs == [0x02, 0x04, 0x06, 0x0A, 0x06, 0x34, 0x36, 0x40]
    assert [r.event for r in peer.records(event="connect")] == ["connect"]
    assert all(r.raw and r.wall > 0 for r in peer.records(pile=PILE, direction="in"))
    pile.close()
    await peer.wait_for(event="disconnect", pile=PILE)
    assert not peer.piles[PILE].connected


async def test_login_refused_closes_link(peer: YkcPeer) -> None:
    peer.config.refuse_piles = [PILE]
    pile = await FakePile.connect(peer)
    assert (await pile.login())["result"] == 1
    assert await pile.closed()
    await peer.wait_for(event="login_refused", pile=PILE)
    assert PILE not in peer.piles or not peer.piles[PILE].logged_in


async def test_nothing_answered_before_login(peer: YkcPeer) -> None:
    pile = await FakePile.connect(peer)
    await pile.send(0x03, {"gun": 1})
    await pile.nothing()
    rec = await peer.wait_for(0x03)
    assert rec.note == "before login"
    await pile.login()
    await pile.send(0x03, {"gun": 1}, crc_high_first=True)  # the field quirk is accepted
    await pile.recv(0x04)
    assert peer.records(0x03)[-1].crc == "hi"
    pile.close()


async def test_withheld_record_is_confirmed_when_resent(peer: YkcPeer) -> None:
    peer.config.drop_records = 1
    pile = await FakePile.connect(peer)
    await pile.login()
    record = BY_NAME["B09"][6]
    await pile.send(0x3B, record)
    await peer.wait_for(event="record_withheld")
    await pile.nothing()
    await pile.send(0x3B, record)
    assert (await pile.recv(0x40))[1] == {"trade": TRADE, "result": 0}
    peer.config.confirm_records = False
    await pile.send(0x3B, record)
    await pile.nothing()
    assert len(peer.records(event="record_withheld")) == 2
    pile.close()


async def test_card_start_is_authorised(peer: YkcPeer) -> None:
    pile = await FakePile.connect(peer)
    await pile.login()
    await pile.send(0x31, {"gun": 1, "mode": 1, "card": "D14B0A54"})
    _, auth = await pile.recv(0x32)
    assert auth["result"] == 1 and auth["balance"] == peer.config.card_balance
    assert auth["trade"].startswith(PILE + "01") and len(auth["trade"]) == 32
    pile.close()


async def test_commands_reach_the_pile(peer: YkcPeer) -> None:
    pile = await FakePile.connect(peer)
    await pile.login()
    await peer.reboot(PILE, 2)
    assert (await pile.recv(0x92))[1]["control"] == 2
    await peer.time_sync(PILE, [2025, 1, 1, 12, 0, 0, 0])
    _, ts = await pile.recv(0x56)
    assert ts["time"] == [2025, 1, 1, 12, 0, 0, 0]
    await peer.push_billing(PILE, BillingModel(model="0200", slots="2" * 48))
    assert (await pile.recv(0x58))[1]["model"] == "0200"
    await peer.set_params(PILE, 1, 50)
    assert (await pile.recv(0x52))[1] == {"pile": PILE, "disabled": 1, "max_power": 50}
    await peer.update_balance(PILE, 1, "D14B0A54", 150000)
    assert (await pile.recv(0x42))[1]["card"] == "00000000D14B0A54"
    await peer.card_sync(PILE, [("1000000573", "D14B0A54")])
    assert (await pile.recv(0x44))[1]["cards"] == [["0000001000000573", "00000000D14B0A54"]]

    async def answer() -> None:
        f, _ = await pile.recv(0x12)
        await pile.send(0x13, {"gun": 1, "status": 2}, seq=f.seq)

    task = asyncio.create_task(answer())
    sent, reply = await peer.request(PILE, 0x12, {"gun": 1})
    await task
    assert reply.seq == sent.seq and reply.fields is not None and reply.fields["status"] == 2
    with pytest.raises(Exception, match="not connected"):
        await peer.reboot("99999999999999")
    pile.close()


async def test_platform_restart_on_same_port(peer: YkcPeer) -> None:
    port = peer.port
    pile = await FakePile.connect(peer)
    await pile.login()
    await peer.stop()
    assert await pile.closed()
    assert not peer.running and not peer.piles[PILE].connected
    with pytest.raises(OSError):
        await FakePile.connect(peer)
    await peer.start()
    assert peer.port == port
    pile2 = await FakePile.connect(peer)
    assert (await pile2.login())["result"] == 0
    assert peer.piles[PILE].connects == 2
    events = [r.event for r in peer.records() if r.event]
    assert events == [
        "server_start",
        "connect",
        "disconnect",
        "server_stop",
        "server_start",
        "connect",
    ]
    await peer.restart(down=0.05)
    assert await pile2.closed()


async def test_garbage_does_not_crash_the_server(peer: YkcPeer) -> None:
    junk = await FakePile.connect(peer)
    junk.writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)) * 4)
    junk.writer.write(codec.encode_frame(0, 0x77, b"unknown type"))  # valid CRC, unknown type
    junk.writer.write(codec.encode_frame(1, 0x03, b"\x01\x02"))  # known type, wrong body size
    junk.writer.write(codec.encode_frame(2, 0x03, bytes(9), enc=1))  # "encrypted"
    junk.writer.write(BY_NAME["J"][5][:25])  # cut off
    await junk.writer.drain()
    junk.writer.close()  # abrupt close mid-frame

    errs = await peer.wait_for(event="frame_error")
    assert errs.error and errs.error.startswith("garbage")
    bad = await peer.wait_for(0x77)
    assert bad.fields is None and bad.error and "unknown" in bad.error
    assert (await peer.wait_for(0x03)).error
    await peer.wait_for(event="disconnect")

    pile = await FakePile.connect(peer)
    pile.writer.write(b"\x68\x00\x68\x02garbage")
    await pile.writer.drain()
    assert await pile.login() == {"pile": PILE, "result": 0}
    await pile.send(0x03, {"gun": 1})
    await pile.recv(0x04)
    # gun byte 0xAA is read as binary 170, which no reply can carry: an error record, no crash
    body = codec.encode_body(0x03, {"pile": PILE})[:7] + b"\xaa\x00"
    pile.writer.write(codec.encode_frame(9, 0x03, body))
    assert "gun 170" in ((await peer.wait_for(event="error")).error or "")
    await pile.send(0x03, {"gun": 2})
    assert (await pile.recv(0x04))[1]["gun"] == 2
    assert peer.running
    pile.close()


# ---- HTTP control API -------------------------------------------------------------------------


async def test_http_control_api(peer: YkcPeer) -> None:
    runner, port = await start_control(peer)
    base = f"http://127.0.0.1:{port}/api"
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/health") as r:
                health = await r.json()
            assert health["status"] == "ok" and health["ykc"]["port"] == peer.port
            assert health["last_id"] == peer.mark() and health["running"] is True

            async with http.put(f"{base}/config", json={"billing": {"model": "0300"}}) as r:
                assert r.status == 200 and (await r.json())["billing"]["model"] == "0300"
            async with http.put(f"{base}/config", json={"no_such_key": 1}) as r:
                assert r.status == 400
            async with http.get(f"{base}/config") as r:
                assert (await r.json())["login_accept"] is True

            pile = await FakePile.connect(peer)
            await pile.login()
            async with http.get(f"{base}/piles") as r:
                assert [p["pile"] for p in await r.json()] == [PILE]

            async def answer() -> None:
                f, start = await pile.recv(0x34)
                await pile.send(0x33, {"trade": start["trade"], "gun": 1, "result": 1}, seq=f.seq)

            task = asyncio.create_task(answer())
            async with http.post(
                f"{base}/piles/{PILE}/remote_start", json={"gun": 1, "wait": 5}
            ) as r:
                assert r.status == 200
                out = await r.json()
            await task
            assert out["sent"]["type"] == 0x34 and out["reply"]["fields"]["result"] == 1

            async with http.get(f"{base}/records", params={"pile": PILE, "type": "0x33"}) as r:
                recs = await r.json()
            assert len(recs) == 1 and recs[0]["direction"] == "in"
            since = recs[0]["id"]
            async with http.get(f"{base}/records", params={"since": str(since)}) as r:
                assert all(x["id"] > since for x in await r.json())

            waiter = asyncio.create_task(
                http.get(
                    f"{base}/wait",
                    params={"type": "realtime", "match": json.dumps({"status": 2}), "since": "now"},
                )
            )
            await asyncio.sleep(0.1)
            await pile.send(0x13, {"gun": 1, "status": 2})
            async with await waiter as r:
                assert r.status == 200 and (await r.json())["fields"]["status"] == 2
            async with http.get(f"{base}/wait", params={"type": "0x99", "timeout": "0.1"}) as r:
                assert r.status == 504

            async with http.post(f"{base}/piles/{PILE}/reboot", json={"control": 1}) as r:
                assert r.status == 200
            assert (await pile.recv(0x92))[1]["control"] == 1
            async with http.post(
                f"{base}/piles/{PILE}/send", json={"type": "0x12", "fields": {"gun": 1}}
            ) as r:
                assert r.status == 200
            await pile.recv(0x12)
            async with http.post(f"{base}/piles/{PILE}/fly") as r:
                assert r.status == 404
            async with http.post(f"{base}/piles/00000000000009/reboot") as r:
                assert r.status == 409
            async with http.post(f"{base}/piles/{PILE}/balance", json={"gun": 1}) as r:
                assert r.status == 400

            async with http.post(f"{base}/server/restart", json={"down": 0.05}) as r:
                assert (await r.json())["running"] is True
            assert await pile.closed()
    finally:
        await runner.cleanup()


def test_main_prints_both_addresses() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.ykc_peer",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--control-port",
            "0",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        ykc = proc.stdout.readline().strip()
        http = proc.stdout.readline().strip()
        assert ykc.startswith("tcp://127.0.0.1:") and http.startswith("http://127.0.0.1:")

        async def check() -> None:
            async with aiohttp.ClientSession() as s, s.get(http + "/api/health") as r:
                assert (await r.json())["ykc"]["port"] == int(ykc.rsplit(":", 1)[1])

        asyncio.run(check())
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def test_config_update_is_all_or_nothing() -> None:
    cfg = PeerConfig()
    with pytest.raises(ValueError):
        cfg.update({"login_accept": False, "confirm_records": "yes"})
    assert cfg.login_accept is True
    with pytest.raises(ValueError):
        cfg.update({"billing": {"slots": "9" * 48}})
    cfg.update({"billing": {"elec": [1, 2, 3, 4]}, "drop_records": 2})
    assert (
        cfg.billing.elec == [1, 2, 3, 4] and cfg.billing.model == "0100" and cfg.drop_records == 2
    )
