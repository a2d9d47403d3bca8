"""Fleet definitions: templates expand to chargers; every bad field gets an error naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import fleetfile
from harness.fleetfile import FleetFileError

GOOD = """
name: depot
csms: ws://10.0.0.5:9000/ocpp
tags: [T1]
templates:
  - id: "AC-{n:03d}"
    count: 3
    vendor: ACME
    serial: "SN-{n:05d}"
    connectors: 2
    ev: {capacity_wh: 50000, soc: 10}
    ocpp: {MeterValueSampleInterval: 30}
    atg: {session_s: [60, 180], gap_s: 20, tags: [T1]}
  - id: DC-1
    type: DC
    protocol: ykc
    csms: tcp://10.0.0.6:8767
"""


def test_templates_expand(tmp_path: Path) -> None:
    p = tmp_path / "f.yaml"
    p.write_text(GOOD)
    fc = fleetfile.load(p)
    assert [c.id for c in fc.chargers] == ["AC-001", "AC-002", "AC-003", "DC-1"]
    ac = fc.chargers[1].config
    assert ac["serial"] == "SN-00002" and ac["connectors"] == 2 and ac["csms_url"] == "ws://10.0.0.5:9000/ocpp"
    assert ac["ev"] == {"capacity_wh": 50000, "soc": 10}
    assert ac["atg"] == {"session_s": [60, 180], "gap_s": 20, "tags": ["T1"]}
    dc = fc.chargers[3].config
    assert dc["csms_url"] == "tcp://10.0.0.6:8767" and len(dc["pile_code"]) == 14


def test_json_export_round_trip(tmp_path: Path) -> None:
    p = tmp_path / "f.yaml"
    p.write_text(GOOD)
    fc = fleetfile.load(p)
    j = tmp_path / "f.json"
    j.write_text(json.dumps(fleetfile.to_dict(fc)))
    again = fleetfile.load(j)
    assert [(c.id, c.config) for c in again.chargers] == [(c.id, c.config) for c in fc.chargers]


def test_pile_codes_are_unique_14_digits() -> None:
    fc = fleetfile.simple(500, protocol="ykc")
    codes = [c.config["pile_code"] for c in fc.chargers]
    assert len(set(codes)) == 500 and all(len(c) == 14 and c.isdigit() for c in codes)


@pytest.mark.parametrize("doc, message", [
    ("templates: []", "templates: must be a non-empty list"),
    ("templates: [{count: 2}]", "templates[0].id: missing"),
    ("templates: [{id: CP, count: 3}]", "templates[0].id: count is 3, so the id needs a pattern"),
    ("templates: [{id: CP1, connectors: 7}]", "templates[0].connectors: must be between 1 and 4 (got 7)"),
    ("templates: [{id: CP1, connectors: two}]", "templates[0].connectors: must be int, not str"),
    ("templates: [{id: CP1, protocol: modbus}]", "templates[0].protocol: must be one of ocpp16, ykc"),
    ("templates: [{id: CP1, csms: http://x}]", "templates[0].csms: must be a ws://, wss:// or tcp:// URL"),
    ("templates: [{id: CP1, ev: {soc: 140}}]", "templates[0].ev.soc: must be between 0 and 100"),
    ("templates: [{id: CP1, ev: {color: red}}]", "templates[0].ev.color: unknown EV parameter"),
    ("templates: [{id: CP1, colour: red}]", "templates[0].colour: unknown field"),
    ("templates: [{id: 'C P'}]", "templates[0].id: 'C P' is not a usable charge point id"),
    ("templates: [{id: CP1}, {id: CP1}]", "templates[1].id: charger CP1 is also defined by"),
    ("nam: x\ntemplates: [{id: CP1}]", "f.yaml.nam: unknown field"),
    ("templates: [{id: CP1, fixed_cable: 1}]", "templates[0].fixed_cable: must be bool"),
    ("templates: [{id: CP1, atg: {session_s: [180, 60]}}]", "templates[0].atg.session_s: must be [low, high]"),
    ("templates: [{id: CP1, atg: {sesion_s: 60}}]", "templates[0].atg.sesion_s: unknown setting"),
    ("templates: [{id: CP1, atg: {tags: []}}]", "templates[0].atg.tags: must be idTags"),
    ("templates: [{id: CP1, atg: {wait_s: 0}}]", "templates[0].atg.wait_s: must be a number of seconds > 0"),
    ("templates: [{id: CP1, atg: yes please}]", "templates[0].atg: must be dict or bool"),
    ("- just a list", "must be a mapping with 'templates'"),
    ("templates: [{id: CP1}\n  bad: [", "not valid YAML"),
])
def test_bad_files_name_the_field(tmp_path: Path, doc: str, message: str) -> None:
    p = tmp_path / "f.yaml"
    p.write_text(doc)
    with pytest.raises(FleetFileError) as e:
        fleetfile.load(p)
    assert message in str(e.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FleetFileError, match="cannot read"):
        fleetfile.load(tmp_path / "nope.yaml")
