# Checks an incoming CALL payload against a compact schema and names the OCPP-J error it breaks.
# A schema is a string, so a whole protocol's schemas cost a few strings of RAM, parsed on use:
#   "connectorId:i! type:e!=Inoperative|Operative idTag:s20 profile:o@ChargingProfile list:ao@Item"
# name:TYPE[max][!][=a|b|c][@Type]; TYPE s string, i integer, n number, b boolean, t date-time,
# e enum, o object (@Type), d free object, a array (a + element TYPE); ! required; max = max length
# (strings) or max items (arrays).


class CallError(Exception):
    def __init__(self, code, description="", details=None):
        super().__init__("%s: %s" % (code, description))
        self.code = code
        self.description = description
        self.details = details or {}


class Specs:
    # actions: action -> schema string; types: type name -> schema string; occurrence: the error
    # code for a missing field (OCPP 1.6 spells it "OccurenceConstraintViolation").
    def __init__(self, actions, types, occurrence="OccurenceConstraintViolation"):
        self.actions = actions
        self.types = types
        self.occurrence = occurrence


def _fields(spec):
    for f in spec.split():
        name, _, rule = f.partition(":")
        t = rule[0]
        i = 1
        elem = None
        if t == "a":
            elem = rule[1]
            i = 2
        j = i
        while j < len(rule) and rule[j].isdigit():
            j += 1
        limit = int(rule[i:j]) if j > i else None
        rest = rule[j:]
        required = rest.startswith("!")
        if required:
            rest = rest[1:]
        enum = ref = None
        if rest.startswith("="):
            enum = rest[1:].split("|")
        elif rest.startswith("@"):
            ref = rest[1:]
        yield name, t, elem, limit, required, enum, ref


def check(specs, action, payload):
    spec = specs.actions.get(action)
    if spec is None:
        raise CallError("NotImplemented", "unknown action " + action)
    if not isinstance(payload, dict):
        raise CallError("FormationViolation", "payload must be an object")
    _object(specs, spec, payload, "")


def _object(specs, spec, obj, where):
    known = set()
    for name, t, elem, limit, required, enum, ref in _fields(spec):
        known.add(name)
        path = where + name
        if name not in obj:
            if required:
                raise CallError(specs.occurrence, "missing " + path)
            continue
        v = obj[name]
        if t == "a":
            if not isinstance(v, list):
                raise CallError("TypeConstraintViolation", path + " must be an array")
            if limit is not None and len(v) > limit:
                raise CallError(specs.occurrence, "%s has more than %d items" % (path, limit))
            for k, item in enumerate(v):
                _value(specs, elem, item, None, enum, ref, "%s[%d]" % (path, k))
        else:
            _value(specs, t, v, limit, enum, ref, path)
    for name in obj:
        if name not in known:
            raise CallError("FormationViolation", "unexpected field " + where + name)


def _value(specs, t, v, limit, enum, ref, path):
    if t in "se":
        if not isinstance(v, str):
            raise CallError("TypeConstraintViolation", path + " must be a string")
        if limit is not None and len(v) > limit:
            raise CallError("PropertyConstraintViolation", "%s longer than %d" % (path, limit))
        if enum is not None and v not in enum:
            raise CallError("PropertyConstraintViolation", "%s: %r not allowed" % (path, v))
    elif t == "i":
        if not isinstance(v, int) or isinstance(v, bool):
            if isinstance(v, float) and v == int(v):
                return
            raise CallError("TypeConstraintViolation", path + " must be an integer")
    elif t == "n":
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise CallError("TypeConstraintViolation", path + " must be a number")
    elif t == "b":
        if not isinstance(v, bool):
            raise CallError("TypeConstraintViolation", path + " must be a boolean")
    elif t == "t":
        if not isinstance(v, str):
            raise CallError("TypeConstraintViolation", path + " must be a date-time string")
        from hal.clock import parse_iso

        try:
            parse_iso(v)
        except ValueError:
            raise CallError("PropertyConstraintViolation", path + " is not an RFC 3339 date-time")
    elif t == "o":
        if not isinstance(v, dict):
            raise CallError("TypeConstraintViolation", path + " must be an object")
        _object(specs, specs.types[ref], v, path + ".")
    elif t == "d":
        if not isinstance(v, dict):
            raise CallError("TypeConstraintViolation", path + " must be an object")
