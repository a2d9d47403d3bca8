# GB/T 27930 data of the YKC BMS frames 0x15-0x25 (DC sessions), built from what the EV's BMS says
# (hw.ev_info()) and the meter. Field lists per the protocol's §7.3-7.10; currents use the -400 A
# offset as (I + 400) x 10 (ykc-protocol.md §2), temperatures +50.
import struct
from micropython import const

_CELL_MV_EMPTY = const(330)   # 0.01 V: a cell voltage that follows the SoC from 3.30 V ...
_CELL_MV_SPAN = const(90)     # ... to 4.20 V
_TEMP_MAX = const(80)         # 30 °C + 50
_TEMP_MIN = const(76)         # 26 °C + 50
_PILE_V_MAX = const(7500)     # 750.0 V
_PILE_V_MIN = const(2000)     # 200.0 V


def _amps(a):
    return int((a + 400) * 10)


def _cell(soc):
    return _CELL_MV_EMPTY + int(_CELL_MV_SPAN * soc / 100)


def remaining_min(info, power_w):
    # Minutes to the target SoC at the present power (capped at 600 as the field's range).
    if not info or power_w <= 0:
        return 0
    wh = (info["target_soc"] - info["soc"]) * info["capacity_wh"] / 100
    return max(0, min(600, int(wh * 60 / power_w)))


def handshake(info):
    # 0x15 (BHM/BRM), 49 bytes: version 1.1, LFP, rated capacity 0.1 Ah and voltage 0.1 V, maker,
    # pack no., production date (year - 1985), cycles, owned, VIN (unknown: zeros), software version.
    v = info["battery_v"]
    ah = int(info["capacity_wh"] * 10 / v) if v else 0
    return struct.pack("<3sBHH4s4sBBB3sBB17s8s", b"\x01\x01\x00", 3, ah, int(v * 10), b"EMUB",
                       b"\x00\x00\x00\x01", 39, 1, 1, b"\x01\x00\x00", 1, 0, b"",
                       b"\xff\xff\xff\xe8\x07\x01\x01\x01")


def params(info, max_a):
    # 0x17 (BCP/CML), 21 bytes.
    v = info["battery_v"]
    imax = info["max_power_w"] / v if v else 0
    return struct.pack("<HHHHBHHHHHH", 420, _amps(imax), int(info["capacity_wh"] // 100), int(v * 11),
                       105, int(info["soc"] * 10), int(v * 10), _PILE_V_MAX, _PILE_V_MIN, _amps(max_a),
                       _amps(0))


def demand(info, r, minutes):
    # 0x23 (BCL/BCS/CCS), 20 bytes: what the BMS asks for and what the charger gives.
    v = info["battery_v"]
    want_a = info["demand_w"] / v if v else 0
    soc = int(info["soc"])
    return struct.pack("<HHBHHHBHHHH", int(v * 10), _amps(want_a), 2, int(r.voltage_v * 10),
                       _amps(r.current_a), _cell(soc) | (1 << 12), soc, remaining_min(info, r.power_w),
                       int(r.voltage_v * 10), _amps(r.current_a), min(minutes, 600))


def status(info):
    # 0x25 (BSM), 7 bytes: cell no., max temp and probe, min temp and probe, all normal, charging allowed.
    return bytes((1, _TEMP_MAX, 1, _TEMP_MIN, 2, 0, 0x10))


def end(info, minutes, wh):
    # 0x19 (BSD/CSD), 15 bytes.
    soc = int(info["soc"]) if info else 0
    cell = _cell(soc)
    return struct.pack("<BHHBBHHI", soc, cell - 5, cell, _TEMP_MIN, _TEMP_MAX, min(minutes, 600),
                       min(wh // 100, 10000), 1)


def abort(bits, fault=0):
    # 0x1D (BST) / 0x21 (CST), 4 bytes: reason bits, fault bits, error bits.
    return struct.pack("<BHB", bits, fault, 0)


def error():
    # 0x1B (BEM/CEM), 8 bytes: "BMS and vehicle identification timeout" (an EV communication loss).
    return b"\x00\x00\x00\x00\x01\x00\x00\x00"
