"""Fleet definition: YAML or JSON with templates (id pattern, count, identity, hardware, protocol,
back-end, credentials, EV profile, protocol settings). Every error names the field and the problem.

    name: demo
    csms: ws://10.0.0.5:9000/ocpp        # optional: without it the embedded CSMS is started
    tags: [TAG1, TAG2]                   # id tags the embedded CSMS accepts
    templates:
      - id: "CP-{n:04d}"
        count: 10
        connectors: 2
        ev: {capacity_wh: 60000, soc: 20}
        ocpp: {MeterValueSampleInterval: 30}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class FleetFileError(ValueError):
    """A fleet definition that cannot be used; the message names the field."""


PROTOCOLS = ("ocpp16", "ykc")
TYPES = ("AC", "DC")
_ID_OK = re.compile(r"^[A-Za-z0-9._-]{1,48}$")

# Template field -> (type, check) ; check returns an error text or None.
_INT = (int,)
_NUM = (int, float)


def _range(lo: float, hi: float) -> Any:
    return lambda v: None if lo <= v <= hi else f"must be between {lo:g} and {hi:g}"


def _choice(options: tuple[str, ...]) -> Any:
    return lambda v: None if v in options else f"must be one of {', '.join(options)}"


def _url(v: str) -> str | None:
    if not re.match(r"^(wss?|tcp)://[^/\s:]+(:\d+)?(/\S*)?$", v):
        return "must be a ws://, wss:// or tcp:// URL"
    return None


FIELDS: dict[str, tuple[tuple[type, ...], Any]] = {
    "id": ((str,), None),
    "count": (_INT, _range(1, 100000)),
    "start": (_INT, _range(0, 10**9)),
    "vendor": ((str,), lambda v: None if 0 < len(v) <= 20 else "must be 1..20 characters"),
    "model": ((str,), lambda v: None if 0 < len(v) <= 20 else "must be 1..20 characters"),
    "serial": ((str,), None),
    "fw_version": ((str,), None),
    "connectors": (_INT, _range(1, 4)),
    "type": ((str,), _choice(TYPES)),
    "max_current_a": (_NUM, _range(6, 500)),
    "max_power_w": (_NUM, _range(1000, 400000)),
    "phases": (_INT, _range(1, 3)),
    "voltage": (_NUM, _range(100, 1000)),
    "fixed_cable": ((bool,), None),
    "protocol": ((str,), _choice(PROTOCOLS)),
    "csms": ((str,), _url),
    "password": ((str,), None),
    "ev": ((dict,), None),
    "ocpp": ((dict,), None),
    "heap": ((str,), lambda v: None if re.match(r"^\d+[kKmM]?$", v) else "must look like 256k"),
    "pile_code": ((str,), lambda v: None if re.match(r"^\d{14}$", v) else "must be 14 digits"),
    "log": ((str,), _choice(("debug", "info", "warn", "error"))),
    "atg": ((dict, bool), None),  # automatic transaction generator in the firmware (sim/atg.py)
    "config": ((dict,), None),  # any further /config.json keys, passed through as they are
}
ATG_RANGES = ("session_s", "gap_s")           # [low, high] seconds
ATG_SECONDS = ("first_s", "wait_s")
EV_FIELDS = {"capacity_wh": _range(100, 500000), "soc": _range(0, 100), "max_power_w": _range(100, 400000),
             "target_soc": _range(1, 100), "taper_soc": _range(1, 100), "phases": _range(1, 3),
             "battery_v": _range(100, 1000)}
TOP = ("name", "csms", "tags", "templates", "run_dir", "restart", "launch_rate", "capture", "ports",
       "defaults")


@dataclass
class ChargerSpec:
    """One charger to run: its id and its /config.json."""

    id: str
    config: dict[str, Any]
    heap: str = "256k"


@dataclass
class FleetConfig:
    name: str = "fleet"
    csms: str | None = None
    tags: list[str] = field(default_factory=lambda: ["TAG1", "TAG2", "TAG3"])
    chargers: list[ChargerSpec] = field(default_factory=list)
    run_dir: Path | None = None
    restart: str = "always"         # always | on-reboot | never
    launch_rate: float = 0.0        # chargers per second; 0 = as fast as possible
    capture: bool = False           # record every protocol message per charger
    ports: str = "none"             # none | all: a pty for every charger from the start

    def by_id(self) -> dict[str, ChargerSpec]:
        return {c.id: c for c in self.chargers}


def _check_field(where: str, name: str, value: Any) -> None:
    if name not in FIELDS:
        raise FleetFileError(f"{where}.{name}: unknown field (known: {', '.join(sorted(FIELDS))})")
    types, check = FIELDS[name]
    if isinstance(value, bool) and bool not in types:
        raise FleetFileError(f"{where}.{name}: must be {types[0].__name__}, not a boolean")
    if not isinstance(value, types):
        raise FleetFileError(f"{where}.{name}: must be {' or '.join(t.__name__ for t in types)}, "
                             f"not {type(value).__name__} {value!r}")
    if check is not None:
        err = check(value)
        if err:
            raise FleetFileError(f"{where}.{name}: {err} (got {value!r})")
    if name == "ev":
        for k, v in value.items():
            if k == "paused":
                continue
            if k not in EV_FIELDS:
                raise FleetFileError(f"{where}.ev.{k}: unknown EV parameter (known: {', '.join(EV_FIELDS)})")
            if not _is_num(v):
                raise FleetFileError(f"{where}.ev.{k}: must be a number, not {v!r}")
            err = EV_FIELDS[k](v)
            if err:
                raise FleetFileError(f"{where}.ev.{k}: {err} (got {v!r})")
    if name == "atg" and isinstance(value, dict):
        _check_atg(f"{where}.atg", value)
    if name == "ocpp":
        for k, v in value.items():
            if not isinstance(v, (str, int, bool)):
                raise FleetFileError(f"{where}.ocpp.{k}: must be a string, number or boolean")


def _check_atg(where: str, value: dict[str, Any]) -> None:
    known = ATG_RANGES + ATG_SECONDS + ("tags",)
    for k, v in value.items():
        if k not in known:
            raise FleetFileError(f"{where}.{k}: unknown setting (known: {', '.join(known)})")
        if k in ATG_RANGES:
            pair = [v, v] if _is_num(v) else v
            if not (isinstance(pair, list) and len(pair) == 2 and all(_is_num(x) and x >= 0 for x in pair)
                    and pair[0] <= pair[1]):
                raise FleetFileError(f"{where}.{k}: must be [low, high] seconds with low <= high (got {v!r})")
        elif k in ATG_SECONDS:
            if not _is_num(v) or v < 0 or (k == "wait_s" and v == 0):
                raise FleetFileError(f"{where}.{k}: must be a number of seconds{' > 0' if k == 'wait_s' else ''} "
                                     f"(got {v!r})")
        else:
            tags = [v] if isinstance(v, str) else v
            if not (isinstance(tags, list) and tags and all(isinstance(t, str) and 0 < len(t) <= 20 for t in tags)):
                raise FleetFileError(f"{where}.tags: must be idTags of 1..20 characters (got {v!r})")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _expand_id(where: str, pattern: str, n: int) -> str:
    try:
        cid = pattern.format(n=n) if "{" in pattern else pattern
    except (KeyError, IndexError, ValueError) as e:
        raise FleetFileError(f"{where}.id: bad pattern {pattern!r} ({e}); use e.g. \"CP-{{n:04d}}\"") from None
    if not _ID_OK.match(cid):
        raise FleetFileError(f"{where}.id: {cid!r} is not a usable charge point id "
                             "(1..48 of letters, digits, '.', '_', '-')")
    return cid


def pile_code_for(cid: str, n: int) -> str:
    """A stable, unique 14-digit YKC pile code derived from the charger id."""
    import zlib

    return f"{zlib.crc32(cid.encode()) % 10**6:06d}{n % 10**8:08d}"


def charger_config(spec: dict[str, Any], cid: str, n: int, fleet_csms: str | None) -> dict[str, Any]:
    """The /config.json of one charger from its template."""
    cfg: dict[str, Any] = {"id": cid}
    for k in ("vendor", "model", "fw_version", "connectors", "type", "max_current_a", "max_power_w", "phases",
              "voltage", "fixed_cable", "protocol", "password", "ev", "ocpp", "pile_code", "log", "atg"):
        if k in spec:
            cfg[k] = spec[k]
    if "serial" in spec:
        cfg["serial"] = spec["serial"].format(n=n, id=cid) if "{" in spec["serial"] else spec["serial"]
    csms = spec.get("csms", fleet_csms)
    if csms:
        cfg["csms_url"] = csms
    if cfg.get("protocol") == "ykc" and "pile_code" not in cfg:
        cfg["pile_code"] = pile_code_for(cid, n)
    cfg.update(spec.get("config", {}))
    return cfg


def from_dict(data: Any, source: str = "fleet") -> FleetConfig:
    if not isinstance(data, dict):
        raise FleetFileError(f"{source}: the fleet definition must be a mapping with 'templates'")
    for k in data:
        if k not in TOP:
            raise FleetFileError(f"{source}.{k}: unknown field (known: {', '.join(TOP)})")
    fc = FleetConfig()
    fc.name = str(data.get("name", "fleet"))
    if not re.match(r"^[A-Za-z0-9._-]{1,40}$", fc.name):
        raise FleetFileError(f"{source}.name: {fc.name!r} must be 1..40 letters, digits, '.', '_', '-'")
    if "csms" in data and data["csms"] is not None:
        if not isinstance(data["csms"], str) or _url(data["csms"]):
            raise FleetFileError(f"{source}.csms: must be a ws://, wss:// or tcp:// URL, not {data['csms']!r}")
        fc.csms = data["csms"]
    if "tags" in data:
        tags = data["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 20 for t in tags):
            raise FleetFileError(f"{source}.tags: must be a list of id tags (1..20 characters each)")
        fc.tags = list(tags)
    if "run_dir" in data:
        fc.run_dir = Path(str(data["run_dir"]))
    if "restart" in data:
        if data["restart"] not in ("always", "on-reboot", "never"):
            raise FleetFileError(f"{source}.restart: must be always, on-reboot or never")
        fc.restart = data["restart"]
    if "launch_rate" in data:
        r = data["launch_rate"]
        if isinstance(r, bool) or not isinstance(r, (int, float)) or r < 0:
            raise FleetFileError(f"{source}.launch_rate: must be a number of chargers per second >= 0")
        fc.launch_rate = float(r)
    if "capture" in data:
        if not isinstance(data["capture"], bool):
            raise FleetFileError(f"{source}.capture: must be true or false")
        fc.capture = data["capture"]
    if "ports" in data:
        if data["ports"] not in ("none", "all"):
            raise FleetFileError(f"{source}.ports: must be none or all")
        fc.ports = data["ports"]
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise FleetFileError(f"{source}.defaults: must be a mapping of template fields")
    templates = data.get("templates")
    if not isinstance(templates, list) or not templates:
        raise FleetFileError(f"{source}.templates: must be a non-empty list of templates")
    seen: dict[str, str] = {}
    for i, t in enumerate(templates):
        where = f"{source}.templates[{i}]"
        if not isinstance(t, dict):
            raise FleetFileError(f"{where}: must be a mapping")
        spec = {**defaults, **t}
        for k, v in spec.items():
            _check_field(where, k, v)
        if "id" not in spec:
            raise FleetFileError(f"{where}.id: missing (an id or a pattern like \"CP-{{n:04d}}\")")
        count = spec.get("count", 1)
        start = spec.get("start", 1)
        if count > 1 and "{" not in spec["id"]:
            raise FleetFileError(f"{where}.id: count is {count}, so the id needs a pattern like \"CP-{{n:04d}}\"")
        for n in range(start, start + count):
            cid = _expand_id(where, spec["id"], n)
            if cid in seen:
                raise FleetFileError(f"{where}.id: charger {cid} is also defined by {seen[cid]}")
            seen[cid] = where
            fc.chargers.append(ChargerSpec(cid, charger_config(spec, cid, n, fc.csms), spec.get("heap", "256k")))
    return fc


def load(path: str | Path) -> FleetConfig:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise FleetFileError(f"{p}: cannot read ({e.strerror})") from None
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as e:
        raise FleetFileError(f"{p}: not valid {'JSON' if p.suffix == '.json' else 'YAML'}: {e}") from None
    return from_dict(data, p.name)


def simple(count: int, protocol: str = "ocpp16", csms: str | None = None, connectors: int = 2,
           prefix: str = "CP-", name: str = "fleet") -> FleetConfig:
    """The fleet of `evfleet up --count N`."""
    if count < 1:
        raise FleetFileError("--count must be at least 1")
    return from_dict({"name": name, "csms": csms,
                      "templates": [{"id": prefix + "{n:04d}", "count": count, "protocol": protocol,
                                     "connectors": connectors}]}, "--count")


def to_dict(fc: FleetConfig) -> dict[str, Any]:
    """JSON export: one template per charger, so the file reproduces this exact fleet."""
    out: dict[str, Any] = {"name": fc.name, "tags": fc.tags, "restart": fc.restart,
                           "launch_rate": fc.launch_rate, "capture": fc.capture, "ports": fc.ports}
    if fc.csms:
        out["csms"] = fc.csms
    templates = []
    for c in fc.chargers:
        t: dict[str, Any] = {"id": c.id}
        extra = {}
        for k, v in c.config.items():
            if k == "id":
                continue
            if k == "csms_url":
                if v != fc.csms:
                    t["csms"] = v
            elif k in FIELDS:
                t[k] = v
            else:
                extra[k] = v
        if extra:
            t["config"] = extra
        if c.heap != "256k":
            t["heap"] = c.heap
        templates.append(t)
    out["templates"] = templates
    return out
