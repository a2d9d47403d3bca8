"""Faster paths through the `ocpp` library for a CSMS that serves thousands of chargers, with the
library's behaviour kept: every message is still validated against the official JSON schemas.

Profiled at 1000 chargers, a third of the CSMS's CPU went to two things that repeat the same work
for every message: jsonschema's Draft4Validator walking the schema (19 %), and the camelCase to
snake_case conversion running two regular expressions per key (15 %).

- Validation: each schema is also compiled with fastjsonschema (the same schema, compiled to
  Python code). A payload the compiled check accepts is valid; one it rejects goes to the
  library's own validator, which raises exactly the error the library would have raised (or
  accepts it: formats are not checked by either). Schemas loaded with Decimal floats (the three
  actions the library treats specially) keep the library's validator only.
- Key conversion: the library's own function converts each key once; the result is cached.

Profiled during a 500-charger boot, each new connection also paid for the library's route map
(every decorated name tried with getattr on the instance, two AttributeErrors per name the class
does not route) and every CALL for two `inspect.signature` calls:

- Route map: which names a class routes is found once per class; each connection then binds them.
- Signatures: computed once per handler function (a handler's signature never changes).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import fastjsonschema
import ocpp.charge_point
import ocpp.messages

_DRAFT4 = "http://json-schema.org/draft-04/schema#"
_installed = False
ORIGINALS: dict[str, Callable[..., Any]] = {}   # the library's functions, before install()


class _CompiledFirst:
    """A validator with the library validator's `validate`, trying the compiled schema first."""

    def __init__(self, exact: Any) -> None:
        self.exact = exact
        # The library validates every schema as draft 4 (some declare draft 6): compile it so too.
        schema = {**exact.schema, "$schema": _DRAFT4}
        self._check = fastjsonschema.compile(schema, use_formats=False)

    def validate(self, instance: Any) -> None:
        try:
            self._check(instance)
        except fastjsonschema.JsonSchemaException:
            self.exact.validate(instance)


def _compiled_validators(get_validator: Callable[..., Any]) -> Callable[..., Any]:
    adapters: dict[int, tuple[Any, _CompiledFirst]] = {}

    @functools.wraps(get_validator)
    def wrapper(message_type_id: int, action: str, ocpp_version: str, parse_float: Callable = float) -> Any:
        exact = get_validator(message_type_id, action, ocpp_version, parse_float=parse_float)
        if parse_float is not float:
            return exact
        hit = adapters.get(id(exact))
        if hit is None or hit[0] is not exact:
            hit = adapters[id(exact)] = (exact, _CompiledFirst(exact))
        return hit[1]

    return wrapper


def _cached_keys(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    @functools.lru_cache(maxsize=4096)
    def key(k: str) -> str:
        return next(iter(convert({k: None})))

    def converted(data: Any) -> Any:
        if isinstance(data, dict):
            return {key(k) if isinstance(k, str) else k: converted(v) for k, v in data.items()}
        if isinstance(data, list):
            return [converted(v) for v in data]
        return data

    return converted


def _cached_route_maps() -> Callable[[Any], Any]:
    from ocpp.routing import routables

    # class -> (how many names were decorated then, its plan): a class defined later adds names
    plans: dict[type, tuple[int, list[tuple[str, str, Any, bool]]]] = {}

    def plan_for(cls: type) -> list[tuple[str, str, Any, bool]]:
        # The library's walk (routables in order, _on_action then _after_action), on the class.
        plan = []
        for name in routables:
            attr = getattr(cls, name, None)
            for option in ("_on_action", "_after_action"):
                action = getattr(attr, option, None) if attr is not None else None
                if action is not None:
                    plan.append((name, option, action, getattr(attr, "_skip_schema_validation", False)))
        return plan

    def route_map(obj: Any) -> dict[Any, dict[str, Any]]:
        cls = type(obj)
        known = plans.get(cls)
        if known is None or known[0] != len(routables):
            known = plans[cls] = (len(routables), plan_for(cls))
        plan = known[1]
        routes: dict[Any, dict[str, Any]] = {}
        for name, option, action, skip in plan:
            entry = routes.setdefault(action, {})
            if option == "_on_action":
                entry["_skip_schema_validation"] = skip
            entry[option] = getattr(obj, name)
        return routes

    return route_map


class _SignatureCache:
    """`inspect` as the library's charge_point module sees it, with signature() kept per function."""

    def __init__(self) -> None:
        self._sigs: dict[Any, inspect.Signature] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)

    def signature(self, fn: Any) -> inspect.Signature:
        key = (getattr(fn, "__func__", fn), hasattr(fn, "__self__"))   # bound: without self
        sig = self._sigs.get(key)
        if sig is None:
            sig = self._sigs[key] = inspect.signature(fn)
        return sig


def install() -> None:
    """Patch the `ocpp` library in this process (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    cp = ocpp.charge_point
    ORIGINALS.update(get_validator=ocpp.messages.get_validator, camel_to_snake_case=cp.camel_to_snake_case,
                     snake_to_camel_case=cp.snake_to_camel_case, create_route_map=cp.create_route_map)
    ocpp.messages.get_validator = _compiled_validators(ORIGINALS["get_validator"])
    cp.camel_to_snake_case = _cached_keys(ORIGINALS["camel_to_snake_case"])
    cp.snake_to_camel_case = _cached_keys(ORIGINALS["snake_to_camel_case"])
    cp.create_route_map = _cached_route_maps()
    cp.inspect = _SignatureCache()
