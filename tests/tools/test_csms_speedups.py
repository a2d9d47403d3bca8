"""The CSMS's compiled-schema fast path never accepts what the `ocpp` library's own validator
rejects, and errors still come from the library (same exception, same violated keyword)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Iterator

import ocpp
import pytest
from jsonschema import Draft4Validator
from jsonschema.exceptions import ValidationError

from tools.csms import speedups

SCHEMAS = sorted((Path(ocpp.__file__).parent / "v16" / "schemas").glob("*.json"))
ODD_VALUES = [True, 0, 1, -1, 1.0, 1.5, "", "x", "x" * 600, None, [], [1], {}, {"a": 1}]


def example(schema: dict[str, Any], root: dict[str, Any] | None = None) -> Any:
    """A valid instance: every property present, first enum value, strings at their max length."""
    root = schema if root is None else root
    if "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        return example(node, root)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        return {k: example(v, root) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [example(schema["items"], root)] * max(1, schema.get("minItems", 1))
    if kind == "string":
        return "2026-11-28T00:00:00Z" if schema.get("format") == "date-time" else "s" * schema.get("maxLength", 5)
    if kind == "integer":
        return max(0, schema.get("minimum", 0))
    if kind == "number":
        return 0.1 if "multipleOf" in schema else 1.5
    if kind == "boolean":
        return True
    return None


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from leaf_paths(v, path + (k,))
    elif isinstance(value, list) and value:
        yield from leaf_paths(value[0], path + (0,))


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    out = copy.deepcopy(value)
    node = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = new
    return out


def outcome(validator: Any, instance: Any) -> str | None:
    try:
        validator.validate(instance)
    except ValidationError as e:
        return str(e.validator)
    return None


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.stem)
def test_compiled_schema_agrees_with_the_library(path: Path) -> None:
    schema = json.loads(path.read_text())
    exact = Draft4Validator(schema)
    fast = speedups._CompiledFirst(exact)
    valid = example(schema)
    assert outcome(exact, valid) is None, "the example generator made an invalid instance"
    assert outcome(fast, valid) is None
    cases = [valid, {**valid, "unknownField": 1} if isinstance(valid, dict) else valid]
    for p in leaf_paths(valid):
        cases += [replaced(valid, p, odd) for odd in ODD_VALUES]
    for case in cases:
        assert outcome(fast, case) == outcome(exact, case), case


def test_key_conversion_is_the_librarys() -> None:
    import ocpp.charge_point as cp

    speedups.install()
    payload = {"chargePointVendor": "V", "meterValue": [{"sampledValue": [{"measurand": "SoC"}]}],
               "ocppCSMSURL": "u", "socLimitReached": 1, "V2XChargingCtrlr": {"a": [1, {"isV2G": True}]}}
    for name in ("camel_to_snake_case", "snake_to_camel_case"):
        assert getattr(cp, name) is not speedups.ORIGINALS[name]   # the cached version is installed
        assert getattr(cp, name)(payload) == speedups.ORIGINALS[name](payload)
        assert getattr(cp, name)(payload) == speedups.ORIGINALS[name](payload)   # from the cache
    assert cp.camel_to_snake_case(payload)["charge_point_vendor"] == "V"


def test_route_map_and_signatures_are_the_librarys() -> None:
    import inspect

    import ocpp.charge_point as cp

    from tools.csms.chargepoint import CentralChargePoint

    speedups.install()
    obj = CentralChargePoint.__new__(CentralChargePoint)   # the map needs only the class's methods
    fast, exact = cp.create_route_map(obj), speedups.ORIGINALS["create_route_map"](obj)
    assert fast == exact and len(fast) > 10   # same actions, options and bound handlers
    assert cp.create_route_map(obj) == exact   # from the cached plan
    handler = fast["BootNotification"]["_on_action"]
    assert cp.inspect.signature(handler) == inspect.signature(handler)
    assert cp.inspect.signature(handler) is cp.inspect.signature(fast["BootNotification"]["_on_action"])
    assert cp.inspect.isawaitable is inspect.isawaitable
